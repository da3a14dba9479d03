"""Bring a local fleet of systemd 'hosts' (containers) up, report on it, and tear it down."""

from __future__ import annotations

import json
import os
import resource
import socket
import time
import urllib.request
import zlib
from pathlib import Path

import yaml
from docker.errors import APIError, NotFound
from docker.types import IPAMConfig, IPAMPool

from .local_docker import FleetError, ensure_engine
from .images import fleet_images, ssh_keygen
from .inventory import build_inventory, host_names, subnet_addresses
from .oses import parse_oses

LABEL = "mlinfra.fleet"
ROLE_LABEL = "mlinfra.fleet.role"
REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_ALIAS = "registry"
HOST_SECURITY = {
    "cap_add": ["ALL"],
    "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
    "tmpfs": {"/run": "", "/run/lock": ""},
}


def state_dir(name):
    root = Path(os.environ.get("MLINFRA_FLEET_DIR", REPO_ROOT / ".fleet"))
    return root / name


def inventory_path(name):
    return state_dir(name) / "inventory.yml"


def _prefix(name):
    return f"mlinfra-fleet-{name}"


def nofile_ceiling(wanted=64000):
    """The hosts cannot raise RLIMIT_NOFILE (no CAP_SYS_RESOURCE) above this machine's hard limit:
    if that is below the role's default (64000), the fleet's hosts get the ceiling instead, or
    every inner container would fail with 'error setting rlimit type 7'."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY or hard >= wanted else hard


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(collection, key):
    try:
        return collection.get(key)
    except NotFound:
        return None


def _network(client, name):
    net_name = _prefix(name)
    existing = _get(client.networks, net_name)
    if existing is not None:
        return existing, existing.attrs["IPAM"]["Config"][0]["Subnet"]
    start = zlib.crc32(name.encode()) % 200
    for k in range(start, start + 40):
        subnet = f"10.213.{k % 250}.0/24"
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=subnet.replace(".0/24", ".1"))])
        try:
            return client.networks.create(net_name, driver="bridge", labels={LABEL: name}, ipam=ipam), subnet
        except APIError as exc:
            if "overlap" not in str(exc).lower():
                raise
    raise FleetError("no free 10.213.x.0/24 subnet for the fleet network: remove unused Docker networks")


def _published_port(container, private):
    bindings = container.attrs["HostConfig"]["PortBindings"].get(private) or []
    return int(bindings[0]["HostPort"]) if bindings else None


def _remove_container(client, container, volume_name):
    """Remove a container and its named volume; return None."""
    container.remove(force=True, v=True)
    volume = _get(client.volumes, volume_name)
    if volume is not None:
        volume.remove(force=True)


def _ensure_container(client, spec, log):
    """Create and start the container described by spec unless it exists; start it if stopped."""
    container = _get(client.containers, spec["name"])
    if container is not None and spec["image"] not in container.image.tags:
        log(f"replacing {spec['name']} (its image is not {spec['image']}: another OS or an older build)")
        container = _remove_container(client, container, spec["volume"])
    if container is None:
        port = _free_port()
        api = client.api
        host_config = api.create_host_config(
            port_bindings={spec["private_port"]: ("127.0.0.1", port)},
            binds={spec["volume"]: {"bind": spec["volume_path"], "mode": "rw"}, **spec.get("binds", {})},
            **spec.get("host_config", {}))
        networking = api.create_networking_config({
            spec["network"]: api.create_endpoint_config(ipv4_address=spec["ip"], aliases=spec["aliases"])})
        client.volumes.create(spec["volume"], labels=spec["labels"])
        log(f"creating {spec['name']} ({spec['ip']}, 127.0.0.1:{port})")
        created = api.create_container(
            spec["image"], name=spec["name"], hostname=spec["hostname"], labels=spec["labels"],
            ports=[spec["private_port"]], host_config=host_config, networking_config=networking)
        container = client.containers.get(created["Id"])
    if container.status != "running":
        container.start()
    container.reload()
    return container


def _wait_host(container, timeout):
    """Wait for systemd to finish booting; return its verdict (running / degraded ...)."""
    result = container.exec_run(["timeout", str(timeout), "systemctl", "is-system-running", "--wait"])
    state = result.output.decode().strip().splitlines()[-1:] or ["unknown"]
    return state[0]


def _poll(check, timeout, failure):
    """Call check() every 0.5 s until it is true; raise FleetError(failure) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise FleetError(failure)


def _ssh_banner(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        return sock.recv(64).startswith(b"SSH-")


def _registry_answers(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=3) as resp:
        return resp.status == 200


def _install_key(container, pubkey):
    cmd = ["sh", "-c", 'umask 077; mkdir -p /root/.ssh; grep -qxF "$1" /root/.ssh/authorized_keys 2>/dev/null '
           '|| echo "$1" >> /root/.ssh/authorized_keys', "sh", pubkey]
    result = container.exec_run(cmd)
    if result.exit_code != 0:
        raise FleetError(f"could not install the SSH key in {container.name}: {result.output.decode()}")


def _remove_extra_hosts(client, name, keep, log):
    for container in client.containers.list(all=True, filters={"label": [f"{LABEL}={name}", f"{ROLE_LABEL}=host"]}):
        if container.name not in keep:
            log(f"removing {container.name} (beyond the requested host count)")
            _remove_container(client, container, f"{container.name}-docker")


def up(name="default", hosts=3, gpu_hosts=(), log=print, timeout=180, fixtures=False, oses=""):
    """Make the fleet exist and answer; return the inventory path. Safe to call again.
    oses: one OS per host in host order ('jammy,noble'); hosts beyond it run bookworm."""
    if hosts < 1:
        raise FleetError("--hosts must be at least 1")
    host_oses = parse_oses(oses, hosts)
    client = ensure_engine(log)
    host_images, registry_image = fleet_images(client, log, host_oses)
    sdir = state_dir(name)
    sdir.mkdir(parents=True, exist_ok=True)
    key = sdir / "id_ed25519"
    ssh_keygen(str(key))
    pubkey = (sdir / "id_ed25519.pub").read_text().strip()
    network, subnet = _network(client, name)
    registry_ip, host_ips = subnet_addresses(subnet, hosts)
    prefix = _prefix(name)
    labels = {LABEL: name}

    registry = _ensure_container(client, {
        "name": f"{prefix}-registry", "hostname": REGISTRY_ALIAS, "image": registry_image,
        "private_port": 5000, "volume": f"{prefix}-registry-data", "volume_path": "/var/lib/docker-registry",
        "network": network.name, "ip": registry_ip, "aliases": [REGISTRY_ALIAS],
        "labels": {**labels, ROLE_LABEL: "registry"}}, log)

    names = host_names(hosts)
    _remove_extra_hosts(client, name, {f"{prefix}-{h}" for h in names}, log)
    containers = []
    for host, ip, os_name in zip(names, host_ips, host_oses):
        containers.append(_ensure_container(client, {
            "name": f"{prefix}-{host}", "hostname": host, "image": host_images[os_name], "private_port": 22,
            "volume": f"{prefix}-{host}-docker", "volume_path": "/var/lib/docker",
            "binds": {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
            "host_config": HOST_SECURITY, "network": network.name, "ip": ip, "aliases": [host],
            "labels": {**labels, ROLE_LABEL: "host"}}, log))

    inventory_hosts = []
    for host, ip, container, os_name in zip(names, host_ips, containers, host_oses):
        _install_key(container, pubkey)
        port = _published_port(container, "22/tcp")
        _poll(lambda p=port: _ssh_banner(p), timeout, f"sshd did not answer on 127.0.0.1:{port} within {timeout}s")
        inventory_hosts.append({"name": host, "port": port, "ip": ip, "os": os_name})
    registry_port = _published_port(registry, "5000/tcp")
    _poll(lambda: _registry_answers(registry_port), timeout,
          f"the fleet registry on 127.0.0.1:{registry_port} did not answer /v2/ within {timeout}s")

    inventory = build_inventory(inventory_hosts, key, f"{REGISTRY_ALIAS}:5000", gpu_hosts)
    inventory["all"]["vars"]["fleet_registry_local"] = f"127.0.0.1:{registry_port}"
    nofile = nofile_ceiling()
    if nofile is not None:
        inventory["all"]["vars"]["docker_daemon_settings"] = {
            "default-ulimits": {"nofile": {"Name": "nofile", "Soft": nofile, "Hard": nofile}}}
    all_vars = inventory["all"]["vars"]
    # Hosts publish cross-host services (postgres for a remote MLflow) on their fleet address.
    all_vars["ml_stack_private_address"] = "{{ fleet_ip }}"
    if fixtures:
        from .fixtures import push_fixtures  # pylint: disable=import-outside-toplevel
        for service, remote in push_fixtures(client, registry_port, sdir.parent, log).items():
            all_vars[f"ml_stack_{service}_image"] = f"{REGISTRY_ALIAS}:5000/{remote}"
    inventory_path(name).write_text(yaml.safe_dump(inventory, sort_keys=False))
    (sdir / "state.json").write_text(json.dumps({"name": name, "hosts": inventory_hosts, "subnet": subnet,
                                                 "registry_port": registry_port}, indent=2))
    for container in containers:
        verdict = _wait_host(container, timeout)
        if verdict not in ("running", "degraded"):
            raise FleetError(f"systemd in {container.name} reports '{verdict}' after {timeout}s; "
                             f"see 'docker exec {container.name} systemctl --failed'")
    return inventory_path(name)


def resources(client, name):
    """Everything of this fleet that Docker knows, by label."""
    flt = {"label": f"{LABEL}={name}"}
    return {
        "containers": client.containers.list(all=True, filters=flt),
        "volumes": client.volumes.list(filters=flt),
        "networks": client.networks.list(filters=flt),
    }


def status(name="default", log=print):
    client = ensure_engine(log)
    found = resources(client, name)
    report = {"name": name, "inventory": str(inventory_path(name)) if inventory_path(name).exists() else None,
              "containers": {}, "volumes": sorted(v.name for v in found["volumes"]),
              "networks": sorted(n.name for n in found["networks"])}
    for container in found["containers"]:
        entry = {"status": container.status}
        if container.labels.get(ROLE_LABEL) == "host" and container.status == "running":
            out = container.exec_run(["systemctl", "is-system-running"]).output.decode().strip()
            entry["systemd"] = out
        report["containers"][container.name] = entry
    return report


def _untag_pushed(client, state_file, log):
    """Fixture images were tagged 127.0.0.1:<registry port>/... to push them; drop those tags (not the images)."""
    try:
        port = json.loads(state_file.read_text())["registry_port"]
    except (OSError, ValueError, KeyError):
        return
    prefix = f"127.0.0.1:{port}/"
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                log(f"untagging {tag}")
                client.images.remove(tag, noprune=True)


def down(name="default", log=print):
    """Remove exactly what up created for this fleet: containers, volumes, network, keys."""
    client = ensure_engine(log)
    found = resources(client, name)
    for container in found["containers"]:
        log(f"removing container {container.name}")
        container.remove(force=True, v=True)
    for volume in resources(client, name)["volumes"]:
        log(f"removing volume {volume.name}")
        volume.remove(force=True)
    for network in found["networks"]:
        log(f"removing network {network.name}")
        network.remove()
    sdir = state_dir(name)
    _untag_pushed(client, sdir / "state.json", log)
    for leftover in ("id_ed25519", "id_ed25519.pub", "inventory.yml", "state.json"):
        (sdir / leftover).unlink(missing_ok=True)
    if sdir.exists() and not any(sdir.iterdir()):
        sdir.rmdir()
    remaining = resources(client, name)
    if any(remaining.values()):
        raise FleetError(f"fleet {name} still has {remaining} after down; remove them by hand")
