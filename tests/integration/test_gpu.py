"""GPU on a mixed fleet without a GPU: a stub runtime on the gpu host, the CPU host skipped cleanly."""

import hashlib
import json

import pytest

from tests.integration.conftest import host_exec, recap, run_ansible

pytestmark = pytest.mark.fleet
NAME = "it-gpu"
SITE = "playbooks/site.yml"
TAGS = ("--tags", "docker,nvidia_toolkit")
NO_REPO = {"nvidia_toolkit_configure_repo": False, "nvidia_toolkit_install_packages": False}
# Test stand-ins for the toolkit's binaries (no GPU, no NVIDIA repository here): the runtime hands over
# to runc, nvidia-ctk writes a fixed CDI spec.
STUB_RUNTIME = '#!/bin/sh\nexec /usr/sbin/runc "$@"\n'
STUB_CTK = ('#!/bin/sh\n# test stub of nvidia-ctk: cdi generate --output=FILE\nfor a in "$@"; do case "$a" in '
            '--output=*) out="${a#--output=}";; esac; done\nprintf "cdiVersion: 0.5.0\\nkind: nvidia.com/gpu\\n'
            'devices: []\\n" > "$out"\n')
KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFit2ioBEADh\n-----END PGP PUBLIC KEY BLOCK-----\n"


def install_stub(fl, host, path, content):
    host_exec(fl, host, "sh", "-c", f"cat > {path} <<'EOF'\n{content}EOF\nchmod 755 {path}")


@pytest.fixture(scope="module")
def fl(make_fleet):
    fleet = make_fleet(NAME, hosts=2, gpu_hosts=("host1",))
    install_stub(fleet, "host1", "/usr/local/bin/nvidia-container-runtime", STUB_RUNTIME)
    install_stub(fleet, "host1", "/usr/local/bin/nvidia-ctk", STUB_CTK)
    fleet.first = run_ansible("ansible-playbook", "-i", fleet.inventory, SITE, *TAGS, "-e", json.dumps(NO_REPO))
    return fleet


def daemon(fl, host):
    return json.loads(host_exec(fl, host, "cat", "/etc/docker/daemon.json")[1])


def test_gpu_host_gets_runtime_cpu_host_skips(fl):
    out = fl.first.stdout
    assert "No NVIDIA GPU on host2" in out and "skipping the NVIDIA Container Toolkit" in out
    assert "No NVIDIA GPU on host1" not in out
    assert daemon(fl, "host1")["runtimes"]["nvidia"] == {"path": "nvidia-container-runtime", "args": []}
    assert "runtimes" not in daemon(fl, "host2")
    rc, runtimes = host_exec(fl, "host1", "docker", "info", "--format", "{{json .Runtimes}}")
    assert rc == 0 and "nvidia" in json.loads(runtimes)
    again = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(NO_REPO))
    assert {h: c["changed"] for h, c in recap(again.stdout).items()} == {"host1": 0, "host2": 0}


def test_gpu_facts_on_a_host_without_gpu_reports_zero(fl):
    run_ansible("ansible", "host1", "-i", fl.inventory, "-m", "ansible.builtin.apt", "-a", "name=python3-jmespath")
    proc = run_ansible("ansible", "host1", "-i", fl.inventory, "-m", "mlinfra.docker_ml.gpu_facts",
                       "-a", "select=[].uuid")
    facts = json.loads(proc.stdout.split("=>", 1)[1])["ansible_facts"]["mlinfra_gpu"]
    assert facts["count"] == 0 and facts["reason"] and facts["selected"] == []
    assert facts["runtime_binary"] == "/usr/local/bin/nvidia-container-runtime"


def test_cdi_keeps_other_features(fl):
    config = daemon(fl, "host1")
    config["features"] = {"buildkit": True}
    host_exec(fl, "host1", "sh", "-c", f"printf '%s' '{json.dumps(config)}' > /etc/docker/daemon.json")
    variables = dict(NO_REPO, nvidia_toolkit_cdi=True)
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(variables))
    assert recap(proc.stdout)["host1"]["changed"] == 1
    assert daemon(fl, "host1")["features"] == {"buildkit": True, "cdi": True}
    assert host_exec(fl, "host1", "cat", "/etc/cdi/nvidia.yaml")[1].startswith("cdiVersion")
    assert host_exec(fl, "host1", "systemctl", "is-active", "docker")[1].strip() == "active"
    again = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(variables))
    assert recap(again.stdout)["host1"]["changed"] == 0


def test_default_runtime_without_binary_fails_and_touches_nothing(fl):
    before = hashlib.sha256(host_exec(fl, "host2", "cat", "/etc/docker/daemon.json")[1].encode()).hexdigest()
    proc = run_ansible("ansible", "host2", "-i", fl.inventory, "-m", "mlinfra.docker_ml.nvidia_toolkit",
                       "-a", "default_runtime=true configure_repo=false install_packages=false", check=False)
    assert proc.returncode != 0 and "nvidia-container-runtime is not on this host" in proc.stdout
    assert "daemon.json was left untouched" in proc.stdout
    after = hashlib.sha256(host_exec(fl, "host2", "cat", "/etc/docker/daemon.json")[1].encode()).hexdigest()
    assert after == before
    assert host_exec(fl, "host2", "systemctl", "is-active", "docker")[1].strip() == "active"


def test_package_install_in_check_mode_plans_repo_and_pinned_packages(fl):
    host_exec(fl, "host1", "sh", "-c", "echo 'deb https://nvidia.github.io/libnvidia-container/stable/deb/amd64 /' "
                                       "> /etc/apt/sources.list.d/nvidia-docker.list")
    args = {"version": "1.17.8-1", "gpg_key": KEY}
    proc = run_ansible("ansible", "host1", "-i", fl.inventory, "--check", "-m", "mlinfra.docker_ml.nvidia_toolkit",
                       "-a", json.dumps(args))
    for expected in ("write /etc/apt/keyrings/nvidia-container-toolkit.asc",
                     "write /etc/apt/sources.list.d/nvidia-container-toolkit.sources",
                     "write /etc/apt/sources.list.d/nvidia-docker.list",
                     "install nvidia-container-toolkit=1.17.8-1", "install libnvidia-container1=1.17.8-1"):
        assert expected in proc.stdout, expected
    assert host_exec(fl, "host1", "test", "-e", "/etc/apt/sources.list.d/nvidia-container-toolkit.sources")[0] == 1
    assert host_exec(fl, "host1", "test", "-e", "/etc/apt/sources.list.d/nvidia-docker.list")[0] == 0


def test_default_runtime_on_then_off_removes_the_key(fl):
    on = dict(NO_REPO, nvidia_toolkit_default_runtime=True, nvidia_toolkit_cdi=True)
    assert recap(run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(on)).stdout)["host1"]["changed"] == 1
    config = daemon(fl, "host1")
    assert config["default-runtime"] == "nvidia" and config["features"]["cdi"] is True
    assert host_exec(fl, "host1", "docker", "info", "--format", "{{.DefaultRuntime}}")[1].strip() == "nvidia"
    off = dict(NO_REPO, nvidia_toolkit_default_runtime=False, nvidia_toolkit_cdi=False)
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(off))
    assert recap(proc.stdout)["host1"]["changed"] == 1
    config = daemon(fl, "host1")
    assert "default-runtime" not in config and "cdi" not in config.get("features", {})
    assert config["runtimes"]["nvidia"] == {"path": "nvidia-container-runtime", "args": []}
    assert config.get("features", {}).get("buildkit") is True  # written by hand in an earlier test: kept
    assert host_exec(fl, "host1", "docker", "info", "--format", "{{.DefaultRuntime}}")[1].strip() == "runc"
    again = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(off))
    assert {h: c["changed"] for h, c in recap(again.stdout).items()} == {"host1": 0, "host2": 0}
