"""Shared helpers for fleet scenarios: bring a named fleet up, run Ansible against it, tear it down."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fleet import fleet as fleet_mod

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible_env(**extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    env.update(extra)
    return env


def run_ansible(tool, *args, timeout=900, check=True, **env):
    """Run ansible / ansible-playbook from this venv with the repo's ansible.cfg; bounded."""
    proc = subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, cwd=REPO,
                          env=ansible_env(**env), timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-6000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


class Fleet:
    def __init__(self, name, hosts, fixtures=False, gpu_hosts=()):
        self.name, self.hosts, self.fixtures, self.gpu_hosts = name, hosts, fixtures, gpu_hosts
        self.inventory = None

    def up(self):
        path = fleet_mod.up(self.name, self.hosts, self.gpu_hosts, log=lambda m: None, fixtures=self.fixtures)
        self.inventory = str(path)
        return self

    def down(self):
        fleet_mod.down(self.name, log=lambda m: None)

    def container(self, host):
        return f"mlinfra-fleet-{self.name}-{host}"


@pytest.fixture(scope="module")
def make_fleet():
    """Factory: make_fleet(name, hosts) -> Fleet (up); every fleet made is torn down at module end."""
    made = []

    def factory(name, hosts=3, fixtures=False, gpu_hosts=()):
        # MLINFRA_FLEET_PREFIX keeps parallel runs of the same test module (several worktrees) apart.
        fl = Fleet(os.environ.get("MLINFRA_FLEET_PREFIX", "") + name, hosts, fixtures, gpu_hosts)
        made.append(fl)
        return fl.up()

    yield factory
    for fl in made:
        fl.down()


def daemon_json_text(fl, host, path="/etc/docker/daemon.json"):
    rc, out = host_exec(fl, host, "cat", path)
    assert rc == 0, out
    return out


def docker_active(fl, host):
    return host_exec(fl, host, "systemctl", "is-active", "docker")[1].strip() == "active"


def recap(stdout):
    """PLAY RECAP of an ansible-playbook run -> {host: {"ok": n, "changed": n, "failed": n, ...}}."""
    import re  # pylint: disable=import-outside-toplevel
    counts = {}
    for match in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", stdout, re.M):
        counts[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return counts


def host_exec(fl, host, *cmd):
    """Observe a fleet host from outside (test-side only): docker exec, return (rc, output)."""
    import docker  # pylint: disable=import-outside-toplevel
    result = docker.from_env().containers.get(fl.container(host)).exec_run(list(cmd))
    return result.exit_code, result.output.decode()


@pytest.fixture(scope="session")
def rel_fleet():
    """The reliability scenarios' 3-host fleet (fixture images, a demo model on host3), shared by
    their modules: each scenario leaves it converged again. Nothing is converged here.
    MLINFRA_KEEP_FLEET=1 leaves it up afterwards (to look at it, or to rerun one module quickly)."""
    from tests.integration.stack_helpers import BASE_VARS, install_model  # pylint: disable=import-outside-toplevel
    fl = Fleet(os.environ.get("MLINFRA_FLEET_PREFIX", "") + "it-rel", 3, fixtures=True).up()
    install_model(fl)
    fl.vars = dict(BASE_VARS)
    yield fl
    if os.environ.get("MLINFRA_KEEP_FLEET") != "1":
        fl.down()


# --- the reliability summary: passed scenarios counted by what they prove -------------------------
TALLY_KINDS = ("faults survived", "drifts repaired", "bad inputs refused", "data checks passed", "security checks passed")
_TALLY = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    for marker in item.iter_markers("tally"):
        kind, weight = marker.args[0], (marker.args[1] if len(marker.args) > 1 else 1)
        assert kind in TALLY_KINDS, f"unknown tally kind {kind!r}"
        entry = _TALLY.setdefault(kind, {"passed": 0, "failed": 0})
        entry["passed" if report.passed else "failed"] += weight


def pytest_terminal_summary(terminalreporter):
    if not _TALLY:
        return
    lines = ["| what | passed | failed |", "|---|---|---|"]
    lines += [f"| {kind} | {_TALLY[kind]['passed']} | {_TALLY[kind]['failed']} |" for kind in TALLY_KINDS if kind in _TALLY]
    terminalreporter.write_sep("=", "reliability summary")
    for line in lines:
        terminalreporter.write_line(line)
    out = REPO / ".build" / "reliability-summary.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("# Reliability summary (last fleet test run)\n\n" + "\n".join(lines) + "\n")
