"""Faults on a real 3-host fleet (db on host1, MLflow on host2, TF Serving on host3): a host dies
mid-converge, hosts restart, dockerd dies mid-run, the registry vanishes, a service crash-loops,
and the ML team's data (an MLflow experiment, a Postgres row) survives every redeploy."""

import ipaddress
import time
import uuid

import docker
import pytest

from tests.fleet import fleet as fleet_mod
from tests.integration.conftest import host_exec, recap
from tests.integration.stack_helpers import (call, changed, container_ids, containers, converge, converge_async,
                                             failed_hosts, fleet_state, health, psql, rebuild_fixture, ssh_port,
                                             tunnel, wait_for)

pytestmark = pytest.mark.fleet
HOSTS = ("host1", "host2", "host3")
KILL_DOCKERD = """pkill -KILL -x dockerd || exit 1
for i in $(seq 100); do
  case "$(systemctl show -p SubState --value docker.service)" in auto-restart|failed|dead) break;; esac
  sleep 0.05
done
systemctl stop docker.service docker.socket"""
STACK = {"host1": {"mlstack-postgres", "mlstack-redis"}, "host2": {"mlstack-mlflow"}, "host3": {"mlstack-tf-serving"}}


def host_container(fl, host):
    return docker.from_env().containers.get(fl.container(host))


def wait_host_back(fl, host):
    """After a host container (re)start: sshd answers and systemd finished booting."""
    port = ssh_port(fl, host)
    wait_for(lambda: fleet_mod._ssh_banner(port), 120, f"sshd on {host}")  # pylint: disable=protected-access
    verdict = host_exec(fl, host, "timeout", "120", "systemctl", "is-system-running", "--wait")[1].strip()
    assert verdict.splitlines()[-1] in ("running", "degraded"), verdict


def stack_healthy(fl):
    for host, names in STACK.items():
        states = containers(fl, host)
        if any(states.get(name) != "running" for name in names):
            return False
        if any(health(fl, host, name) != "healthy" for name in names if name != "mlstack-tf-serving"):
            return False
    return True


def all_zero(proc):
    return changed(proc) == dict.fromkeys(HOSTS, 0) and not failed_hosts(proc)


def finish(proc):
    """Collect a background converge's output (converge_async's watchdog bounds it)."""
    try:
        out = proc.stdout.read()
        proc.wait()
    finally:
        proc.watchdog.cancel()
    proc.stdout = out
    return proc


def assert_data(fl):
    """The ML team's data is there: the Postgres row, and the experiment through MLflow's own API."""
    assert psql(fl, "select v from keepme") == "survivor"
    with tunnel(fl, "host2", 5000) as base:
        found = call(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={fl.experiment}")
    assert found["experiment"]["name"] == fl.experiment


@pytest.mark.tally("faults survived")
def test_host_killed_mid_converge_others_finish_then_rerun_repairs(rel_fleet):
    fl = rel_fleet
    proc = converge_async(fl)
    seen, killed_at = [], None
    for line in proc.stdout:  # first converge of a fresh fleet: host2 dies while MLflow comes up
        seen.append(line)
        if line.startswith("TASK [mlinfra.docker_ml.ml_stack : Bring the ML services of this host to the declared state, wave 2"):
            killed_at = len(seen)
            break
    assert killed_at, "".join(seen)
    time.sleep(3)
    host_container(fl, "host2").kill()  # power cut: no shutdown
    proc = finish(proc)
    proc.stdout = "".join(seen) + proc.stdout
    counts = recap(proc.stdout)
    assert counts["host2"]["unreachable"] + counts["host2"]["failed"] >= 1, proc.stdout[-3000:]
    for host in ("host1", "host3"):
        assert counts[host]["failed"] == 0 and counts[host]["unreachable"] == 0, proc.stdout[-3000:]
    assert set(containers(fl, "host1")) == STACK["host1"] and set(containers(fl, "host3")) == STACK["host3"]

    host_container(fl, "host2").start()
    wait_host_back(fl, "host2")
    rerun = converge(fl)
    assert not failed_hosts(rerun)
    assert all_zero(converge(fl))
    assert stack_healthy(fl)


@pytest.fixture(scope="module")
def seeded(rel_fleet):
    """An experiment through MLflow and a row straight into Postgres, written once."""
    fl = rel_fleet
    fl.experiment = "keep-" + uuid.uuid4().hex[:8]
    with tunnel(fl, "host2", 5000) as base:
        call(f"{base}/api/2.0/mlflow/experiments/create", {"name": fl.experiment})
    psql(fl, "create table if not exists keepme (v text); delete from keepme; insert into keepme values ('survivor')")
    assert_data(fl)
    return fl


@pytest.mark.tally("faults survived")
@pytest.mark.tally("data checks passed", 2)
def test_hosts_restarted_come_back_healthy_with_data_and_nothing_to_change(seeded):
    fl = seeded
    for host in HOSTS:
        host_container(fl, host).restart(timeout=30)
    for host in HOSTS:
        wait_host_back(fl, host)
    assert host_exec(fl, "host1", "systemctl", "is-active", "docker")[1].strip() == "active"
    wait_for(lambda: stack_healthy(fl), 240, "the stack healthy again after the hosts restarted")
    assert all_zero(converge(fl))
    assert_data(fl)


@pytest.mark.tally("faults survived")
def test_dockerd_killed_during_ml_stack_fails_clearly_and_the_rerun_repairs(seeded):
    fl = seeded
    host_exec(fl, "host2", "docker", "rm", "-f", "mlstack-mlflow")
    proc = converge_async(fl, "--limit", "host2")
    # Killed once the new container runs (ml_stack then waits for it to be healthy), not while `docker start` is in
    # flight. Seen once in CI (2026-12-03): killed that way, dockerd came back with its own docker-proxy holding
    # 127.0.0.1:5000 and no container behind it ("Removing stale endpoint mlstack-mlflow" in its log), so every rerun
    # refused the port until dockerd restarted: a Docker fault, not what this scenario is about.
    wait_for(lambda: host_exec(fl, "host2", "docker", "inspect", "-f", "{{.State.Running}}", "mlstack-mlflow")[1].strip() == "true",
             300, "mlstack-mlflow running again on host2", interval=0.2)
    # dockerd crashes; systemd's restart is cancelled (the unit is stopped while it waits to restart)
    rc, out = host_exec(fl, "host2", "sh", "-c", KILL_DOCKERD)
    assert rc == 0, out
    proc = finish(proc)
    assert proc.returncode != 0
    assert "ml_stack on host2: lost the Docker engine at unix:///var/run/docker.sock" in proc.stdout, proc.stdout[-3000:]
    assert "systemctl status docker" in proc.stdout
    assert not failed_hosts(converge(fl, "--limit", "host2"))  # the docker role starts dockerd again
    assert all_zero(converge(fl))
    assert_data(fl)


@pytest.mark.tally("faults survived")
def test_registry_unreachable_names_image_and_registry_and_removes_nothing(seeded):
    fl = seeded
    bumped = rebuild_fixture(fl, "redis", "fixture-unreachable")
    subnet = fleet_state(fl)["subnet"]
    registry_ip = str(ipaddress.ip_network(subnet).network_address + 2)
    before = container_ids(fl, "host1")
    assert host_exec(fl, "host1", "ip", "route", "add", "unreachable", f"{registry_ip}/32")[0] == 0
    try:
        proc = converge(fl, "--limit", "host1", check=False, ml_stack_redis_image=bumped)
    finally:
        host_exec(fl, "host1", "ip", "route", "del", "unreachable", f"{registry_ip}/32")
    assert proc.returncode != 0
    assert f"pulling {bumped} from registry:5000 failed" in proc.stdout, proc.stdout[-3000:]
    assert "nothing was changed on the host" in proc.stdout
    assert container_ids(fl, "host1") == before
    assert all_zero(converge(fl))


@pytest.mark.tally("faults survived")
def test_crash_looping_service_fails_fast_with_its_logs_and_others_keep_running(seeded):
    fl = seeded
    started = time.monotonic()
    proc = converge(fl, "--limit", "host3", check=False, ml_stack_tf_serving_extra_args=["--rest_api_port=not-a-port"])
    assert proc.returncode != 0
    assert time.monotonic() - started < 120  # not the 240 s health timeout: a crash loop fails at once
    assert "crash-looping" in proc.stdout and "tf_serving" in proc.stdout, proc.stdout[-3000:]
    assert "invalid int value: 'not-a-port'" in proc.stdout  # the service's own last words
    assert stack_healthy_except(fl, "host3")
    assert changed(converge(fl))["host3"] == 1
    assert all_zero(converge(fl))


def stack_healthy_except(fl, broken):
    return all(set(n for n, s in containers(fl, host).items() if s == "running") == names
               for host, names in STACK.items() if host != broken)


@pytest.mark.tally("data checks passed", 2)
def test_data_survives_a_redeploy(seeded):
    fl = seeded
    host_exec(fl, "host1", "docker", "rm", "-f", "mlstack-postgres", "mlstack-redis")
    host_exec(fl, "host2", "docker", "rm", "-f", "mlstack-mlflow")
    assert changed(converge(fl)) == {"host1": 1, "host2": 1, "host3": 0}
    assert_data(fl)


@pytest.mark.tally("data checks passed", 2)
def test_data_survives_a_postgres_image_bump(seeded):
    fl = seeded
    old = psql(fl, "select pg_postmaster_start_time()")
    fl.vars["ml_stack_postgres_image"] = rebuild_fixture(fl, "postgres", "fixture-bump")
    assert changed(converge(fl))["host1"] == 1
    assert psql(fl, "select pg_postmaster_start_time()") != old
    assert fl.vars["ml_stack_postgres_image"] in host_exec(fl, "host1", "docker", "inspect", "-f",
                                                           "{{.Config.Image}}", "mlstack-postgres")[1]
    assert_data(fl)


@pytest.mark.tally("data checks passed", 2)
def test_data_survives_state_absent_then_present(seeded):
    fl = seeded
    converge(fl, ml_stack_state="absent")
    assert all(containers(fl, host) == {} for host in HOSTS)
    assert changed(converge(fl)) == dict.fromkeys(HOSTS, 1)
    assert_data(fl)
    assert all_zero(converge(fl))
