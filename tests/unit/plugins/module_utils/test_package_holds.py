"""Held packages are installed packages; docker_hold holds the engine; per-OS defaults that work on RHEL 9
(issue 13, items 4 and 5)."""

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_install as di
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import package_holds as ph
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import pkg_manager as pm


class Dpkg:
    """Answers dpkg-query / apt-mark like Debian 12 does for a few packages: {name: (abbrev, version)}.
    ${db:Status-Abbrev} is want/state/error: 'ii ' installed, 'hi ' installed and held, 'rc ' removed with
    its config left, 'hn ' held but not installed (apt-mark hold on an absent package)."""

    def __init__(self, packages):
        self.packages, self.calls = dict(packages), []

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[0] == "dpkg-query":
            if argv[-1] not in self.packages:
                return 1, "", "dpkg-query: no packages found matching %s" % argv[-1]
            abbrev, version = self.packages[argv[-1]]
            return 0, "%s|%s" % (abbrev, version), ""
        if argv[:2] in (["apt-mark", "hold"], ["apt-mark", "unhold"]):
            for name in argv[2:]:
                abbrev, version = self.packages[name]
                self.packages[name] = (("h" if argv[1] == "hold" else "i") + abbrev[1:], version)
            return 0, "", ""
        if argv[:2] == ["apt-cache", "madison"]:
            return 0, " docker.io | 20.10.24+dfsg1-1+deb12u1 | http://deb.debian.org/debian bookworm/main amd64 Packages\n", ""
        return 0, "", ""

    def run_env(self, argv, env):
        return self(argv)


def apt(packages):
    fake = Dpkg(packages)
    return fake, pm.Apt(fake, fake.run_env)


@pytest.mark.parametrize("abbrev, installed, held", [
    ("ii ", "20.10.24", False), ("hi ", "20.10.24", True), ("rc ", None, False), ("hn ", None, True), ("iU ", None, False),
])
def test_apt_status_reads_holds(abbrev, installed, held):
    _fake, manager = apt({"docker.io": (abbrev, "20.10.24")})
    assert manager.installed("docker.io") == installed and ("docker.io" in manager.held) is held


def test_held_engine_package_is_installed_and_plans_nothing():
    _fake, manager = apt({"docker.io": ("hi ", "20.10.24+dfsg1-1+deb12u1")})
    assert pm.plan_packages(manager, ["docker.io"], "present", "20.10.*", di.PINNED) == [
        ("docker.io", None, "20.10.24+dfsg1-1+deb12u1", "20.10.24+dfsg1-1+deb12u1")]


def test_held_package_blocking_the_pin_fails_and_says_so():
    _fake, manager = apt({"nvidia-container-toolkit": ("hi ", "1.16.2-1")})
    with pytest.raises(pm.PackageManagerError, match=r"nvidia-container-toolkit is held at 1.16.2-1 \(apt-mark hold\).*"
                                                     r"1.17.8-1.*Nothing was changed.*apt-mark unhold"):
        pm.plan_packages(manager, ["nvidia-container-toolkit"], "present", "1.17.8-1", ["nvidia-container-toolkit"])


def test_held_package_is_not_upgraded_by_latest_nor_removed_without_saying_so():
    _fake, manager = apt({"docker.io": ("hi ", "20.10.24")})
    assert pm.plan_packages(manager, ["docker.io"], "latest", None, di.PINNED)[0][1] is None
    with pytest.raises(pm.PackageManagerError, match="held"):
        pm.plan_packages(manager, ["docker.io"], "absent", None, di.PINNED)


def test_a_hold_the_role_manages_may_move_with_the_pin():
    _fake, manager = apt({"docker.io": ("hi ", "20.10.24")})
    plan = pm.plan_packages(manager, ["docker.io"], "present", "24.*", di.PINNED, release=["docker.io"])
    assert plan == [("docker.io", "install", "20.10.24", "24.*")]


def test_docker_hold_holds_the_engine_once_and_records_it(tmp_path):
    record = tmp_path / "holds.json"
    fake, manager = apt({"docker.io": ("ii ", "20.10.24")})
    manager.installed("docker.io")
    assert ph.ensure_holds(manager, ["docker.io"], True, False, str(record)) == ["hold docker.io"]
    assert ["apt-mark", "hold", "docker.io"] in fake.calls and ph.recorded(str(record)) == ["docker.io"]
    manager.installed("docker.io")
    assert ph.ensure_holds(manager, ["docker.io"], True, False, str(record)) == []


def test_docker_hold_in_check_mode_only_plans(tmp_path):
    fake, manager = apt({"docker.io": ("ii ", "20.10.24")})
    manager.installed("docker.io")
    assert ph.ensure_holds(manager, ["docker.io"], True, True, str(tmp_path / "holds.json")) == ["hold docker.io"]
    assert not any(c[0] == "apt-mark" for c in fake.calls) and not (tmp_path / "holds.json").exists()


def test_docker_hold_off_releases_only_the_holds_it_set(tmp_path):
    record = tmp_path / "holds.json"
    fake, manager = apt({"docker.io": ("ii ", "20.10.24")})
    manager.installed("docker.io")
    ph.ensure_holds(manager, ["docker.io"], True, False, str(record))
    manager.installed("docker.io")
    assert ph.ensure_holds(manager, ["docker.io"], False, False, str(record)) == ["release the hold on docker.io"]
    assert fake.packages["docker.io"][0] == "ii " and not record.exists()
    fake, manager = apt({"docker.io": ("hi ", "20.10.24")})  # held by hand: not ours to release
    manager.installed("docker.io")
    assert ph.ensure_holds(manager, ["docker.io"], False, False, str(record)) == []
    assert fake.packages["docker.io"][0] == "hi "


def test_a_hand_set_hold_is_not_recorded_as_ours(tmp_path):
    record = tmp_path / "holds.json"
    _fake, manager = apt({"docker.io": ("hi ", "20.10.24")})
    manager.installed("docker.io")
    assert ph.ensure_holds(manager, ["docker.io"], True, False, str(record)) == [] and not record.exists()
    assert ph.movable(["docker.io"], False, []) == [] and ph.movable(["docker.io"], True, []) == ["docker.io"]


@pytest.mark.parametrize("channel, fam, expected", [
    ("distro", "debian", ["docker.io"]), ("upstream", "debian", ["docker-ce", "docker-ce-cli", "containerd.io"]),
    ("distro", "redhat", ["moby-engine"]),
])
def test_engine_packages_held(channel, fam, expected):
    assert di.hold_packages(channel, fam) == expected


VERSIONLOCK_DNF4 = """Last metadata expiration check: 0:10:01 ago on Mon 23 Nov 2026.
docker-ce-3:27.3.1-1.el9.*
containerd.io-0:1.7.22-3.1.el9.*
"""
VERSIONLOCK_DNF5 = """# Added by 'versionlock add' command on 2026-11-23 10:00:00
Package name: docker-ce
evr = 3:27.3.1-1.el9
"""


@pytest.mark.parametrize("listing, expected", [(VERSIONLOCK_DNF4, {"docker-ce", "containerd.io"}),
                                               (VERSIONLOCK_DNF5, {"docker-ce"}), ("", set())])
def test_dnf_versionlock_list_parsed(listing, expected):
    assert pm.parse_versionlock(listing) == expected


def test_dnf_held_via_versionlock_and_missing_plugin_means_none():
    def run(argv):
        if "versionlock" in argv:
            return 0, VERSIONLOCK_DNF4, ""
        return 0, "3:27.3.1-1.el9", ""
    assert "docker-ce" in pm.Dnf(run, None).held
    assert pm.Dnf(lambda argv: (1, "", "No such command: versionlock"), None).held == set()


ROCKY9 = {"ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "9.4"}
RHEL9 = {"ID": "rhel", "ID_LIKE": "fedora", "VERSION_ID": "9.4"}
STREAM9 = {"ID": "centos", "ID_LIKE": "rhel fedora", "VERSION_ID": "9"}
FEDORA = {"ID": "fedora", "VERSION_ID": "41"}
DEBIAN = {"ID": "debian", "VERSION_CODENAME": "bookworm"}


@pytest.mark.parametrize("release, channel, sdk", [
    (RHEL9, "upstream", False), (ROCKY9, "upstream", False), (STREAM9, "upstream", False),
    (FEDORA, "distro", True), (DEBIAN, "distro", True),
])
def test_auto_defaults_per_os(release, channel, sdk):
    assert di.choose_channel("auto", release) == channel
    assert di.sdk_wanted("auto", release) is sdk


def test_sdk_when_asked_for_is_installed_everywhere():
    assert di.sdk_wanted("always", RHEL9) is True and di.sdk_wanted("never", DEBIAN) is False


def test_distro_channel_on_rhel_fails_first_saying_what_to_set():
    with pytest.raises(di.EngineError, match="moby-engine.*docker_channel: upstream"):
        di.choose_channel("distro", RHEL9)
    assert di.choose_channel("distro", FEDORA) == "distro" and di.choose_channel("upstream", DEBIAN) == "upstream"
