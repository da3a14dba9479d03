"""GPU on a mixed fleet without a GPU. host1 (in gpu_hosts) has Debian's real NVML library (non-free
libnvidia-ml1 535, nvidia-smi) and no kernel driver, and stand-ins for the toolkit's binaries; host2 is a
plain CPU host, skipped cleanly."""

import hashlib
import importlib.util
import json
from pathlib import Path

import docker
import pytest

from tests.fleet import fleet as fleet_mod
from tests.fleet import nvml_debs
from tests.integration.conftest import host_exec, recap, run_ansible
from tests.integration.stack_helpers import BASE_VARS, install_model

pytestmark = pytest.mark.fleet
NAME = "it-gpu"
SITE = "playbooks/site.yml"
TAGS = ("--tags", "docker,nvidia_toolkit")
NO_REPO = {"nvidia_toolkit_configure_repo": False, "nvidia_toolkit_install_packages": False}
# Stand-ins for the toolkit's binaries (no GPU, no NVIDIA repository here); each says which upstream
# behaviour it mimics.
STUBS = Path(__file__).resolve().parents[1] / "stubs"
KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFit2ioBEADh\n-----END PGP PUBLIC KEY BLOCK-----\n"
SHIPPED = "/opt/mlinfra/python/pynvml.py"


def install_stub(fl, host, name):
    content = (STUBS / name).read_text()
    host_exec(fl, host, "sh", "-c", f"cat > /usr/local/bin/{name} <<'EOF'\n{content}EOF\nchmod 755 /usr/local/bin/{name}")


def controller_pynvml_sha256():
    return hashlib.sha256(Path(importlib.util.find_spec("pynvml").origin).read_bytes()).hexdigest()


def host_sha256(fl, host, path):
    rc, out = host_exec(fl, host, "sha256sum", path)
    return out.split()[0] if rc == 0 else None


def gpu_facts(fl, host, *args):
    proc = run_ansible("ansible", host, "-i", fl.inventory, *args, "-m", "mlinfra.docker_ml.gpu_facts")
    return json.loads(proc.stdout.split("=>", 1)[1])


@pytest.fixture(scope="module")
def fl(make_fleet):
    fleet = make_fleet(NAME, hosts=2, fixtures=True, gpu_hosts=("host1",))
    container = docker.from_env().containers.get(fleet.container("host1"))
    nvml_debs.install(container, fleet_mod.state_dir(NAME).parent, log=lambda m: None)
    install_stub(fleet, "host1", "nvidia-container-runtime")
    install_stub(fleet, "host1", "nvidia-ctk")
    fleet.first = run_ansible("ansible-playbook", "-i", fleet.inventory, SITE, *TAGS, "-e", json.dumps(NO_REPO))
    return fleet


def daemon(fl, host):
    return json.loads(host_exec(fl, host, "cat", "/etc/docker/daemon.json")[1])


def test_gpu_host_gets_runtime_cpu_host_skips(fl):
    out = fl.first.stdout
    assert "No NVIDIA GPU on host2 (the NVIDIA driver library (libnvidia-ml.so) is not installed)" in out
    assert "skipping the NVIDIA Container Toolkit" in out
    assert "No NVIDIA GPU on host1" not in out
    assert daemon(fl, "host1")["runtimes"]["nvidia"] == {"path": "nvidia-container-runtime", "args": []}
    assert "runtimes" not in daemon(fl, "host2")
    rc, runtimes = host_exec(fl, "host1", "docker", "info", "--format", "{{json .Runtimes}}")
    assert rc == 0 and "nvidia" in json.loads(runtimes)
    again = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(NO_REPO))
    assert {h: c["changed"] for h, c in recap(again.stdout).items()} == {"host1": 0, "host2": 0}


def test_real_nvml_without_driver_bindings_shipped_facts_say_driver_not_loaded(fl):
    """The first site.yml run shipped the controller's nvidia-ml-py to host1 (it has libnvidia-ml.so.1) and
    not to host2 (no driver library: the bindings could not read anything there)."""
    assert host_sha256(fl, "host1", SHIPPED) == controller_pynvml_sha256()
    assert host_exec(fl, "host2", "test", "-e", "/opt/mlinfra")[0] == 1
    assert host_exec(fl, "host1", "nvidia-smi")[0] != 0  # the real tool, no driver
    run_ansible("ansible", "host1", "-i", fl.inventory, "-m", "ansible.builtin.apt", "-a", "name=python3-jmespath")
    result = gpu_facts(fl, "host1", "-a", "select=[].uuid")
    facts = result["ansible_facts"]["mlinfra_gpu"]
    assert result["nvml_bindings"] == {"path": SHIPPED, "sha256": controller_pynvml_sha256(), "library": True}
    assert facts["count"] == 0 and facts["gpus"] == [] and facts["failed_gpus"] == [] and facts["selected"] == []
    assert "the NVIDIA kernel driver is not loaded" in facts["reason"], facts["reason"]
    assert facts["runtime_binary"] == "/usr/local/bin/nvidia-container-runtime"
    assert result["changed"] is False


def test_a_different_copy_of_the_bindings_is_replaced_check_mode_first(fl):
    host_exec(fl, "host1", "sh", "-c", f"echo '# another pynvml' >> {SHIPPED}")
    edited = host_sha256(fl, "host1", SHIPPED)
    planned = gpu_facts(fl, "host1", "--check")
    assert planned["changed"] is True and "would ship" in planned["nvml_shipped"]
    assert host_sha256(fl, "host1", SHIPPED) == edited
    shipped = gpu_facts(fl, "host1")
    assert shipped["changed"] is True and shipped["nvml_shipped"].startswith("shipped nvidia-ml-py 13.615.71 (different)")
    assert host_sha256(fl, "host1", SHIPPED) == controller_pynvml_sha256()
    assert gpu_facts(fl, "host1")["changed"] is False


def test_cdi_keeps_other_features(fl):
    config = daemon(fl, "host1")
    config["features"] = {"buildkit": True}
    host_exec(fl, "host1", "sh", "-c", f"printf '%s' '{json.dumps(config)}' > /etc/docker/daemon.json")
    variables = dict(NO_REPO, nvidia_toolkit_cdi=True)
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(variables))
    assert recap(proc.stdout)["host1"]["changed"] == 1
    assert daemon(fl, "host1")["features"] == {"buildkit": True, "cdi": True}
    assert host_exec(fl, "host1", "cat", "/etc/cdi/nvidia.yaml")[1].startswith("cdiVersion")
    assert host_exec(fl, "host1", "ls", "-A", "/etc/cdi")[1].split() == ["nvidia.yaml"]  # no stray spec per run
    assert host_exec(fl, "host1", "systemctl", "is-active", "docker")[1].strip() == "active"
    again = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(variables))
    assert recap(again.stdout)["host1"]["changed"] == 0
    assert host_exec(fl, "host1", "ls", "-A", "/etc/cdi")[1].split() == ["nvidia.yaml"]


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
    assert host_exec(fl, "host1", "ls", "-A", "/etc/cdi")[1].split() == []  # the spec it wrote went with cdi
    again = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, *TAGS, "-e", json.dumps(off))
    assert {h: c["changed"] for h, c in recap(again.stdout).items()} == {"host1": 0, "host2": 0}


def test_serving_with_real_nvml_and_no_driver_stays_on_cpu_image(fl):
    """TF Serving on host1 (in gpu_hosts, real NVML, no driver) with a GPU selection that matches nothing:
    no GPU, the CPU image (the -gpu image is not even in the fleet registry), nothing fails, and the run says so."""
    install_model(fl, "host1")
    variables = dict(BASE_VARS, **NO_REPO, ml_stack_services=["tf_serving"], nvidia_toolkit_gpu_select="[].uuid")
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, SITE, "--limit", "host1", "-e", json.dumps(variables))
    assert recap(proc.stdout)["host1"]["failed"] == 0
    assert "nvidia_toolkit_gpu_select matched none of the 0 GPU(s) on host1" in proc.stdout
    rc, image = host_exec(fl, "host1", "docker", "inspect", "-f", "{{.Config.Image}} {{json .HostConfig.DeviceRequests}}",
                          "mlstack-tf-serving")
    assert rc == 0 and image.split()[0].endswith("fixtures/tfserving:2.18.0-fixture") and image.split()[1] in ("null", "[]"), image


def test_registered_runtime_runs_containers_and_refuses_a_gpu_request_without_driver(fl):
    """dockerd runs a container through the runtime registered in daemon.json (the stub hands it to runc, as
    upstream does for a container that asks for no GPU); a GPU request fails as on a host without the driver."""
    image = host_exec(fl, "host1", "docker", "inspect", "-f", "{{.Config.Image}}", "mlstack-tf-serving")[1].strip()
    run = ("docker", "run", "--rm", "--runtime", "nvidia", "--entrypoint", "true")
    rc, out = host_exec(fl, "host1", *run, image)
    assert rc == 0, out
    rc, out = host_exec(fl, "host1", *run[:-2], "-e", "NVIDIA_VISIBLE_DEVICES=all", *run[-2:], image)
    assert rc != 0 and "driver not loaded" in out, out
