"""dockerd's readiness is asked on its socket (GET /_ping), not by starting the docker CLI (issue 16, item 5)."""

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_service as svc


def test_ping_ok_means_the_engine_answers(dockerd):
    dockerd.routes[("GET", "/_ping")] = (200, b"OK")
    assert svc.api_answers(base_url=dockerd.url)
    assert [s["path"] for s in dockerd.seen] == ["/_ping"]


def test_an_engine_still_starting_does_not_answer(dockerd):
    # dockerd serves its socket before its API is up: /_ping then fails (no route here: 404)
    assert not svc.api_answers(base_url=dockerd.url)
    dockerd.routes[("GET", "/_ping")] = (500, {"message": "starting"})
    assert not svc.api_answers(base_url=dockerd.url)


def test_no_socket_is_no_engine(tmp_path):
    assert not svc.api_answers(timeout=1, base_url="unix://%s" % (tmp_path / "absent.sock"))


def test_readiness_is_asked_where_daemon_json_says_dockerd_listens(dockerd, tmp_path):
    """Review finding: a daemon.json whose `hosts` leave out /var/run/docker.sock had every restart judged
    failed (the ping went to the default socket) and its valid configuration rolled back."""
    dockerd.routes[("GET", "/_ping")] = (200, b"OK")
    config = {"hosts": [dockerd.url, "tcp://0.0.0.0:2375"]}
    assert svc.api_address(config) == dockerd.url
    assert svc.wait_for_api(2, svc.api_address(config), sleep=lambda s: None)
    assert svc.restart_and_verify(lambda argv: (0, "", ""), 2, svc.api_address(config)) is None


def test_api_address_rules():
    assert svc.api_address({}) == svc.DEFAULT_HOST
    assert svc.api_address({"hosts": ["fd://"]}) == svc.DEFAULT_HOST  # systemd's docker.socket
    assert svc.api_address({"hosts": "unix:///run/d.sock"}) == "unix:///run/d.sock"
    assert svc.api_address({"hosts": ["tcp://0.0.0.0:2375"]}) == "tcp://127.0.0.1:2375"
    assert svc.api_address({"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": True}) == svc.DEFAULT_HOST
