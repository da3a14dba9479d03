"""Security on the converged fleet: secrets on disk, secrets in logs, what is published where,
Redis and MLflow refusing anonymous clients."""

import base64
import json
import urllib.error
import uuid

import pytest

from tests.integration.conftest import host_exec
from tests.integration.stack_helpers import call, changed, converge, failed_hosts, host_record, tunnel

pytestmark = pytest.mark.fleet
SECRETS = {"host1": ["postgres_password", "redis_password"], "host2": ["mlflow_db_password"]}


@pytest.fixture(scope="module")
def fl(rel_fleet):
    assert not failed_hosts(converge(rel_fleet))
    return rel_fleet


def published(fl, host, name):
    """{container port: [host ip, ...]} as Docker really bound them."""
    rc, out = host_exec(fl, host, "docker", "inspect", "-f", "{{json .HostConfig.PortBindings}}", name)
    assert rc == 0, out
    return {port: sorted(b["HostIp"] for b in binds) for port, binds in (json.loads(out) or {}).items()}


@pytest.mark.tally("security checks passed")
def test_secret_files_are_0600_root_in_a_0700_directory(fl):
    for host, names in SECRETS.items():
        assert host_exec(fl, host, "stat", "-c", "%a %U", "/etc/mlinfra/mlstack")[1].strip() == "700 root"
        for name in names:
            assert host_exec(fl, host, "stat", "-c", "%a %U", f"/etc/mlinfra/mlstack/{name}")[1].strip() == "600 root"
        rc, out = host_exec(fl, host, "find", "/etc/mlinfra", "-type", "f", "-perm", "/077")
        assert rc == 0 and out.strip() == "", f"group/world-readable files on {host}: {out}"


@pytest.mark.tally("security checks passed")
def test_databases_are_loopback_only_by_default_and_on_the_private_address_only_when_asked(fl):
    # The fleet inventory opens Postgres on purpose on the private network (for MLflow on host2).
    assert published(fl, "host1", "mlstack-postgres") == {"5432/tcp": sorted(["127.0.0.1", host_record(fl, "host1")["ip"]])}
    assert published(fl, "host1", "mlstack-redis") == {"6379/tcp": ["127.0.0.1"]}
    # The role's default (no private address): loopback only.
    assert changed(converge(fl, "--limit", "host1", ml_stack_private_address=""))["host1"] == 1
    assert published(fl, "host1", "mlstack-postgres") == {"5432/tcp": ["127.0.0.1"]}
    assert not failed_hosts(converge(fl))


@pytest.mark.tally("security checks passed")
def test_mlflow_and_tf_serving_are_bound_to_loopback(fl):
    assert published(fl, "host2", "mlstack-mlflow") == {"5000/tcp": ["127.0.0.1"]}
    assert published(fl, "host3", "mlstack-tf-serving") == {"8500/tcp": ["127.0.0.1"], "8501/tcp": ["127.0.0.1"]}


@pytest.mark.tally("security checks passed")
def test_redis_refuses_commands_without_the_password(fl):
    rc, out = host_exec(fl, "host1", "docker", "exec", "mlstack-redis", "redis-cli", "ping")
    assert "NOAUTH" in out, out
    password = host_exec(fl, "host1", "cat", "/etc/mlinfra/mlstack/redis_password")[1].strip()
    rc, out = host_exec(fl, "host1", "docker", "exec", "-e", f"REDISCLI_AUTH={password}", "mlstack-redis",
                        "redis-cli", "ping")
    assert rc == 0 and out.strip() == "PONG", out


@pytest.mark.tally("security checks passed", 4)
def test_mlflow_basic_auth_refuses_anonymous_and_keeps_its_secrets_out_of_the_logs(fl):
    proc = converge(fl, "-vvv", "--limit", "host2", ml_stack_mlflow_basic_auth=True)
    assert changed(proc) == {"host2": 1}
    secrets = {name: host_exec(fl, "host2", "cat", f"/etc/mlinfra/mlstack/{name}")[1].strip()
               for name in ("mlflow_db_password", "mlflow_admin_password", "mlflow_secret_key")}
    output = proc.stdout + proc.stderr
    for name, secret in secrets.items():
        assert len(secret) >= 24 and secret not in output, f"{name} leaked into -vvv output"
    with tunnel(fl, "host2", 5000) as base:
        url = f"{base}/api/2.0/mlflow/experiments/search?max_results=1"
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            call(url)
        assert anonymous.value.code == 401
        token = base64.b64encode(f"admin:{secrets['mlflow_admin_password']}".encode()).decode()
        assert "experiments" in call(url, headers={"Authorization": f"Basic {token}"})
    # The Flask secret key reaches MLflow from a file: not in the container's configuration.
    assert secrets["mlflow_secret_key"] not in host_exec(fl, "host2", "docker", "inspect", "mlstack-mlflow")[1]
    # A new admin password is set through MLflow's own user API, and the old one stops working.
    new_admin = "admin-" + uuid.uuid4().hex
    proc = converge(fl, "--limit", "host2", ml_stack_mlflow_basic_auth=True, ml_stack_mlflow_admin_password=new_admin)
    assert changed(proc) == {"host2": 1} and new_admin not in proc.stdout
    with tunnel(fl, "host2", 5000) as base:
        url = f"{base}/api/2.0/mlflow/experiments/search?max_results=1"
        new_token = base64.b64encode(f"admin:{new_admin}".encode()).decode()
        assert "experiments" in call(url, headers={"Authorization": f"Basic {new_token}"})
        with pytest.raises(urllib.error.HTTPError) as old:
            call(url, headers={"Authorization": f"Basic {token}"})
        assert old.value.code == 401
    assert changed(converge(fl, "--limit", "host2"))["host2"] == 1  # back to the default, open on loopback


@pytest.mark.tally("security checks passed")
def test_no_database_secret_in_verbose_output_of_a_whole_converge(fl):
    proc = converge(fl, "-vvv")
    output = proc.stdout + proc.stderr
    for host, names in SECRETS.items():
        for name in names:
            secret = host_exec(fl, host, "cat", f"/etc/mlinfra/mlstack/{name}")[1].strip()
            assert len(secret) >= 24 and secret not in output, f"{name} leaked"
