"""The fleet harness's pure parts: placement, addressing, inventory shape."""

import pytest

from tests.fleet.inventory import build_inventory, host_names, spread_roles, subnet_addresses
from tests.fleet.images import context_hash


@pytest.mark.parametrize("count, expected", [
    (1, {"ml_db": ["host1"], "ml_tracking": ["host1"], "ml_serving": ["host1"]}),
    (2, {"ml_db": ["host1"], "ml_tracking": ["host2"], "ml_serving": ["host2"]}),
    (3, {"ml_db": ["host1"], "ml_tracking": ["host2"], "ml_serving": ["host3"]}),
    (5, {"ml_db": ["host1"], "ml_tracking": ["host2"], "ml_serving": ["host3", "host4", "host5"]}),
])
def test_spread_roles_spans_hosts(count, expected):
    assert spread_roles(host_names(count)) == expected


def test_spread_roles_needs_a_host():
    with pytest.raises(ValueError):
        spread_roles([])


def test_subnet_addresses():
    registry, hosts = subnet_addresses("10.213.7.0/24", 3)
    assert registry == "10.213.7.2"
    assert hosts == ["10.213.7.11", "10.213.7.12", "10.213.7.13"]


def test_subnet_too_small():
    with pytest.raises(ValueError, match="too small"):
        subnet_addresses("10.0.0.0/29", 3)


def _hosts(n):
    return [{"name": f"host{i}", "port": 2200 + i, "ip": f"10.0.0.{10 + i}"} for i in range(1, n + 1)]


def test_inventory_groups_and_connection():
    inv = build_inventory(_hosts(3), "/k/id", "registry:5000", gpu_hosts=["host3"])
    children = inv["all"]["children"]
    assert set(children) == {"docker_hosts", "gpu_hosts", "ml_db", "ml_tracking", "ml_serving"}
    assert children["docker_hosts"]["hosts"]["host2"] == {
        "ansible_host": "127.0.0.1", "ansible_port": 2202, "fleet_ip": "10.0.0.12"}
    assert list(children["gpu_hosts"]["hosts"]) == ["host3"]
    assert inv["all"]["vars"]["ansible_ssh_private_key_file"] == "/k/id"
    assert inv["all"]["vars"]["fleet_registry"] == "registry:5000"


def test_inventory_gpu_hosts_empty_by_default():
    assert not build_inventory(_hosts(2), "/k", "r:5000")["all"]["children"]["gpu_hosts"]["hosts"]


def test_inventory_rejects_unknown_gpu_host():
    with pytest.raises(ValueError, match="host9"):
        build_inventory(_hosts(2), "/k", "r:5000", gpu_hosts=["host9"])


def test_context_hash_follows_content(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    first = context_hash("base:1", context_dir=tmp_path)
    assert first == context_hash("base:1", context_dir=tmp_path)
    assert first != context_hash("base:2", context_dir=tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM b\n")
    assert first != context_hash("base:1", context_dir=tmp_path)
