"""Preflight decisions (no Docker): where a Postgres cluster can sit in a data volume, and which host
ports a new container could not get."""

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import preflight, rotation


@pytest.mark.parametrize("files, found", [
    ({}, []),
    ({"PG_VERSION": "15\n"}, [(".", "15")]),
    ({"data/PG_VERSION": "16"}, [("data", "16")]),
    ({"17/docker/PG_VERSION": "17", "18/docker/PG_VERSION": "18"}, [("17/docker", "17"), ("18/docker", "18")]),
    ({"lost+found/x": ""}, []),
])
def test_pg_clusters_finds_every_layout(tmp_path, files, found):
    for rel, content in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    assert preflight.pg_clusters(str(tmp_path)) == found


def test_pg_clusters_of_a_missing_mountpoint_is_empty(tmp_path):
    assert preflight.pg_clusters(str(tmp_path / "gone")) == []


def test_ports_held_by_the_container_being_replaced_are_not_checked():
    desired = {"ports": {"5432/tcp": [["127.0.0.1", "5432"], ["10.0.0.5", "5432"]]}}
    asked = []

    def bind(ip, port, proto):
        asked.append((ip, port, proto))
        return "Address already in use"
    problems = preflight.ports_taken("postgres", desired, {"5432/tcp": [["127.0.0.1", "5433"]]}, bind=bind)
    assert asked == [("127.0.0.1", "5432", "tcp"), ("10.0.0.5", "5432", "tcp")]
    assert problems[1] == "postgres: 10.0.0.5:5432/tcp is not free on this host (Address already in use)"


def test_a_host_port_the_replaced_container_holds_is_free_on_any_address():
    # 127.0.0.1:5000 held now, 0.0.0.0:5000 wanted: binding it before the old container is gone would fail.
    desired = {"ports": {"5000/tcp": [["0.0.0.0", "5000"]], "5001/udp": [["127.0.0.1", "5000"]]}}
    asked = []
    preflight.ports_taken("mlflow", desired, {"5000/tcp": [["127.0.0.1", "5000"]]},
                          bind=lambda *a: asked.append(a))
    assert asked == [("127.0.0.1", "5000", "udp")]


def test_mlflow_admin_rotation_updates_then_checks_with_the_new_password():
    seen = []

    def request(address, method, path, user, password, body=None):
        seen.append((method, path, password, body))
        return 200, "{}"
    inspect = {"NetworkSettings": {"Networks": {"mls": {"IPAddress": "10.1.0.3"}}}}
    assert rotation.rotate_mlflow_admin(inspect, "mls", "admin", "old", "new", request=request) is None
    assert seen == [("PATCH", "/api/2.0/mlflow/users/update-password", "old", {"username": "admin", "password": "new", "current_password": "old"}),
                    ("GET", "/api/2.0/mlflow/users/get?username=admin", "new", None)]


def test_mlflow_admin_rotation_refused_by_mlflow_is_an_error_that_says_nothing_changed():
    inspect = {"NetworkSettings": {"Networks": {"mls": {"IPAddress": "10.1.0.3"}}}}

    def request(address, method, path, user, password, body=None):
        return (200, "{}") if (method, password) == ("GET", "old") else (401, "denied")
    with pytest.raises(Exception) as err:
        rotation.rotate_mlflow_admin(inspect, "mls", "admin", "old", "new", request=request)
    assert "HTTP 401" in str(err.value) and "stored password was kept" in str(err.value)


def test_mlflow_admin_update_that_leaves_neither_password_working_stores_the_new_one():
    inspect = {"NetworkSettings": {"Networks": {"mls": {"IPAddress": "10.1.0.3"}}}}
    problem = rotation.rotate_mlflow_admin(inspect, "mls", "admin", "old", "new", request=lambda *a, **k: (503, "busy"))
    assert "the new one was stored" in problem


def test_mlflow_admin_update_that_timed_out_but_went_through_is_stored():
    answers = iter([(None, "timed out"), (200, "{}")])
    inspect = {"NetworkSettings": {"Networks": {"mls": {"IPAddress": "10.1.0.3"}}}}
    problem = rotation.rotate_mlflow_admin(inspect, "mls", "admin", "old", "new", request=lambda *a, **k: next(answers))
    assert "new password works; it was stored" in problem


def test_the_alter_role_script_keeps_passwords_out_of_argv_and_checks_over_the_container_address(tmp_path):
    """_ALTER run by a real sh, with psql and hostname stubbed: what psql reads on stdin, and every argv."""
    import os  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    log = tmp_path / "log"
    (tmp_path / "psql").write_text('#!/bin/sh\necho "ARGV $*" >> %s\n[ -t 0 ] || cat >> %s\nexit 0\n' % (log, log))
    (tmp_path / "hostname").write_text("#!/bin/sh\necho '172.18.0.2 fd00::2'\n")
    for name in ("psql", "hostname"):
        (tmp_path / name).chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (tmp_path, os.environ["PATH"]), MLINFRA_USER="ml flow", MLINFRA_DB="mlflow",
               MLINFRA_OLD="old-secret", MLINFRA_NEW="n3w'secret")
    proc = subprocess.run(["sh", "-c", rotation._ALTER], env=env, stdin=subprocess.DEVNULL, capture_output=True,  # pylint: disable=protected-access
                          text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert "\\getenv u MLINFRA_USER\n\\getenv pw MLINFRA_NEW\nALTER ROLE :\"u\" PASSWORD :'pw';\n" in text
    assert "-h 172.18.0.2 " in text  # the container's own address: 127.0.0.1 is trusted in the official image
    assert "secret" not in "\n".join(line for line in text.splitlines() if line.startswith("ARGV"))
