import pytest

from fake_dockerd import FakeDockerd


@pytest.fixture
def dockerd(tmp_path):
    with FakeDockerd(tmp_path / "docker.sock") as fake:
        yield fake


@pytest.fixture
def systemd(monkeypatch):
    """The daemon tests' host has systemd, and restarts wait no real time."""
    from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_service as svc  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(svc, "has_systemd", lambda: True)
    monkeypatch.setattr(svc.time, "sleep", lambda s: None)
    monkeypatch.setattr(svc, "api_answers", _newest_host_up)


def _newest_host_up(timeout=5, base_url=None):  # pylint: disable=unused-argument
    """The engine's /_ping in the daemon tests: the newest fake host's dockerd, up unless a bad config stopped it."""
    from test_daemon_converge import FakeHost  # pylint: disable=import-outside-toplevel
    return FakeHost.newest is None or FakeHost.newest.up


@pytest.fixture
def daemon_json(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true, "log-opts": {"labels": "x"}}\n')
    return path


@pytest.fixture(autouse=True)
def cdi_record(tmp_path, monkeypatch):
    """nvidia_toolkit's record of the CDI specs it wrote, kept in the test's own directory."""
    from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvidia_install  # pylint: disable=import-outside-toplevel
    path = tmp_path / "var-lib-mlinfra" / "nvidia_toolkit-cdi.json"
    monkeypatch.setattr(nvidia_install, "CDI_RECORD", str(path))
    return path
