"""daemon_converge with a fake host: plan, check mode, write, restart, rollback."""

import json

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_converge as dc
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_service as svc

pytestmark = pytest.mark.usefixtures("systemd")


class FakeHost:
    """Answers the commands docker_service runs; dockerd 'starts' only if daemon.json is acceptable."""

    def __init__(self, path, bad_driver="no-such-driver", active=True, validate=False):
        self.path, self.bad_driver, self.active, self.validate = path, bad_driver, active, validate
        self.calls = []
        self.up = active
        FakeHost.newest = self  # its dockerd answers /_ping (conftest's systemd fixture asks it)

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            return 0, "ExecStart={ path=/usr/sbin/dockerd ; argv[]=/usr/sbin/dockerd -H fd:// }", ""
        if argv[:2] == ["systemctl", "is-active"]:
            return (0, "active\n", "") if self.active else (3, "inactive\n", "")
        if argv[:2] == ["systemctl", "restart"]:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    self.up = json.load(handle).get("log-driver") != self.bad_driver
            except FileNotFoundError:
                self.up = True
            return (0, "", "") if self.up else (1, "", "Job for docker.service failed")
        if argv[0] == "journalctl":
            return 0, 'time="x" level=info msg="Starting up"\nfailed to start daemon: log driver no-such-driver\n', ""
        if argv[-1] == "--help":
            return 0, "--validate  Validate daemon configuration and exit" if self.validate else "", ""
        return 0, "", ""

    def restarts(self):
        return sum(1 for c in self.calls if c[:2] == ["systemctl", "restart"])


def test_no_change_no_write_no_restart(daemon_json):
    host = FakeHost(str(daemon_json))
    before = daemon_json.read_text()
    result = dc.converge(host, str(daemon_json), {"debug": True})
    assert not result["changed"] and not result["restarted"]
    assert daemon_json.read_text() == before and host.restarts() == 0


def test_check_mode_predicts_and_touches_nothing(daemon_json):
    host = FakeHost(str(daemon_json))
    before = daemon_json.read_text()
    result = dc.converge(host, str(daemon_json), {"log-opts": {"max-size": "10m"}}, check_mode=True)
    assert result["changed"] and result["changed_keys"] == ["log-opts.max-size"]
    assert '"max-size": "10m"' in result["diff"][0]["after"] and '"max-size"' not in result["diff"][0]["before"]
    assert daemon_json.read_text() == before and host.restarts() == 0


def test_change_writes_merges_and_restarts(daemon_json):
    host = FakeHost(str(daemon_json))
    result = dc.converge(host, str(daemon_json), {"log-driver": "json-file"}, backup=True)
    assert result["changed"] and result["restarted"] and host.restarts() == 1
    assert json.loads(daemon_json.read_text()) == {"debug": True, "log-driver": "json-file", "log-opts": {"labels": "x"}}
    assert json.loads(open(result["backup_file"], encoding="utf-8").read())["debug"] is True


def test_restart_never_and_inactive_service_do_not_restart(daemon_json):
    host = FakeHost(str(daemon_json))
    assert not dc.converge(host, str(daemon_json), {"a": "1"}, restart="never")["restarted"]
    host = FakeHost(str(daemon_json), active=False)
    assert not dc.converge(host, str(daemon_json), {"b": "2"})["restarted"]
    assert host.restarts() == 0


def test_rejected_setting_rolls_back_with_dockerd_message(daemon_json):
    host = FakeHost(str(daemon_json))
    before = daemon_json.read_text()
    with pytest.raises(dc.DaemonConfigFailed) as err:
        dc.converge(host, str(daemon_json), {"log-driver": "no-such-driver"}, timeout=2)
    assert "no-such-driver" in str(err.value) and "restored" in str(err.value)
    assert err.value.extra["rolled_back"] is True
    assert daemon_json.read_text() == before
    assert host.up and host.restarts() == 2


def test_hosts_conflict_refused_before_writing(daemon_json):
    host = FakeHost(str(daemon_json))
    before = daemon_json.read_text()
    with pytest.raises(dc.DaemonConfigFailed, match="-H"):
        dc.converge(host, str(daemon_json), {"hosts": ["tcp://0.0.0.0:2375"]})
    assert daemon_json.read_text() == before


def test_dockerd_validate_used_when_available(daemon_json, monkeypatch):
    host = FakeHost(str(daemon_json), validate=True)
    monkeypatch.setattr(svc.shutil, "which", lambda name: "/usr/sbin/" + name)
    monkeypatch.setattr(svc, "validate_file", lambda run, path: "unknown log driver")
    before = daemon_json.read_text()
    with pytest.raises(dc.DaemonConfigFailed, match="dockerd --validate"):
        dc.converge(host, str(daemon_json), {"log-driver": "x"})
    assert daemon_json.read_text() == before and host.restarts() == 0


def test_new_file_rolled_back_by_removal(tmp_path):
    path = tmp_path / "daemon.json"
    host = FakeHost(str(path))
    with pytest.raises(dc.DaemonConfigFailed):
        dc.converge(host, str(path), {"log-driver": "no-such-driver"}, timeout=1)
    assert not path.exists()


@pytest.mark.parametrize("execstart, expected", [
    ("/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock", True),
    ("/usr/bin/dockerd --host=unix:///x", True),
    ("/usr/sbin/dockerd --containerd=/run/containerd/containerd.sock", False),
    ("", False),
])
def test_unit_passes_host_flag(execstart, expected):
    assert svc.unit_passes_host_flag(execstart) is expected


def test_error_lines_pick_the_reason():
    logs = ['level=info msg="Starting up"', 'failed to start daemon: error initializing graphdriver']
    assert svc.error_lines(logs) == [logs[1]]
