# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host effects the install logic needs (commands, downloads, PATH look-ups), bound to a module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import shutil


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
