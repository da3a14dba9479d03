"""Engine error mapping: what an operator reads when Docker refuses, a registry is gone, or dockerd dies
(a fake dockerd on a real unix socket answers)."""

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.engine import Engine


def test_engine_not_running_at_first_request_says_so(tmp_path):
    with pytest.raises(StackError) as err:
        Engine("unix://%s" % (tmp_path / "docker.sock")).network("mlstack")
    assert "cannot reach the Docker engine" in str(err.value) and "systemctl status docker" in str(err.value)


def test_dockerd_gone_mid_run_is_a_stack_error_that_says_what_to_do(dockerd):
    dockerd.routes[("GET", "/networks/mlstack")] = (200, {"Id": "n1"})
    dockerd.routes[("GET", "/containers/mlstack-mlflow/json")] = (200, "hang up")
    eng = Engine(dockerd.url)
    assert eng.network("mlstack")["Id"] == "n1"
    with pytest.raises(StackError) as err:
        eng.container("mlstack-mlflow")
    assert "lost the Docker engine at %s" % dockerd.url in str(err.value)
    assert "inspect container mlstack-mlflow" in str(err.value) and "systemctl status docker" in str(err.value)


def test_missing_objects_are_none_not_errors(dockerd):
    eng = Engine(dockerd.url)
    assert eng.container("x") is None and eng.image("registry:5000/fixtures/redis:7") is None and eng.volume("v") is None
    assert dockerd.seen[1]["path"] == "/images/registry:5000/fixtures/redis:7/json" and eng.requests == 3


def test_refusal_names_the_action(dockerd):
    dockerd.routes[("POST", "/containers/abc/start")] = (500, {"message": "boom"})
    with pytest.raises(StackError, match="Docker refused to start container abc: boom"):
        Engine(dockerd.url).start("abc")


def test_pull_failure_in_the_stream_names_image_and_registry(dockerd):
    dockerd.routes[("POST", "/images/create")] = (200, b'{"error":"Get http://registry:5000/v2/: connection refused",'
                                                       b'"errorDetail":{"message":"connection refused"}}\n')
    with pytest.raises(StackError) as err:
        Engine(dockerd.url).pull("registry:5000/fixtures/redis:7-b")
    assert "pulling registry:5000/fixtures/redis:7-b from registry:5000 failed: connection refused" in str(err.value)
    assert err.value.extra == {"image": "registry:5000/fixtures/redis:7-b", "registry": "registry:5000"}
    assert dockerd.seen[-1]["query"] == {"fromImage": ["registry:5000/fixtures/redis"], "tag": ["7-b"]}


def test_pull_sends_credentials_and_inspects_the_result(dockerd):
    dockerd.routes[("POST", "/images/create")] = (200, b'{"status":"Downloaded newer image"}\n')
    dockerd.routes[("GET", "/images/private.example/app:1/json")] = (200, {"Id": "sha256:1"})
    assert Engine(dockerd.url).pull("private.example/app:1", {"username": "u", "password": "p"})["Id"] == "sha256:1"
    assert "X-Registry-Auth" in dockerd.seen[0]["headers"]


def test_pull_with_dockerd_gone_says_so(dockerd):
    dockerd.routes[("POST", "/images/create")] = (200, "hang up")
    with pytest.raises(StackError, match="lost the Docker engine"):
        Engine(dockerd.url).pull("registry:5000/a:1")


def test_logs_are_demultiplexed_and_tailed(dockerd):
    frame = b"\x02\x00\x00\x00\x00\x00\x00\x0eFATAL: no way\n"
    dockerd.routes[("GET", "/containers/c/logs")] = (200, frame)
    assert Engine(dockerd.url).logs("c") == ["FATAL: no way"]
    assert dockerd.seen[-1]["query"] == {"stdout": ["1"], "stderr": ["1"], "tail": ["30"]}


def test_update_sends_only_what_is_set(dockerd):
    dockerd.routes[("POST", "/containers/c/update")] = (200, {"Warnings": []})
    Engine(dockerd.url).update("c", {"memory": None, "nano_cpus": 1500000000,
                                     "restart_policy": {"Name": "unless-stopped", "MaximumRetryCount": 0}})
    assert dockerd.seen[-1]["body"] == {"NanoCpus": 1500000000,
                                        "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}}


def test_unsupported_docker_host_is_a_clear_error():
    with pytest.raises(StackError, match="only unix:// sockets and plain tcp"):
        Engine("ssh://root@db")


def test_exec_passes_env_to_the_exec_only_and_reads_the_exit_code(dockerd):
    dockerd.routes[("POST", "/containers/pg/exec")] = (201, {"Id": "e1"})
    dockerd.routes[("POST", "/exec/e1/start")] = (200, b"\x01\x00\x00\x00\x00\x00\x00\x0bALTER ROLE\n")
    dockerd.routes[("GET", "/exec/e1/json")] = (200, {"ExitCode": 0, "Running": False})
    code, output = Engine(dockerd.url).exec("pg", ["sh", "-c", "true"], env={"MLINFRA_NEW": "pw"})
    assert (code, output) == (0, "ALTER ROLE\n")
    assert dockerd.seen[0]["body"]["Env"] == ["MLINFRA_NEW=pw"] and dockerd.seen[0]["body"]["Cmd"] == ["sh", "-c", "true"]


def _one_shot_routes(dockerd, wait):
    dockerd.routes[("POST", "/containers/create")] = (201, {"Id": "once"})
    dockerd.routes[("POST", "/containers/once/start")] = (204, None)
    dockerd.routes[("POST", "/containers/once/wait")] = wait
    dockerd.routes[("GET", "/containers/once/logs")] = (200, b"migrating\n")
    dockerd.routes[("DELETE", "/containers/once")] = (204, None)


DESIRED = {"name": "mls-mlflow", "image": "mlflow:1", "command": None, "env": {}, "labels": {}, "ports": {},
           "healthcheck": None, "mounts": [], "ulimits": [], "memory": None, "nano_cpus": None, "shm_size": None,
           "restart_policy": None, "log_config": None, "device_requests": None, "network": "mls", "aliases": []}


def test_a_one_shot_that_outlives_its_bound_is_left_running_not_killed(dockerd):
    def slow(_request):
        import time  # pylint: disable=import-outside-toplevel
        time.sleep(2)
        return 200, {"StatusCode": 0}
    _one_shot_routes(dockerd, slow)
    with pytest.raises(StackError) as err:
        Engine(dockerd.url).run_once(DESIRED, ["mlflow", "db", "upgrade"], timeout=1)
    assert "left running" in str(err.value) and "docker wait mls-mlflow-oneshot" in str(err.value)
    assert not [s for s in dockerd.seen if s["method"] == "DELETE"], "a running migration must not be removed"


def test_a_one_shot_still_running_from_an_earlier_run_is_not_replaced(dockerd):
    dockerd.routes[("GET", "/containers/mls-mlflow-oneshot/json")] = (200, {
        "Id": "old", "State": {"Running": True}, "Config": {"Cmd": ["mlflow", "db", "upgrade"]}})
    with pytest.raises(StackError, match="still running"):
        Engine(dockerd.url).run_once(DESIRED, ["mlflow", "db", "upgrade"], timeout=10)
    assert [s["method"] for s in dockerd.seen] == ["GET"]


def test_a_finished_one_shot_is_removed_with_its_exit_code_and_logs(dockerd):
    _one_shot_routes(dockerd, (200, {"StatusCode": 3}))
    assert Engine(dockerd.url).run_once(DESIRED, ["x"], timeout=10) == (3, ["migrating"])
    assert dockerd.seen[-1]["method"] == "DELETE"


def test_a_pull_past_its_own_deadline_is_stopped_with_a_clear_message(dockerd):
    def endless(_request):
        return 200, b"".join(b'{"status":"Downloading","progress":"%d"}\n' % i for i in range(20000))
    dockerd.routes[("POST", "/images/create")] = endless
    with pytest.raises(StackError) as err:
        Engine(dockerd.url).pull("registry:5000/serving:2-gpu", timeout=1e-9)
    assert "took longer than pull_timeout" in str(err.value) and "no container was touched" in str(err.value)
