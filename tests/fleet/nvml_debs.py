"""The real NVML library on a fleet host: Debian 12's non-free `libnvidia-ml1` (libnvidia-ml.so.1, driver 535)
and `nvidia-smi`, with what they depend on. Downloaded on this machine with a private apt configuration (the
machine's own sources are not touched), relative to the host's dpkg status so only what the host lacks is
fetched; cached under .fleet/ by content hash; installed into a host with `docker exec` and apt from the
local files. The hosts have no NVIDIA kernel driver, so NVML's real "no driver" path runs."""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .local_docker import FleetError
from .images import context_hash
from .oses import DEBIAN_MIRROR as MIRROR

SUITE = "bookworm"  # the fleet's Debian hosts; libnvidia-ml1 535 is in its non-free component

PACKAGES = ("libnvidia-ml1", "nvidia-smi")
# glx-alternative-nvidia and nvidia-installer-cleanup, which nvidia-smi needs, are in contrib.
SOURCES = (f"Types: deb\nURIs: {MIRROR}\nSuites: {SUITE} {SUITE}-updates\nComponents: main contrib non-free\n"
           "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
HOST_DIR = "/tmp/mlinfra-nvml-debs"


def _apt(args, options, timeout=600):
    proc = subprocess.run(["apt-get", "-q", *options, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise FleetError(f"apt-get {' '.join(args)} (for the NVML test packages) failed:\n{proc.stderr[-2000:]}")


def download(cache_root, dpkg_status, log=print):
    """The .deb files a host with this dpkg status needs for PACKAGES; a cached directory."""
    target = Path(cache_root) / ("nvml-debs-" + context_hash(SOURCES, *PACKAGES, dpkg_status))
    if (target / ".complete").exists():
        return target
    log(f"downloading {' '.join(PACKAGES)} from Debian non-free into {target}")
    (target / "partial").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlinfra-apt-") as tmp:
        root = Path(tmp)
        for sub in ("parts", "lists/partial", "cache", "state"):
            (root / sub).mkdir(parents=True)
        (root / "parts" / "nvml.sources").write_text(SOURCES)
        (root / "none.list").write_text("")
        (root / "state" / "status").write_text(dpkg_status)
        options = ["-o", f"Dir::Etc::SourceList={root}/none.list", "-o", f"Dir::Etc::SourceParts={root}/parts",
                   "-o", f"Dir::State::Lists={root}/lists", "-o", f"Dir::Cache={root}/cache",
                   "-o", f"Dir::State::status={root}/state/status", "-o", f"Dir::Cache::archives={target}",
                   "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]
        _apt(["update"], options)
        _apt(["install", "-y", "--download-only", "--no-install-recommends", *PACKAGES], options)
    if not list(target.glob("libnvidia-ml1_*.deb")):
        raise FleetError(f"apt downloaded no libnvidia-ml1 into {target}")
    (target / ".complete").touch()
    return target


def install(container, cache_root, log=print):
    """Install the NVML packages into a running fleet host container; return nothing, raise on failure."""
    query = container.exec_run(["dpkg-query", "-W", "-f=${Status}", "libnvidia-ml1"]).output.decode()
    if query.strip() == "install ok installed":
        return
    status = container.exec_run(["cat", "/var/lib/dpkg/status"]).output.decode()
    debs = sorted(download(cache_root, status, log).glob("*.deb"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for deb in debs:
            tar.add(deb, arcname=deb.name)
    container.exec_run(["mkdir", "-p", HOST_DIR])
    container.put_archive(HOST_DIR, buffer.getvalue())
    result = container.exec_run(["sh", "-c", f"apt-get install -y -q --no-install-recommends {HOST_DIR}/*.deb "
                                 f"&& rm -rf {HOST_DIR}"], environment={"DEBIAN_FRONTEND": "noninteractive"})
    if result.exit_code != 0:
        raise FleetError(f"installing the NVML packages in {container.name} failed:\n{result.output.decode()[-2000:]}")
