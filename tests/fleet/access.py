"""Reach a service that a fleet host publishes on its own 127.0.0.1, the way an operator would: an SSH
tunnel through the host's sshd (its real published port and the fleet's key)."""

from __future__ import annotations

import contextlib
import shlex
import socket
import subprocess
import time

from .fleet import state_dir

SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR")


def ssh_forward_command(fleet_name, ssh_port, local_port, remote_port):
    """The ssh command line that forwards 127.0.0.1:local_port here to 127.0.0.1:remote_port on the host."""
    return ["ssh", "-N", "-i", str(state_dir(fleet_name) / "id_ed25519"), "-p", str(ssh_port), *SSH_OPTIONS,
            "-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}", "root@127.0.0.1"]


def printable(cmd):
    return shlex.join(cmd)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tunnel(fleet_name, ssh_port, remote_port, timeout=20):
    """Open an SSH tunnel for the duration of the block; yield its local base URL."""
    local = free_port()
    cmd = ssh_forward_command(fleet_name, ssh_port, local, remote_port)
    proc = subprocess.Popen([*cmd[:-1], "-o", "ExitOnForwardFailure=yes", "-o", "ControlMaster=no", cmd[-1]])  # pylint: disable=consider-using-with
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{local}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: ssh did not exit in time; the tunnel is not the test
            proc.kill()
            proc.wait(timeout=10)
