"""The host operating systems a fleet can run, and how debootstrap builds each one's root file system.

Ubuntu comes from Ubuntu's own archive, checked with the archive key from Ubuntu's `ubuntu-keyring`
package: the package file is pinned by SHA-256 and must hold the 2018 archive signing key, then
debootstrap verifies the archive's Release signature with that keyring (never --no-check-gpg)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .local_docker import FleetError

DEBIAN_MIRROR = os.environ.get("MLINFRA_FLEET_MIRROR", "http://deb.debian.org/debian")
UBUNTU_MIRROR = os.environ.get("MLINFRA_FLEET_UBUNTU_MIRROR", "http://archive.ubuntu.com/ubuntu")
DEFAULT_OS = "bookworm"
# name -> (distribution, debootstrap script or None for the suite's own, components or None for the default)
OSES = {
    "bookworm": ("debian", None, None),
    "jammy": ("ubuntu", None, "main,universe"),
    # Debian's debootstrap has no 'noble' script; Ubuntu's releases since gutsy share one.
    "noble": ("ubuntu", "gutsy", "main,universe"),
}
# ubuntu-keyring 2023.11.28.1 (noble's), from the archive's pool; its archive keyring signs jammy and noble.
KEYRING_DEB = "pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb"
KEYRING_SHA256 = "36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8"
ARCHIVE_KEY_2018 = "F6ECB3762474EDA9D21B7022871920D1991BC93C"


def parse_oses(spec, hosts):
    """'jammy,noble' -> one OS per host, in host order; hosts beyond the list run DEFAULT_OS."""
    wanted = [name.strip() for name in spec.split(",") if name.strip()] if spec else []
    unknown = sorted(set(wanted) - set(OSES))
    if unknown:
        raise FleetError(f"unknown host OS {unknown}: choose from {sorted(OSES)}")
    if len(wanted) > hosts:
        raise FleetError(f"{len(wanted)} host OSes given for {hosts} hosts: give at most one per host")
    return wanted + [DEFAULT_OS] * (hosts - len(wanted))


def mirror(os_name):
    return UBUNTU_MIRROR if OSES[os_name][0] == "ubuntu" else DEBIAN_MIRROR


def archive_unreachable(os_name, timeout=15):
    """None if the OS's package archive answers for its suite, else why not (a test's skip reason)."""
    url = f"{mirror(os_name)}/dists/{os_name}/InRelease"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as resp:
            return None if resp.status == 200 else f"{url} answered HTTP {resp.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"the {os_name} package archive cannot be reached ({url}: {exc})"


def _fingerprints(keyring):
    with tempfile.TemporaryDirectory(prefix="mlinfra-gnupg-") as home:
        out = subprocess.run(["gpg", "--batch", "--with-colons", "--show-keys", str(keyring)], capture_output=True,
                             text=True, timeout=60, check=False, env=dict(os.environ, GNUPGHOME=home))
    return {line.split(":")[9] for line in out.stdout.splitlines() if line.startswith("fpr:")}


def ubuntu_keyring(cache_root, log=print):
    """The Ubuntu archive keyring, from the archive's ubuntu-keyring package (downloaded once, checked)."""
    target = Path(cache_root) / ("ubuntu-keyring-" + KEYRING_SHA256[:12])
    keyring = target / "usr/share/keyrings/ubuntu-archive-keyring.gpg"
    if keyring.exists():
        return keyring
    target.mkdir(parents=True, exist_ok=True)
    url = f"{UBUNTU_MIRROR}/{KEYRING_DEB}"
    log(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise FleetError(f"could not download Ubuntu's archive keyring package from {url}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != KEYRING_SHA256:
        raise FleetError(f"{url} has SHA-256 {digest}, expected {KEYRING_SHA256}: refusing to trust it")
    deb = target / "ubuntu-keyring.deb"
    deb.write_bytes(data)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True, timeout=60)
    if ARCHIVE_KEY_2018 not in _fingerprints(keyring):
        raise FleetError(f"{keyring} lacks the Ubuntu archive key {ARCHIVE_KEY_2018}: refusing to trust it")
    return keyring


def debootstrap_command(os_name, root, cache_root, log=print):
    """The debootstrap command line that builds os_name's minbase root file system into root."""
    distro, script, components = OSES[os_name]
    cmd = ["debootstrap", "--variant=minbase"] + ([f"--components={components}"] if components else [])
    if distro == "ubuntu":
        cmd.append(f"--keyring={ubuntu_keyring(cache_root, log)}")
    cmd += [os_name, root, mirror(os_name)]
    if script:
        cmd.append(f"/usr/share/debootstrap/scripts/{script}")
    return cmd
