"""dockerd behind a proxy: the docker.service drop-in, in the daemon.json transaction (issue 13, item 7)."""

import json

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_converge as dc
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_proxy as dp
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_service as svc
from test_daemon_converge import FakeHost

PROXY = {"http": "http://proxy.lab:3128", "https": "http://proxy.lab:3128", "no_proxy": ["localhost", " .internal "]}
SECRET = {"http": "http://ops:s3cr%40t@proxy.lab:3128", "https": None, "no_proxy": []}


@pytest.fixture(autouse=True)
def systemd(monkeypatch):
    monkeypatch.setattr(svc, "has_systemd", lambda: True)
    monkeypatch.setattr(svc.time, "sleep", lambda s: None)
    monkeypatch.setattr(svc, "api_answers", lambda timeout=5, base_url=None: FakeHost.newest.up)


class ProxyHost(FakeHost):
    """dockerd does not come back when the drop-in names the proxy 'http://broken:1'."""

    def __init__(self, path, dropin, **kwargs):
        super().__init__(path, **kwargs)
        self.dropin = dropin

    def __call__(self, argv):
        if argv[:2] == ["systemctl", "restart"] and self.dropin.exists() and "broken" in self.dropin.read_text():
            self.calls.append(argv)
            self.up = False
            return 1, "", "Job for docker.service failed"
        return super().__call__(argv)

    def reloads(self):
        return sum(1 for c in self.calls if c == ["systemctl", "daemon-reload"])


@pytest.fixture
def files(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}\n')
    return path, tmp_path / "docker.service.d" / "mlinfra-proxy.conf"


def converge(files, proxy, **kwargs):
    path, dropin = files
    host = ProxyHost(str(path), dropin)
    return host, dc.converge(host, str(path), {"debug": True}, proxy=proxy, dropin=str(dropin), **kwargs)


def test_render_the_drop_in():
    assert dp.render(PROXY) == (
        "# Managed by mlinfra.docker_ml (docker_proxy); removed when the proxy is unset.\n[Service]\n"
        'Environment="HTTPS_PROXY=http://proxy.lab:3128"\nEnvironment="HTTP_PROXY=http://proxy.lab:3128"\n'
        'Environment="NO_PROXY=localhost,.internal"\n')
    assert dp.render({}) is None and dp.render({"no_proxy": ["x"]}) is None
    assert 'HTTP_PROXY=http://ops:s3cr%%40t@proxy.lab:3128"' in dp.render(SECRET)  # systemd's % specifiers


@pytest.mark.parametrize("proxy, named", [({"http": "proxy.lab:3128"}, "http"), ({"https": 'http://a" b'}, "https"),
                                          ({"http": "http://p:1", "no_proxy": ["a b"]}, "no_proxy")])
def test_bad_values_refused_naming_them(proxy, named):
    with pytest.raises(dp.ProxyError, match="^" + named):
        dp.render(proxy)


def test_credentials_are_secrets_and_redacted():
    assert "s3cr%40t" in dp.secrets(SECRET) and dp.secrets(PROXY) == []
    assert dp.redact(dp.render(SECRET)).count("********") == 1 and "s3cr" not in dp.redact(dp.render(SECRET))


def test_proxy_on_reloads_and_restarts_once_then_nothing(files):
    host, result = converge(files, PROXY)
    assert result["changed"] and result["proxy_changed"] and result["restarted"]
    assert host.reloads() == 1 and host.restarts() == 1 and files[1].read_text() == dp.render(PROXY)
    host, again = converge(files, PROXY)
    assert not again["changed"] and host.restarts() == 0 and host.reloads() == 0


def test_proxy_off_removes_the_drop_in_and_none_leaves_it_alone(files):
    converge(files, PROXY)
    assert not converge(files, None)[1]["changed"] and files[1].exists()
    host, result = converge(files, {})
    assert result["changed"] and not files[1].exists() and host.restarts() == 1


def test_check_mode_diff_masks_the_password(files):
    _host, result = converge(files, SECRET, check_mode=True)
    assert result["changed"] and not files[1].exists()
    assert "s3cr" not in json.dumps(result["diff"]) and "ops:********@proxy.lab" in result["diff"][-1]["after"]


def test_dockerd_not_coming_back_restores_the_drop_in(files):
    converge(files, PROXY)
    before = files[1].read_text()
    with pytest.raises(dc.DaemonConfigFailed, match="restored") as err:
        converge(files, {"http": "http://broken:1"}, timeout=1)
    assert err.value.extra["rolled_back"] and files[1].read_text() == before


def test_new_drop_in_removed_again_when_dockerd_does_not_come_back(files):
    with pytest.raises(dc.DaemonConfigFailed):
        converge(files, {"http": "http://broken:1"}, timeout=1)
    assert not files[1].exists()


def test_without_systemd_a_proxy_is_refused_before_writing(files, monkeypatch):
    monkeypatch.setattr(svc, "has_systemd", lambda: False)
    with pytest.raises(dc.DaemonConfigFailed, match="systemd.*Nothing was written"):
        converge(files, PROXY)
    assert not files[1].exists()
