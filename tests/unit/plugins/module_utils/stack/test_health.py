"""wait_ready: one deadline for several services, fail fast on a crash loop, logs in the error."""

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import health
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError


class FakeEngine:
    """Replays a sequence of inspect results per container name (the last one repeats)."""

    def __init__(self, states):
        self.states = {name: list(seq) for name, seq in states.items()}

    def container(self, name):
        seq = self.states[name]
        return seq.pop(0) if len(seq) > 1 else seq[0]

    def logs(self, name, tail):
        return ["%s: last words" % name]


def inspect(status="running", health_status=None, restarts=0):
    state = {"Status": status}
    if health_status:
        state["Health"] = {"Status": health_status}
    return {"State": state, "RestartCount": restarts}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def wait(engine, names, deadline=60):
    clock = Clock()
    desired = {n: {"name": "c-" + n, "network": "net"} for n in names}
    health.wait_ready(engine, desired, deadline, sleep=clock.sleep, clock=clock)
    return clock.now


def test_waits_until_every_service_is_healthy():
    engine = FakeEngine({"c-a": [inspect(health_status="starting")] * 3 + [inspect(health_status="healthy")],
                         "c-b": [inspect()]})
    assert wait(engine, ["a", "b"]) > 0


def test_deadline_names_the_service_and_carries_its_logs():
    engine = FakeEngine({"c-a": [inspect(health_status="unhealthy")], "c-b": [inspect()]})
    with pytest.raises(StackError) as err:
        wait(engine, ["a", "b"], deadline=5)
    assert "not healthy before the deadline: a (status running, health unhealthy, 0 restarts)" in str(err.value)
    assert err.value.extra["services"]["a"]["logs"] == ["c-a: last words"] and "b" not in err.value.extra["services"]


def test_crash_loop_fails_long_before_the_deadline():
    engine = FakeEngine({"c-a": [inspect("restarting", restarts=n) for n in (5, 6, 7, 8)]})
    with pytest.raises(StackError, match=r"crash-looping .*: a \(status restarting, health None, 8 restarts\)"):
        wait(engine, ["a"], deadline=3600)


def test_restarts_before_the_wait_do_not_count_as_a_loop():
    engine = FakeEngine({"c-a": [inspect("running", "starting", restarts=9)] * 2 + [inspect("running", "healthy", 9)]})
    wait(engine, ["a"])


def stalled_candidate(log=(), status="starting", started="2026-11-23T11:38:54.309982205Z"):
    return {"State": {"Status": "running", "StartedAt": started, "Health": {"Status": status, "Log": list(log)}},
            "Config": {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Timeout": 5_000_000_000}}}


T0 = 1795433934.0  # 2026-11-23T11:38:54Z


@pytest.mark.parametrize("inspect, now, stalled", [
    (stalled_candidate(), T0 + 21, True),                     # 3 intervals + timeout, nothing probed
    (stalled_candidate(), T0 + 10, False),                    # too early to tell
    (stalled_candidate(log=[{"ExitCode": 1}]), T0 + 600, False),  # probes run (and fail): not stalled
    (stalled_candidate(status="healthy"), T0 + 600, False),
    (dict(stalled_candidate(), Config={}), T0 + 600, False),  # no healthcheck at all
    (stalled_candidate(started="garbage"), T0 + 600, False),
])
def test_health_monitor_lost_after_a_dockerd_restart_is_recognised(inspect, now, stalled):
    assert health.health_stalled(inspect, now) is stalled


def test_a_stalled_service_is_restarted_once_while_waiting(monkeypatch):
    monkeypatch.setattr(health, "health_stalled", lambda inspect, now=None: inspect.get("stalled", False))
    stalled = dict(inspect(health_status="starting"), stalled=True)
    engine = FakeEngine({"c-a": [stalled, stalled, inspect(health_status="healthy")]})
    engine.restarted = []
    engine.restart = engine.restarted.append
    wait(engine, ["a"])
    assert engine.restarted == ["c-a"]
