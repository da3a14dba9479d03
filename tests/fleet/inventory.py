"""The fleet's Ansible inventory, as a plain dict (pure: no Docker, no files)."""

from __future__ import annotations

import ipaddress

GROUPS = ("docker_hosts", "gpu_hosts", "ml_db", "ml_tracking", "ml_serving")


def host_names(count):
    return [f"host{i}" for i in range(1, count + 1)]


def spread_roles(names):
    """Place the ML stack so it really spans hosts: db on the first, tracking on the second,
    serving on the rest (several serving hosts once there are four or more)."""
    if not names:
        raise ValueError("a fleet needs at least one host")
    db = names[:1]
    tracking = names[1:2] or db
    serving = names[2:] or tracking
    return {"ml_db": db, "ml_tracking": tracking, "ml_serving": serving}


def subnet_addresses(subnet, count):
    """Gateway is .1, the registry .2, host N is .(10+N)."""
    net = ipaddress.ip_network(subnet)
    if net.num_addresses < count + 16:
        raise ValueError(f"subnet {subnet} is too small for {count} hosts")
    base = int(net.network_address)
    registry = str(ipaddress.ip_address(base + 2))
    hosts = [str(ipaddress.ip_address(base + 10 + i)) for i in range(1, count + 1)]
    return registry, hosts


def build_inventory(hosts, key_file, registry, gpu_hosts=()):
    """hosts: list of dicts with name, port and ip. registry: the in-fleet 'name:port'."""
    names = [h["name"] for h in hosts]
    unknown = sorted(set(gpu_hosts) - set(names))
    if unknown:
        raise ValueError(f"gpu hosts {unknown} are not in the fleet {names}")
    placement = spread_roles(names)
    children = {
        "docker_hosts": {"hosts": {h["name"]: {"ansible_host": "127.0.0.1", "ansible_port": h["port"],
                                               "fleet_ip": h["ip"], **({"fleet_os": h["os"]} if "os" in h else {})}
                                   for h in hosts}},
        "gpu_hosts": {"hosts": {name: {} for name in names if name in gpu_hosts}},
    }
    for group, members in placement.items():
        children[group] = {"hosts": {name: {} for name in members}}
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_ssh_private_key_file": str(key_file),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                           "-o LogLevel=ERROR",
                "fleet_registry": registry,
                # The fleet's registry speaks plain HTTP: the docker role trusts it by name.
                "docker_insecure_registries": [registry],
            },
            "children": children,
        }
    }
