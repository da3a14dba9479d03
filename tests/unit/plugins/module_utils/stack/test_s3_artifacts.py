"""MLflow's S3 artifact store: flags, env, the credentials file, and the values refused (no Docker)."""

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import spec
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.params import check_s3
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.units import StackInputError
from tests.unit.plugins.module_utils.stack.test_spec_compare import MLFLOW, PG, SECRETS, params

S3 = {"artifacts_destination": "s3://mlflow-artifacts/team-a", "s3_endpoint_url": "http://s3.internal:9000",
      "s3_access_key_id": "AKIDEXAMPLE", "s3_secret_access_key": "wJalr/EXAMPLEKEY"}


def mlflow_spec(**extra):
    return spec.desired_state(params(postgres=PG, mlflow=dict(MLFLOW, **extra)), SECRETS)["mlflow"]


def test_s3_destination_endpoint_and_keys_as_a_file():
    ml = mlflow_spec(**S3)
    command = ml["command"]
    assert command[command.index("--artifacts-destination") + 1] == "s3://mlflow-artifacts/team-a"
    assert ml["env"]["MLFLOW_S3_ENDPOINT_URL"] == "http://s3.internal:9000"
    assert ml["env"]["AWS_SHARED_CREDENTIALS_FILE"] == "/run/secrets/aws_credentials"
    creds = [f for f in ml["files"] if f["path"].endswith("/aws_credentials")]
    assert creds and creds[0]["mode"] == 0o600 and creds[0]["uid"] == 0
    assert creds[0]["content"] == "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalr/EXAMPLEKEY\n"
    assert ["bind", creds[0]["path"], "/run/secrets/aws_credentials", True] in ml["mounts"]
    flat = " ".join(command) + " ".join("%s=%s" % kv for kv in ml["env"].items())
    assert "wJalr" not in flat and "AKIDEXAMPLE" not in flat  # never in Env or on the command line


def test_s3_without_keys_leaves_credentials_to_boto3():
    ml = mlflow_spec(artifacts_destination="s3://bucket")
    assert "AWS_SHARED_CREDENTIALS_FILE" not in ml["env"] and "MLFLOW_S3_ENDPOINT_URL" not in ml["env"]
    assert not [f for f in ml["files"] if f["path"].endswith("/aws_credentials")]


def test_local_artifacts_unchanged_without_destination():
    ml = mlflow_spec()
    assert ml["command"][ml["command"].index("--artifacts-destination") + 1] == "/mlartifacts"
    assert set(ml["env"]) == {"PGPASSFILE"}


def test_a_new_secret_key_changes_the_config_hash():
    assert (mlflow_spec(**S3)["labels"] != mlflow_spec(**{**S3, "s3_secret_access_key": "other"})["labels"])


@pytest.mark.parametrize("bad, message", [
    ({"artifacts_destination": "/srv/artifacts"}, "is not s3://<bucket>"),
    ({"artifacts_destination": "s3://Bad_Bucket/x"}, "is not s3://<bucket>"),
    ({"artifacts_destination": "s3://ab"}, "is not s3://<bucket>"),
    ({"s3_endpoint_url": "http://s3:9000"}, "only used with mlflow.artifacts_destination"),
    ({"artifacts_destination": "s3://bucket", "s3_endpoint_url": "s3.internal:9000"}, "is not an http:// or https:// URL"),
    ({"artifacts_destination": "s3://bucket", "s3_access_key_id": "AKID"}, "go together; only s3_access_key_id"),
    ({"artifacts_destination": "s3://bucket", "s3_access_key_id": "AKID", "s3_secret_access_key": "a\nb"},
     "s3_secret_access_key must be a non-empty single line"),
    ({"artifacts_destination": "s3://bucket", "s3_access_key_id": "", "s3_secret_access_key": "x"},
     "s3_access_key_id must be a non-empty single line"),
])
def test_bad_s3_values_are_refused(bad, message):
    with pytest.raises(StackInputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("/", "/")):
        check_s3(bad)


def test_good_s3_values_pass():
    check_s3(S3)
    check_s3({"artifacts_destination": "s3://bucket.with.dots"})
