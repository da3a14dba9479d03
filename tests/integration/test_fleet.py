"""The local fleet is real: SSH, systemd, a registry, and a down that leaves nothing behind."""

import json
import re
import urllib.request
import uuid

import docker
import pytest

from tests.fleet import fleet as fleet_mod
from tests.integration.conftest import run_ansible

pytestmark = pytest.mark.fleet
NAME = "it-foundation"


@pytest.fixture(scope="module")
def fl(make_fleet):
    return make_fleet(NAME, hosts=3)


def _host_results(stdout):
    """ansible ad-hoc with the minimal callback -> {host: (status, body)}."""
    results, current = {}, None
    for line in stdout.splitlines():
        match = re.match(r"^(\S+) \| (SUCCESS|CHANGED|FAILED!?|UNREACHABLE!?)( \| rc=\d+)? (=>|>>) ?(.*)$", line)
        if match:
            current = match.group(1)
            results[current] = [match.group(2), match.group(5)]
        elif current:
            results[current][1] += ("\n" if results[current][1] else "") + line
    return {host: (status, body.strip()) for host, (status, body) in results.items()}


def test_ping_over_ssh_on_three_hosts(fl):
    proc = run_ansible("ansible", "all", "-i", fl.inventory, "-m", "ansible.builtin.ping",
                       ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    results = _host_results(proc.stdout)
    assert sorted(results) == ["host1", "host2", "host3"]
    assert all(status == "SUCCESS" and json.loads(body)["ping"] == "pong" for status, body in results.values())


def test_systemd_is_running_on_each_host(fl):
    proc = run_ansible("ansible", "docker_hosts", "-i", fl.inventory, "-m", "ansible.builtin.command",
                       "-a", "systemctl is-system-running", check=False,
                       ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    results = _host_results(proc.stdout)
    assert {host: body for host, (dummy, body) in results.items()} == {
        "host1": "running", "host2": "running", "host3": "running"}


def test_up_again_reuses_everything(fl):
    client = docker.from_env()
    before = {c.name: c.id for c in fleet_mod.resources(client, NAME)["containers"]}
    fleet_mod.up(NAME, 3, log=lambda m: None)
    after = {c.name: c.id for c in fleet_mod.resources(client, NAME)["containers"]}
    assert before == after and len(after) == 4


def test_registry_push_and_pull_through_loopback(fl):
    client = docker.from_env()
    state = json.loads((fleet_mod.state_dir(NAME) / "state.json").read_text())
    port = state["registry_port"]
    base = next(t for img in client.images.list(filters={"label": "mlinfra.fleet.cache=base"})
                for t in img.tags)
    repo = f"127.0.0.1:{port}/fleet-test/base"
    tag = uuid.uuid4().hex[:8]
    image = client.images.get(base)
    image.tag(repo, tag)
    for line in client.images.push(repo, tag, stream=True, decode=True):
        assert "error" not in line, line
    client.images.remove(f"{repo}:{tag}")
    pulled = client.images.pull(repo, tag)
    assert pulled.id == image.id
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/_catalog", timeout=10) as resp:
        assert "fleet-test/base" in json.load(resp)["repositories"]
    client.images.remove(f"{repo}:{tag}")


def test_hosts_reach_the_registry_by_name(fl):
    proc = run_ansible("ansible", "host2", "-i", fl.inventory, "-m", "ansible.builtin.uri",
                       "-a", "url=http://{{ fleet_registry }}/v2/ status_code=200")
    assert "SUCCESS" in proc.stdout


def test_down_leaves_nothing(fl):
    client = docker.from_env()
    fl.down()
    left = fleet_mod.resources(client, NAME)
    assert not any(left.values()), left
    prefix = f"mlinfra-fleet-{NAME}"
    assert not [c.name for c in client.containers.list(all=True) if c.name.startswith(prefix)]
    assert not [v.name for v in client.volumes.list() if v.name.startswith(prefix)]
    assert not [n.name for n in client.networks.list() if n.name.startswith(prefix)]
    assert not fleet_mod.state_dir(NAME).exists()
