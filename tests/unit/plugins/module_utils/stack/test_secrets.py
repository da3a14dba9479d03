"""Secrets: a bad given secret is refused before any secret file (or the directory) is written."""

import os

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import secrets
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError


def params(**services):
    base = {"postgres": None, "redis": None, "mlflow": None, "tf_serving": None}
    base.update(services)
    return base


@pytest.mark.parametrize("services, named", [
    ({"postgres": {"password": "fine"}, "redis": {"password": ""}}, "redis.password"),
    ({"postgres": {"password": "two\nlines"}}, "postgres.password"),
    ({"postgres": {"password": "ok"}, "mlflow": {"db_password": "has:colon"}}, "mlflow.db_password"),
    ({"mlflow": {"db_password": "back\\slash"}}, "mlflow.db_password"),
])
def test_bad_given_secret_writes_nothing(tmp_path, services, named):
    directory = tmp_path / "mlstack"
    with pytest.raises(StackInputError, match="^" + named.replace(".", r"\.")):
        secrets.resolve(params(**services), str(directory), check_mode=False)
    assert not directory.exists()


def test_generated_secrets_are_0600_and_stable(tmp_path):
    directory = str(tmp_path / "mlstack")
    first, changed = secrets.resolve(params(postgres={"password": None}, redis={"password": None}), directory, check_mode=False)
    assert sorted(os.path.basename(p) for p in changed if p != directory) == ["postgres_password", "redis_password"]
    assert oct(os.stat(os.path.join(directory, "redis_password")).st_mode & 0o777) == "0o600"
    again, changed_again = secrets.resolve(params(postgres={"password": None}, redis={"password": None}), directory, check_mode=False)
    assert again == first and changed_again == []
