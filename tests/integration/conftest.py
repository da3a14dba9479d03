"""Shared helpers for fleet scenarios: bring a named fleet up, run Ansible against it, tear it down."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fleet import fleet as fleet_mod

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible_env(**extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    env.update(extra)
    return env


def run_ansible(tool, *args, timeout=900, check=True, **env):
    """Run ansible / ansible-playbook from this venv with the repo's ansible.cfg; bounded."""
    proc = subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, cwd=REPO,
                          env=ansible_env(**env), timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-6000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


class Fleet:
    def __init__(self, name, hosts, fixtures=False, gpu_hosts=()):
        self.name, self.hosts, self.fixtures, self.gpu_hosts = name, hosts, fixtures, gpu_hosts
        self.inventory = None

    def up(self):
        path = fleet_mod.up(self.name, self.hosts, self.gpu_hosts, log=lambda m: None, fixtures=self.fixtures)
        self.inventory = str(path)
        return self

    def down(self):
        fleet_mod.down(self.name, log=lambda m: None)

    def container(self, host):
        return f"mlinfra-fleet-{self.name}-{host}"


@pytest.fixture(scope="module")
def make_fleet():
    """Factory: make_fleet(name, hosts) -> Fleet (up); every fleet made is torn down at module end."""
    made = []

    def factory(name, hosts=3, fixtures=False, gpu_hosts=()):
        fl = Fleet(name, hosts, fixtures, gpu_hosts)
        made.append(fl)
        return fl.up()

    yield factory
    for fl in made:
        fl.down()


def recap(stdout):
    """PLAY RECAP of an ansible-playbook run -> {host: {"ok": n, "changed": n, "failed": n, ...}}."""
    import re  # pylint: disable=import-outside-toplevel
    counts = {}
    for match in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", stdout, re.M):
        counts[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return counts


def host_exec(fl, host, *cmd):
    """Observe a fleet host from outside (test-side only): docker exec, return (rc, output)."""
    import docker  # pylint: disable=import-outside-toplevel
    result = docker.from_env().containers.get(fl.container(host)).exec_run(list(cmd))
    return result.exit_code, result.output.decode()
