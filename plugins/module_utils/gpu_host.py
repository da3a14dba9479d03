# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU facts of this host (ansible_facts.mlinfra_gpu), read the same way by gpu_facts and by
nvidia_toolkit (which reads them itself, so a play needs one module run per host for the toolkit)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvidia_runtime, nvml


def read(select=None, controller_sha256=None):
    """(facts, bindings, ship): the GPU facts, the nvidia-ml-py this host read them with, and why the
    controller's copy should be shipped first ('missing' / 'different', or None). When `ship` is set
    the facts are None: the action plugin ships the bindings and runs the module again."""
    pynvml, reason = nvml.load_pynvml()
    found = nvml.bindings(pynvml)
    ship = nvml.ship_reason({"sha256": controller_sha256} if controller_sha256 else None, found)
    if ship:
        return None, found, ship
    facts = nvml.host_gpus(pynvml, reason, found["library"])
    facts["runtime_binary"] = nvidia_runtime.runtime_binary()
    if select:
        facts["selected"] = nvml.select(select, facts["gpus"])
    return facts, found, None


def skip_reason(facts, skip_without_gpu):
    """Why the NVIDIA toolkit is not set up on this host (no usable GPU and skip_without_gpu), or None."""
    if skip_without_gpu and not facts["count"]:
        return "no NVIDIA GPU on this host (%s): the NVIDIA Container Toolkit is not set up" % (
            facts.get("reason") or "NVML reports no GPU")
    return None
