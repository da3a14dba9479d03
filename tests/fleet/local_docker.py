"""Make sure a Docker engine answers on this machine (the one that runs the fleet's host containers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import docker
from docker.errors import DockerException

DOCKERD_LOG = "/var/log/mlinfra-fleet-dockerd.log"
APT_PACKAGES = ("docker.io", "debootstrap", "gpg")


class FleetError(RuntimeError):
    """A fleet operation failed; the message says what to do."""


def run(cmd, timeout=600, **kwargs):
    """Run a command, bounded; raise FleetError with its output on failure."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise FleetError(f"{' '.join(cmd)} did not finish within {timeout}s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-20:]
        raise FleetError(f"{' '.join(cmd)} exited {proc.returncode}:\n" + "\n".join(tail))
    return proc.stdout


def missing_packages():
    """Debian packages the fleet needs that this machine lacks."""
    wanted = {"docker.io": "dockerd", "debootstrap": "debootstrap", "gpg": "gpg"}  # gpg: Ubuntu keyring check
    return [pkg for pkg, binary in wanted.items() if shutil.which(binary) is None
            and not os.path.exists(f"/usr/sbin/{binary}")]


def install_packages(log=print):
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise FleetError(f"packages {missing} are missing and installing them needs root: "
                         f"run 'sudo apt-get install -y {' '.join(missing)}' and retry")
    log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], timeout=600, env=env)
    run(["apt-get", "install", "-y", "-qq", *missing], timeout=900, env=env)


def _ping():
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except DockerException:
        return None


def _start_dockerd(log):
    if os.path.isdir("/run/systemd/system"):
        log("starting docker.service with systemctl")
        run(["systemctl", "start", "docker"], timeout=120)
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    log(f"starting {dockerd} in the background (log: {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as out:
        subprocess.Popen([dockerd], stdout=out, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                         stdin=subprocess.DEVNULL, start_new_session=True)


def ensure_engine(log=print, timeout=90):
    """Return a Docker SDK client for a running local engine, installing and starting it if needed."""
    client = _ping()
    if client is not None:
        return client
    install_packages(log)
    _start_dockerd(log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = _ping()
        if client is not None:
            return client
        time.sleep(1)
    raise FleetError(f"the local Docker engine did not answer within {timeout}s; "
                     f"read {DOCKERD_LOG} (or 'journalctl -u docker') and fix dockerd, then retry")
