"""nvidia_install: repository files, runtime settings, and the daemon.json merge they make (no host)."""

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_json as dj
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvidia_runtime
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvidia_install as ni
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError

KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----\n"


def test_apt_flat_repository_with_signed_by():
    files = ni.repo_files("debian", "amd64", "https://nvidia.github.io/libnvidia-container/", KEY)
    assert files[ni.APT_KEYRING] == KEY
    assert files[ni.APT_SOURCES] == (
        "# Managed by mlinfra.docker_ml\nTypes: deb\nURIs: https://nvidia.github.io/libnvidia-container/stable/deb/amd64\n"
        "Suites: /\nSigned-By: /etc/apt/keyrings/nvidia-container-toolkit.asc\n")


def test_dnf_repository():
    repo = ni.repo_files("redhat", None, "https://mirror.example/nv", None)[ni.DNF_REPO]
    assert "baseurl=https://mirror.example/nv/stable/rpm/$basearch" in repo and "gpgkey=https://mirror.example/nv/gpgkey" in repo


def test_dnf_repository_verifies_metadata_too():
    """NVIDIA's own nvidia-container-toolkit.repo has repo_gpgcheck=1: the repodata's signature is checked too."""
    lines = ni.repo_files("redhat", None, "https://mirror.example/nv", None)[ni.DNF_REPO].splitlines()
    assert "gpgcheck=1" in lines and "repo_gpgcheck=1" in lines


def test_apt_needs_an_architecture():
    with pytest.raises(ni.ToolkitError, match="architecture"):
        ni.repo_files("debian", None, "https://x", KEY)


@pytest.mark.parametrize("default_runtime, cdi, expected", [
    (False, False, {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}),
    (True, False, {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}, "default-runtime": "nvidia"}),
    (False, True, {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}, "features": {"cdi": True}}),
])
def test_runtime_settings(default_runtime, cdi, expected):
    assert nvidia_runtime.runtime_settings("nvidia", "nvidia-container-runtime", default_runtime, cdi) == expected


def test_cdi_keeps_other_features_and_runtimes():
    current = {"features": {"buildkit": True}, "runtimes": {"kata": {"path": "/usr/bin/kata-runtime"}},
               "log-driver": "json-file"}
    merged = dj.desired_config(current, nvidia_runtime.runtime_settings("nvidia", "nvidia-container-runtime", False, True))
    assert merged["features"] == {"buildkit": True, "cdi": True}
    assert set(merged["runtimes"]) == {"kata", "nvidia"} and merged["log-driver"] == "json-file"


def test_all_four_packages_pinned_together():
    assert ni.PACKAGES == ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
                           "libnvidia-container1"]


GOOD = {"runtime_name": "nvidia", "runtime_path": "nvidia-container-runtime", "restart_timeout": 60, "version": None}


@pytest.mark.parametrize("override, named", [
    ({"runtime_name": "nvidia runtime"}, "runtime_name"), ({"runtime_name": ""}, "runtime_name"),
    ({"runtime_path": "/usr/bin/nvidia container"}, "runtime_path"), ({"runtime_path": ""}, "runtime_path"),
    ({"restart_timeout": 0}, "restart_timeout"), ({"version": "1.17; reboot"}, "version"),
])
def test_bad_input_is_refused_naming_the_parameter(override, named):
    with pytest.raises(InputError, match="^" + named):
        ni.check_params(dict(GOOD, **override))


def test_good_input_passes():
    ni.check_params(dict(GOOD, version="1.17.*"))


def test_dnf_reads_the_repository_non_interactively():
    """With repo_gpgcheck=1, dnf asks to import the repository key when it first reads the metadata; without -y
    that question fails makecache (and list) on a host with no terminal."""
    from ansible_collections.mlinfra.docker_ml.plugins.module_utils.pkg_manager import for_family
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, "", ""

    dnf = for_family("redhat", run, None)
    dnf.update()
    dnf.available("nvidia-container-toolkit")
    assert all("-y" in argv for argv in calls) and len(calls) == 2
