"""Build the fleet's images once, cached by a hash of what goes into them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from docker.errors import BuildError, ImageNotFound

from .local_docker import FleetError, run
from .oses import DEFAULT_OS, KEYRING_SHA256, OSES, debootstrap_command, mirror

IMAGES_DIR = Path(__file__).parent / "images"
CACHE_LABEL = "mlinfra.fleet.cache"


def context_hash(*parts, context_dir=None):
    """A short, stable hash of some strings plus every file in an image's build context."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    if context_dir is not None:
        for path in sorted(Path(context_dir).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(context_dir)).encode())
                digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _exists(client, tag):
    try:
        client.images.get(tag)
        return True
    except ImageNotFound:
        return False


def _base_tag(os_name):
    if os_name == DEFAULT_OS:  # the tag bookworm images have always had, so existing caches stay valid
        return "mlinfra-fleet/base:" + context_hash("debootstrap", "minbase", os_name, mirror(os_name))
    return f"mlinfra-fleet/base-{os_name}:" + context_hash("debootstrap", "minbase", os_name, mirror(os_name),
                                                           *[str(v) for v in OSES[os_name]], KEYRING_SHA256)


def base_image(client, log=print, os_name=DEFAULT_OS):
    """A minbase root file system of os_name from debootstrap, imported as an image."""
    tag = _base_tag(os_name)
    if _exists(client, tag):
        return tag
    if os.geteuid() != 0:
        raise FleetError("building the base image runs debootstrap, which needs root")
    log(f"building {tag} with debootstrap (30-120 s)")
    with tempfile.TemporaryDirectory(prefix="mlinfra-fleet-") as tmp:
        root = os.path.join(tmp, "root")
        run(debootstrap_command(os_name, root, tmp, log), timeout=900)
        tarball = os.path.join(tmp, "rootfs.tar")
        run(["tar", "-C", root, "-cf", tarball, "."], timeout=300)
        repo, version = tag.split(":")
        client.api.import_image_from_file(tarball, repository=repo, tag=version,
                                          changes=[f"LABEL {CACHE_LABEL}=" + ("base" if os_name == DEFAULT_OS else f"base-{os_name}")])
    return tag


def _build_context(client, tag, context, base, log, label):
    """Build context (a directory) as tag unless that tag exists already."""
    if _exists(client, tag):
        return tag
    log(f"building {tag}")
    try:
        client.images.build(path=str(context), tag=tag, buildargs={"BASE": base}, rm=True,
                            forcerm=True, pull=False, labels={CACHE_LABEL: label})
    except BuildError as exc:
        lines = [chunk.get("stream", "") or chunk.get("error", "") for chunk in exc.build_log]
        tail = "".join(lines).strip().splitlines()[-20:]
        raise FleetError(f"building {tag} failed: {exc.msg}\n" + "\n".join(tail)) from exc
    return tag


def _build(client, name, base, log):
    context = IMAGES_DIR / name
    tag = f"mlinfra-fleet/{name}:" + context_hash(base, context_dir=context)
    return _build_context(client, tag, context, base, log, label=name)


def fleet_images(client, log=print, host_oses=(DEFAULT_OS,)):
    """Return ({os: host_image}, registry_image) tags, building what is missing."""
    hosts = {os_name: _build(client, "host", base_image(client, log, os_name), log) for os_name in dict.fromkeys(host_oses)}
    return hosts, _build(client, "registry", base_image(client, log), log)


def ssh_keygen(path):
    """Create an ed25519 key pair at path (and path.pub) if it does not exist."""
    if os.path.exists(path):
        return
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mlinfra-fleet", "-f", path],
                   check=True, timeout=30)
