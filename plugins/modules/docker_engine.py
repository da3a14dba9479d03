#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: docker_engine
short_description: Install Docker Engine (distribution or upstream packages) and keep it running
version_added: 0.1.0
description:
  - Installs Docker Engine from the distribution (C(docker.io) on Debian/Ubuntu, C(moby-engine) on
    Fedora) or from Docker's upstream C(docker-ce) repository, optionally pinned to a
    version (exact or glob), and keeps the service enabled and running, with systemd or with the
    init script where there is no systemd.
  - RHEL and its rebuilds ship no C(moby-engine) - O(channel=auto) picks the upstream repository there
    and the distribution elsewhere; O(channel=distro) on them fails before anything is changed.
  - A package on hold (C(apt-mark hold), C(dnf versionlock)) counts as installed. When a hold blocks the
    requested version (or removal) the task fails and says so, changing nothing. O(hold=true) holds the
    engine packages at the installed (pinned) version, so unattended upgrades do not restart dockerd.
  - The upstream repository is written as a keyring plus a deb822 C(.sources) file with C(Signed-By)
    (a C(.repo) file with dnf). Leftover C(docker.list) entries and C(apt-key) keyrings for the same
    host, which make apt fail with "Conflicting values set for option Signed-By", are removed.
  - Adds users to the C(docker) group.
author:
  - mlinfra contributors (@mlinfra)
options:
  channel:
    description:
      - V(distro) installs the distribution's package; V(upstream) uses Docker's C(docker-ce) repository.
      - V(auto) is V(upstream) on RHEL, CentOS Stream, Rocky and Alma Linux, V(distro) elsewhere.
    type: str
    choices: [auto, distro, upstream]
    default: auto
  version:
    description:
      - Version pin for the engine (and CLI) packages, exact or a glob, matched against the full
        package version (C(5:27.3.1-1~debian.12~bookworm)) or its upstream part (C(27.3.1), C(27.3.*)).
      - Empty means any version (with O(state=latest), the newest).
    type: str
  state:
    description:
      - V(present) installs what is missing (and moves to the pinned version); V(latest) also upgrades;
        V(absent) removes the packages (data under /var/lib/docker is kept).
    type: str
    choices: [present, latest, absent]
    default: present
  plugins:
    description: With O(channel=upstream), also install the buildx and compose plugins.
    type: bool
    default: true
  extra_packages:
    description: More packages to install alongside the engine.
    type: list
    elements: str
    default: []
  sdk:
    description:
      - Install the Docker SDK for Python (O(sdk_package)) with the engine, for community.docker modules and
        your own tools. V(auto) installs it except on RHEL-family hosts, where it is in EPEL only.
    type: str
    choices: [auto, always, never]
    default: never
  sdk_package:
    description: The distribution package that provides the Docker SDK for Python.
    type: str
    default: python3-docker
  hold:
    description:
      - Hold the engine packages (C(docker.io) / C(moby-engine), or C(docker-ce), C(docker-ce-cli) and
        C(containerd.io)) at the installed version. A new O(version) pin moves the hold with it.
      - V(false) releases the holds this module set (recorded in C(/var/lib/mlinfra/docker-engine-holds.json));
        a hold set by hand is never released, and counts as installed.
    type: bool
    default: false
  install_recommends:
    description: Let apt install recommended packages (dnf weak dependencies) too.
    type: bool
    default: false
  repo_base_url:
    description:
      - Base URL of Docker's package repository (set a mirror here). The distribution path
        (C(debian), C(ubuntu), C(rhel), C(fedora), C(centos)) is appended.
    type: str
    default: https://download.docker.com/linux
  gpg_key:
    description:
      - The repository's OpenPGP public key itself (armored text). Takes precedence over O(gpg_key_url).
    type: str
  gpg_key_url:
    description: Where to download the repository key from; defaults to O(repo_base_url)/<distro>/gpg.
    type: str
  manage_service:
    description: Keep the docker service enabled at boot and running.
    type: bool
    default: true
  users:
    description: Users to add to the C(docker) group. They must exist.
    type: list
    elements: str
    default: []
  daemon:
    description:
      - dockerd's configuration in the same module run, exactly as M(mlinfra.docker_ml.daemon_config) does it
        (merge into daemon.json, a record of the keys set under O(daemon.owner), the proxy drop-in, C(dockerd
        --validate), atomic write, restart and roll back). See that module for the full behaviour.
      - The file is written B(before) the packages are installed, so a first install starts dockerd once, with
        C(data-root) and the storage settings in place before dockerd creates its state. If the engine then
        does not come up, the previous files are put back and the task fails saying so.
      - Omitted, daemon.json is left alone. Ignored with O(state=absent).
    type: dict
    suboptions:
      path:
        description: The daemon configuration file.
        type: path
        default: /etc/docker/daemon.json
      settings:
        description: Keys to set, merged into the file (O(daemon.mode=merge)) or making up the whole file (V(replace)).
        type: dict
        default: {}
      remove:
        description: Keys to delete; a string is a top-level key, a list of strings a path into nested objects.
        type: list
        elements: raw
        default: []
      mode:
        description: V(merge) keeps keys O(daemon.settings) does not mention; V(replace) writes only them.
        type: str
        choices: [merge, replace]
        default: merge
      backup:
        description: Keep a timestamped copy of the previous file next to it when it changes.
        type: bool
        default: false
      restart:
        description: V(auto) restarts a running dockerd on a real change (rolled back if it does not come back); V(never) only writes.
        type: str
        choices: [auto, never]
        default: auto
      restart_timeout:
        description: Seconds to wait for the Docker API after a (re)start.
        type: int
        default: 60
      validate:
        description: Run C(dockerd --validate --config-file) on the new content first, where dockerd is installed and supports it.
        type: bool
        default: true
      owner:
        description: Name under which the keys set are recorded beside daemon.json, so that clearing a setting later removes its key.
        type: str
      proxy:
        description:
          - dockerd's proxy as a systemd drop-in for C(docker.service); omitted leaves the drop-in alone, neither
            O(daemon.proxy.http) nor O(daemon.proxy.https) removes it. Passwords in the URLs stay out of the output.
        type: dict
        suboptions:
          http:
            description: C(HTTP_PROXY).
            type: str
          https:
            description: C(HTTPS_PROXY).
            type: str
          no_proxy:
            description: C(NO_PROXY) entries.
            type: list
            elements: str
            default: []
attributes:
  check_mode:
    support: full
    description: Reports the repository files, packages, daemon.json and service actions a real run would take.
  diff_mode:
    support: partial
    description: Shows daemon.json (and its key record, the proxy drop-in) before and after; package and repository changes are listed in RV(actions).
  platform:
    platforms: posix
    support: full
    description: Debian, Ubuntu (apt) and RHEL-family (dnf) hosts.
notes:
  - CI exercises the V(distro) channel end to end on Debian 12 hosts. The V(upstream) channel's files are
    unit-tested and run in check mode there, because Docker's repository is not reachable from CI.
seealso:
  - module: mlinfra.docker_ml.daemon_config
"""

EXAMPLES = r"""
- name: Docker from Debian/Ubuntu, running, with a deploy user in the docker group
  mlinfra.docker_ml.docker_engine:
    users: [deploy]

- name: docker-ce 27.3 from Docker's repository, through a mirror
  mlinfra.docker_ml.docker_engine:
    channel: upstream
    version: "27.3.*"
    repo_base_url: https://mirror.example.com/docker-ce/linux

- name: Docker held at the pinned version (no surprise restarts from unattended upgrades)
  mlinfra.docker_ml.docker_engine:
    version: "20.10.*"
    hold: true

- name: Docker and its daemon.json in one task (the role does this)
  mlinfra.docker_ml.docker_engine:
    daemon:
      settings:
        data-root: /data/docker
        log-driver: json-file
        log-opts: {max-size: 10m, max-file: "3"}
      owner: docker_role
      backup: true

- name: What would change (nothing is touched)
  mlinfra.docker_ml.docker_engine:
    channel: upstream
  check_mode: true
"""

RETURN = r"""
channel:
  description: The channel used (O(channel=auto) resolved for this host).
  returned: always
  type: str
  sample: distro
actions:
  description: What was done (or would be, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["write /etc/apt/sources.list.d/docker.sources", "install docker-ce=27.3.*", "start docker.service"]
packages:
  description: Installed version of each managed package (null if not installed).
  returned: always
  type: dict
  sample: {"docker.io": "20.10.24+dfsg1-1+deb12u1"}
repo_changed:
  description: Repository files written or removed.
  returned: always
  type: list
  elements: str
  sample: ["/etc/apt/keyrings/docker.asc", "/etc/apt/sources.list.d/docker.sources"]
version:
  description: The running engine's version (null if it is not running, e.g. in check mode before install).
  returned: always
  type: str
  sample: 20.10.24+dfsg1
api_version:
  description: The running engine's API version.
  returned: always
  type: str
  sample: "1.41"
storage_driver:
  description: The running engine's storage driver.
  returned: always
  type: str
  sample: overlay2
daemon:
  description: The daemon.json part, as M(mlinfra.docker_ml.daemon_config) returns it (config, changed_keys, path, backup_file, proxy_changed, restarted).
  returned: when O(daemon) is given and O(state) is not V(absent)
  type: dict
  sample: {"changed": true, "changed_keys": ["data-root"], "path": "/etc/docker/daemon.json", "backup_file": null,
           "proxy_changed": false, "restarted": false, "config": {"data-root": "/data/docker"}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.module_host import ModuleHost
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_options, docker_install
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.docker_proxy import secrets
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError, failure_message


def main():
    module = AnsibleModule(
        argument_spec=dict(
            channel=dict(type="str", choices=["auto", "distro", "upstream"], default="auto"),
            version=dict(type="str"),
            state=dict(type="str", choices=["present", "latest", "absent"], default="present"),
            plugins=dict(type="bool", default=True),
            extra_packages=dict(type="list", elements="str", default=[]),
            sdk=dict(type="str", choices=["auto", "always", "never"], default="never"),
            sdk_package=dict(type="str", default="python3-docker"),
            hold=dict(type="bool", default=False),
            install_recommends=dict(type="bool", default=False),
            repo_base_url=dict(type="str", default="https://download.docker.com/linux"),
            gpg_key=dict(type="str", no_log=False),
            gpg_key_url=dict(type="str", no_log=False),
            manage_service=dict(type="bool", default=True),
            users=dict(type="list", elements="str", default=[]),
            daemon=dict(type="dict", options=daemon_options.argument_spec()),
        ),
        supports_check_mode=True,
    )
    try:
        if module.params["daemon"]:  # before anything can fail with them in a message
            module.no_log_values.update(secrets(module.params["daemon"]["proxy"]))
        docker_install.check_params(module.params)
        result = docker_install.converge(ModuleHost(module), module.params, module.check_mode)
    except (MlinfraError, OSError) as exc:
        module.fail_json(msg=failure_message("docker_engine", exc), **getattr(exc, "extra", {}))
    diff = (result.get("daemon") or {}).pop("diff", None)
    if diff and module._diff and result["daemon"]["changed"]:  # pylint: disable=protected-access
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
