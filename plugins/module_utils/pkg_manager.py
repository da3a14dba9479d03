# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""apt and dnf behind one small interface. `run` is like AnsibleModule.run_command."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import packages as pk

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}


class PackageManagerError(Exception):
    pass


class Apt:
    family = "debian"

    def __init__(self, run, run_env):
        self.run, self.run_env = run, run_env  # run_env(argv, env) for commands that need APT_ENV
        self.updated = False

    def installed(self, package):
        rc, out, _err = self.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Version}", package])
        if rc != 0:
            return None
        status, dummy, version = out.partition("|")
        return version.strip() if status.startswith("ii") else None

    def available(self, package):
        rc, out, _err = self.run(["apt-cache", "madison", package])
        return pk.parse_madison(out) if rc == 0 else []

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
        return pk.apt_spec(package, version)


class Dnf:
    family = "redhat"

    def __init__(self, run, run_env):
        self.run, self.run_env = run, run_env
        self.updated = False

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
        return pk.dnf_spec(package, version)


def for_family(name, run, run_env):
    return {"debian": Apt, "redhat": Dnf}[name](run, run_env)


def _tail(text, lines=8):
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def plan_packages(manager, packages, state, pin=None, pinned=()):
    """Decide per package: 'install', 'upgrade', 'remove' or None.

    Returns a list of (package, action, current_version, wanted_version)."""
    actions = []
    for package in packages:
        current = manager.installed(package)
        pattern = pin if package in pinned else None
        if state == "absent":
            actions.append((package, "remove" if current else None, current, None))
            continue
        if current is None:
            actions.append((package, "install", None, pattern))
        elif pattern and not pk.version_matches(current, pattern):
            actions.append((package, "install", current, pattern))
        elif state == "latest" and not pattern:
            candidate = manager.candidate(package)
            action = "upgrade" if candidate and candidate != current else None
            actions.append((package, action, current, candidate))
        else:
            actions.append((package, None, current, current))
    return actions
