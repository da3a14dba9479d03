# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks that run before the stack writes or creates anything: every image pulled (or found), the
PostgreSQL cluster in the data volume against the image's major, and the host ports new containers
publish. A run refused here leaves the host exactly as it was."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import re
import socket

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import services
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.compare import env_dict
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.engine import registry_of


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


def pgdata_in_volume(major, mount_target):
    """Where in the data volume a postgres image of `major` keeps its cluster: the volume's root when it is
    mounted at PGDATA itself; below it when mounted at /var/lib/postgresql (18+: <major>/docker, else data)."""
    if mount_target.rstrip("/") == "/var/lib/postgresql":
        return "%d/docker" % major if major >= 18 else "data"
    return "."


def data_volume(desired):
    """The named volume mounted at the postgres data path (None when the data is a bind mount)."""
    return next((m[1] for m in desired["mounts"] if m[0] == "volume" and m[2] == desired.get("data_path")), None)


def pg_guard(engine, desired, image):
    """Refuse to start a postgres image on a data volume whose cluster it would not use: one of another major
    where it looks for its data (the server refuses to start), or clusters only elsewhere in the volume (it
    would initialise an empty cluster beside them). Clusters of other majors elsewhere are left alone (the
    pg_upgrade --link layout keeps 17/docker beside 18/docker). Returns a warning when the image does not
    say its major (no PG_MAJOR): the guard cannot check."""
    volume = data_volume(desired)
    info = engine.volume(volume) if volume else None
    clusters = pg_clusters(info["Mountpoint"]) if info and info.get("Mountpoint") else []
    if not clusters:
        return None
    major = services.pg_major(env_dict(((image or {}).get("Config") or {}).get("Env")))
    if major is None:
        return ("postgres: %s does not say its PostgreSQL major (no PG_MAJOR in its environment), so the data in "
                "volume %s (PostgreSQL %s) could not be checked against it" % (desired["image"], volume, clusters[0][1]))
    target = pgdata_in_volume(major, desired["data_path"])
    here = [version for where, version in clusters if where == target]
    if here and here[0].split(".")[0] == str(major):
        return None
    found = ", ".join("PostgreSQL %s %s" % (v, "at the volume's root" if w == "." else "in %s/" % w) for w, v in clusters)
    why = ("the server would refuse to start" if here else
           "it would initialise an empty cluster in %s beside it" % ("the volume's root" if target == "." else target + "/"))
    raise StackError(
        "postgres: volume %s holds %s, but %s is PostgreSQL %s and %s. Nothing was changed beyond pulling the images "
        "it needs. Upgrade the data (pg_upgrade, or dump and restore), or pin the image back to PostgreSQL %s"
        % (volume, found, desired["image"], major, why, (here or [clusters[0][1]])[0]),
        volume=volume, data_version=(here or [clusters[0][1]])[0], image_major=str(major))


def stranded_cluster(inspect, desired, exists=os.path.exists):
    """Refuse to replace a postgres container whose cluster lives where the new one will not look: in an
    anonymous volume (the image's VOLUME, when the data volume was mounted beside PGDATA, e.g. an 18+ image
    with the <=17 mount path) or in its own writable layer. Removing the container would leave the data
    behind (an anonymous volume is not reattached) and the new one would initialise an empty cluster."""
    pgdata = env_dict(((inspect or {}).get("Config") or {}).get("Env")).get("PGDATA")
    if not pgdata:
        return
    mounts = sorted((inspect.get("Mounts") or []), key=lambda m: len(m.get("Destination") or ""), reverse=True)
    holder = next((m for m in mounts if pgdata == m.get("Destination")
                   or pgdata.startswith((m.get("Destination") or "").rstrip("/") + "/")), None)
    kept = {(m[0], m[1]) for m in desired["mounts"]}
    if holder is None:
        source, where = ((inspect.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir"), "its container layer"
        rel = pgdata.lstrip("/")
        if not source and _has_run(inspect):
            # The engine does not show the layer (containerd's image store reports no GraphDriver data): what
            # cannot be looked at cannot be called empty.
            raise StackError(
                "postgres: the cluster of container %s (PGDATA %s) is on no mount, so it lives in the container's own "
                "layer, and this Docker engine does not show where that is (containerd image store): replacing the "
                "container could delete the data. Nothing was changed beyond pulling the images it needs. Copy the "
                "cluster into volume %s (docker cp %s:%s ...), or remove the container yourself if it holds nothing"
                % (desired["name"], pgdata, data_volume(desired), desired["name"], pgdata), pgdata=pgdata,
                found_in="container layer (not visible)")
    elif (holder.get("Type"), holder.get("Name") if holder.get("Type") == "volume" else holder.get("Source")) in kept:
        return
    else:
        source, rel = holder.get("Source"), os.path.relpath(pgdata, holder["Destination"])
        where = "%s %s" % (holder.get("Type"), source)
        if holder.get("Type") == "volume":
            kind = "anonymous volume" if ANONYMOUS.fullmatch(holder.get("Name") or "") else "volume"
            where = "%s %s" % (kind, holder.get("Name"))
    if not source or not exists(os.path.join(source, rel, "PG_VERSION")):
        return
    raise StackError(
        "postgres: the cluster of container %s (PGDATA %s) lives in %s, which the new container would not mount: "
        "replacing it would leave the data behind and start an empty cluster. Nothing was changed beyond pulling the "
        "images it needs. Copy the cluster into volume %s (where %s will look for it) before rerunning"
        % (desired["name"], pgdata, where, data_volume(desired), desired["image"]), pgdata=pgdata, found_in=where)


ANONYMOUS = re.compile(r"[0-9a-f]{64}")  # the name dockerd gives a volume nobody named


def _has_run(inspect):
    """The container was started at least once (so its entrypoint may have initialised a cluster)."""
    started = ((inspect or {}).get("State") or {}).get("StartedAt") or ""
    return bool(started) and not started.startswith("0001-01-01")


def unserved_artifacts(engine, desired, destination):
    """A warning when MLflow stores artifacts in an object store while its artifacts volume still holds files:
    runs logged before the switch resolve their artifacts against the store and show none, and the volume
    is the only copy. None when the volume is empty, absent or not on this host."""
    volume = next((m[1] for m in desired["mounts"] if m[0] == "volume" and m[2] == "/mlartifacts"), None)
    mountpoint = ((engine.volume(volume) if volume else None) or {}).get("Mountpoint")
    try:
        entries = sorted(os.listdir(mountpoint)) if mountpoint else []
    except OSError:
        return None
    if not entries:
        return None
    return ("mlflow: volume %s still holds artifacts (%s) that the tracking server no longer serves, since "
            "artifacts_destination is %s: runs logged before the switch show no artifacts, and the volume is their only "
            "copy. Copy them into the store with the same layout (e.g. aws s3 sync %s %s), then empty the volume"
            % (volume, ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else ""), destination, mountpoint,
               destination))


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
    # Any address of a host port the replaced container holds is free once it is gone (127.0.0.1:5000 held,
    # 0.0.0.0:5000 wanted: binding it now would fail, after the removal it will not).
    freed = {(hp, port.split("/")[1]) for port, binds in held.items() for _ip, hp in binds}
    for container_port, bindings in desired["ports"].items():
        proto = container_port.split("/")[1]
        for ip, host_port in bindings:
            if (host_port, proto) in freed:
                continue
            error = bind(ip, host_port, proto)
            if error:
                problems.append("%s: %s:%s/%s is not free on this host (%s)" % (service, ip, host_port, proto, error))
    return problems
