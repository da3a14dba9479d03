"""The ML stack across a real 3-host fleet: up, healthy, idempotent, drift repaired, data kept."""

import json
import urllib.request
import uuid

import pytest

from tests.integration.conftest import REPO, host_exec, recap, run_ansible
from tests.integration.stack_helpers import (BASE_VARS, SITE, call, changed, containers, converge, health, host_record, install_model,
                                             log_run, psql, rebuild_fixture, tunnel)

pytestmark = pytest.mark.fleet
NAME = "it-stack"


@pytest.fixture(scope="module")
def fl(make_fleet):
    fleet = make_fleet(NAME, hosts=3, fixtures=True)
    install_model(fleet)
    fleet.vars = dict(BASE_VARS)
    fleet.first = converge(fleet)
    return fleet


def test_stack_comes_up_across_hosts_and_healthy(fl):
    assert all(c["failed"] == 0 for c in recap(fl.first.stdout).values())
    assert containers(fl, "host1") == {"mlstack-postgres": "running", "mlstack-redis": "running"}
    assert containers(fl, "host2") == {"mlstack-mlflow": "running"}
    assert containers(fl, "host3") == {"mlstack-tf-serving": "running"}
    for host, name in (("host1", "mlstack-postgres"), ("host1", "mlstack-redis"), ("host2", "mlstack-mlflow")):
        assert health(fl, host, name) == "healthy"


def test_mlflow_run_logged_from_here_lands_in_postgres(fl):
    name = "itest-" + uuid.uuid4().hex[:8]
    with tunnel(fl, "host2", 5000) as base:
        experiment, run = log_run(base, name, 0.25)
    assert psql(fl, f"select name from experiments where experiment_id = {experiment}") == name
    assert psql(fl, f"select value from metrics where run_uuid = '{run}' and key = 'loss'") == "0.25"
    fl.experiment = name


def test_tf_serving_model_available_and_predicts(fl):
    with tunnel(fl, "host3", 8501) as base:
        status = call(f"{base}/v1/models/half_plus_two")["model_version_status"]
        assert [s["state"] for s in status] == ["AVAILABLE"]
        assert call(f"{base}/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0, 5.0]}) == {
            "predictions": [2.5, 3.0, 4.5]}


def test_second_run_and_check_diff_change_nothing(fl):
    assert changed(converge(fl)) == {"host1": 0, "host2": 0, "host3": 0}
    assert changed(converge(fl, "--check", "--diff")) == {"host1": 0, "host2": 0, "host3": 0}


def module_runs(fl, tmp_path, *args):
    """{host: remote module runs} of one site.yml run (the benchmark's callback, bench/callback/module_runs.py)."""
    counts = tmp_path / "module-runs.json"
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, "-e", json.dumps(fl.vars), *args,
                       ANSIBLE_CALLBACK_PLUGINS=str(REPO / "bench" / "callback"), ANSIBLE_CALLBACKS_ENABLED="module_runs",
                       BENCH_MODULE_RUNS=str(counts))
    return json.loads(counts.read_text()), proc


def test_no_op_runs_at_most_three_modules_on_any_host(fl, tmp_path):
    """Issue 17: docker_engine, nvidia_toolkit, ml_stack; the tracking host's remote MLflow uses its kept copy of
    the database password, so nothing reads the database host on a no-op."""
    runs, proc = module_runs(fl, tmp_path)
    assert changed(proc) == {"host1": 0, "host2": 0, "host3": 0}
    assert set(runs) == {"host1", "host2", "host3"} and max(runs.values()) <= 3, runs


def test_db_password_file_rewritten_is_read_again_and_mlflow_kept(fl, tmp_path):
    """The database host's password file rewritten (same password, new file): the tracking host reads it again
    and records the new version (one change, predicted by check mode); MLflow is not recreated."""
    base, _proc = module_runs(fl, tmp_path)
    mlflow_id = host_exec(fl, "host2", "docker", "inspect", "-f", "{{.Id}}", "mlstack-mlflow")[1].strip()
    path = "/etc/mlinfra/mlstack/postgres_password"
    assert host_exec(fl, "host1", "sh", "-c", f"cp -p {path} {path}.new && mv {path}.new {path}")[0] == 0
    assert changed(converge(fl, "--check", "--diff")) == {"host1": 0, "host2": 1, "host3": 0}
    runs, proc = module_runs(fl, tmp_path)
    assert changed(proc) == {"host1": 0, "host2": 1, "host3": 0}
    assert runs["host1"] + runs["host2"] == base["host1"] + base["host2"] + 2, (base, runs)  # the slurp, ml_stack again
    assert host_exec(fl, "host2", "docker", "inspect", "-f", "{{.Id}}", "mlstack-mlflow")[1].strip() == mlflow_id
    assert health(fl, "host2", "mlstack-mlflow") == "healthy"
    runs, proc = module_runs(fl, tmp_path)
    assert changed(proc) == {"host1": 0, "host2": 0, "host3": 0} and max(runs.values()) <= 3, runs


@pytest.mark.tally("drifts repaired", 4)  # stopped, removed, env, network
def test_drift_is_repaired_only_where_it_happened(fl):
    host_exec(fl, "host1", "docker", "stop", "mlstack-redis")
    host_exec(fl, "host3", "docker", "rm", "-f", "mlstack-tf-serving")
    planned = converge(fl, "--check", "--diff")
    assert changed(planned) == {"host1": 1, "host2": 0, "host3": 1}
    assert containers(fl, "host1")["mlstack-redis"] == "exited"  # check mode touched nothing
    assert changed(converge(fl)) == {"host1": 1, "host2": 0, "host3": 1}
    assert containers(fl, "host1")["mlstack-redis"] == "running"
    assert containers(fl, "host3")["mlstack-tf-serving"] == "running"

    # env changed by hand: the same name, another environment -> recreated
    rc, image = host_exec(fl, "host1", "docker", "inspect", "-f", "{{.Config.Image}}", "mlstack-redis")
    host_exec(fl, "host1", "sh", "-c", f"docker rm -f mlstack-redis && docker run -d --name mlstack-redis "
                                       f"--network mlstack -e DRIFT=1 {image.strip()} redis-server")
    proc = converge(fl, "-v")
    assert changed(proc) == {"host1": 1, "host2": 0, "host3": 0}
    assert '"env"' in proc.stdout and "DRIFT=1" not in host_exec(fl, "host1", "docker", "inspect", "mlstack-redis")[1]

    # the network removed under a container
    host_exec(fl, "host3", "sh", "-c", "docker network disconnect -f mlstack mlstack-tf-serving && docker network rm mlstack")
    assert changed(converge(fl)) == {"host1": 0, "host2": 0, "host3": 1}
    assert containers(fl, "host3")["mlstack-tf-serving"] == "running"
    assert changed(converge(fl)) == {"host1": 0, "host2": 0, "host3": 0}


@pytest.mark.tally("data checks passed")
def test_new_mlflow_image_recreates_only_mlflow_and_migrates(fl):
    fl.vars["ml_stack_mlflow_image"] = rebuild_fixture(fl, "mlflow", "3.17.2-fixture-b")
    proc = converge(fl, "-v")
    assert changed(proc) == {"host1": 0, "host2": 1, "host3": 0}
    assert '"migration": [' in proc.stdout and "Updating database tables" in proc.stdout
    with tunnel(fl, "host2", 5000) as base:
        found = call(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={fl.experiment}")
    assert found["experiment"]["name"] == fl.experiment


@pytest.mark.tally("faults survived")
def test_service_that_never_gets_healthy_fails_with_its_logs(fl):
    proc = converge(fl, check=False, ml_stack_tf_serving_model_name="no_such_model", ml_stack_health_timeout=20)
    assert proc.returncode != 0
    assert "tf_serving" in proc.stdout and "models not available" in proc.stdout
    assert "tf serving stand-in" in proc.stdout  # its own log lines
    assert containers(fl, "host1") == {"mlstack-postgres": "running", "mlstack-redis": "running"}
    assert containers(fl, "host2") == {"mlstack-mlflow": "running"}
    assert changed(converge(fl))["host3"] == 1


@pytest.mark.tally("security checks passed")
def test_no_secret_in_verbose_output(fl):
    proc = converge(fl, "-vvv")
    output = proc.stdout + proc.stderr
    for host, name in (("host1", "postgres_password"), ("host1", "redis_password"), ("host2", "mlflow_db_password")):
        rc, secret = host_exec(fl, host, "cat", f"/etc/mlinfra/mlstack/{name}")
        assert rc == 0 and len(secret.strip()) >= 24
        assert secret.strip() not in output, f"{name} leaked"
        assert host_exec(fl, host, "stat", "-c", "%a %U", f"/etc/mlinfra/mlstack/{name}")[1].strip() == "600 root"


@pytest.mark.tally("data checks passed")
def test_postgres_data_survives_absent_then_present_and_purge_removes_it(fl):
    psql(fl, "create table if not exists keepme (v text); insert into keepme values ('survivor')")
    assert changed(converge(fl, "--limit", "host1", ml_stack_state="absent"))["host1"] == 1
    assert containers(fl, "host1") == {}
    assert host_exec(fl, "host1", "docker", "volume", "inspect", "mlstack-postgres-data")[0] == 0
    converge(fl, "--limit", "host1")
    assert psql(fl, "select v from keepme") == "survivor"
    converge(fl, "--limit", "host1", ml_stack_state="absent", ml_stack_purge_volumes=True)
    assert host_exec(fl, "host1", "docker", "volume", "inspect", "mlstack-postgres-data")[0] != 0


def scrape(url):
    with urllib.request.urlopen(url, timeout=20) as resp:
        return resp.headers.get("Content-Type", ""), resp.read().decode()


def test_metrics_are_scraped_and_listed_for_prometheus(fl, tmp_path):
    targets = tmp_path / "targets.json"
    metrics = {"ml_stack_mlflow_metrics": True, "ml_stack_tf_serving_metrics": True,
               "ml_stack_metrics_targets_file": str(targets)}
    proc = converge(fl, **metrics)
    assert {h: changed(proc)[h] for h in ("host2", "host3")} == {"host2": 1, "host3": 1}
    # Ports published on loopback are listed at the host's ml_stack_private_address (the fleet sets it to its IP).
    assert json.loads(targets.read_text()) == [
        {"labels": {"__metrics_path__": "/metrics", "job": "mlflow"}, "targets": [f"{host_record(fl, 'host2')['ip']}:5000"]},
        {"labels": {"__metrics_path__": "/monitoring/prometheus/metrics", "job": "tf_serving"},
         "targets": [f"{host_record(fl, 'host3')['ip']}:8501"]}]
    with tunnel(fl, "host2", 5000) as base:
        call(f"{base}/api/2.0/mlflow/experiments/search?max_results=1")
        kind, text = scrape(f"{base}/metrics")
        assert "mlflow_http_request_total{" in text, text[:500]  # MLflow 3.x names its own request counter
    with tunnel(fl, "host3", 8501) as base:
        call(f"{base}/v1/models/half_plus_two:predict", {"instances": [1.0]})
        kind, text = scrape(f"{base}/monitoring/prometheus/metrics")
        assert kind.startswith("text/plain")
        assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="OK"}' in text, text
    assert changed(converge(fl, **metrics)) == {"host1": 0, "host2": 0, "host3": 0}
    before = host_exec(fl, "host3", "docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", "mlstack-tf-serving")[1]
    refused = converge(fl, "--limit", "host3", check=False, ml_stack_tf_serving_metrics="sometimes")
    # the role's own argument spec refuses it, before the module runs
    assert refused.returncode != 0 and "argument 'ml_stack_tf_serving_metrics' is of type str" in refused.stdout, \
        refused.stdout[-2000:]
    assert host_exec(fl, "host3", "docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", "mlstack-tf-serving")[1] == before
    assert changed(converge(fl)) == {"host1": 0, "host2": 1, "host3": 1}  # back to the defaults: off
