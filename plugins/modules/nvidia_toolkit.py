#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: nvidia_toolkit
short_description: NVIDIA Container Toolkit - repository, pinned packages, runtime in daemon.json, CDI
version_added: 0.1.0
description:
  - Sets up NVIDIA's package repository (apt - an armored keyring and a deb822 source with C(Signed-By);
    dnf - a C(.repo) file), removing leftover C(nvidia-docker.list) / C(libnvidia-container.list) entries.
  - Installs C(nvidia-container-toolkit), C(nvidia-container-toolkit-base), C(libnvidia-container-tools)
    and C(libnvidia-container1), pinned to one version together.
  - Registers the runtime in daemon.json (C(runtimes.nvidia = {path, args}), optionally
    C(default-runtime) and C(features.cdi)) through the same merge, atomic write, restart and rollback
    as M(mlinfra.docker_ml.daemon_config); other keys, other C(features) keys included, are kept.
  - The keys it sets are recorded in C(daemon.json.managed-keys) (owner C(nvidia_toolkit)), so O(default_runtime)
    or O(cdi) turned back to false removes C(default-runtime) or C(features.cdi) again. On a host set up
    before the record existed, a key is recorded the first time a run sets it.
  - O(default_runtime=true) requires the runtime binary on the host; without it the task fails and
    daemon.json is left untouched.
  - With O(cdi=true), writes C(nvidia-ctk cdi generate) output to O(cdi_spec_path) only when it would change.
    With O(cdi=false), a spec it wrote is removed again while it still holds what was written
    (recorded in C(/var/lib/mlinfra/nvidia_toolkit-cdi.json)), and so is one it wrote at an earlier
    O(cdi_spec_path) (two specs for C(nvidia.com/gpu) make the CDI cache drop the devices); a spec it did not
    write, or one changed since, stays.
    Where toolkit 1.18+'s C(nvidia-cdi-refresh.service) is enabled, the spec is left to it (it keeps
    C(/var/run/cdi/nvidia.yaml), which outranks C(/etc/cdi)) and O(cdi_spec_path) is not written.
  - Reads the host's GPUs through NVML first, as M(mlinfra.docker_ml.gpu_facts) does (same
    C(ansible_facts.mlinfra_gpu), same shipping of the controller's nvidia-ml-py by the action plugin), so a play
    needs one module run per host. With O(skip_without_gpu=true), a host without a usable GPU gets its facts
    and nothing else (RV(skipped_reason) says why).
author:
  - mlinfra contributors (@mlinfra)
requirements:
  - nvidia-ml-py on the controller (shipped to hosts that have the NVIDIA driver library)
  - jmespath on the managed host, only for O(select)
options:
  skip_without_gpu:
    description:
      - Set nothing up on a host where NVML finds no usable GPU (no driver, no GPU, all GPUs failing); only the
        facts are returned. V(false) sets the toolkit up regardless (a host being prepared before its driver).
    type: bool
    default: false
  select:
    description:
      - JMESPath expression over the GPU list, returned as C(ansible_facts.mlinfra_gpu.selected) (see
        M(mlinfra.docker_ml.gpu_facts)).
    type: str
  nvml_bindings_sha256:
    description: Set by the action plugin (see M(mlinfra.docker_ml.gpu_facts)). Leave it unset.
    type: str
  version:
    description: Version of all four packages, e.g. C(1.17.8-1); empty for whatever is newest when installing.
    type: str
  configure_repo:
    description: Write NVIDIA's repository definition.
    type: bool
    default: true
  install_packages:
    description: Install the toolkit packages.
    type: bool
    default: true
  repo_base_url:
    description: The repository's base URL (set a mirror here).
    type: str
    default: https://nvidia.github.io/libnvidia-container
  gpg_key:
    description: The repository key's armored content, instead of downloading it.
    type: str
  gpg_key_url:
    description: Where to download the key; defaults to O(repo_base_url)/gpgkey.
    type: str
  runtime_name:
    description: Name of the runtime in daemon.json.
    type: str
    default: nvidia
  runtime_path:
    description: The runtime binary (a name on dockerd's PATH or an absolute path).
    type: str
    default: nvidia-container-runtime
  default_runtime:
    description: Make it dockerd's default runtime.
    type: bool
    default: false
  cdi:
    description: Enable CDI (C(features.cdi)) and keep the CDI spec generated (unless C(nvidia-cdi-refresh) does).
    type: bool
    default: false
  cdi_spec_path:
    description: Where the CDI spec goes.
    type: path
    default: /etc/cdi/nvidia.yaml
  daemon_json:
    description: The Docker daemon configuration file.
    type: path
    default: /etc/docker/daemon.json
  backup:
    description: Keep a backup of daemon.json when it changes.
    type: bool
    default: true
  restart:
    description: V(auto) restarts dockerd on a real daemon.json change (with rollback); V(never) does not.
    type: str
    choices: [auto, never]
    default: auto
  restart_timeout:
    description: Seconds to wait for dockerd after a restart.
    type: int
    default: 60
attributes:
  action:
    support: full
    description: The action plugin ships nvidia-ml-py from the controller where it is needed.
  facts:
    support: full
    description: Sets C(ansible_facts.mlinfra_gpu), as M(mlinfra.docker_ml.gpu_facts) does.
  check_mode:
    support: full
    description: Reports the repository files, packages and daemon.json changes a real run would make.
  diff_mode:
    support: full
    description: Shows daemon.json before and after, and its key record when that changes.
  platform:
    platforms: posix
    support: full
    description: Debian/Ubuntu (apt) and RHEL-family (dnf) hosts with NVIDIA GPUs.
notes:
  - NVIDIA's repository is not reachable from this collection's CI; its files are unit-tested and the
    install runs there in check mode. Runtime registration and CDI run for real against stub C(nvidia-ctk) and
    C(nvidia-container-runtime) that mimic the upstream tools (C(--output) normalisation, exit codes, pass-through).
seealso:
  - module: mlinfra.docker_ml.gpu_facts
  - module: mlinfra.docker_ml.daemon_config
"""

EXAMPLES = r"""
- name: Toolkit 1.17.8 with the runtime registered
  mlinfra.docker_ml.nvidia_toolkit:
    version: 1.17.8-1

- name: Default runtime and CDI, through a mirror
  mlinfra.docker_ml.nvidia_toolkit:
    version: 1.17.8-1
    repo_base_url: https://mirror.example.com/libnvidia-container
    default_runtime: true
    cdi: true
"""

RETURN = r"""
skipped_reason:
  description: Why nothing was set up (O(skip_without_gpu=true) on a host without a usable GPU), else null.
  returned: always
  type: str
  sample: "no NVIDIA GPU on this host (NVML: driver not loaded): the NVIDIA Container Toolkit is not set up"
ansible_facts:
  description: The GPU facts.
  returned: always
  type: dict
  contains:
    mlinfra_gpu:
      description: As M(mlinfra.docker_ml.gpu_facts) returns them.
      returned: always
      type: dict
      sample: {"count": 0, "gpus": [], "failed_gpus": [], "reason": "NVIDIA driver library not found"}
nvml_bindings:
  description: The nvidia-ml-py this host read NVML with (path and sha256, or nulls), and whether the driver library loads.
  returned: always
  type: dict
  sample: {"path": "/opt/mlinfra/python/pynvml.py", "sha256": "56d4acbdecef...", "library": true}
nvml_ship:
  description: Why the controller's nvidia-ml-py must be shipped first; the action plugin acts on it.
  returned: only to the action plugin
  type: str
  sample: missing
nvml_shipped:
  description: What the action plugin copied to the host (or would, in check mode); absent when nothing.
  returned: when nvidia-ml-py was shipped
  type: str
  sample: "shipped nvidia-ml-py 13.615.71 (missing) to /opt/mlinfra/python/pynvml.py"
actions:
  description: What was done (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["write /etc/apt/sources.list.d/nvidia-container-toolkit.sources", "install nvidia-container-toolkit=1.17.8-1",
           "register runtime nvidia in /etc/docker/daemon.json"]
packages:
  description: Installed version of each toolkit package (when O(install_packages=true)).
  returned: always
  type: dict
  sample: {"nvidia-container-toolkit": "1.17.8-1"}
runtime_binary:
  description: Where the runtime binary was found, or null.
  returned: always
  type: str
  sample: /usr/bin/nvidia-container-runtime
daemon_config:
  description: The daemon.json part - changed keys, backup file, whether dockerd was restarted.
  returned: always
  type: dict
  sample: {"changed_keys": ["runtimes.nvidia"], "backup_file": null, "restarted": true}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.module_host import ModuleHost
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import gpu_host, nvidia_install
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError, failure_message


def main():
    module = AnsibleModule(
        argument_spec=dict(
            version=dict(type="str"), configure_repo=dict(type="bool", default=True),
            install_packages=dict(type="bool", default=True),
            repo_base_url=dict(type="str", default="https://nvidia.github.io/libnvidia-container"),
            gpg_key=dict(type="str", no_log=False), gpg_key_url=dict(type="str", no_log=False),
            runtime_name=dict(type="str", default="nvidia"),
            runtime_path=dict(type="str", default="nvidia-container-runtime"),
            default_runtime=dict(type="bool", default=False), cdi=dict(type="bool", default=False),
            cdi_spec_path=dict(type="path", default="/etc/cdi/nvidia.yaml"),
            daemon_json=dict(type="path", default="/etc/docker/daemon.json"),
            backup=dict(type="bool", default=True),
            restart=dict(type="str", choices=["auto", "never"], default="auto"),
            restart_timeout=dict(type="int", default=60),
            skip_without_gpu=dict(type="bool", default=False), select=dict(type="str"),
            nvml_bindings_sha256=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        nvidia_install.check_params(params)
        facts, bindings, ship = gpu_host.read(params["select"], params["nvml_bindings_sha256"])
        if ship:
            module.exit_json(changed=False, nvml_bindings=bindings, nvml_ship=ship)
        skipped = gpu_host.skip_reason(facts, params["skip_without_gpu"])
        if skipped:
            module.exit_json(changed=False, skipped_reason=skipped, ansible_facts={"mlinfra_gpu": facts},
                             nvml_bindings=bindings)
        result = nvidia_install.converge(ModuleHost(module), params, module.check_mode)
    except (MlinfraError, OSError) as exc:
        module.fail_json(msg=failure_message("nvidia_toolkit", exc), **getattr(exc, "extra", {}))
    result.update(skipped_reason=None, ansible_facts={"mlinfra_gpu": facts}, nvml_bindings=bindings)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff and any(d["before"] != d["after"] for d in diff):  # pylint: disable=protected-access
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
