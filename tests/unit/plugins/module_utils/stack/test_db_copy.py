"""A remote MLflow's kept copy of the database password (issue 17: a no-op run does not read the database host)."""

import os

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import files
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import db_copy, secrets
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError


def remote(**mlflow):
    return {"state": "present", "postgres": None, "redis": None, "tf_serving": None,
            "mlflow": dict({"db_password": None, "db_password_version": None}, **mlflow)}


def names(changed, directory):
    return sorted(os.path.basename(p) for p in changed if p != directory)


def test_neither_password_nor_version_is_an_input_error(tmp_path):
    with pytest.raises(StackInputError, match="mlflow.db_password is required"):
        secrets.resolve(remote(), str(tmp_path / "d"), check_mode=False)


@pytest.mark.parametrize("version", ["", "0123456789abcdef", db_copy.PENDING])
def test_version_without_a_kept_copy_asks_for_the_password_and_writes_nothing(tmp_path, version):
    directory = tmp_path / "d"
    with pytest.raises(db_copy.DbPasswordNeeded, match="missing"):
        secrets.resolve(remote(db_password_version=version), str(directory), check_mode=False)
    assert not directory.exists()


def test_kept_copy_is_used_while_its_version_matches(tmp_path):
    directory = str(tmp_path / "d")
    values, changed = secrets.resolve(remote(db_password="s3cret", db_password_version="v1"), directory, check_mode=False)
    assert names(changed, directory) == ["mlflow_db_password", "mlflow_db_password.version"]
    assert files.read_bytes(os.path.join(directory, db_copy.VERSION_FILE)) == b"v1\n"
    again, changed = secrets.resolve(remote(db_password_version="v1"), directory, check_mode=False)
    assert changed == [] and again["mlflow_db_password"] == "s3cret"
    for other in ("v2", "", db_copy.PENDING):
        with pytest.raises(db_copy.DbPasswordNeeded, match="not known to match"):
            secrets.resolve(remote(db_password_version=other), directory, check_mode=False)


def test_an_empty_kept_copy_is_a_missing_one(tmp_path):
    directory = tmp_path / "d" / "mlstack"
    directory.mkdir(parents=True)
    (directory / "mlflow_db_password").write_text("\n")
    (directory / db_copy.VERSION_FILE).write_text("v1\n")
    with pytest.raises(db_copy.DbPasswordNeeded, match="missing"):
        secrets.resolve(remote(db_password_version="v1"), str(directory), check_mode=False)


def test_password_read_again_with_a_new_version_records_it(tmp_path):
    directory = str(tmp_path / "d")
    secrets.resolve(remote(db_password="s3cret", db_password_version="v1"), directory, check_mode=False)
    _values, changed = secrets.resolve(remote(db_password="s3cret", db_password_version="v2"), directory, check_mode=False)
    assert names(changed, directory) == ["mlflow_db_password.version"]
    assert secrets.resolve(remote(db_password_version="v2"), directory, check_mode=False)[1] == []


def test_check_mode_predicts_the_version_a_real_run_records(tmp_path):
    directory = str(tmp_path / "d")
    secrets.resolve(remote(db_password="s3cret", db_password_version="v1"), directory, check_mode=False)
    _values, changed = secrets.resolve(remote(db_password="s3cret", db_password_version=db_copy.PENDING), directory,
                                       check_mode=True)
    assert names(changed, directory) == ["mlflow_db_password.version"]
    assert files.read_bytes(os.path.join(directory, db_copy.VERSION_FILE)) == b"v1\n"


def test_a_different_password_given_without_a_version_forgets_the_old_version(tmp_path):
    directory = str(tmp_path / "d")
    secrets.resolve(remote(db_password="s3cret", db_password_version="v1"), directory, check_mode=False)
    assert secrets.resolve(remote(db_password="s3cret"), directory, check_mode=False)[1] == []  # same password: kept
    _values, changed = secrets.resolve(remote(db_password="other"), directory, check_mode=False)
    assert names(changed, directory) == ["mlflow_db_password", "mlflow_db_password.version"]
    with pytest.raises(db_copy.DbPasswordNeeded):  # the kept copy is no longer the one version v1 described
        secrets.resolve(remote(db_password_version="v1"), directory, check_mode=False)


def test_database_host_fact_follows_its_password_file_not_its_content(tmp_path):
    directory = str(tmp_path / "d")
    params = {"state": "present", "postgres": {"password": None}, "redis": None, "mlflow": None, "tf_serving": None}
    assert db_copy.facts(params, directory, {}, check_mode=True) == {db_copy.FACT: db_copy.PENDING}  # not there yet
    values, writes = secrets.plan(params, directory, check_mode=False)
    secrets.apply(directory, values, writes, check_mode=False)
    first = db_copy.facts(params, directory, writes, check_mode=False)[db_copy.FACT]
    assert len(first) == 16 and first != db_copy.PENDING
    assert values["postgres_password"] not in first
    assert db_copy.facts(params, directory, {}, check_mode=False)[db_copy.FACT] == first  # untouched: same version
    path = os.path.join(directory, "postgres_password")
    secrets.write_exact(path, values["postgres_password"] + "\n", 0o600, os.getuid(), os.getgid())  # same content
    assert db_copy.facts(params, directory, {}, check_mode=False)[db_copy.FACT] != first
    assert db_copy.facts(params, directory, {"postgres_password": (path, None)}, check_mode=True) == {
        db_copy.FACT: db_copy.PENDING}
    assert db_copy.facts(dict(params, postgres=None), directory, {}, check_mode=False) == {}
    assert db_copy.facts(dict(params, state="absent"), directory, {}, check_mode=False) == {}


# --- the whole module run (Converger against the in-memory engine) ---------------------------------------
PG = "registry:5000/postgres:15.10"
MLFLOW = "registry:5000/mlflow:3.17.2"


def module_params(directory, **raw):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # pylint: disable=import-outside-toplevel
    from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.params import argument_spec  # pylint: disable=import-outside-toplevel
    result = ArgumentSpecValidator(argument_spec()).validate(dict(raw, secrets_dir=str(directory), health_timeout=5))
    assert not result.error_messages, result.error_messages
    return dict(result.validated_parameters)


@pytest.fixture
def hosts(tmp_path):
    """Two engines: the database host's and the tracking host's."""
    from fake_engine import FakeEngine  # pylint: disable=import-error,import-outside-toplevel
    db, tracking = FakeEngine(tmp_path / "db-docker"), FakeEngine(tmp_path / "tracking-docker")
    db.add_image(PG, env=["PG_MAJOR=15"])
    tracking.add_image(MLFLOW)
    return db, tracking


def test_module_asks_for_the_password_before_touching_anything(tmp_path, hosts):
    from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.converge import Converger  # pylint: disable=import-outside-toplevel
    _db, tracking = hosts
    params = module_params(tmp_path / "t", mlflow={"image": MLFLOW, "db_host": "db", "db_password_version": "", "ports": []})
    for check_mode in (True, False):
        result = Converger(tracking, params, check_mode).run()
        assert result["db_password_needed"] is True and result["changed"] is False and "missing" in result["msg"]
        assert tracking.containers == {} and tracking.requests == 0 and not (tmp_path / "t").exists()


def test_tracking_host_reads_the_database_host_once_then_uses_its_copy(tmp_path, hosts):
    from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.converge import Converger  # pylint: disable=import-outside-toplevel
    db, tracking = hosts
    db_params = module_params(tmp_path / "d", postgres={"image": PG, "ports": []})
    assert Converger(db, db_params, True).run()["ansible_facts"] == {db_copy.FACT: db_copy.PENDING}  # fresh: check mode
    version = Converger(db, db_params, False).run()["ansible_facts"][db_copy.FACT]
    assert version != db_copy.PENDING and Converger(db, db_params, True).run()["ansible_facts"][db_copy.FACT] == version
    password = files.read_bytes(str(tmp_path / "d" / "mlstack" / "postgres_password")).decode().strip()

    mlflow = {"image": MLFLOW, "db_host": "db", "ports": []}
    only_version = module_params(tmp_path / "t", mlflow=dict(mlflow, db_password_version=version))
    assert Converger(tracking, only_version, False).run()["db_password_needed"] is True
    first = Converger(tracking, module_params(tmp_path / "t", mlflow=dict(mlflow, db_password=password,
                                                                          db_password_version=version)), False).run()
    assert first["services"]["mlflow"]["action"] == "create"
    assert str(tmp_path / "t" / "mlstack" / db_copy.VERSION_FILE) in first["host_changes"]
    again = Converger(tracking, only_version, False).run()
    assert again["changed"] is False and "db_password_needed" not in again
    assert again["services"]["mlflow"]["action"] is None
