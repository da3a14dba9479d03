# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpu_facts, plus the controller's nvidia-ml-py for hosts that have the NVIDIA driver library but not
these bindings (or another copy of them). Hosts may have no package index and no PyPI, and the bindings
are one pure-Python file (pynvml.py), a controller requirement already: so it goes from the controller.
A no-op run costs no extra task and no extra transfer; only a host that needs the file gets it, and then
the module runs once more to read the GPUs with it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import importlib.util

from ansible.plugins.action import ActionBase
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvml

MODULE = "mlinfra.docker_ml.gpu_facts"
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


class ActionModule(ActionBase):
    # TRANSFERS_FILES stays False: True would make a remote temp directory before every run, an SSH round
    # trip on every no-op run; the copy action makes its own when a host needs the file.

    def _facts(self, task_vars):
        return self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars)

    def _ship(self, source, task_vars):
        task = self._task.copy()
        # A trailing slash makes the copy module create the directory (as root, 0755) when it is missing.
        task.args = {"src": source, "dest": nvml.EXTRA_PATH + "/", "mode": "0644"}
        copy = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.copy", task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        return copy.run(task_vars=task_vars)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        facts = self._facts(task_vars)
        ours = controller_bindings()
        why = nvml.ship_reason(ours, facts.get("nvml_bindings"))
        if facts.get("failed") or why is None:
            result.update(facts)
            return result
        dest = nvml.EXTRA_PATH + "/pynvml.py"
        shipped = "%s %s (%s) to %s" % (PACKAGE, controller_version(), why, dest)
        if self._task.check_mode:
            result.update(facts, changed=True, nvml_shipped="would ship " + shipped)
            return result
        copied = self._ship(ours["path"], task_vars)
        if copied.get("failed"):
            copied["msg"] = "could not ship %s: %s" % (shipped, copied.get("msg"))
            result.update(copied)
            return result
        result.update(self._facts(task_vars), changed=True, nvml_shipped="shipped " + shipped)
        return result
