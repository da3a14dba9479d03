# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NVIDIA container runtime: where its binary is, and its entry in daemon.json (pure but for the look-up)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import shutil

RUNTIME_BINARY = "nvidia-container-runtime"
RUNTIME_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/local/nvidia/toolkit")


def runtime_binary(path_env=None):
    found = shutil.which(RUNTIME_BINARY, path=path_env)
    if found:
        return found
    for directory in RUNTIME_DIRS:
        candidate = os.path.join(directory, RUNTIME_BINARY)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def runtime_settings(runtime_name, runtime_path, default_runtime, cdi):
    """What nvidia-ctk would set, as a merge into daemon.json (pure). Other 'features' keys are kept
    by the merge, unlike `nvidia-ctk runtime configure --enable-cdi` before 2026."""
    settings = {"runtimes": {runtime_name: {"path": runtime_path, "args": []}}}
    if default_runtime:
        settings["default-runtime"] = runtime_name
    if cdi:
        settings["features"] = {"cdi": True}
    return settings
