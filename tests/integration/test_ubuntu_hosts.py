"""The collection on Ubuntu hosts: one jammy (22.04) and one noble (24.04) host in one small fleet.
The docker role installs Ubuntu's docker.io, merges daemon.json and rolls a rejected setting back;
the ML stack (db on jammy, tracking and serving on noble) converges, serves, and reconverges with no change.
Skipped, with the reason in the test summary, when Ubuntu's archive cannot be reached."""

import json

import pytest

from tests.fleet.oses import archive_unreachable
from tests.integration.conftest import Fleet, daemon_json_text, docker_active, host_exec, recap, run_ansible
from tests.integration.stack_helpers import BASE_VARS, call, changed, containers, converge, health, install_model, tunnel

pytestmark = pytest.mark.fleet
NAME = "it-ubuntu"
HOST_OS = {"host1": "jammy", "host2": "noble"}
SITE = "playbooks/site.yml"
DOCKER_ONLY = ("--tags", "docker")
DAEMON_JSON = "/etc/docker/daemon.json"


class UbuntuFleet(Fleet):
    def up(self):
        from tests.fleet import fleet as fleet_mod  # pylint: disable=import-outside-toplevel
        self.inventory = str(fleet_mod.up(self.name, self.hosts, log=lambda m: None, fixtures=True,
                                          oses=",".join(HOST_OS.values())))
        return self


@pytest.fixture(scope="module")
def fl():
    reasons = [reason for reason in map(archive_unreachable, sorted(set(HOST_OS.values()))) if reason]
    if reasons:
        pytest.skip("Ubuntu hosts not tested: " + "; ".join(reasons))
    fleet = UbuntuFleet(NAME, len(HOST_OS), fixtures=True)
    try:
        fleet.up()
        install_model(fleet, "host2")
        fleet.vars = dict(BASE_VARS)
        fleet.docker_first = recap(run_ansible("ansible-playbook", "-i", fleet.inventory, SITE, *DOCKER_ONLY).stdout)
        yield fleet
    finally:
        fleet.down()


@pytest.mark.parametrize("host", sorted(HOST_OS))
def test_docker_role_installs_ubuntus_docker_io(fl, host):
    assert fl.docker_first[host]["changed"] > 0 and fl.docker_first[host]["failed"] == 0, fl.docker_first
    rc, out = host_exec(fl, host, "sh", "-c", ". /etc/os-release && echo $ID $VERSION_CODENAME")
    assert (rc, out.split()) == (0, ["ubuntu", HOST_OS[host]])
    rc, out = host_exec(fl, host, "dpkg-query", "-W", "-f", "${Status} ${Version}", "docker.io")
    assert rc == 0 and out.startswith("install ok installed") and "ubuntu" in out, out  # Ubuntu's own build
    assert docker_active(fl, host)
    config = json.loads(daemon_json_text(fl, host))
    assert config["live-restore"] is True and config["log-opts"] == {"max-size": "10m", "max-file": "3"}
    rc, out = host_exec(fl, host, "docker", "info", "--format", "{{json .RegistryConfig.IndexConfigs}}")
    assert rc == 0 and "registry:5000" in out, out


def test_docker_role_second_run_changes_nothing(fl):
    again = recap(run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY).stdout)
    assert {h: c["changed"] for h, c in again.items()} == {"host1": 0, "host2": 0}


@pytest.mark.parametrize("host", sorted(HOST_OS))
def test_daemon_json_merge_keeps_foreign_keys(fl, host):
    config = json.loads(daemon_json_text(fl, host))
    config["debug"] = True
    host_exec(fl, host, "sh", "-c", f"printf '%s' '{json.dumps(config)}' > {DAEMON_JSON}")
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", host,
                       "-e", '{"docker_daemon_settings": {"max-concurrent-downloads": 4}}')
    assert recap(proc.stdout)[host]["changed"] > 0
    after = json.loads(daemon_json_text(fl, host))
    assert after["debug"] is True and after["max-concurrent-downloads"] == 4
    assert host_exec(fl, host, "docker", "info", "--format", "{{.Debug}}")[1].strip() == "true"
    # What the collection set, it unsets; the hand-written key stays.
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", host,
                       "-e", '{"docker_daemon_remove": ["max-concurrent-downloads"]}')
    after = json.loads(daemon_json_text(fl, host))
    assert "max-concurrent-downloads" not in after and after["debug"] is True


@pytest.mark.parametrize("host", sorted(HOST_OS))
def test_rejected_setting_rolls_back_and_keeps_docker_running(fl, host):
    before = daemon_json_text(fl, host)
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", host,
                       "-e", '{"docker_daemon_settings": {"log-driver": "no-such-driver"}, "docker_restart_timeout": 20}',
                       check=False)
    assert proc.returncode != 0 and "failed to start daemon" in proc.stdout, proc.stdout[-3000:]
    assert daemon_json_text(fl, host) == before
    assert docker_active(fl, host)
    assert host_exec(fl, host, "docker", "info", "--format", "{{.LoggingDriver}}")[1].strip() == "json-file"


def test_ml_stack_converges_and_serves_on_jammy_and_noble(fl):
    first = converge(fl)
    assert all(c["failed"] == 0 for c in recap(first.stdout).values()), first.stdout[-3000:]
    assert containers(fl, "host1") == {"mlstack-postgres": "running", "mlstack-redis": "running"}
    assert containers(fl, "host2") == {"mlstack-mlflow": "running", "mlstack-tf-serving": "running"}
    for host, name in (("host1", "mlstack-postgres"), ("host1", "mlstack-redis"), ("host2", "mlstack-mlflow")):
        assert health(fl, host, name) == "healthy"
    with tunnel(fl, "host2", 8501) as base:
        assert call(f"{base}/v1/models/half_plus_two:predict", {"instances": [4.0]}) == {"predictions": [4.0]}


def test_ml_stack_reconverges_with_no_change(fl):
    assert changed(converge(fl)) == {"host1": 0, "host2": 0}
