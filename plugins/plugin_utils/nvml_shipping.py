# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin of the modules that read NVML (gpu_facts, nvidia_toolkit): the controller's
nvidia-ml-py goes to hosts that have the NVIDIA driver library but not these bindings (or another copy).
Hosts may have no package index and no PyPI, and the bindings are one pure-Python file (pynvml.py), a
controller requirement already: so it goes from the controller.

The module is told the controller copy's digest (nvml_bindings_sha256); where it needs the copy it stops
before doing anything else and says why, the plugin ships it and runs the module once more. A no-op run
costs no extra task, module run or transfer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import importlib.util

from ansible.plugins.action import ActionBase
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvml

PACKAGE = "nvidia-ml-py"


def controller_bindings():
    """{path, sha256} of the controller's pynvml.py, or None when the controller lacks it."""
    spec = importlib.util.find_spec("pynvml")
    if spec is None or not spec.origin:
        return None
    with open(spec.origin, "rb") as handle:
        return {"path": spec.origin, "sha256": hashlib.sha256(handle.read()).hexdigest()}


def controller_version():
    """nvidia-ml-py's version on the controller (only for messages: reading metadata scans sys.path)."""
    try:
        from importlib.metadata import version  # pylint: disable=import-outside-toplevel
        return version(PACKAGE)
    except Exception:  # pylint: disable=broad-except
        return "(version unknown)"


class ShipsNvmlBindings(ActionBase):
    """Subclasses set MODULE. TRANSFERS_FILES stays False: True would make a remote temp directory before
    every run, an SSH round trip on every no-op run; the copy action makes its own when a host needs the file."""

    MODULE = None

    def _module(self, task_vars, args):
        return self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars)

    def _ship(self, source, task_vars):
        task = self._task.copy()
        # A trailing slash makes the copy module create the directory (as root, 0755) when it is missing.
        task.args = {"src": source, "dest": nvml.EXTRA_PATH + "/", "mode": "0644"}
        copy = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.copy", task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        return copy.run(task_vars=task_vars)

    def run(self, tmp=None, task_vars=None):
        result = super(ShipsNvmlBindings, self).run(tmp, task_vars)
        ours = controller_bindings()
        args = dict(self._task.args)
        if ours:
            args["nvml_bindings_sha256"] = ours["sha256"]
        first = self._module(task_vars, args)
        why = first.get("nvml_ship")
        if first.get("failed") or not why:
            result.update(first)
            return result
        shipped = "%s %s (%s) to %s/pynvml.py" % (PACKAGE, controller_version(), why, nvml.EXTRA_PATH)
        if self._task.check_mode:  # read with what the host has, say what a real run would ship
            args.pop("nvml_bindings_sha256")
            result.update(self._module(task_vars, args), changed=True, nvml_shipped="would ship " + shipped)
            return result
        copied = self._ship(ours["path"], task_vars)
        if copied.get("failed"):
            copied["msg"] = "could not ship %s: %s" % (shipped, copied.get("msg"))
            result.update(copied)
            return result
        result.update(self._module(task_vars, args), changed=True, nvml_shipped="shipped " + shipped)
        return result
