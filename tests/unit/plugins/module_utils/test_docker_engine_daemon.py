"""docker_engine with `daemon`: daemon.json before the packages (a first install starts dockerd once, with its
settings), roll back when the engine then does not come up, check mode, state=absent."""

import json

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_options, docker_install, package_holds
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_service as svc
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.docker_install import EngineError

pytestmark = pytest.mark.usefixtures("systemd")


class FreshHost:
    """A Debian host without Docker: apt-get install 'installs' docker.io and starts dockerd, which reads
    daemon.json then (and stays down if the file names a log driver it does not know)."""

    def __init__(self, path, installed=False):
        self.path, self.installed, self.up, self.calls = path, installed, installed, []
        self.config_at_install = None
        self.starts = 0

    def os_release(self):
        return {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}

    def architecture(self):
        return "amd64"

    def _start(self):
        self.starts += 1
        try:
            self.up = json.loads(self.path.read_text()).get("log-driver") != "no-such-driver"
        except FileNotFoundError:
            self.up = True
        return self.up

    def run_env(self, argv, env):  # pylint: disable=unused-argument
        return self.run(argv)

    def run(self, argv):
        self.calls.append(argv)
        if argv[0] == "dpkg-query":
            return (0, "ii |20.10.24+dfsg1-1+deb12u1", "") if self.installed else (1, "", "no packages found")
        if argv[:2] == ["apt-get", "install"]:
            self.config_at_install = self.path.read_text() if self.path.exists() else None
            self.installed = True
            self._start()  # the package's postinst starts docker.service; a failed start does not fail it
            return 0, "", ""
        if argv[:2] == ["systemctl", "is-enabled"]:
            return (0, "enabled\n", "") if self.installed else (1, "", "")
        if argv[:2] == ["systemctl", "is-active"]:
            return (0, "active\n", "") if self.up else (3, "inactive\n", "")
        if argv[:2] in (["systemctl", "restart"], ["systemctl", "enable"]):
            return (0, "", "") if self._start() else (1, "", "Job for docker.service failed")
        if argv[0] == "journalctl":
            return 0, "failed to start daemon: log driver no-such-driver\n", ""
        if argv[:2] == ["systemctl", "show"]:
            return 0, "ExecStart={ argv[]=/usr/sbin/dockerd -H fd:// }", ""
        return 0, "", ""


def params(path, **daemon):
    spec = daemon_options.argument_spec()
    given = {k: v.get("default") for k, v in spec.items()}
    given.update(path=str(path), owner="docker_role", **daemon)
    return {"channel": "distro", "version": None, "state": "present", "plugins": True, "extra_packages": [],
            "sdk": "never", "sdk_package": "python3-docker", "hold": False, "install_recommends": False,
            "repo_base_url": "https://download.docker.com/linux", "gpg_key": None, "gpg_key_url": None,
            "manage_service": True, "users": [], "daemon": given}


@pytest.fixture(autouse=True)
def engine_up(monkeypatch, tmp_path):
    monkeypatch.setattr(package_holds, "RECORD", str(tmp_path / "holds.json"))
    facts = {"version": "20.10.24", "api_version": "1.41", "storage_driver": "overlay2"}
    monkeypatch.setattr(docker_install, "engine_facts", lambda api=None: facts)
    monkeypatch.setattr(svc, "wait_for_api", lambda timeout, *a, **kw: HOST[0].up)
    monkeypatch.setattr(svc, "dockerd_installed", lambda: HOST[0].installed)


HOST = [None]


def host_for(path, **kw):
    HOST[0] = FreshHost(path, **kw)
    return HOST[0]


def test_first_install_writes_daemon_json_before_the_package_and_starts_dockerd_once(tmp_path):
    path = tmp_path / "daemon.json"
    host = host_for(path)
    result = docker_install.converge(host, params(path, settings={"data-root": "/data/docker"}), False)
    assert json.loads(host.config_at_install) == {"data-root": "/data/docker"}
    assert host.starts == 1 and not any(c[:2] == ["systemctl", "restart"] for c in host.calls)
    assert result["changed"] and result["daemon"]["changed_keys"] == ["data-root"]
    assert result["actions"][0] == "write %s (data-root)" % path
    assert "install docker.io" in result["actions"] and "restart docker" not in result["actions"]
    assert "undo" not in result["daemon"] and result["daemon"]["restarted"] is False


def test_second_run_changes_nothing(tmp_path):
    path = tmp_path / "daemon.json"
    docker_install.converge(host_for(path), params(path, settings={"debug": True}), False)
    again = docker_install.converge(HOST[0], params(path, settings={"debug": True}), False)
    assert again["changed"] is False and again["actions"] == [] and again["daemon"]["changed"] is False


def test_change_on_a_running_engine_restarts_it_once(tmp_path):
    path = tmp_path / "daemon.json"
    host = host_for(path, installed=True)
    result = docker_install.converge(host, params(path, settings={"debug": True}), False)
    assert result["actions"] == ["write %s (debug)" % path, "restart docker"]
    assert [c for c in host.calls if c[:2] == ["systemctl", "restart"]] == [["systemctl", "restart", "docker"]]


def test_engine_that_does_not_come_up_with_the_new_file_gets_the_old_one_back(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}\n')
    host = host_for(path)
    with pytest.raises(EngineError) as failed:
        docker_install.converge(host, params(path, settings={"log-driver": "no-such-driver"}), False)
    assert json.loads(path.read_text()) == {"debug": True}
    assert not (tmp_path / "daemon.json.managed-keys").exists()
    message = str(failed.value)
    assert "previous daemon configuration was put back" in message and "running with it" in message
    assert "log-driver" in message and failed.value.extra["rolled_back"] is True
    assert host.up


def test_putting_the_old_file_back_waits_for_dockerd_as_long_as_restart_timeout(tmp_path, monkeypatch):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}\n')
    host = host_for(path)
    waited = []
    real = docker_install.svc.restart_and_verify
    monkeypatch.setattr(docker_install.svc, "restart_and_verify",
                        lambda run, timeout, *a: waited.append(timeout) or real(run, timeout, *a))
    with pytest.raises(EngineError):
        docker_install.converge(host, params(path, settings={"log-driver": "no-such-driver"}, restart_timeout=7), False)
    assert waited and set(waited) == {7}


def test_check_mode_predicts_the_file_and_touches_nothing(tmp_path):
    path = tmp_path / "daemon.json"
    host = host_for(path)
    result = docker_install.converge(host, params(path, settings={"debug": True}), True)
    assert not path.exists() and not host.installed
    assert result["actions"][:2] == ["write %s (debug)" % path, "install docker.io"]
    assert result["daemon"]["diff"][0]["after"] == '{\n  "debug": true\n}\n'


def test_state_absent_leaves_daemon_json_alone(tmp_path):
    path = tmp_path / "daemon.json"
    p = dict(params(path, settings={"debug": True}), state="absent")
    result = docker_install.converge(host_for(path), p, False)
    assert not path.exists() and "daemon" not in result


def test_bad_restart_timeout_refused_naming_the_suboption(tmp_path):
    with pytest.raises(InputError, match="daemon.restart_timeout"):
        docker_install.check_params(params(tmp_path / "d.json", restart_timeout=0))
