# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Package repositories and version pins as data (pure: no Ansible, no host access).

Shared by docker_engine (docker-ce) and nvidia_toolkit (NVIDIA Container Toolkit).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import fnmatch
import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError, MlinfraError

KEYRING_DIR = "/etc/apt/keyrings"
SOURCES_DIR = "/etc/apt/sources.list.d"
YUM_REPOS_DIR = "/etc/yum.repos.d"


class PackagesError(MlinfraError):
    """A repository or version request cannot be satisfied; the message says what to do."""


def parse_os_release(text):
    """/etc/os-release -> dict of its KEY=value lines, quotes removed."""
    info = {}
    for line in text.splitlines():
        match = re.match(r'^([A-Z_]+)=(.*)$', line.strip())
        if match:
            info[match.group(1)] = match.group(2).strip().strip('"').strip("'")
    return info


def family(os_release):
    """'debian' for apt hosts, 'redhat' for dnf hosts."""
    ids = [os_release.get("ID", "")] + os_release.get("ID_LIKE", "").split()
    if any(i in ("debian", "ubuntu") for i in ids):
        return "debian"
    if any(i in ("rhel", "fedora", "centos", "rocky", "almalinux") for i in ids):
        return "redhat"
    raise PackagesError("unsupported distribution %r (ID_LIKE %r): only Debian/Ubuntu (apt) and the "
                        "RHEL family (dnf) are supported" % (os_release.get("ID"), os_release.get("ID_LIKE")))


def upstream_version(version):
    """'5:27.3.1-1~debian.12~bookworm' -> '27.3.1'; '27.3.1-1.el9' -> '27.3.1'."""
    without_epoch = version.split(":", 1)[-1]
    return without_epoch.split("-", 1)[0]


VERSION_PIN = re.compile(r"[A-Za-z0-9.+~:*?_\[\]-]{1,80}")


def check_version_pin(pattern, where="version"):
    """A pin is a package version or a glob of one; anything else (spaces, ';', quotes) is a typo."""
    if pattern and not VERSION_PIN.fullmatch(pattern):
        raise InputError("%s: %r is not a package version or a glob of one (e.g. 20.10.* or "
                         "5:27.3.1-1~debian.12~bookworm)" % (where, pattern))


def resolve_version(pattern, available):
    """Pick the first (newest, as apt/dnf list them) available version matching pattern, exact or glob,
    against either the full version or its upstream part. None if the pattern is empty."""
    if not pattern:
        return None
    for version in available:
        if fnmatch.fnmatchcase(version, pattern) or fnmatch.fnmatchcase(upstream_version(version), pattern):
            return version
    raise PackagesError("no available version matches %r (available: %s). Check the version pin or the "
                        "repository" % (pattern, ", ".join(available[:8]) or "none; is the repository configured?"))


def version_matches(installed, pattern):
    """Whether an installed version satisfies a pin (same matching rules as resolve_version)."""
    if not pattern:
        return True
    return fnmatch.fnmatchcase(installed, pattern) or fnmatch.fnmatchcase(upstream_version(installed), pattern)


def parse_madison(text):
    """`apt-cache madison pkg` -> versions, newest first."""
    versions = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 2 and parts[1] and parts[1] not in versions:
            versions.append(parts[1])
    return versions


def apt_spec(package, version):
    return "%s=%s" % (package, version) if version else package


def dnf_spec(package, version):
    return "%s-%s" % (package, upstream_version(version)) if version else package


def deb822_source(uris, suite, components, keyring, architectures=None):
    """A deb822 .sources stanza with Signed-By (the form that avoids 'Conflicting values set for
    option Signed-By' when no other entry for the same URI exists)."""
    lines = ["Types: deb", "URIs: %s" % uris, "Suites: %s" % suite]
    if components:  # a flat repository (Suites: /) has none
        lines.append("Components: %s" % components)
    if architectures:
        lines.append("Architectures: %s" % architectures)
    lines.append("Signed-By: %s" % keyring)
    return "# Managed by mlinfra.docker_ml\n" + "\n".join(lines) + "\n"


def dnf_repo(repo_id, name, baseurl, gpgkey, repo_gpgcheck=False):
    """A .repo file; repo_gpgcheck=True also verifies the repository metadata's signature."""
    return ("# Managed by mlinfra.docker_ml\n[%s]\nname=%s\nbaseurl=%s\nenabled=1\ngpgcheck=1\n%sgpgkey=%s\n"
            % (repo_id, name, baseurl, "repo_gpgcheck=1\n" if repo_gpgcheck else "", gpgkey))


def looks_like_key(content):
    """An OpenPGP public key, armored or binary (keyring)."""
    if not content:
        return False
    if isinstance(content, bytes):
        if content.lstrip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"):
            return True
        return content[:1] in (b"\x99", b"\xc6")  # old/new format public-key packet tags
    return content.lstrip().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def legacy_entries(files, hostname):
    """From {path: text} of sources.list.d/*.list, the paths that point at hostname: leftovers that
    make apt fail with 'Conflicting values set for option Signed-By'."""
    return sorted(path for path, text in files.items()
                  if hostname and hostname in text and path.endswith(".list"))
