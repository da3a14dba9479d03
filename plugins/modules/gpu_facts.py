#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: gpu_facts
short_description: NVIDIA GPU facts from NVML (nvidia-ml-py)
version_added: 0.1.0
description:
  - Reads the host's NVIDIA GPUs through NVML - driver and CUDA driver versions, NVML version, and per
    GPU its index, name, UUID, PCI bus id, total memory, compute capability and MIG mode.
  - A host without GPUs, driver or nvidia-ml-py gets C(count=0) and the reason; the module never fails for that.
  - GPUs are read one by one - C(count) is the number of usable GPUs, and a GPU on which NVML fails (for example
    C(GPU is lost)) is listed in C(failed_gpus) with its index and NVML's error instead of hiding the others.
  - Where the NVIDIA driver library (C(libnvidia-ml.so.1)) loads but nvidia-ml-py is missing, or is another copy
    than the controller's, the action plugin copies the controller's C(pynvml.py) (nvidia-ml-py is a controller
    requirement, pinned) to C(/opt/mlinfra/python) and reads the GPUs again; that copy comes first on the path.
    Hosts need no package index for it. Nothing is copied to hosts without the driver library.
  - Reports whether the C(nvidia-container-runtime) binary is present.
  - O(select) filters the GPU list with a JMESPath expression, returned as C(ansible_facts.mlinfra_gpu.selected).
author:
  - mlinfra contributors (@mlinfra)
requirements:
  - nvidia-ml-py on the controller (shipped to hosts that have the NVIDIA driver library)
  - jmespath on the managed host, only for O(select)
options:
  select:
    description:
      - JMESPath expression applied to the list of GPUs, for example
        C([?memory_total_mib > `40960`].uuid) for the UUIDs of GPUs with more than 40 GiB.
      - The result is always a list - empty when nothing matched (JMESPath's null), one item for a scalar.
    type: str
  nvml_bindings_sha256:
    description:
      - Set by the action plugin - the SHA-256 of the controller's C(pynvml.py). Where the host needs that copy,
        the module returns RV(nvml_ship) and reads nothing, and the plugin ships the file and runs it again.
        Leave it unset.
    type: str
attributes:
  action:
    support: full
    description: The action plugin ships nvidia-ml-py from the controller where it is needed.
  check_mode:
    support: full
    description: Only reads; reports C(changed) where nvidia-ml-py would be shipped.
  diff_mode:
    support: none
    description: Nothing changes.
  facts:
    support: full
    description: Sets C(ansible_facts.mlinfra_gpu).
  platform:
    platforms: posix
    support: full
    description: Linux hosts; NVIDIA GPUs where present.
"""

EXAMPLES = r"""
- name: Gather GPU facts
  mlinfra.docker_ml.gpu_facts:

- name: The UUIDs of the large GPUs, for TF Serving
  mlinfra.docker_ml.gpu_facts:
    select: "[?memory_total_mib > `40960`].uuid"

- name: Say what was found
  ansible.builtin.debug:
    msg: "{{ ansible_facts.mlinfra_gpu.count }} GPU(s), driver {{ ansible_facts.mlinfra_gpu.driver_version }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts under C(mlinfra_gpu).
  returned: always
  type: complex
  contains:
    mlinfra_gpu:
      description: The host's GPUs.
      returned: always
      type: dict
      sample:
        count: 1
        driver_version: "575.57.08"
        cuda_driver_version: "12.9"
        nvml_version: "12.575.57.08"
        reason: null
        runtime_binary: /usr/bin/nvidia-container-runtime
        selected: ["GPU-3b5c0f8e-6d1f-4a45-a4b4-9f0d8c1b2e77"]
        failed_gpus:
          - index: 1
            error: GPU is lost
        gpus:
          - index: 0
            name: NVIDIA A100-SXM4-80GB
            uuid: GPU-3b5c0f8e-6d1f-4a45-a4b4-9f0d8c1b2e77
            pci_bus_id: "00000000:07:00.0"
            memory_total_mib: 81920
            compute_capability: "8.0"
            mig_mode: {current: disabled, pending: disabled}
nvml_bindings:
  description: The nvidia-ml-py this host read NVML with (path and sha256, or nulls), and whether the driver library loads.
  returned: always
  type: dict
  sample: {"path": "/opt/mlinfra/python/pynvml.py", "sha256": "56d4acbdecef...", "library": true}
nvml_ship:
  description: Why the controller's nvidia-ml-py must be shipped first (V(missing), V(different)); the action plugin acts on it.
  returned: only to the action plugin, when O(nvml_bindings_sha256) differs from the host's copy
  type: str
  sample: missing
nvml_shipped:
  description: What the action plugin copied to the host (or would, in check mode); absent when nothing.
  returned: when nvidia-ml-py was shipped
  type: str
  sample: "shipped nvidia-ml-py 13.615.71 (missing) to /opt/mlinfra/python/pynvml.py"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import gpu_host
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError, failure_message


def main():
    module = AnsibleModule(argument_spec=dict(select=dict(type="str"), nvml_bindings_sha256=dict(type="str")),
                           supports_check_mode=True)
    try:
        facts, bindings, ship = gpu_host.read(module.params["select"], module.params["nvml_bindings_sha256"])
    except MlinfraError as exc:
        module.fail_json(msg=failure_message("gpu_facts", exc), **exc.extra)
    if ship:
        module.exit_json(changed=False, nvml_bindings=bindings, nvml_ship=ship)
    module.exit_json(changed=False, ansible_facts={"mlinfra_gpu": facts}, nvml_bindings=bindings)


if __name__ == "__main__":
    main()
