# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""/etc/os-release as data, and the package family it implies (pure: no Ansible, no host access)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError


class UnsupportedDistribution(MlinfraError):
    """The host is neither apt (Debian/Ubuntu) nor dnf (RHEL family)."""


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
    raise UnsupportedDistribution("unsupported distribution %r (ID_LIKE %r): only Debian/Ubuntu (apt) and the "
                                  "RHEL family (dnf) are supported" % (os_release.get("ID"), os_release.get("ID_LIKE")))
