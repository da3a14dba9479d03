"""The docker role and its modules on a real 3-host fleet: install, idempotence, merge, drift, rollback."""

import hashlib
import json

import docker
import pytest

from tests.fleet import fleet as fleet_mod
from tests.integration.conftest import host_exec, recap, run_ansible

pytestmark = pytest.mark.fleet
NAME = "it-docker"
SITE = "playbooks/site.yml"
DOCKER_ONLY = ("--tags", "docker")  # these tests are about the docker role; the stack has its own
DAEMON_JSON = "/etc/docker/daemon.json"
NOFILE = fleet_mod.nofile_ceiling() or 64000  # the role's default, unless this machine caps it


@pytest.fixture(scope="module")
def fl(make_fleet):
    fleet = make_fleet(NAME, hosts=3)
    first = run_ansible("ansible-playbook", "-i", fleet.inventory, SITE, *DOCKER_ONLY)
    fleet.first_recap = recap(first.stdout)
    return fleet


def _daemon_json(fl, host):
    rc, out = host_exec(fl, host, "cat", DAEMON_JSON)
    assert rc == 0, out
    return out


def _docker_active(fl, host):
    return host_exec(fl, host, "systemctl", "is-active", "docker")[1].strip() == "active"


def test_fresh_fleet_gets_docker_running(fl):
    assert set(fl.first_recap) == {"host1", "host2", "host3"}
    assert all(c["changed"] > 0 and c["failed"] == 0 for c in fl.first_recap.values()), fl.first_recap
    for host in ("host1", "host2", "host3"):
        assert _docker_active(fl, host)
        rc, out = host_exec(fl, host, "docker", "info", "--format", "{{.LoggingDriver}} {{json .RegistryConfig.IndexConfigs}}")
        assert rc == 0 and out.startswith("json-file") and "registry:5000" in out
        config = json.loads(_daemon_json(fl, host))
        assert config["default-ulimits"]["nofile"] == {"Name": "nofile", "Soft": NOFILE, "Hard": NOFILE}
        assert config["live-restore"] is True and config["log-opts"] == {"max-size": "10m", "max-file": "3"}


def test_second_run_changes_nothing(fl):
    again = recap(run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY).stdout)
    assert {h: c["changed"] for h, c in again.items()} == {"host1": 0, "host2": 0, "host3": 0}


def test_hosts_run_containers_from_the_fleet_registry(fl):
    client = docker.from_env()
    port = json.loads((fleet_mod.state_dir(NAME) / "state.json").read_text())["registry_port"]
    base = next(t for img in client.images.list(filters={"label": "mlinfra.fleet.cache=base"}) for t in img.tags)
    client.images.get(base).tag(f"127.0.0.1:{port}/fleet/debian", "bookworm")
    for line in client.images.push(f"127.0.0.1:{port}/fleet/debian", "bookworm", stream=True, decode=True):
        assert "error" not in line, line
    rc, out = host_exec(fl, "host3", "docker", "run", "--rm", "registry:5000/fleet/debian:bookworm",
                        "sh", "-c", "ulimit -n")
    assert rc == 0 and out.strip().splitlines()[-1] == str(NOFILE), out


def test_foreign_keys_survive_a_converge(fl):
    config = json.loads(_daemon_json(fl, "host1"))
    config["debug"] = True
    config.setdefault("runtimes", {})["lab"] = {"path": "/usr/sbin/runc", "runtimeArgs": []}
    host_exec(fl, "host1", "sh", "-c", f"printf '%s' '{json.dumps(config)}' > {DAEMON_JSON}")
    counts = recap(run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host1").stdout)
    assert counts["host1"]["changed"] == 0
    after = json.loads(_daemon_json(fl, "host1"))
    assert after["debug"] is True and after["runtimes"]["lab"]["path"] == "/usr/sbin/runc"


@pytest.mark.tally("drifts repaired")
def test_check_diff_shows_exactly_the_drift_and_changes_nothing(fl):
    config = json.loads(_daemon_json(fl, "host2"))
    config["log-opts"]["max-size"] = "50m"
    host_exec(fl, "host2", "sh", "-c", f"printf '%s' '{json.dumps(config)}' > {DAEMON_JSON}")
    before = _daemon_json(fl, "host2")
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--check", "--diff")
    counts = recap(proc.stdout)
    assert {h: c["changed"] for h, c in counts.items()} == {"host1": 0, "host2": 1, "host3": 0}
    diff_lines = [line for line in proc.stdout.splitlines() if line.startswith(("-", "+")) and '"' in line]
    assert diff_lines == ['-    "max-size": "50m"', '+    "max-size": "10m"'], diff_lines
    assert _daemon_json(fl, "host2") == before
    repaired = recap(run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host2").stdout)
    assert repaired["host2"]["changed"] == 1
    assert json.loads(_daemon_json(fl, "host2"))["log-opts"]["max-size"] == "10m"


@pytest.mark.tally("faults survived")
def test_rejected_setting_rolls_back_and_keeps_docker_running(fl):
    before = hashlib.sha256(_daemon_json(fl, "host3").encode()).hexdigest()
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host3",
                       "-e", '{"docker_daemon_settings": {"log-driver": "no-such-driver"}, '
                             '"docker_restart_timeout": 20}', check=False)
    assert proc.returncode != 0
    assert 'plugin "no-such-driver" not found' in proc.stdout or "no-such-driver" in proc.stdout
    assert "failed to start daemon" in proc.stdout
    assert hashlib.sha256(_daemon_json(fl, "host3").encode()).hexdigest() == before
    assert _docker_active(fl, "host3")
    assert host_exec(fl, "host3", "docker", "info", "--format", "{{.LoggingDriver}}")[1].strip() == "json-file"


@pytest.mark.tally("bad inputs refused")
def test_invalid_json_fails_clearly_and_is_left_untouched(fl):
    broken = '{"log-driver": "json-file",, }\n'
    original = _daemon_json(fl, "host3")
    host_exec(fl, "host3", "sh", "-c", f"printf '%s' '{broken}' > {DAEMON_JSON}")
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host3", check=False)
    assert proc.returncode != 0 and "is not valid JSON" in proc.stdout
    assert _daemon_json(fl, "host3") == broken
    host_exec(fl, "host3", "sh", "-c", f"printf '%s' '{original}' > {DAEMON_JSON}")


def test_upstream_channel_in_check_mode_plans_repo_and_packages(fl):
    key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\\n\\nmQINBFit2ioBEADhWpZ8\\n-----END PGP PUBLIC KEY BLOCK-----\\n"
    host_exec(fl, "host1", "sh", "-c", "echo 'deb https://download.docker.com/linux/debian bookworm stable' "
                                       "> /etc/apt/sources.list.d/docker.list")
    proc = run_ansible("ansible", "host1", "-i", fl.inventory, "--check", "-m", "mlinfra.docker_ml.docker_engine",
                       "-a", json.dumps({"channel": "upstream", "version": "27.3.*", "gpg_key": key.replace("\\n", "\n")}))
    out = proc.stdout
    assert "CHANGED" in out
    for expected in ("write /etc/apt/keyrings/docker.asc", "write /etc/apt/sources.list.d/docker.sources",
                     "write /etc/apt/sources.list.d/docker.list", "install docker-ce=27.3.*",
                     "install docker-buildx-plugin"):
        assert expected in out, expected
    assert host_exec(fl, "host1", "test", "-e", "/etc/apt/sources.list.d/docker.sources")[0] == 1
    assert host_exec(fl, "host1", "test", "-e", "/etc/apt/sources.list.d/docker.list")[0] == 0
    host_exec(fl, "host1", "rm", "-f", "/etc/apt/sources.list.d/docker.list")
