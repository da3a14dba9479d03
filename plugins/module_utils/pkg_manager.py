# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""apt and dnf behind one small interface. `run` is like AnsibleModule.run_command."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import package_versions as pins

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}


class PackageManagerError(MlinfraError):
    """apt or dnf failed or refused; the message carries its own words."""


class Apt:
    hold_tool = "apt-mark hold"
    unhold_command = "apt-mark unhold"

    def __init__(self, run, run_env):
        self.run, self.run_env = run, run_env  # run_env(argv, env) for commands that need APT_ENV
        self.updated = False
        self.held = set()

    def installed(self, package):
        """The installed version or None; notes a hold (apt-mark hold) in self.held from the same query."""
        rc, out, _err = self.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Version}", package])
        if rc != 0:
            return None
        status, dummy, version = out.partition("|")
        # ${db:Status-Abbrev} is want/state/error: 'hi ' is installed and held, which is installed.
        if status[:1] == "h":
            self.held.add(package)
        return version.strip() if status[1:2] == "i" else None

    def hold(self, packages, on=True):
        rc, out, err = self.run(["apt-mark", "hold" if on else "unhold"] + list(packages))
        if rc != 0:
            verb = "hold" if on else "unhold"
            raise PackageManagerError("apt-mark %s %s failed: %s" % (verb, " ".join(packages), _tail(err or out)))
        _note_holds(self.held, packages, on)

    def available(self, package):
        rc, out, _err = self.run(["apt-cache", "madison", package])
        return pins.parse_madison(out) if rc == 0 else []

    def candidate(self, package):
        versions = self.available(package)
        return versions[0] if versions else None

    def update(self):
        rc, out, err = self.run_env(["apt-get", "update", "-q"], APT_ENV)
        if rc != 0:
            raise PackageManagerError("apt-get update failed: %s. Check the host's apt sources and network "
                                      "(and the repository base URL, if you set one)" % _tail(err or out))
        self.updated = True

    def install(self, specs, recommends=False):
        argv = ["apt-get", "install", "-y", "-q", "-o", "Dpkg::Options::=--force-confold",
                "--allow-downgrades"]
        if not recommends:
            argv.append("--no-install-recommends")
        rc, out, err = self.run_env(argv + list(specs), APT_ENV)
        if rc != 0:
            raise PackageManagerError("apt-get install %s failed: %s" % (" ".join(specs), _tail(err or out)))

    def remove(self, packages):
        rc, out, err = self.run_env(["apt-get", "remove", "-y", "-q"] + list(packages), APT_ENV)
        if rc != 0:
            raise PackageManagerError("apt-get remove %s failed: %s" % (" ".join(packages), _tail(err or out)))

    @staticmethod
    def spec(package, version):
        return pins.apt_spec(package, version)


class Dnf:
    hold_tool = "dnf versionlock"
    unhold_command = "dnf versionlock delete"

    def __init__(self, run, run_env):
        self.run, self.run_env = run, run_env
        self.updated = False
        self._held = None

    @property
    def held(self):
        """Packages under `dnf versionlock` (asked once; none if the versionlock plugin is not installed)."""
        if self._held is None:
            rc, out, _err = self.run(["dnf", "-q", "versionlock", "list"])
            self._held = parse_versionlock(out) if rc == 0 else set()
        return self._held

    def hold(self, packages, on=True):
        rc, out, err = self.run(["dnf", "-q", "versionlock", "add" if on else "delete"] + list(packages))
        if rc != 0:
            raise PackageManagerError("dnf versionlock %s %s failed: %s (is python3-dnf-plugin-versionlock installed?)"
                                      % ("add" if on else "delete", " ".join(packages), _tail(err or out)))
        _note_holds(self.held, packages, on)

    def installed(self, package):
        rc, out, _err = self.run(["rpm", "-q", "--qf", "%{EPOCH}:%{VERSION}-%{RELEASE}", package])
        if rc != 0:
            return None
        return out.strip().replace("(none):", "")

    def available(self, package):
        rc, out, _err = self.run(["dnf", "-y", "-q", "list", "--showduplicates", "--available", package])
        if rc != 0:
            return []
        versions = [line.split()[1] for line in out.splitlines() if line.startswith(package + ".")]
        return list(reversed(versions))

    def candidate(self, package):
        versions = self.available(package)
        return versions[0] if versions else None

    def update(self):
        rc, out, err = self.run(["dnf", "-y", "-q", "makecache"])
        if rc != 0:
            raise PackageManagerError("dnf makecache failed: %s" % _tail(err or out))
        self.updated = True

    def install(self, specs, recommends=False):
        argv = ["dnf", "-y", "-q", "install", "--allowerasing"]
        if not recommends:
            argv.append("--setopt=install_weak_deps=False")
        rc, out, err = self.run(argv + list(specs))
        if rc != 0:
            raise PackageManagerError("dnf install %s failed: %s" % (" ".join(specs), _tail(err or out)))

    def remove(self, packages):
        rc, out, err = self.run(["dnf", "-y", "-q", "remove"] + list(packages))
        if rc != 0:
            raise PackageManagerError("dnf remove %s failed: %s" % (" ".join(packages), _tail(err or out)))

    @staticmethod
    def spec(package, version):
        return pins.dnf_spec(package, version)


def for_family(name, run, run_env):
    return {"debian": Apt, "redhat": Dnf}[name](run, run_env)


def _tail(text, lines=8):
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def _note_holds(held, packages, on):
    if on:
        held.update(packages)
    else:
        held.difference_update(packages)


def parse_versionlock(text):
    """Package names in `dnf versionlock list`: dnf 4 prints NAME-EPOCH:VERSION-RELEASE.* lines, dnf 5
    prints 'Package name: NAME' blocks."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        dnf5 = re.match(r"^Package name:\s*(\S+)$", line)
        dnf4 = re.match(r"^(?:!)?(\S+)-\d+:[^-\s]+-\S+$", line)
        if dnf5 or dnf4:
            names.add((dnf5 or dnf4).group(1))
    return names


def _held_blocks(manager, package, current, why):
    return PackageManagerError(
        "%s is held %s (%s), and %s. Nothing was changed: release the hold (%s %s), or ask for the held "
        "version%s" % (package, "at " + current if current else "without being installed", manager.hold_tool, why,
                       manager.unhold_command, package, " (or let the role manage the hold: docker_hold)"
                       if package.startswith(("docker", "moby", "containerd")) else ""))


def plan_packages(manager, packages, state, pin=None, pinned=(), release=()):
    """Decide per package: 'install', 'upgrade', 'remove' or None. A held package (apt-mark hold, dnf
    versionlock) is installed like any other; a change it blocks fails, unless the package is in release
    (its hold is ours to move), and state=latest leaves it where it is held.

    Returns a list of (package, action, current_version, wanted_version)."""
    actions = []
    for package in packages:
        current = manager.installed(package)
        pattern = pin if package in pinned else None
        held = package not in release and package in getattr(manager, "held", ())
        if state == "absent":
            if current and held:
                raise _held_blocks(manager, package, current, "state=absent would remove it")
            actions.append((package, "remove" if current else None, current, None))
            continue
        if current is None or (pattern and not pins.version_matches(current, pattern)):
            if held:
                raise _held_blocks(manager, package, current, "the requested version %s needs another one" % pattern
                                   if current else "installing it would change the hold")
            actions.append((package, "install", current, pattern))
        elif state == "latest" and not pattern and not held:
            candidate = manager.candidate(package)
            action = "upgrade" if candidate and candidate != current else None
            actions.append((package, action, current, candidate))
        else:
            actions.append((package, None, current, current))
    return actions


def _resolve(manager, package, pattern):
    versions = manager.available(package)
    if not versions and not manager.updated:
        manager.update()
        versions = manager.available(package)
    return pins.resolve_version(pattern, versions) if pattern else None


def ensure_packages(manager, packages, state, pin, check_mode, recommends, pinned, release=()):
    """Install/upgrade/remove; return [(package, action, from, to)] for changed packages and
    {package: version installed before}. The packages in `pinned` are installed at the newest available
    version matching pin (one exact version for all of them). Holds on packages in release (ours) are
    lifted for the change."""
    full = plan_packages(manager, packages, state, pin, pinned, release)
    plan = [entry for entry in full if entry[1]]
    before = {package: current for package, _action, current, _wanted in full}
    if check_mode or not plan:
        return plan, before
    ours = [p for p, _a, _c, _w in plan if p in release and p in manager.held]
    if ours:
        manager.hold(ours, on=False)
    removals = [p for p, action, _c, _w in plan if action == "remove"]
    if removals:
        manager.remove(removals)
    installs = [(p, w) for p, action, _c, w in plan if action in ("install", "upgrade")]
    if installs:
        if any(not manager.available(p) for p, _w in installs) and not manager.updated:
            manager.update()
        specs = [manager.spec(p, _resolve(manager, p, w) if w and p in pinned else None) for p, w in installs]
        manager.install(specs, recommends)
    return plan, before
