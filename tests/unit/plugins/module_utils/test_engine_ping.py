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
