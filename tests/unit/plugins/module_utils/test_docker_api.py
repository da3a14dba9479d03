"""docker_api against a fake dockerd on a real unix socket: paths, queries, bodies, errors, streams."""

import base64
import json
import struct

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_api, registry_auth
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.docker_api import (
    DockerAPI, DockerAPIError, DockerConnectionError, DockerNotFound)


def test_json_answer_and_unversioned_path(dockerd):
    dockerd.routes[("GET", "/version")] = (200, {"Version": "20.10.24", "ApiVersion": "1.41"})
    api = DockerAPI(dockerd.url)
    assert api.call("GET", "/version")["ApiVersion"] == "1.41"
    assert dockerd.seen[-1]["path"] == "/version" and api.requests == 1


def test_pinned_api_version_prefixes_paths(dockerd):
    dockerd.routes[("GET", "/v1.41/info")] = (200, {"Driver": "overlay2"})
    assert DockerAPI(dockerd.url, version="1.41").call("GET", "/info") == {"Driver": "overlay2"}


def test_body_query_and_headers_reach_the_engine(dockerd):
    dockerd.routes[("POST", "/containers/create")] = (201, {"Id": "abc"})
    api = DockerAPI(dockerd.url)
    assert api.call("POST", "/containers/create", params={"name": "p-postgres", "skip": None},
                    body={"Image": "postgres:15", "Env": ["A=1"]})["Id"] == "abc"
    seen = dockerd.seen[-1]
    assert seen["query"] == {"name": ["p-postgres"]} and seen["body"] == {"Image": "postgres:15", "Env": ["A=1"]}
    assert seen["headers"]["Content-Type"] == "application/json"


def test_404_is_not_found_with_dockerds_message(dockerd):
    dockerd.routes[("GET", "/containers/x/json")] = (404, {"message": "No such container: x"})
    with pytest.raises(DockerNotFound) as err:
        DockerAPI(dockerd.url).call("GET", "/containers/x/json")
    assert err.value.explanation == "No such container: x" and err.value.status == 404


def test_conflict_is_an_api_error(dockerd):
    dockerd.routes[("DELETE", "/networks/n")] = (409, {"message": "network n has active endpoints"})
    with pytest.raises(DockerAPIError) as err:
        DockerAPI(dockerd.url).call("DELETE", "/networks/n")
    assert not isinstance(err.value, DockerNotFound) and "active endpoints" in str(err.value)


def test_304_and_204_are_success_without_body(dockerd):
    dockerd.routes[("POST", "/containers/c/start")] = (304, None)
    dockerd.routes[("POST", "/containers/c/stop")] = (204, None)
    api = DockerAPI(dockerd.url)
    assert api.call("POST", "/containers/c/start") is None and api.call("POST", "/containers/c/stop") is None


def test_missing_socket_and_hang_up_are_connection_errors(dockerd, tmp_path):
    with pytest.raises(DockerConnectionError, match="GET /info"):
        DockerAPI("unix://%s" % (tmp_path / "gone.sock")).call("GET", "/info")
    dockerd.routes[("GET", "/info")] = (200, "hang up")
    with pytest.raises(DockerConnectionError):
        DockerAPI(dockerd.url).call("GET", "/info")


def test_chunked_pull_stream_errors_are_found(dockerd):
    stream = b'{"status":"Pulling from fixtures/redis"}\n{"errorDetail":{"message":"manifest unknown"},"error":"x"}\n'
    dockerd.routes[("POST", "/images/create")] = (200, stream)
    status, raw = DockerAPI(dockerd.url).request("POST", "/images/create", params={"fromImage": "r/redis", "tag": "7"})
    assert status == 200 and docker_api.stream_errors(raw) == ["manifest unknown"]
    assert docker_api.stream_errors(b'{"status":"Downloaded newer image"}\n\nnot json\n') == []


def test_demux_of_multiplexed_logs():
    frames = b"".join(struct.pack(">BxxxI", kind, len(text)) + text for kind, text in ((1, b"out\n"), (2, b"err\n")))
    assert docker_api.demux(frames) == b"out\nerr\n"
    assert docker_api.demux(b"a tty stream\n") == b"a tty stream\n"


@pytest.mark.parametrize("url, parsed", [
    ("unix:///var/run/docker.sock", ("unix", "/var/run/docker.sock")),
    ("tcp://127.0.0.1:2375", ("tcp", ("127.0.0.1", 2375))),
    ("tcp://[::1]:2375", ("tcp", ("::1", 2375))),
])
def test_base_urls(url, parsed):
    assert docker_api.parse_base_url(url) == parsed


@pytest.mark.parametrize("url", ["ssh://me@host", "/var/run/docker.sock", "unix://relative.sock", "tcp://host"])
def test_unsupported_base_urls_say_what_works(url):
    with pytest.raises(ValueError, match="docker_host"):
        docker_api.parse_base_url(url)


def test_config_auth_from_docker_login(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"registry:5000": {"auth": base64.b64encode(b"bob:s3:cret").decode()}}}))
    assert registry_auth.config_auth("registry:5000", str(config)) == {
        "username": "bob", "password": "s3:cret", "serveraddress": "registry:5000"}
    assert registry_auth.config_auth("other:5000", str(config)) is None
    assert registry_auth.config_auth("registry:5000", str(tmp_path / "none.json")) is None


def test_config_auth_asks_the_credential_helper(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {"ecr.example": "ecr-login"}}))
    calls = []

    def run(argv, data):
        calls.append((argv, data))
        return 0, json.dumps({"Username": "AWS", "Secret": "tok"}).encode()
    assert registry_auth.config_auth("ecr.example", str(config), run) == {
        "username": "AWS", "password": "tok", "serveraddress": "ecr.example"}
    assert calls == [(["docker-credential-ecr-login", "get"], b"ecr.example")]


def test_registry_auth_header_round_trips():
    header = registry_auth.registry_auth_header({"username": "u", "password": "p"})
    assert json.loads(base64.urlsafe_b64decode(header)) == {"username": "u", "password": "p"}
