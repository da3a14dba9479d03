"""Engine error mapping: what an operator reads when Docker refuses, a registry is gone, or dockerd dies."""

import pytest
import requests
from docker.errors import APIError, NotFound

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.engine import Engine, StackError


class FakeAPI:
    def __init__(self, exc):
        self.exc = exc

    def _raise(self, *args, **kwargs):
        raise self.exc

    inspect_container = pull = start = _raise


def engine_with(exc):
    eng = Engine.__new__(Engine)
    eng.api, eng.base_url, eng.requests = FakeAPI(exc), "unix:///var/run/docker.sock", 0
    return eng


def test_dockerd_gone_mid_call_is_a_stack_error_that_says_what_to_do():
    eng = engine_with(requests.exceptions.ConnectionError("Connection aborted"))
    with pytest.raises(StackError) as err:
        eng.container("mlstack-mlflow")
    assert "lost the Docker engine at unix:///var/run/docker.sock" in str(err.value)
    assert "inspect container mlstack-mlflow" in str(err.value) and "systemctl status docker" in str(err.value)


def test_missing_container_is_none_not_an_error():
    assert engine_with(NotFound("no such container")).container("x") is None


def test_refusal_names_the_action():
    with pytest.raises(StackError, match="Docker refused to start container abc: boom"):
        engine_with(APIError("boom")).start("abc")


def test_pull_failure_names_image_and_registry_and_is_not_mistaken_for_a_lost_engine():
    with pytest.raises(StackError) as err:
        engine_with(APIError("connection refused")).pull("registry:5000/fixtures/redis:7-b")
    assert "pulling registry:5000/fixtures/redis:7-b from registry:5000 failed" in str(err.value)
    assert err.value.extra == {"image": "registry:5000/fixtures/redis:7-b", "registry": "registry:5000"}


def test_pull_with_dockerd_gone_says_so():
    with pytest.raises(StackError, match="lost the Docker engine"):
        engine_with(requests.exceptions.ConnectionError("reset")).pull("registry:5000/a:1")
