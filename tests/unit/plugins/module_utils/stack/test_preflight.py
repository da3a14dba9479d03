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
    problems = preflight.ports_taken("postgres", desired, {"5432/tcp": [["127.0.0.1", "5432"]]}, bind=bind)
    assert asked == [("10.0.0.5", "5432", "tcp")]
    assert problems == ["postgres: 10.0.0.5:5432/tcp is not free on this host (Address already in use)"]


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
    with pytest.raises(Exception) as err:
        rotation.rotate_mlflow_admin(inspect, "mls", "admin", "old", "new", request=lambda *a, **k: (401, "denied"))
    assert "HTTP 401" in str(err.value) and "stored password was kept" in str(err.value)


def test_mlflow_admin_update_that_timed_out_but_went_through_is_stored():
    answers = iter([(None, "timed out"), (200, "{}")])
    inspect = {"NetworkSettings": {"Networks": {"mls": {"IPAddress": "10.1.0.3"}}}}
    problem = rotation.rotate_mlflow_admin(inspect, "mls", "admin", "old", "new", request=lambda *a, **k: next(answers))
    assert "new password works; it was stored" in problem
