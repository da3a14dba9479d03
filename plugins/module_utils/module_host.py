# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host effects the install logic needs (commands, downloads, PATH look-ups, what the host is), bound to a
module. Install logic gets one of these (unit tests a fake with the same methods); module mains read nothing else."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import shutil

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.os_release import parse_os_release


class ModuleHost:
    def __init__(self, module):
        self.module = module

    def run(self, argv):
        return self.module.run_command(argv)

    def run_env(self, argv, env):
        return self.module.run_command(argv, environ_update=env)

    @staticmethod
    def fetch(url):
        # Imported here: ansible's urls pulls in ssl and urllib.request, which a no-op run never needs.
        from ansible.module_utils.urls import open_url  # pylint: disable=import-outside-toplevel
        return open_url(url, timeout=30).read()

    @staticmethod
    def which(name):
        return shutil.which(name)

    @staticmethod
    def os_release():
        """/etc/os-release as a dict of its KEY=value lines."""
        with open("/etc/os-release", "r", encoding="utf-8") as handle:
            return parse_os_release(handle.read())

    def architecture(self):
        """dpkg's name for the host's architecture (amd64, arm64); None where there is no dpkg (dnf hosts)."""
        dpkg = self.module.get_bin_path("dpkg")
        return self.module.run_command([dpkg, "--print-architecture"])[1].strip() if dpkg else None
