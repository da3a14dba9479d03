"""The docker role and its modules on a real 3-host fleet: install, idempotence, merge, drift, rollback."""

import hashlib
import json

import docker
import pytest

from tests.fleet import fleet as fleet_mod
from tests.integration.conftest import daemon_json_text, docker_active, host_exec, recap, run_ansible

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


def test_fresh_fleet_gets_docker_running(fl):
    assert set(fl.first_recap) == {"host1", "host2", "host3"}
    assert all(c["changed"] > 0 and c["failed"] == 0 for c in fl.first_recap.values()), fl.first_recap
    for host in ("host1", "host2", "host3"):
        assert docker_active(fl, host)
        rc, out = host_exec(fl, host, "docker", "info", "--format", "{{.LoggingDriver}} {{json .RegistryConfig.IndexConfigs}}")
        assert rc == 0 and out.startswith("json-file") and "registry:5000" in out
        config = json.loads(daemon_json_text(fl, host))
        assert config["default-ulimits"]["nofile"] == {"Name": "nofile", "Soft": NOFILE, "Hard": NOFILE}
        assert config["live-restore"] is True and config["log-opts"] == {"max-size": "10m", "max-file": "3"}


def test_second_run_changes_nothing(fl):
    again = recap(run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY).stdout)
    assert {h: c["changed"] for h, c in again.items()} == {"host1": 0, "host2": 0, "host3": 0}


def test_hosts_run_containers_from_the_fleet_registry(fl):
    client = docker.from_env()
    port = json.loads((fleet_mod.state_dir(fl.name) / "state.json").read_text())["registry_port"]
    base = next(t for img in client.images.list(filters={"label": "mlinfra.fleet.cache=base"}) for t in img.tags)
    client.images.get(base).tag(f"127.0.0.1:{port}/fleet/debian", "bookworm")
    for line in client.images.push(f"127.0.0.1:{port}/fleet/debian", "bookworm", stream=True, decode=True):
        assert "error" not in line, line
    rc, out = host_exec(fl, "host3", "docker", "run", "--rm", "registry:5000/fleet/debian:bookworm",
                        "sh", "-c", "ulimit -n")
    assert rc == 0 and out.strip().splitlines()[-1] == str(NOFILE), out


def test_foreign_keys_survive_a_converge(fl):
    config = json.loads(daemon_json_text(fl, "host1"))
    config["debug"] = True
    config.setdefault("runtimes", {})["lab"] = {"path": "/usr/sbin/runc", "runtimeArgs": []}
    host_exec(fl, "host1", "sh", "-c", f"printf '%s' '{json.dumps(config)}' > {DAEMON_JSON}")
    counts = recap(run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host1").stdout)
    assert counts["host1"]["changed"] == 0
    after = json.loads(daemon_json_text(fl, "host1"))
    assert after["debug"] is True and after["runtimes"]["lab"]["path"] == "/usr/sbin/runc"


@pytest.mark.tally("drifts repaired")
def test_check_diff_shows_exactly_the_drift_and_changes_nothing(fl):
    config = json.loads(daemon_json_text(fl, "host2"))
    config["log-opts"]["max-size"] = "50m"
    host_exec(fl, "host2", "sh", "-c", f"printf '%s' '{json.dumps(config)}' > {DAEMON_JSON}")
    before = daemon_json_text(fl, "host2")
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--check", "--diff")
    counts = recap(proc.stdout)
    assert {h: c["changed"] for h, c in counts.items()} == {"host1": 0, "host2": 1, "host3": 0}
    diff_lines = [line for line in proc.stdout.splitlines() if line.startswith(("-", "+")) and '"' in line]
    assert diff_lines == ['-    "max-size": "50m"', '+    "max-size": "10m"'], diff_lines
    assert daemon_json_text(fl, "host2") == before
    repaired = recap(run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host2").stdout)
    assert repaired["host2"]["changed"] == 1
    assert json.loads(daemon_json_text(fl, "host2"))["log-opts"]["max-size"] == "10m"


@pytest.mark.tally("faults survived")
def test_rejected_setting_rolls_back_and_keeps_docker_running(fl):
    before = hashlib.sha256(daemon_json_text(fl, "host3").encode()).hexdigest()
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host3",
                       "-e", '{"docker_daemon_settings": {"log-driver": "no-such-driver"}, '
                             '"docker_restart_timeout": 20}', check=False)
    assert proc.returncode != 0
    assert 'plugin "no-such-driver" not found' in proc.stdout or "no-such-driver" in proc.stdout
    assert "failed to start daemon" in proc.stdout
    assert hashlib.sha256(daemon_json_text(fl, "host3").encode()).hexdigest() == before
    assert docker_active(fl, "host3")
    assert host_exec(fl, "host3", "docker", "info", "--format", "{{.LoggingDriver}}")[1].strip() == "json-file"


@pytest.mark.tally("bad inputs refused")
def test_invalid_json_fails_clearly_and_is_left_untouched(fl):
    broken = '{"log-driver": "json-file",, }\n'
    original = daemon_json_text(fl, "host3")
    host_exec(fl, "host3", "sh", "-c", f"printf '%s' '{broken}' > {DAEMON_JSON}")
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host3", check=False)
    assert proc.returncode != 0 and "is not valid JSON" in proc.stdout
    assert daemon_json_text(fl, "host3") == broken
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


# --- issue 13: what the role set, it can unset; files and packages as users have them -------------
def _converge(fl, host, extra=None, *args):
    """One docker-role run on one host -> (its changed count, the run's stdout)."""
    options = ("-e", json.dumps(extra)) if extra else ()
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", host, *options, *args)
    return recap(proc.stdout)[host]["changed"], proc.stdout


def test_cleared_insecure_registries_leavedaemon_json_text(fl):
    config = json.loads(daemon_json_text(fl, "host1"))
    config["debug"] = True  # a foreign key: never the role's to remove
    host_exec(fl, "host1", "sh", "-c", f"printf '%s' '{json.dumps(config)}' > {DAEMON_JSON}")
    cleared = {"docker_insecure_registries": []}
    assert _converge(fl, "host1", cleared)[0] == 1
    after = json.loads(daemon_json_text(fl, "host1"))
    assert "insecure-registries" not in after and after["debug"] is True and after["live-restore"] is True
    assert "registry:5000" not in host_exec(fl, "host1", "docker", "info", "--format", "{{json .RegistryConfig.IndexConfigs}}")[1]
    assert _converge(fl, "host1", cleared)[0] == 0
    assert _converge(fl, "host1")[0] == 1 and json.loads(daemon_json_text(fl, "host1"))["insecure-registries"] == ["registry:5000"]
    assert _converge(fl, "host1")[0] == 0


@pytest.mark.tally("security checks passed")
def test_proxy_drop_in_on_changed_off_with_the_password_kept_out(fl):
    dropin = "/etc/systemd/system/docker.service.d/mlinfra-proxy.conf"
    proxy = {"docker_proxy": {"http": "http://ops:s3cret@127.0.0.1:3128", "no_proxy": ["registry", "localhost"]}}
    changed, out = _converge(fl, "host2", proxy, "--check", "--diff")
    assert changed == 1 and "ops:********@127.0.0.1:3128" in out and "s3cret" not in out
    assert host_exec(fl, "host2", "test", "-e", dropin)[0] == 1
    changed, out = _converge(fl, "host2", proxy, "--diff")
    assert changed == 1 and "s3cret" not in out
    assert host_exec(fl, "host2", "docker", "info", "--format", "{{.HTTPProxy}} {{.NoProxy}}")[1].strip() \
        == "http://xxxxx:xxxxx@127.0.0.1:3128 registry,localhost"  # dockerd masks the credentials itself
    assert _converge(fl, "host2", proxy)[0] == 0
    moved = {"docker_proxy": dict(proxy["docker_proxy"], https="http://127.0.0.1:3129")}
    assert _converge(fl, "host2", moved)[0] == 1
    assert "HTTPS_PROXY=http://127.0.0.1:3129" in host_exec(fl, "host2", "cat", dropin)[1]
    assert _converge(fl, "host2")[0] == 1
    assert host_exec(fl, "host2", "test", "-e", dropin)[0] == 1 and docker_active(fl, "host2")
    assert host_exec(fl, "host2", "docker", "info", "--format", "{{.HTTPProxy}}")[1].strip() == ""
    assert _converge(fl, "host2")[0] == 0


def test_held_engine_package_stays_unchanged_and_docker_hold_holds_it(fl):
    host_exec(fl, "host3", "apt-mark", "hold", "docker.io")
    try:
        assert _converge(fl, "host3")[0] == 0
        proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *DOCKER_ONLY, "--limit", "host3",
                           "-e", '{"docker_version": "99.*"}', check=False)
        assert proc.returncode != 0 and "docker.io is held at" in proc.stdout and "apt-mark unhold docker.io" in proc.stdout
    finally:
        host_exec(fl, "host3", "apt-mark", "unhold", "docker.io")
    assert _converge(fl, "host3", {"docker_hold": True})[0] == 1
    assert host_exec(fl, "host3", "apt-mark", "showhold")[1].split() == ["docker.io"]
    assert _converge(fl, "host3", {"docker_hold": True})[0] == 0
    assert _converge(fl, "host3")[0] == 1  # docker_hold back to false: the hold the role set is released
    assert host_exec(fl, "host3", "apt-mark", "showhold")[1].split() == []
    assert _converge(fl, "host3")[0] == 0


def test_daemon_json_with_a_byte_order_mark_is_read_and_written_back_without_it(fl):
    """Debian 12's dockerd (20.10) refuses a BOM; 23.0 and later read it. Either way the role must not refuse
    the file (it did: "not valid JSON"), and dropping the mark keeps its meaning: no restart."""
    original = daemon_json_text(fl, "host3")
    started = host_exec(fl, "host3", "systemctl", "show", "docker", "--property", "ExecMainStartTimestamp")[1]
    host_exec(fl, "host3", "sh", "-c", f"printf '\\357\\273\\277%s' '{original.strip()}' > {DAEMON_JSON}")
    changed, out = _converge(fl, "host3", None, "--diff")
    assert changed == 1 and "byte-order mark; written back without it" in out
    assert daemon_json_text(fl, "host3") == original
    assert host_exec(fl, "host3", "systemctl", "show", "docker", "--property", "ExecMainStartTimestamp")[1] == started
    assert _converge(fl, "host3")[0] == 0


def test_symlinked_daemon_json_stays_a_symlink(fl):
    repo = "/srv/config-repo/daemon.json"
    host_exec(fl, "host1", "sh", "-c", f"mkdir -p /srv/config-repo && mv {DAEMON_JSON} {repo} && ln -s {repo} {DAEMON_JSON}")
    try:
        mirror = {"docker_registry_mirrors": ["http://127.0.0.1:5999"]}
        assert _converge(fl, "host1", mirror)[0] == 1 and docker_active(fl, "host1")
        assert host_exec(fl, "host1", "readlink", DAEMON_JSON)[1].strip() == repo
        assert json.loads(host_exec(fl, "host1", "cat", repo)[1])["registry-mirrors"] == ["http://127.0.0.1:5999"]
        assert _converge(fl, "host1")[0] == 1 and "registry-mirrors" not in json.loads(host_exec(fl, "host1", "cat", repo)[1])
        assert host_exec(fl, "host1", "readlink", DAEMON_JSON)[1].strip() == repo
        assert _converge(fl, "host1")[0] == 0
    finally:
        host_exec(fl, "host1", "sh", "-c", f"rm -f {DAEMON_JSON} && mv {repo} {DAEMON_JSON}")
