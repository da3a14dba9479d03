"""What ml_stack wrote it takes back: a runtime file (a derived copy of a secret, bind-mounted into a container)
that the desired state no longer has is removed after its container changed, and all of a service's go with
state=absent. Review finding: the S3 credentials file and basic_auth.ini stayed on the host for ever."""

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import health, services, spec

import test_converge_safety as safety  # pylint: disable=import-error
from test_converge_safety import MLFLOW, PG15, converge, module_params  # pylint: disable=import-error
from test_spec_compare import MLFLOW as MLFLOW_OPTS, PG, SECRETS, params  # pylint: disable=import-error

eng = safety.eng  # the in-memory engine fixture

S3 = {"artifacts_destination": "s3://mlflow-artifacts/team-a", "s3_endpoint_url": "http://s3.internal:9000",
      "s3_access_key_id": "AKIDEXAMPLE", "s3_secret_access_key": "wJalr/EXAMPLEKEY"}


def runtime(tmp_path):
    return tmp_path / "secrets" / "mlstack" / "runtime"


def stack(tmp_path, **mlflow):
    return module_params(tmp_path, postgres={"image": PG15, "ports": []}, mlflow=dict({"image": MLFLOW, "ports": []}, **mlflow))


def test_s3_turned_off_removes_the_credentials_file_check_mode_first(tmp_path, eng):
    converge(eng, stack(tmp_path, **S3))
    creds = runtime(tmp_path) / "aws_credentials"
    assert creds.exists()
    planned = converge(eng, stack(tmp_path), check_mode=True)
    assert "%s (removed)" % creds in planned["host_changes"] and creds.exists()
    done = converge(eng, stack(tmp_path))
    assert "%s (removed)" % creds in done["host_changes"] and not creds.exists()
    assert (runtime(tmp_path) / "pgpass").exists()
    assert converge(eng, stack(tmp_path))["host_changes"] == []  # (the fake engine does not merge image env)


def test_basic_auth_turned_off_removes_its_ini_and_key(tmp_path, eng):
    converge(eng, stack(tmp_path, basic_auth=True))
    assert (runtime(tmp_path) / "basic_auth.ini").exists()
    converge(eng, stack(tmp_path))
    assert not (runtime(tmp_path) / "basic_auth.ini").exists()
    assert not (runtime(tmp_path) / "flask_secret_key").exists()
    assert (tmp_path / "secrets" / "mlstack" / "mlflow_secret_key").exists()  # the secret itself is kept


def test_absent_removes_the_runtime_files_and_keeps_the_secrets(tmp_path, eng):
    converge(eng, stack(tmp_path, **S3))
    gone = converge(eng, dict(stack(tmp_path, **S3), state="absent"))
    assert sorted(p.name for p in runtime(tmp_path).iterdir()) == []
    assert any(c.endswith("aws_credentials (removed)") for c in gone["host_changes"])
    assert (tmp_path / "secrets" / "mlstack" / "postgres_password").exists()
    assert converge(eng, dict(stack(tmp_path, **S3), state="absent"))["changed"] is False


def test_a_file_not_of_the_table_is_never_removed(tmp_path, eng):
    converge(eng, stack(tmp_path))
    (runtime(tmp_path) / "notes.txt").write_text("mine")
    converge(eng, dict(stack(tmp_path), state="absent"))
    assert (runtime(tmp_path) / "notes.txt").read_text() == "mine"


def test_every_file_a_builder_writes_is_in_the_table():
    everything = params(postgres=PG, redis={"image": "redis:7"}, mlflow=dict(MLFLOW_OPTS, basic_auth=True, metrics=True, **S3),
                        tf_serving={"image": "tfs:2.18", "models": [{"name": "a"}], "metrics": True, "batching": {"max_batch_size": 8}})
    for service, item in spec.desired_state(everything, dict(SECRETS, mlflow_admin_password="x", mlflow_secret_key="y")).items():
        names = {f["path"].split("/runtime/", 1)[1] for f in item["files"]}
        assert names <= set(services.RUNTIME_FILES[service]), service


def test_artifacts_left_in_the_volume_after_the_switch_to_s3_are_warned_about(tmp_path, eng):
    """Review finding: switching to S3 left the old artifacts unserved, with nothing saying so."""
    converge(eng, stack(tmp_path))
    assert not converge(eng, stack(tmp_path, **S3))["warnings"]  # an empty volume: nothing to say
    eng.add_volume("mlstack-mlflow-artifacts", files={"1/abc/artifacts/model.pkl": "x"})
    warned = converge(eng, stack(tmp_path, **S3))["warnings"]
    assert len(warned) == 1 and "mlstack-mlflow-artifacts still holds artifacts (1)" in warned[0]
    assert "aws s3 sync" in warned[0] and "s3://mlflow-artifacts/team-a" in warned[0]
    assert not converge(eng, stack(tmp_path))["warnings"]  # served from the volume again: fine


def test_absent_removes_the_emptied_tf_serving_directory_but_not_one_holding_other_files(tmp_path, eng, monkeypatch):
    """Review finding (left last session): runtime/tf_serving/ stayed, empty, after state=absent."""
    monkeypatch.setattr(health, "model_states", lambda *a: {1: "AVAILABLE"})
    eng.add_image("registry:5000/tfs:2.18")
    (tmp_path / "models" / "a" / "1").mkdir(parents=True)
    serving = module_params(tmp_path, tf_serving={"image": "registry:5000/tfs:2.18", "models": [{"name": "a"}], "ports": [],
                                                  "models_path": str(tmp_path / "models")})
    converge(eng, serving)
    directory = runtime(tmp_path) / "tf_serving"
    assert (directory / "models.config").exists()
    planned = converge(eng, dict(serving, state="absent"), check_mode=True)
    assert "%s (removed)" % directory in planned["host_changes"] and directory.exists()
    gone = converge(eng, dict(serving, state="absent"))
    assert "%s (removed)" % directory in gone["host_changes"] and not directory.exists()
    assert converge(eng, dict(serving, state="absent"))["changed"] is False

    converge(eng, serving)
    (directory / "notes.txt").write_text("mine")
    converge(eng, dict(serving, state="absent"))
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]
