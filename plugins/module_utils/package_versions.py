# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Package versions and pins as data (pure): pin syntax, matching a pin, picking the version to install.
Shared by docker_engine (docker-ce) and nvidia_toolkit (NVIDIA Container Toolkit)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import fnmatch
import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError, MlinfraError


class PackagesError(MlinfraError):
    """A repository or version request cannot be satisfied; the message says what to do."""


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
