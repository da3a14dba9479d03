"""packages / docker_install / pkg_manager: repository files, version pins, package plans (no host)."""

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_install as di
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import os_release as distro
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import package_versions as pins
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import repositories
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.pkg_manager import plan_packages
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError

DEBIAN = distro.parse_os_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n')
UBUNTU = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_CODENAME": "noble"}
MINT = {"ID": "linuxmint", "ID_LIKE": "ubuntu debian", "VERSION_CODENAME": "wilma", "UBUNTU_CODENAME": "noble"}
ROCKY = {"ID": "rocky", "ID_LIKE": "rhel centos fedora"}
KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFit2ioBEADhWpZ8\n-----END PGP PUBLIC KEY BLOCK-----\n"
MADISON = """ docker-ce | 5:27.3.1-1~debian.12~bookworm | https://download.docker.com/linux/debian bookworm/stable amd64 Packages
 docker-ce | 5:27.3.0-1~debian.12~bookworm | https://download.docker.com/linux/debian bookworm/stable amd64 Packages
 docker-ce | 5:26.1.4-1~debian.12~bookworm | https://download.docker.com/linux/debian bookworm/stable amd64 Packages
"""


@pytest.mark.parametrize("release, expected", [(DEBIAN, "debian"), (UBUNTU, "debian"), (MINT, "debian"),
                                               (ROCKY, "redhat"), ({"ID": "fedora"}, "redhat")])
def test_family(release, expected):
    assert distro.family(release) == expected


def test_family_unsupported():
    with pytest.raises(distro.UnsupportedDistribution, match="unsupported distribution 'alpine'"):
        distro.family({"ID": "alpine"})


def test_parse_os_release_quotes():
    assert DEBIAN["ID"] == "debian" and DEBIAN["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"


@pytest.mark.parametrize("pattern, expected", [
    ("27.3.1", "5:27.3.1-1~debian.12~bookworm"),
    ("27.3.*", "5:27.3.1-1~debian.12~bookworm"),
    ("26.*", "5:26.1.4-1~debian.12~bookworm"),
    ("5:27.3.0-1~debian.12~bookworm", "5:27.3.0-1~debian.12~bookworm"),
    ("", None),
])
def test_resolve_version(pattern, expected):
    assert pins.resolve_version(pattern, pins.parse_madison(MADISON)) == expected


def test_resolve_version_no_match_names_what_exists():
    with pytest.raises(pins.PackagesError, match="25.0.0.*available: 5:27.3.1"):
        pins.resolve_version("25.0.0", pins.parse_madison(MADISON))


@pytest.mark.parametrize("installed, pattern, ok", [
    ("20.10.24+dfsg1-1+deb12u1", "20.10.*", True),
    ("20.10.24+dfsg1-1+deb12u1", "24.*", False),
    ("5:27.3.1-1~debian.12~bookworm", "27.3.1", True),
    ("anything", None, True),
])
def test_version_matches(installed, pattern, ok):
    assert pins.version_matches(installed, pattern) is ok


def test_deb822_source_for_debian():
    files = di.repo_files("debian", DEBIAN, "amd64", "https://download.docker.com/linux/", KEY)
    assert files[di.APT_KEYRING] == KEY
    assert files[di.APT_SOURCES] == (
        "# Managed by mlinfra.docker_ml\nTypes: deb\nURIs: https://download.docker.com/linux/debian\n"
        "Suites: bookworm\nComponents: stable\nArchitectures: amd64\nSigned-By: /etc/apt/keyrings/docker.asc\n")


def test_deb822_source_for_ubuntu_derivative_uses_ubuntu_codename():
    source = di.repo_files("debian", MINT, "arm64", "https://mirror.example/docker", KEY)[di.APT_SOURCES]
    assert "URIs: https://mirror.example/docker/ubuntu\n" in source and "Suites: noble\n" in source


def test_dnf_repo_file():
    repo = di.repo_files("redhat", ROCKY, None, "https://download.docker.com/linux", None)[di.DNF_REPO]
    assert "baseurl=https://download.docker.com/linux/rhel/$releasever/$basearch/stable" in repo
    assert "gpgcheck=1" in repo and "gpgkey=https://download.docker.com/linux/rhel/gpg" in repo


def test_key_url_default_and_override():
    assert di.key_url(DEBIAN, "https://download.docker.com/linux") == "https://download.docker.com/linux/debian/gpg"
    assert di.key_url(DEBIAN, "x", "https://k/gpg") == "https://k/gpg"


@pytest.mark.parametrize("content, ok", [(KEY, True), (KEY.decode(), True), (b"\x99\x02\x0d", True),
                                         (b"<html>404</html>", False), ("", False), (None, False)])
def test_looks_like_key(content, ok):
    assert repositories.looks_like_key(content) is ok


def test_legacy_entries_find_conflicting_lists():
    lists = {
        "/etc/apt/sources.list.d/docker.list": "deb [arch=amd64] https://download.docker.com/linux/debian bookworm stable",
        "/etc/apt/sources.list.d/other.list": "deb http://deb.debian.org/debian bookworm main",
        "/etc/apt/sources.list.d/docker-ce.list": "deb https://download.docker.com/linux/debian bookworm stable",
    }
    assert repositories.legacy_entries(lists, "download.docker.com") == [
        "/etc/apt/sources.list.d/docker-ce.list", "/etc/apt/sources.list.d/docker.list"]


@pytest.mark.parametrize("channel, fam, plugins, extra, expected", [
    ("distro", "debian", True, [], ["docker.io"]),
    ("distro", "redhat", True, ["pigz"], ["moby-engine", "pigz"]),
    ("upstream", "debian", True, [], ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin",
                                      "docker-compose-plugin"]),
    ("upstream", "debian", False, ["docker-ce"], ["docker-ce", "docker-ce-cli", "containerd.io"]),
])
def test_package_list(channel, fam, plugins, extra, expected):
    assert di.package_list(channel, fam, plugins, extra) == expected


class FakeManager:
    def __init__(self, installed, candidates=None):
        self._installed, self._candidates = installed, candidates or {}

    def installed(self, package):
        return self._installed.get(package)

    def candidate(self, package):
        return self._candidates.get(package)


@pytest.mark.parametrize("installed, state, pin, candidates, expected", [
    ({}, "present", None, {}, [("docker.io", "install", None, None)]),
    ({"docker.io": "20.10.24"}, "present", None, {}, [("docker.io", None, "20.10.24", "20.10.24")]),
    ({"docker.io": "20.10.24"}, "present", "20.10.*", {}, [("docker.io", None, "20.10.24", "20.10.24")]),
    ({"docker.io": "20.10.24"}, "present", "24.*", {}, [("docker.io", "install", "20.10.24", "24.*")]),
    ({"docker.io": "20.10.24"}, "latest", None, {"docker.io": "20.10.25"},
     [("docker.io", "upgrade", "20.10.24", "20.10.25")]),
    ({"docker.io": "20.10.25"}, "latest", None, {"docker.io": "20.10.25"},
     [("docker.io", None, "20.10.25", "20.10.25")]),
    ({"docker.io": "20.10.24"}, "absent", None, {}, [("docker.io", "remove", "20.10.24", None)]),
    ({}, "absent", None, {}, [("docker.io", None, None, None)]),
])
def test_plan_packages(installed, state, pin, candidates, expected):
    assert plan_packages(FakeManager(installed, candidates), ["docker.io"], state, pin, di.PINNED) == expected


def test_pin_applies_only_to_engine_packages():
    plan = plan_packages(FakeManager({}), ["docker-ce", "containerd.io"], "present", "27.*", di.PINNED)
    assert plan == [("docker-ce", "install", None, "27.*"), ("containerd.io", "install", None, None)]


@pytest.mark.parametrize("pin", ["20.10.24+dfsg1-1+b3", "5:27.3.1-1~debian.12~bookworm", "27.*", "2?.10.[0-9]*", None, ""])
def test_version_pins_and_globs_are_accepted(pin):
    pins.check_version_pin(pin)


@pytest.mark.parametrize("pin", ["20.10; rm -rf /", "27 .1", "'27'", "x" * 81, "$(id)"])
def test_version_pin_typos_are_refused(pin):
    with pytest.raises(InputError, match="^version: .* is not a package version"):
        pins.check_version_pin(pin)
