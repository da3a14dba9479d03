"""(Named to run after test_reliability_faults, which needs the fleet before its first converge.)
Data the stack does not own, or must not strand, on a real fleet: a shared volume survives a purge, a
Postgres 18 image on an older cluster is refused with nothing created, and a rotated Postgres password
keeps MLflow logging. Runs on the reliability fleet (ad-hoc projects of their own on host1 where the
main stack must stay untouched) and leaves the main stack converged."""

import json
import uuid

import pytest

from tests.integration.conftest import host_exec, run_ansible
from tests.integration.stack_helpers import changed, converge, failed_hosts, log_run, psql, tunnel

pytestmark = pytest.mark.fleet
HOSTS = ("host1", "host2", "host3")


@pytest.fixture(scope="module")
def fl(rel_fleet):
    proc = converge(rel_fleet)
    assert not failed_hosts(proc), proc.stdout[-3000:]
    return rel_fleet


def module(fl, host, args, check=True):
    """One ml_stack call on one host, like a user's ad-hoc task; (rc, the module's JSON result)."""
    proc = run_ansible("ansible", host, "-i", fl.inventory, "-m", "mlinfra.docker_ml.ml_stack", "-a", json.dumps(args),
                       check=check)
    text = proc.stdout  # "host1 | CHANGED => {...}" (warnings may come before it)
    return proc.returncode, json.loads(text[text.index("=> {") + 3:]) if "=> {" in text else {"msg": text}


def sh(fl, host, script):
    rc, out = host_exec(fl, host, "sh", "-c", script)
    assert rc == 0, out
    return out.strip()


@pytest.mark.tally("data checks passed")
def test_purge_removes_the_projects_volumes_and_keeps_a_shared_one(fl):
    sh(fl, "host1", "docker volume create it-shared-datasets >/dev/null && "
                    "echo keep > $(docker volume inspect -f '{{.Mountpoint}}' it-shared-datasets)/train.csv")
    redis = {"image": "{{ ml_stack_redis_image }}", "ports": [], "volumes": ["it-shared-datasets:/datasets:ro"]}
    try:
        rc, up = module(fl, "host1", {"project": "purgetest", "redis": redis})
        assert rc == 0 and up["changed"], up
        rc, gone = module(fl, "host1", {"project": "purgetest", "state": "absent", "purge_volumes": True, "redis": redis})
        assert rc == 0, gone
        assert gone["services"]["redis"]["removed_volumes"] == ["purgetest-redis-data"]
        assert gone["services"]["redis"]["kept_volumes"] == ["it-shared-datasets"]
        volumes = sh(fl, "host1", "docker volume ls -q").split()
        assert "it-shared-datasets" in volumes and "purgetest-redis-data" not in volumes
        assert sh(fl, "host1", "cat $(docker volume inspect -f '{{.Mountpoint}}' it-shared-datasets)/train.csv") == "keep"
    finally:
        host_exec(fl, "host1", "sh", "-c", "docker rm -f purgetest-redis; docker volume rm -f it-shared-datasets "
                                           "purgetest-redis-data; docker network rm purgetest; rm -rf /etc/mlinfra/purgetest")


@pytest.mark.tally("bad inputs refused")
def test_postgres_18_image_on_a_17_cluster_is_refused_with_nothing_created(fl):
    # An image that says it is PostgreSQL 18 the way official and derived images do (PG_MAJOR), made on the host
    # from the fleet's Postgres fixture; its tag says nothing about the major.
    sh(fl, "host1", "docker rm -f it-pg18-src >/dev/null 2>&1; "
                    "docker create --name it-pg18-src $(docker inspect -f '{{.Config.Image}}' mlstack-postgres) >/dev/null && "
                    "docker commit -c 'ENV PG_MAJOR=18' it-pg18-src mlinfra-test/postgres-major:candidate >/dev/null && "
                    "docker rm it-pg18-src >/dev/null")
    sh(fl, "host1", "docker volume create guard18-postgres-data >/dev/null && "
                    "echo 17 > $(docker volume inspect -f '{{.Mountpoint}}' guard18-postgres-data)/PG_VERSION")
    before = sh(fl, "host1", "docker ps -aq | sort; docker network ls -q | sort; docker volume ls -q | sort; "
                             "ls -A /etc/mlinfra; find $(docker volume inspect -f '{{.Mountpoint}}' guard18-postgres-data)")
    try:
        rc, refused = module(fl, "host1", {"project": "guard18", "pull": "never", "postgres": {
            "image": "mlinfra-test/postgres-major:candidate", "ports": []}}, check=False)
        assert rc != 0, refused
        assert "PostgreSQL 17" in refused["msg"] and "PostgreSQL 18" in refused["msg"], refused["msg"]
        assert "Nothing was changed" in refused["msg"]
        after = sh(fl, "host1", "docker ps -aq | sort; docker network ls -q | sort; docker volume ls -q | sort; "
                                "ls -A /etc/mlinfra; find $(docker volume inspect -f '{{.Mountpoint}}' guard18-postgres-data)")
        assert after == before
        assert host_exec(fl, "host1", "test", "-e", "/etc/mlinfra/guard18")[0] != 0
    finally:
        host_exec(fl, "host1", "sh", "-c", "docker volume rm -f guard18-postgres-data; "
                                           "docker rmi mlinfra-test/postgres-major:candidate")


@pytest.mark.tally("data checks passed", 2)
def test_postgres_password_rotation_keeps_mlflow_logging(fl):
    new = "rotated-" + uuid.uuid4().hex
    old = sh(fl, "host1", "cat /etc/mlinfra/mlstack/postgres_password")
    proc = converge(fl, "-v", ml_stack_postgres_password=new)
    assert changed(proc) == {"host1": 1, "host2": 1, "host3": 0}, proc.stdout[-3000:]
    assert "postgres password rotated in the running server" in proc.stdout
    assert new not in proc.stdout
    # The server itself takes the new password over TCP and the old one no more: asked at the container's own
    # address, where pg_hba wants a password (127.0.0.1 is trusted, as in the official image).
    address = sh(fl, "host1", "docker inspect -f '{{.NetworkSettings.Networks.mlstack.IPAddress}}' mlstack-postgres")
    for password, works in ((new, True), (old, False)):
        rc, out = host_exec(fl, "host1", "docker", "exec", "-e", f"PGPASSWORD={password}", "mlstack-postgres",
                            "psql", "-h", address, "-U", "mlflow", "-d", "mlflow", "-tAc", "select 1")
        assert (rc == 0 and out.strip() == "1") == works, out
    assert sh(fl, "host1", "cat /etc/mlinfra/mlstack/postgres_password") == new
    name = "rotated-" + uuid.uuid4().hex[:8]
    with tunnel(fl, "host2", 5000) as base:
        _experiment, run = log_run(base, name, 0.5)
    assert psql(fl, f"select value from metrics where run_uuid = '{run}' and key = 'loss'") == "0.5"
    # Idempotent with the new password given, and without it (the role reads the stored one back).
    assert changed(converge(fl, ml_stack_postgres_password=new)) == dict.fromkeys(HOSTS, 0)
    assert changed(converge(fl)) == dict.fromkeys(HOSTS, 0)
