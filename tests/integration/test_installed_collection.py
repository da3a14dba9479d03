"""The collection as users install it: build the tarball, install it into an empty collections path and
run site.yml from the installed copy (never the repository link) against a one-host fleet. Catches files
that build_ignore drops and paths that only resolve inside a checkout."""

import json
import subprocess

import pytest

from tests.integration.conftest import BIN, REPO, ansible_env, recap
from tests.integration.stack_helpers import BASE_VARS, containers, install_model

pytestmark = pytest.mark.fleet
NAME = "it-installed"
FQCN = "mlinfra.docker_ml"


def _run(tool, *args, cwd, collections, timeout=900):
    # The environment beats ansible.cfg's collections_path (.build/collections, the repository link).
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    proc = subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{tool} {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(work dir, collections path) with the built tarball installed there, and nothing else."""
    work = tmp_path_factory.mktemp("installed")
    collections = work / "collections"
    _run("ansible-galaxy", "collection", "build", "--force", "--output-path", str(work), str(REPO),
         cwd=work, collections=collections)
    tarball = next(work.glob("mlinfra-docker_ml-*.tar.gz"))
    _run("ansible-galaxy", "collection", "install", "--offline", "-p", str(collections), str(tarball),
         cwd=work, collections=collections)
    return work, collections


def test_installed_copy_is_the_one_ansible_uses(installed):
    work, collections = installed
    listed = _run("ansible-galaxy", "collection", "list", FQCN, "--format", "json", cwd=work, collections=collections)
    paths = list(json.loads(listed.stdout))
    assert paths == [str(collections / "ansible_collections")], paths
    modules = _run("ansible-doc", "-l", FQCN, "--json", cwd=work, collections=collections)
    names = set(json.loads(modules.stdout))
    shipped = {f"{FQCN}.{p.stem}" for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__"}
    assert names == shipped
    for name in sorted(shipped):  # every module's documentation renders from the installed copy
        _run("ansible-doc", name, cwd=work, collections=collections)


def test_site_from_the_installed_copy_converges_then_changes_nothing(installed, make_fleet):
    work, collections = installed
    fleet = make_fleet(NAME, hosts=1, fixtures=True)
    install_model(fleet, "host1")
    args = ("-i", fleet.inventory, f"{FQCN}.site", "-e", json.dumps(BASE_VARS))
    first = recap(_run("ansible-playbook", *args, cwd=work, collections=collections).stdout)
    assert first["host1"]["failed"] == 0 and first["host1"]["changed"] > 0, first
    assert containers(fleet, "host1") == {"mlstack-postgres": "running", "mlstack-redis": "running",
                                          "mlstack-mlflow": "running", "mlstack-tf-serving": "running"}
    again = recap(_run("ansible-playbook", *args, cwd=work, collections=collections).stdout)
    assert again["host1"]["changed"] == 0, again
