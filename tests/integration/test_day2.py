"""Day-2 operations on a 1-host fleet (the host in ml_db and ml_tracking, no serving): backups that
restore after the stack and its volumes are gone, the backup timer, MLflow artifacts in an S3 store."""

import json
import time
import urllib.request
import uuid

import pytest
import yaml

from tests.integration.conftest import host_exec, recap, run_ansible
from tests.integration.stack_helpers import call, changed, containers, converge, psql, tunnel

pytestmark = pytest.mark.fleet
NAME = "it-day2"
BACKUPS = "/var/backups/mlinfra/mlstack"


@pytest.fixture(scope="module")
def fl(make_fleet):
    fleet = make_fleet(NAME, hosts=1, fixtures=True)
    inventory = yaml.safe_load(open(fleet.inventory, encoding="utf-8"))
    inventory["all"]["children"]["ml_serving"]["hosts"] = {}  # postgres, redis and MLflow only: fast
    fleet.inventory = fleet.inventory.replace("inventory.yml", "inventory-day2.yml")
    with open(fleet.inventory, "w", encoding="utf-8") as out:
        yaml.safe_dump(inventory, out)
    fleet.vars = {"ml_stack_health_timeout": 240}
    converge(fleet)
    return fleet


def playbook(fl, name, *args, check=True, **extra_vars):
    return run_ansible("ansible-playbook", "-i", fl.inventory, f"playbooks/{name}.yml", "-e", json.dumps(extra_vars),
                       *args, check=check)


def artifact(base, path, data=None):
    """PUT (data) or GET an artifact through MLflow's artifact proxy (--serve-artifacts)."""
    req = urllib.request.Request(f"{base}/api/2.0/mlflow-artifacts/artifacts/{path}", data=data,
                                 method="PUT" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=20) as resp:
        return resp.read()


def log_run(base, experiment_name, payload):
    experiment = call(f"{base}/api/2.0/mlflow/experiments/create", {"name": experiment_name})["experiment_id"]
    run = call(f"{base}/api/2.0/mlflow/runs/create", {"experiment_id": experiment})["run"]["info"]["run_id"]
    call(f"{base}/api/2.0/mlflow/runs/log-metric",
         {"run_id": run, "key": "loss", "value": 0.125, "timestamp": int(time.time() * 1000), "step": 1})
    artifact(base, f"{experiment}/{run}/artifacts/model.txt", payload)
    return experiment, run


def listing(fl, path=BACKUPS):
    return host_exec(fl, "host1", "sh", "-c", f"ls -1 {path} 2>/dev/null")[1].split()


def databases(fl):
    rc, out = host_exec(fl, "host1", "docker", "exec", "mlstack-postgres", "psql", "-U", "mlflow", "-d", "postgres", "-tAc",
                        "select datname from pg_database where not datistemplate and datname like 'mlflow%' order by 1")
    assert rc == 0, out
    return out.split()


def volumes(fl):
    return sorted(v for v in host_exec(fl, "host1", "docker", "volume", "ls", "-q")[1].split() if v.startswith("mlstack-"))


@pytest.mark.tally("data checks passed", 2)
def test_backup_then_destroy_with_volumes_then_restore_finds_runs_and_artifacts(fl, tmp_path):
    payload = uuid.uuid4().hex.encode()
    with tunnel(fl, "host1", 5000) as base:
        experiment, run = log_run(base, "backup-" + uuid.uuid4().hex[:8], payload)

    # Check mode says the script would be installed and a backup written, and writes neither.
    planned = playbook(fl, "backup", "--check", ml_backup_name="b1")
    assert changed(planned) == {"host1": 2}
    assert listing(fl) == [] and host_exec(fl, "host1", "ls", "/usr/local/sbin/mlinfra-backup-mlstack")[0] != 0
    # Named backups, fetched to the controller too: retention never removes them.
    fetch_dir = str(tmp_path / "fetched")
    for name, script in (("b1", 1), ("b2", 0)):
        assert changed(playbook(fl, "backup", ml_backup_name=name, ml_backup_keep=1, ml_backup_fetch=True,
                                ml_backup_fetch_dir=fetch_dir)) == {"host1": 2 + script}  # (script), written, fetched
    # Generated names (the UTC time) with retention 1: the newest of them stays, the named ones too.
    for _run in range(2):
        time.sleep(1.1)  # a new name each run
        assert changed(playbook(fl, "backup", ml_backup_keep=1)) == {"host1": 1}
    generated = [n for n in listing(fl) if n not in ("b1", "b2")]
    assert len(generated) == 1 and generated[0].endswith("Z") and sorted(listing(fl)) == sorted(["b1", "b2"] + generated)
    assert sorted(listing(fl, f"{BACKUPS}/b2")) == ["SHA256SUMS", "artifacts.tar.gz", "database.dump", "globals.sql"]
    assert host_exec(fl, "host1", "stat", "-c", "%a", BACKUPS)[1].strip() == "700"
    fetched = tmp_path / "fetched" / "host1" / "mlstack" / "b2"
    assert sorted(p.name for p in fetched.iterdir()) == ["SHA256SUMS", "artifacts.tar.gz", "database.dump", "globals.sql"]
    # globals.sql holds password hashes: root-only files
    assert host_exec(fl, "host1", "stat", "-c", "%a %U", f"{BACKUPS}/b2/globals.sql")[1].strip() == "600 root"

    # The stack and its volumes go.
    converge(fl, ml_stack_state="absent", ml_stack_purge_volumes=True)
    assert containers(fl, "host1") == {} and volumes(fl) == []

    # A backup that is not there is refused, in check mode too; nothing is created.
    for mode in ((), ("--check",)):
        refused = playbook(fl, "restore", *mode, check=False, ml_backup_restore_name="nope")
        assert refused.returncode != 0 and "no backup nope in /var/backups/mlinfra/mlstack" in refused.stdout, mode
    assert containers(fl, "host1") == {} and volumes(fl) == []
    # Check mode says what it would restore (changed), and creates nothing.
    predicted = playbook(fl, "restore", "--check", ml_backup_restore_name="b2")
    assert changed(predicted)["host1"] > 0 and "would restore b2 on host1" in predicted.stdout
    assert containers(fl, "host1") == {} and volumes(fl) == []

    restored = playbook(fl, "restore", ml_backup_restore_name="b2")
    assert recap(restored.stdout)["host1"]["failed"] == 0
    # The database it replaced was empty: not kept, and no leftover of the restore either.
    assert databases(fl) == ["mlflow"]
    with tunnel(fl, "host1", 5000) as base:
        found = call(f"{base}/api/2.0/mlflow/runs/get?run_id={run}")["run"]
        assert found["info"]["experiment_id"] == experiment
        assert [m["value"] for m in found["data"]["metrics"]] == [0.125]
        assert artifact(base, f"{experiment}/{run}/artifacts/model.txt") == payload
    assert containers(fl, "host1") == {"mlstack-postgres": "running", "mlstack-redis": "running",
                                       "mlstack-mlflow": "running"}
    # The stack converged by site.yml again changes nothing: restore left it as the role wants it.
    assert changed(converge(fl)) == {"host1": 0}


@pytest.mark.tally("bad inputs refused", 4)
def test_restore_over_data_and_bad_values_are_refused_with_nothing_changed(fl):
    def state():
        return (listing(fl), psql(fl, "select count(*) from runs", host="host1"), databases(fl),
                host_exec(fl, "host1", "docker", "ps", "-q", "--no-trunc")[1])  # running containers: MLflow not stopped

    before = state()
    refused = playbook(fl, "restore", check=False, ml_backup_restore_name="b2")
    assert refused.returncode != 0
    assert "database mlflow in mlstack-postgres has" in refused.stdout and "ml_backup_restore_force=true" in refused.stdout
    # The artifacts volume emptied, the database still full: the database's own refusal, before anything changes.
    rc, out = host_exec(fl, "host1", "sh", "-c", "find \"$(docker volume inspect -f '{{.Mountpoint}}' mlstack-mlflow-artifacts)\" "
                        "-mindepth 1 -delete")
    assert rc == 0, out
    refused = playbook(fl, "restore", check=False, ml_backup_restore_name="b2")
    assert refused.returncode != 0 and "database mlflow in mlstack-postgres has" in refused.stdout
    assert "artifacts volume" not in refused.stdout
    bad_keep = playbook(fl, "backup", check=False, ml_backup_keep=0)
    assert bad_keep.returncode != 0 and "ml_backup_keep must be at least 1" in bad_keep.stdout
    bad_name = playbook(fl, "backup", check=False, ml_backup_name="../etc")
    assert bad_name.returncode != 0 and "ml_backup_name empty or a plain name" in bad_name.stdout
    no_fetch_dir = playbook(fl, "backup", check=False, ml_backup_name="b9", ml_backup_fetch=True)
    assert no_fetch_dir.returncode != 0 and "ml_backup_fetch=true needs ml_backup_fetch_dir" in no_fetch_dir.stdout
    assert state() == before


@pytest.mark.tally("data checks passed")
def test_a_forced_restore_keeps_the_database_it_replaces(fl):
    with tunnel(fl, "host1", 5000) as base:
        experiment_name = "later-" + uuid.uuid4().hex[:8]
        _run_id, later = log_run(base, experiment_name, b"later")  # not in any backup
    newest = sorted(n for n in listing(fl) if n.endswith("Z"))[-1]
    forced = playbook(fl, "restore", ml_backup_restore_name="latest", ml_backup_restore_force=True)
    assert recap(forced.stdout)["host1"]["failed"] == 0
    kept = [d for d in databases(fl) if d.startswith("mlflow_pre_restore_")]
    assert len(kept) == 1 and f"the backup {newest}; the previous one is kept as {kept[0]}" in forced.stdout
    rc, out = host_exec(fl, "host1", "docker", "exec", "mlstack-postgres", "psql", "-U", "mlflow", "-d", kept[0], "-tAc",
                        f"select count(*) from runs where run_uuid = '{later}'")
    assert (rc, out.strip()) == (0, "1")  # the replaced data, reachable
    assert psql(fl, f"select count(*) from runs where run_uuid = '{later}'", host="host1").strip() == "0"
    assert containers(fl, "host1")["mlstack-mlflow"] == "running"
    with tunnel(fl, "host1", 5000) as base:  # MLflow answers on the restored database, without the later experiment
        names = [e["name"] for e in call(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 100})["experiments"]]
        assert experiment_name not in names and names
    rc, out = host_exec(fl, "host1", "docker", "exec", "mlstack-postgres", "psql", "-U", "mlflow", "-d", "postgres", "-c",
                        f'DROP DATABASE "{kept[0]}"')
    assert rc == 0, out


def test_backup_timer_installs_once_writes_backups_and_goes_away(fl):
    on = {"ml_backup_timer": True, "ml_backup_keep": 3}
    assert changed(playbook(fl, "backup", "--tags", "ml_backup_timer", **on))["host1"] > 0
    assert changed(playbook(fl, "backup", "--tags", "ml_backup_timer", **on)) == {"host1": 0}
    assert changed(playbook(fl, "backup", "--tags", "ml_backup_timer", "--check", **on)) == {"host1": 0}
    assert host_exec(fl, "host1", "systemctl", "is-active", "mlinfra-backup-mlstack.timer")[1].strip() == "active"
    before = set(listing(fl))
    rc, out = host_exec(fl, "host1", "systemctl", "start", "mlinfra-backup-mlstack.service")
    assert rc == 0, out
    new = set(listing(fl)) - before
    assert len(new) == 1 and "database.dump" in listing(fl, f"{BACKUPS}/{new.pop()}")
    off = {"ml_backup_timer": False}
    assert changed(playbook(fl, "backup", "--tags", "ml_backup_timer", **off))["host1"] > 0
    assert changed(playbook(fl, "backup", "--tags", "ml_backup_timer", **off)) == {"host1": 0}
    assert host_exec(fl, "host1", "ls", "/etc/systemd/system/mlinfra-backup-mlstack.timer")[0] != 0
    assert host_exec(fl, "host1", "ls", "/etc/systemd/system/mlinfra-backup-mlstack.service")[0] != 0
    assert host_exec(fl, "host1", "ls", "/usr/local/sbin/mlinfra-backup-mlstack")[0] == 0  # the host's backup command stays


S3_VARS = {"ml_stack_mlflow_artifacts_destination": "s3://mlflow-artifacts/team-a",
           "ml_stack_mlflow_s3_endpoint_url": "http://s3:9000",
           "ml_stack_mlflow_s3_access_key_id": "AKIDDAY2TEST", "ml_stack_mlflow_s3_secret_access_key": "day2-secret-" + "x" * 20}
S3_FIXTURE = "day2-s3"


def s3(fl, code):
    """Ask the S3 fixture with boto3 from inside its own container (the store answers only on the fleet)."""
    prelude = ("import boto3, sys; c = boto3.client('s3', endpoint_url='http://127.0.0.1:9000', region_name='us-east-1', "
               "aws_access_key_id='AKIDDAY2TEST', aws_secret_access_key='x'); ")
    rc, out = host_exec(fl, "host1", "docker", "exec", S3_FIXTURE, "python", "-c", prelude + code)
    assert rc == 0, out
    return out


@pytest.fixture()
def s3_store(fl):
    inventory = yaml.safe_load(open(fl.inventory, encoding="utf-8"))
    image = inventory["all"]["vars"]["ml_stack_s3_fixture_image"]
    host_exec(fl, "host1", "docker", "rm", "-f", S3_FIXTURE)
    # On the stack's network, so that MLflow reaches it as http://s3:9000.
    rc, out = host_exec(fl, "host1", "docker", "run", "-d", "--name", S3_FIXTURE, "--network", "mlstack",
                        "--network-alias", "s3", image)
    assert rc == 0, out
    deadline = time.monotonic() + 60
    while host_exec(fl, "host1", "docker", "exec", S3_FIXTURE, "python", "-c",
                    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/', timeout=2)")[0] != 0:
        assert time.monotonic() < deadline, "the S3 fixture did not answer within 60 s"
        time.sleep(1)
    s3(fl, "c.create_bucket(Bucket='mlflow-artifacts')")
    yield
    converge(fl)  # back to the artifacts volume, for whatever runs next on this fleet
    host_exec(fl, "host1", "docker", "rm", "-f", S3_FIXTURE)


@pytest.mark.tally("bad inputs refused")
def test_mlflow_artifacts_in_an_s3_store_round_trip(fl, s3_store):  # pylint: disable=unused-argument,redefined-outer-name
    first = converge(fl, **S3_VARS)
    assert changed(first)["host1"] >= 1
    assert changed(converge(fl, **S3_VARS)) == {"host1": 0}
    inspect = json.loads(host_exec(fl, "host1", "docker", "inspect", "mlstack-mlflow")[1])[0]
    config = json.dumps([inspect["Config"]["Env"], inspect["Config"]["Cmd"], inspect["Args"]])
    assert "day2-secret" not in config and "AKIDDAY2TEST" not in config  # keys only in the credentials file
    assert "AWS_SHARED_CREDENTIALS_FILE=/run/secrets/aws_credentials" in inspect["Config"]["Env"]

    payload = uuid.uuid4().hex.encode()
    with tunnel(fl, "host1", 5000) as base:
        experiment, run = log_run(base, "s3-" + uuid.uuid4().hex[:8], payload)
        key = f"team-a/{experiment}/{run}/artifacts/model.txt"
        # boto3 in MLflow found credentials (none in its env): moto does not check them, boto3 refuses to send without.
        assert key in s3(fl, "print([o['Key'] for o in c.list_objects_v2(Bucket='mlflow-artifacts')['Contents']])")
        assert s3(fl, f"sys.stdout.write(c.get_object(Bucket='mlflow-artifacts', Key='{key}')['Body'].read().decode())") \
            == payload.decode()
        assert artifact(base, f"{experiment}/{run}/artifacts/model.txt") == payload

    # A bad destination is refused before anything changes.
    before = host_exec(fl, "host1", "docker", "ps", "-aq", "--no-trunc")[1]
    bad = converge(fl, check=False, **{**S3_VARS, "ml_stack_mlflow_artifacts_destination": "s3://Bad_Bucket/x"})
    assert bad.returncode != 0 and "invalid input, nothing was changed" in bad.stdout and "is not s3://<bucket>" in bad.stdout
    assert host_exec(fl, "host1", "docker", "ps", "-aq", "--no-trunc")[1] == before
