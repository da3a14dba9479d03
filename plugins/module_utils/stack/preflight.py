# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks that run before the stack writes or creates anything: every image pulled (or found), the
PostgreSQL cluster in the data volume against the image's major, and the host ports new containers
publish. A run refused here leaves the host exactly as it was."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import socket

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import services
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.compare import env_dict
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.engine import StackError, registry_of


def pull_images(engine, images, policy, auths, check_mode, timeout):
    """Every service's image, pulled per policy before any container is touched.
    images: {service: reference}; returns ({service: image inspect or None}, {service: pulled?})."""
    found, pulled, done = {}, {}, {}
    for service, ref in images.items():
        if ref not in done:
            image = engine.image(ref)
            if policy == "never" or (policy == "missing" and image is not None):
                if image is None:
                    raise StackError("image %s (%s) is not on this host and pull is 'never'; nothing was changed"
                                     % (ref, service), image=ref)
                done[ref] = (image, False)
            elif check_mode:
                done[ref] = (image, image is None)
            else:
                new = engine.pull(ref, auths.get(registry_of(ref)), timeout)
                done[ref] = (new, image is None or (new or {}).get("Id") != image.get("Id"))
        found[service], pulled[service] = done[ref]
    return found, pulled


def pg_clusters(mountpoint):
    """[(where in the volume, PG_VERSION)] for every cluster a postgres image could have left in a data
    volume: at its root (<=17 images mount it at PGDATA itself), in data/ (a <=17 PGDATA below a volume
    mounted at /var/lib/postgresql) and in <major>/docker/ (the 18+ layout)."""
    candidates = ["", "data"]
    try:
        candidates += [os.path.join(d, "docker") for d in sorted(os.listdir(mountpoint)) if d.isdigit()]
    except OSError:
        return []
    found = []
    for rel in candidates:
        try:
            with open(os.path.join(mountpoint, rel, "PG_VERSION"), "r") as handle:
                found.append((rel or ".", handle.read().strip()))
        except (IOError, OSError):
            continue
    return found


def pg_guard(engine, desired, image):
    """Refuse to start a postgres image on a data volume holding a cluster of another major version: the
    server would refuse to start, or (18+ layout) initialise an empty cluster beside the old one.
    Returns a warning when the image does not say its major (no PG_MAJOR): the guard cannot check."""
    volume = next((m[1] for m in desired["mounts"] if m[0] == "volume" and m[2] == desired.get("data_path")), None)
    info = engine.volume(volume) if volume else None
    clusters = pg_clusters(info["Mountpoint"]) if info and info.get("Mountpoint") else []
    if not clusters:
        return None
    major = services.pg_major(env_dict(((image or {}).get("Config") or {}).get("Env")))
    if major is None:
        return ("postgres: %s does not say its PostgreSQL major (no PG_MAJOR in its environment), so the data in "
                "volume %s (PostgreSQL %s) could not be checked against it" % (desired["image"], volume, clusters[0][1]))
    for where, version in clusters:
        if version.split(".")[0] != str(major):
            raise StackError(
                "postgres: volume %s holds a PostgreSQL %s cluster (%s) but %s is PostgreSQL %s; the server would "
                "refuse to start or start an empty cluster beside it. Nothing was changed. Upgrade the data "
                "(pg_upgrade, or dump and restore) or pin the image back to PostgreSQL %s"
                % (volume, version, where if where != "." else "at the volume's root", desired["image"], major, version),
                volume=volume, data_version=version, image_major=str(major))
    return None


def _bindable(ip, port, proto):
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free for dockerd too
        try:
            sock.bind((ip, int(port)))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def ports_taken(service, desired, held, bind=_bindable):
    """[message] for each host port a new container of `service` would publish that something else holds
    (`held`: bindings its current container already owns). dockerd binds published ports itself
    (docker-proxy), so a port another process or container holds fails `docker start` after the old
    container is gone; with userland-proxy off only iptables knows, and this check cannot see those."""
    problems = []
    for container_port, bindings in desired["ports"].items():
        proto = container_port.split("/")[1]
        for ip, host_port in bindings:
            if [ip, host_port] in held.get(container_port, []):
                continue
            error = bind(ip, host_port, proto)
            if error:
                problems.append("%s: %s:%s/%s is not free on this host (%s)" % (service, ip, host_port, proto, error))
    return problems
