"""Issue: ml_stack must never destroy, strand or lock out data it does not own. The converger runs
against an in-memory engine (fake_engine) with real files for secrets and volume contents."""

import os
import time

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import preflight, rotation, spec
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.converge import Converger
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError, StackInputError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.params import argument_spec

from fake_engine import FakeEngine  # pylint: disable=import-error

PG15 = "registry:5000/postgres:15.10"
PG18 = "registry:5000/postgres:18.1"
MLFLOW = "registry:5000/mlflow:3.17.2"


def module_params(tmp_path, **raw):
    """The parameters as AnsibleModule hands them over (defaults filled in by ansible-core itself)."""
    raw.setdefault("secrets_dir", str(tmp_path / "secrets"))
    raw.setdefault("health_timeout", 5)
    result = ArgumentSpecValidator(argument_spec()).validate(raw)
    assert not result.error_messages, result.error_messages
    return dict(result.validated_parameters)


@pytest.fixture
def eng(tmp_path):
    engine = FakeEngine(tmp_path / "docker")
    engine.add_image(PG15, env=["PG_MAJOR=15"])
    engine.add_image(PG18, env=["PG_MAJOR=18"])
    engine.add_image(MLFLOW)
    engine.add_image("registry:5000/redis:7")
    engine.add_image("registry:5000/tfs:2.18")
    return engine


def converge(eng, params, check_mode=False):
    return Converger(eng, params, check_mode).run()


# --- 1. purge_volumes removes only the volumes the stack created -------------------------------------
def test_purge_keeps_shared_volumes_and_lists_them(tmp_path, eng):
    params = module_params(tmp_path, postgres={"image": PG15, "volumes": ["datasets:/data:ro"], "ports": []},
                           tf_serving={"image": "registry:5000/tfs:2.18", "models_volume": "team-models", "ports": []})
    eng.add_volume("datasets", files={"train.csv": "x"})
    eng.add_volume("team-models", labels={"org.example": "models"})
    converge(eng, dict(params, state="stopped"))  # creates the project's own volume, labelled
    assert eng.volumes["mlstack-postgres-data"]["Labels"] == {spec.LABEL_PROJECT: "mlstack"}

    gone = converge(eng, dict(params, state="absent", purge_volumes=True))
    assert "mlstack-postgres-data" not in eng.volumes
    assert set(eng.volumes) == {"datasets", "team-models"}
    assert gone["services"]["postgres"]["removed_volumes"] == ["mlstack-postgres-data"]
    assert gone["services"]["postgres"]["kept_volumes"] == ["datasets"]
    assert gone["services"]["tf_serving"]["kept_volumes"] == ["team-models"]


def test_purge_keeps_a_volume_of_another_project_with_the_same_name(tmp_path, eng):
    eng.add_volume("mlstack-redis-data", labels={spec.LABEL_PROJECT: "someone-else"})
    params = module_params(tmp_path, state="absent", purge_volumes=True, redis={"image": "registry:5000/redis:7"})
    result = converge(eng, params)
    assert "mlstack-redis-data" in eng.volumes and result["services"]["redis"]["kept_volumes"] == ["mlstack-redis-data"]


def test_purge_in_check_mode_plans_only_owned_volumes(tmp_path, eng):
    eng.add_volume("mlstack-redis-data", labels={spec.LABEL_PROJECT: "mlstack"})
    eng.add_volume("shared", labels={})
    params = module_params(tmp_path, state="absent", purge_volumes=True,
                           redis={"image": "registry:5000/redis:7", "volumes": ["shared:/x"]})
    result = converge(eng, params, check_mode=True)
    assert result["host_changes"] == ["volume mlstack-redis-data"] and not eng.mutations()


# --- 2. the Postgres major comes from the image's PG_MAJOR, and every cluster layout is read ---------
@pytest.mark.parametrize("files", [
    {"PG_VERSION": "17\n"},                 # a <=17 volume (mounted at .../data) now mounted at /var/lib/postgresql
    {"17/docker/PG_VERSION": "17\n"},       # the 18+ layout holding an older major
])
def test_pg18_image_on_an_older_cluster_is_refused_and_nothing_is_created(tmp_path, eng, files):
    mountpoint = eng.add_volume("mlstack-postgres-data", labels={spec.LABEL_PROJECT: "mlstack"}, files=files)
    before = sorted(os.listdir(mountpoint))
    params = module_params(tmp_path, postgres={"image": PG18, "ports": []}, redis={"image": "registry:5000/redis:7"})
    with pytest.raises(StackError) as err:
        converge(eng, params)
    assert "PostgreSQL 17" in str(err.value) and "PostgreSQL 18" in str(err.value)
    assert err.value.extra["data_version"] == "17" and err.value.extra["image_major"] == "18"
    assert not eng.mutations(), eng.mutations()
    assert not os.path.exists(tmp_path / "secrets"), "a refused run must not create the secrets directory"
    assert sorted(os.listdir(mountpoint)) == before


def test_a_cluster_in_an_anonymous_volume_is_not_left_behind(tmp_path, eng):
    # A container created with the data volume beside PGDATA (an 18 image with the <=17 mount path, as a
    # release before the PG_MAJOR rule did) keeps its cluster in the image's anonymous VOLUME. Replacing it
    # would orphan that volume and start an empty cluster in the data volume.
    params = module_params(tmp_path, postgres={"image": PG18, "ports": []})
    converge(eng, params)
    anonymous = tmp_path / "anon" / "_data"
    (anonymous / "18" / "docker").mkdir(parents=True)
    (anonymous / "18" / "docker" / "PG_VERSION").write_text("18\n")
    old = eng.containers["mlstack-postgres"]
    old["Config"]["Env"] = old["Config"]["Env"] + ["PGDATA=/var/lib/postgresql/18/docker"]
    old["Mounts"] = [{"Type": "volume", "Name": "mlstack-postgres-data", "Source": str(tmp_path / "named"),
                      "Destination": "/var/lib/postgresql/data"},
                     {"Type": "volume", "Name": "0f3c9a" * 10 + "0f3c", "Source": str(anonymous), "Destination": "/var/lib/postgresql"}]
    old["Config"]["Labels"][spec.LABEL_HASH] = "from-an-older-release"  # its mounts differ: a recreate is due
    eng.calls.clear()
    with pytest.raises(StackError, match="anonymous volume 0f3c9a0f3c9a") as err:
        converge(eng, params)
    assert "would not mount" in str(err.value) and err.value.extra["pgdata"] == "/var/lib/postgresql/18/docker"
    assert not eng.mutations(), eng.mutations()


def test_stranded_cluster_rules():
    desired = {"name": "p", "image": "postgres:17", "mounts": [["volume", "p-data", "/var/lib/postgresql/data", False]],
               "data_path": "/var/lib/postgresql/data"}
    inspect = {"Config": {"Env": ["PGDATA=/var/lib/postgresql/data"]},
               "Mounts": [{"Type": "volume", "Name": "p-data", "Source": "/v/p-data", "Destination": "/var/lib/postgresql/data"}],
               "GraphDriver": {"Data": {"UpperDir": "/layer"}}}

    def everything(path):  # pylint: disable=unused-argument
        return True  # every PG_VERSION exists
    assert preflight.stranded_cluster(inspect, desired, everything) is None  # in the data volume: fine
    assert preflight.stranded_cluster({"Config": {"Env": []}}, desired, everything) is None  # no PGDATA: not postgres-like
    layer = dict(inspect, Mounts=[])
    with pytest.raises(StackError, match="its container layer"):
        preflight.stranded_cluster(layer, desired, lambda path: path == "/layer/var/lib/postgresql/data/PG_VERSION")
    assert preflight.stranded_cluster(layer, desired, lambda path: False) is None  # nothing there yet: nothing to lose


def test_stranded_cluster_in_a_layer_the_engine_does_not_show_is_refused():
    """Review finding: containerd's image store reports no GraphDriver data; a cluster in the container layer
    was then taken for none, and the recreate deleted it."""
    desired = {"name": "p", "image": "postgres:17", "mounts": [["volume", "p-data", "/var/lib/postgresql/data", False]],
               "data_path": "/var/lib/postgresql/data"}
    ran = {"Config": {"Env": ["PGDATA=/var/lib/postgresql/data"]}, "Mounts": [], "GraphDriver": {"Data": None},
           "State": {"StartedAt": "2026-11-30T10:00:00.1Z"}}
    with pytest.raises(StackError, match="does not show where") as err:
        preflight.stranded_cluster(ran, desired, lambda path: False)
    assert err.value.extra["found_in"] == "container layer (not visible)"
    never = dict(ran, State={"StartedAt": "0001-01-01T00:00:00Z"})
    assert preflight.stranded_cluster(never, desired, lambda path: False) is None  # never ran: nothing in it


def test_stranded_cluster_names_a_named_volume_as_such():
    desired = {"name": "p", "image": "postgres:17", "mounts": [["volume", "new-data", "/var/lib/postgresql/data", False]],
               "data_path": "/var/lib/postgresql/data"}
    inspect = {"Config": {"Env": ["PGDATA=/var/lib/postgresql/data"]},
               "Mounts": [{"Type": "volume", "Name": "old-data", "Source": "/v/old", "Destination": "/var/lib/postgresql/data"}]}
    with pytest.raises(StackError, match="lives in volume old-data, which"):
        preflight.stranded_cluster(inspect, desired, lambda path: True)


def test_pg_major_is_the_image_env_not_the_tag(tmp_path, eng):
    digest = "postgres@sha256:27b1" + "0" * 60
    eng.add_image(digest, env=["PG_MAJOR=15"])
    eng.add_image("pgvector/pgvector:pg18", env=["PG_MAJOR=18"])
    eng.add_volume("mlstack-postgres-data", labels={spec.LABEL_PROJECT: "mlstack"}, files={"PG_VERSION": "15\n"})
    converge(eng, module_params(tmp_path, postgres={"image": digest, "ports": [], "password": "the-clusters-one"}))
    mounts = {m["Source"]: m["Target"] for m in eng.containers["mlstack-postgres"]["HostConfig"]["Mounts"]}
    assert mounts["mlstack-postgres-data"] == "/var/lib/postgresql/data"

    eng.containers.clear()
    eng.add_volume("pgv-postgres-data", labels={spec.LABEL_PROJECT: "pgv"})
    converge(eng, module_params(tmp_path, project="pgv", postgres={"image": "pgvector/pgvector:pg18", "ports": []}))
    assert eng.containers["pgv-postgres"]["State"]["Status"] == "running"
    mounts = {m["Source"]: m["Target"] for m in eng.containers["pgv-postgres"]["HostConfig"]["Mounts"]}
    assert mounts["pgv-postgres-data"] == "/var/lib/postgresql"


def test_pg18_on_its_own_layout_starts(tmp_path, eng):
    eng.add_volume("mlstack-postgres-data", labels={spec.LABEL_PROJECT: "mlstack"},
                   files={"18/docker/PG_VERSION": "18\n", "17/docker/PG_VERSION": "17\n"})  # pg_upgrade --link layout
    converge(eng, module_params(tmp_path, postgres={"image": PG18, "ports": [], "password": "the-clusters-one"}))
    assert eng.containers["mlstack-postgres"]["State"]["Status"] == "running"


# --- 3 + 4. every preflight (pulls included) runs before anything is written -------------------------
def test_a_failing_pull_touches_no_container_and_writes_nothing(tmp_path, eng):
    params = module_params(tmp_path, pull="always", postgres={"image": PG15, "ports": []},
                           mlflow={"image": MLFLOW, "ports": []})

    def pull(image):
        if image == MLFLOW:
            raise StackError("pulling %s failed" % image)
        eng.add_image(PG15, env=["PG_MAJOR=15"], ident="sha256:newer-postgres")  # postgres would be recreated

    converge(eng, params)
    eng.calls.clear()
    eng.pull_hook = pull
    with pytest.raises(StackError, match="pulling"):
        converge(eng, params)
    assert not eng.mutations(), eng.mutations()
    assert [c[1] for c in eng.calls if c[0] == "pull"] == [PG15, MLFLOW]


def test_a_bad_given_password_is_refused_before_any_pull(tmp_path, eng):
    # Input is checked (secrets.plan, then the one build of the desired state) before any pull: a pull is
    # already a change on the host.
    params = module_params(tmp_path, pull="always", postgres={"image": PG15, "ports": []},
                           mlflow={"image": MLFLOW, "ports": [], "db_password": "a:b"})
    with pytest.raises(StackInputError, match="db_password"):
        converge(eng, params)
    assert not [c for c in eng.calls if c[0] == "pull"] and not eng.mutations()
    assert not os.path.exists(tmp_path / "secrets")


def test_a_port_taken_by_another_process_is_found_before_anything_is_created(tmp_path, eng):
    import socket  # pylint: disable=import-outside-toplevel
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        params = module_params(tmp_path, redis={"image": "registry:5000/redis:7", "ports": ["127.0.0.1:%d:6379" % port]})
        with pytest.raises(StackError) as err:
            converge(eng, params)
    assert "127.0.0.1:%d" % port in str(err.value) and "redis" in str(err.value)
    assert not eng.mutations() and not os.path.exists(tmp_path / "secrets")


# --- 6. the health budget starts when a phase's containers start, not at module start ----------------
def test_a_slow_pull_does_not_eat_the_health_budget(tmp_path, eng):
    params = module_params(tmp_path, pull="always", health_timeout=1, redis={"image": "registry:5000/redis:7", "ports": []})
    eng.pull_hook = lambda image: time.sleep(1.2)
    eng.health_after = 2  # healthy at the third poll, well inside a second after the start
    result = converge(eng, params)
    assert result["services"]["redis"]["health"] == "healthy"


# --- 7. the schema migration runs whenever the server is created ------------------------------------
def test_mlflow_created_on_an_existing_database_runs_the_migration_first(tmp_path, eng):
    params = module_params(tmp_path, mlflow={"image": MLFLOW, "db_host": "db.internal", "db_password": "pw", "ports": []})
    result = converge(eng, params)
    order = [c[:2] for c in eng.mutations()]
    ident = eng.containers["mlstack-mlflow"]["Id"]
    assert order.index(("run_once", "mlstack-mlflow")) < order.index(("create", "mlstack-mlflow")) < \
        order.index(("start", ident)), order
    assert "db" in " ".join(eng.calls[[c[0] for c in eng.calls].index("run_once")][2])
    assert result["services"]["mlflow"]["migration"] == ["mlinfra: schema at head"]


def test_a_server_recreated_while_stopped_is_migrated_when_it_starts(tmp_path, eng):
    # state=stopped with a new MLflow image recreates the container stopped (no migration: the server must
    # not change the schema while the user wants it down); the later state=present only starts it, and that
    # start must run the migration first, or the new server meets the old schema.
    params = module_params(tmp_path, mlflow={"image": MLFLOW, "db_host": "db.internal", "db_password": "pw", "ports": []})
    converge(eng, params)
    newer = "registry:5000/mlflow:3.18.0"
    eng.add_image(newer)
    stopped = dict(params, state="stopped", mlflow=dict(params["mlflow"], image=newer))
    eng.calls.clear()
    assert converge(eng, stopped)["services"]["mlflow"]["action"] == "recreate"
    assert not [c for c in eng.calls if c[0] == "run_once"]
    eng.calls.clear()
    result = converge(eng, dict(stopped, state="present"))
    ident = eng.containers["mlstack-mlflow"]["Id"]
    order = [c[:2] for c in eng.mutations()]
    assert result["services"]["mlflow"]["action"] == "start"
    assert order.index(("run_once", "mlstack-mlflow")) < order.index(("start", ident)), order
    assert result["services"]["mlflow"]["migration"] == ["mlinfra: schema at head"]


def test_a_failed_migration_stops_before_the_server_is_created(tmp_path, eng):
    params = module_params(tmp_path, mlflow={"image": MLFLOW, "db_host": "db.internal", "db_password": "pw", "ports": []})
    eng.run_once_hook = lambda desired, command, timeout: (1, ["alembic: boom"])
    with pytest.raises(StackError) as err:
        converge(eng, params)
    assert "mlflow db upgrade" in str(err.value) and err.value.extra["logs"] == ["alembic: boom"]
    assert "mlstack-mlflow" not in eng.containers
    # What was done until then travels with the error, for the module's one fail_json (no diff, no warnings).
    assert err.value.extra["services"]["mlflow"]["action"] == "create" and "network mlstack" in err.value.extra["host_changes"]
    assert "diff" not in err.value.extra and "warnings" not in err.value.extra and "api_requests" in err.value.extra


def test_migration_gets_its_own_bound_not_the_health_timeout(tmp_path, eng):
    seen = {}
    eng.run_once_hook = lambda desired, command, timeout: (seen.setdefault("timeout", timeout), [])[0] and (0, [])
    params = module_params(tmp_path, health_timeout=30, migration_timeout=5400,
                           mlflow={"image": MLFLOW, "db_host": "db.internal", "db_password": "pw", "ports": []})
    converge(eng, params)
    assert seen["timeout"] == 5400


# --- 8. no secret in a container's Env ------------------------------------------------------------
def test_flask_secret_key_is_a_file_not_env(tmp_path, eng):
    params = module_params(tmp_path, postgres={"image": PG15, "ports": []},
                           mlflow={"image": MLFLOW, "basic_auth": True, "ports": []})
    converge(eng, params)
    key = (tmp_path / "secrets" / "mlstack" / "mlflow_secret_key").read_text().strip()
    for container in eng.containers.values():
        assert not any(key in entry for entry in container["Config"]["Env"]), container["Name"]
        assert key not in " ".join(container["Config"]["Cmd"] or [])
    mounts = [m["Target"] for m in eng.containers["mlstack-mlflow"]["HostConfig"]["Mounts"]]
    assert "/run/secrets/flask_secret_key" in mounts


# --- 5. a changed Postgres password is rotated in the running server, or refused ---------------------
def _rotation_setup(tmp_path, eng):
    params = module_params(tmp_path, postgres={"image": PG15, "ports": []}, mlflow={"image": MLFLOW, "ports": []})
    converge(eng, params)
    eng.volumes["mlstack-postgres-data"]["Mountpoint"] = eng.add_volume(
        "mlstack-postgres-data", labels={spec.LABEL_PROJECT: "mlstack"}, files={"PG_VERSION": "15\n"})
    old = (tmp_path / "secrets" / "mlstack" / "postgres_password").read_text().strip()
    eng.calls.clear()
    return params, old


def test_new_postgres_password_is_altered_in_the_server_and_verified_before_it_is_stored(tmp_path, eng):
    params, old = _rotation_setup(tmp_path, eng)
    seen = []

    def exec_hook(ident, command, env):
        stored = (tmp_path / "secrets" / "mlstack" / "postgres_password").read_text().strip()
        seen.append((ident, env, stored))
        return 0, "ALTER ROLE\n"

    eng.exec_hook = exec_hook
    params["postgres"] = dict(params["postgres"], password="a-new-password-given-by-the-operator")
    result = converge(eng, params)
    assert len(seen) == 1
    ident, env, stored_during = seen[0]
    assert stored_during == old, "the new secret must be stored only after the server accepted it"
    assert "a-new-password-given-by-the-operator" in env.values()
    assert (tmp_path / "secrets" / "mlstack" / "postgres_password").read_text().strip() == \
        "a-new-password-given-by-the-operator"
    assert "postgres password rotated in the running server" in result["host_changes"]
    pgpass = (tmp_path / "secrets" / "mlstack" / "runtime" / "pgpass").read_text()
    assert pgpass.endswith(":a-new-password-given-by-the-operator\n")


def test_a_rotation_the_server_refuses_changes_nothing(tmp_path, eng):
    params, old = _rotation_setup(tmp_path, eng)
    eng.exec_hook = lambda ident, command, env: (2, "psql: error: password authentication failed")
    params["postgres"] = dict(params["postgres"], password="another-password")
    with pytest.raises(StackError) as err:
        converge(eng, params)
    assert "password authentication failed" in str(err.value)
    assert (tmp_path / "secrets" / "mlstack" / "postgres_password").read_text().strip() == old
    assert [c[0] for c in eng.mutations()] == ["exec"]


def test_rotation_without_a_running_server_is_refused_up_front(tmp_path, eng):
    params, old = _rotation_setup(tmp_path, eng)
    eng.containers["mlstack-postgres"]["State"]["Status"] = "exited"
    params["postgres"] = dict(params["postgres"], password="another-password")
    with pytest.raises(StackError) as err:
        converge(eng, params)
    assert "no postgres container is running" in str(err.value)
    assert not eng.mutations()
    assert (tmp_path / "secrets" / "mlstack" / "postgres_password").read_text().strip() == old


def test_rotation_in_check_mode_is_planned_not_done(tmp_path, eng):
    params, _old = _rotation_setup(tmp_path, eng)
    params["postgres"] = dict(params["postgres"], password="another-password")
    result = converge(eng, params, check_mode=True)
    assert result["changed"] and "postgres password rotated in the running server" in result["host_changes"]
    assert not eng.mutations()


def test_a_secret_file_with_a_wrong_mode_is_fixed_without_a_rotation(tmp_path, eng):
    params, old = _rotation_setup(tmp_path, eng)
    os.chmod(tmp_path / "secrets" / "mlstack" / "postgres_password", 0o644)
    params["postgres"] = dict(params["postgres"], password=old)
    result = converge(eng, params)
    assert not [c for c in eng.mutations() if c[0] == "exec"]
    assert "postgres password rotated in the running server" not in result["host_changes"]
    assert os.stat(tmp_path / "secrets" / "mlstack" / "postgres_password").st_mode & 0o777 == 0o600


def test_a_cluster_whose_stored_password_is_gone_is_not_given_a_new_one(tmp_path, eng):
    eng.add_volume("mlstack-postgres-data", labels={spec.LABEL_PROJECT: "mlstack"}, files={"PG_VERSION": "15\n"})
    with pytest.raises(StackError) as err:
        converge(eng, module_params(tmp_path, postgres={"image": PG15, "ports": []}))
    assert "postgres.password was not given" in str(err.value) and "Nothing was changed" in str(err.value)
    assert not eng.mutations() and not os.path.exists(tmp_path / "secrets")


def test_clusters_only_elsewhere_in_the_volume_are_not_left_for_an_empty_one(tmp_path, eng):
    # a <=17 image whose volume used to be mounted at /var/lib/postgresql: its cluster sits in data/
    eng.add_volume("mlstack-postgres-data", labels={spec.LABEL_PROJECT: "mlstack"}, files={"data/PG_VERSION": "15\n"})
    with pytest.raises(StackError) as err:
        converge(eng, module_params(tmp_path, postgres={"image": PG15, "ports": [], "password": "pw"}))
    assert "empty cluster" in str(err.value) and "in data/" in str(err.value)
    assert not eng.mutations()


def test_a_second_rotation_failing_keeps_the_first_one_stored(tmp_path, eng, monkeypatch):
    params = module_params(tmp_path, postgres={"image": PG15, "ports": []},
                           mlflow={"image": MLFLOW, "ports": [], "basic_auth": True})
    converge(eng, params)
    eng.add_volume("mlstack-postgres-data", labels={spec.LABEL_PROJECT: "mlstack"}, files={"PG_VERSION": "15\n"})
    eng.add_volume("mlstack-mlflow-auth", labels={spec.LABEL_PROJECT: "mlstack"}, files={"basic_auth.db": "x"})
    secret = tmp_path / "secrets" / "mlstack"
    params["postgres"] = dict(params["postgres"], password="new-postgres-password")
    params["mlflow"] = dict(params["mlflow"], admin_password="new-admin-password")

    def refused(*args, **kwargs):
        raise StackError("mlflow refused")
    monkeypatch.setattr(rotation, "rotate_mlflow_admin", refused)
    with pytest.raises(StackError, match="mlflow refused"):
        converge(eng, params)
    assert (secret / "postgres_password").read_text().strip() == "new-postgres-password"
    assert (secret / "mlflow_admin_password").read_text().strip() != "new-admin-password"
