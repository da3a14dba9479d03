#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: daemon_config
short_description: Own /etc/docker/daemon.json by merging, with atomic writes and restart rollback
version_added: 0.1.0
description:
  - Deep-merges O(settings) into the existing daemon.json (nested objects such as C(log-opts),
    C(runtimes) and C(features) merge key by key; lists and scalars replace), removes the keys in
    O(remove), and leaves every other key alone, including keys written by other tools.
  - Compares parsed JSON, so a file that already means the desired configuration is not rewritten
    and dockerd is not restarted.
  - Writes atomically (temporary file in the same directory, fsync, rename), keeps owner and mode,
    sorts keys and ends with a newline.
  - Validates before writing, in this order - JSON-serialisable values, known conflicts (C(hosts) together with
    systemd's C(-H fd://)), value shapes, and C(dockerd --validate) where the installed dockerd has it.
  - With O(restart=auto), restarts dockerd on a real change and waits for its API. If dockerd does
    not come back, restores the previous file, restarts again and fails with dockerd's own log lines.
  - An existing file that is not valid JSON is never overwritten; the task fails and says so. A file that
    starts with a byte-order mark is read as dockerd 23.0 and later read it, and written back without the
    mark (dockerd 20.10 refuses to start with one), without a restart when nothing else changed.
  - A daemon.json that is a symlink (into a configuration repository, say) stays one; the new content is
    written, atomically, to the file it points to.
  - With O(owner), the key paths of O(settings) are recorded in C(<path>.managed-keys) under that name, in
    the same transaction as daemon.json. A path recorded earlier and no longer in O(settings) is removed,
    unless another owner records it; keys nobody recorded are never removed.
  - With O(proxy), dockerd's C(HTTP_PROXY), C(HTTPS_PROXY) and C(NO_PROXY) are kept in a systemd drop-in for
    C(docker.service) (C(/etc/systemd/system/docker.service.d/mlinfra-proxy.conf)); a change reloads systemd
    and restarts dockerd, rolled back with daemon.json if dockerd does not come back.
author:
  - mlinfra contributors (@mlinfra)
options:
  path:
    description: The daemon configuration file.
    type: path
    default: /etc/docker/daemon.json
  settings:
    description:
      - Keys to set. Merged into the file (O(mode=merge)) or making up the whole file (O(mode=replace)).
    type: dict
    default: {}
  remove:
    description:
      - Keys to delete. A string is a top-level key; a list of strings is a path into nested objects,
        for example C([log-opts, max-file]). Missing keys are ignored.
    type: list
    elements: raw
    default: []
  mode:
    description:
      - V(merge) keeps keys that O(settings) does not mention; V(replace) writes only O(settings).
    type: str
    choices: [merge, replace]
    default: merge
  backup:
    description: Keep a timestamped copy of the previous file next to it when it changes.
    type: bool
    default: false
  restart:
    description:
      - V(auto) restarts a running dockerd when the file really changed, and rolls back if it does not
        come back. V(never) only writes the file.
    type: str
    choices: [auto, never]
    default: auto
  restart_timeout:
    description: Seconds to wait for the Docker API after a restart.
    type: int
    default: 60
  validate:
    description: Run C(dockerd --validate --config-file) on the new content first, where supported.
    type: bool
    default: true
  owner:
    description:
      - Name under which the keys of O(settings) are recorded beside daemon.json, so that clearing a
        setting later removes its key. Without it, O(settings) only ever adds or changes keys.
      - Hosts set up before the record existed - the first run records the keys it sets in that run
        (adopting those whose value already equals it); a key an earlier run set and that O(settings) no
        longer mentions is left alone, as it cannot be told from a hand-written one.
    type: str
  proxy:
    description:
      - dockerd's proxy, as a systemd drop-in for C(docker.service). Omit it to leave the drop-in alone;
        with neither O(proxy.http) nor O(proxy.https) set, the drop-in is removed.
      - Passwords in the URLs are kept out of the output and the diff.
    type: dict
    suboptions:
      http:
        description: C(HTTP_PROXY), e.g. C(http://proxy.example.com:3128) or C(http://user:password@proxy:3128).
        type: str
      https:
        description: C(HTTPS_PROXY).
        type: str
      no_proxy:
        description: C(NO_PROXY) - hosts, domains and addresses that bypass the proxy.
        type: list
        elements: str
        default: []
attributes:
  check_mode:
    support: full
    description: Reports whether the file would change and the resulting configuration.
  diff_mode:
    support: full
    description: Shows daemon.json before and after as canonical JSON, and the key record and proxy drop-in
      when they change (proxy passwords masked).
  platform:
    platforms: posix
    support: full
    description: Linux hosts with Docker Engine, with or without systemd.
notes:
  - Semantically equal files are left as they are, even if formatted differently.
seealso:
  - module: mlinfra.docker_ml.docker_engine
"""

EXAMPLES = r"""
- name: Log rotation and ulimits, keeping every other key
  mlinfra.docker_ml.daemon_config:
    settings:
      log-driver: json-file
      log-opts:
        max-size: 10m
        max-file: "3"
      default-ulimits:
        nofile: {Name: nofile, Soft: 64000, Hard: 64000}
      live-restore: true

- name: Drop a debug flag someone left behind, with a backup
  mlinfra.docker_ml.daemon_config:
    remove:
      - debug
      - [log-opts, labels]
    backup: true

- name: Registries, recorded so that emptying the list later removes the key; dockerd behind a proxy
  mlinfra.docker_ml.daemon_config:
    settings:
      insecure-registries: ["registry.lab:5000"]
    owner: my_play
    proxy:
      http: http://proxy.example.com:3128
      https: http://proxy.example.com:3128
      no_proxy: [localhost, 127.0.0.1, .internal]

- name: Write the file only; restart later yourself
  mlinfra.docker_ml.daemon_config:
    settings:
      registry-mirrors: ["https://mirror.example.com"]
    restart: never
"""

RETURN = r"""
config:
  description: The configuration the file holds after the task (or would hold, in check mode).
  returned: always
  type: dict
  sample: {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "debug": true}
changed_keys:
  description: Dotted paths of the keys that changed.
  returned: always
  type: list
  elements: str
  sample: ["log-opts.max-size", "live-restore"]
path:
  description: The file managed.
  returned: always
  type: str
  sample: /etc/docker/daemon.json
backup_file:
  description: The backup made of the previous file, if any.
  returned: changed and O(backup=true)
  type: str
  sample: /etc/docker/daemon.json.20261123-101500.bak
proxy_changed:
  description: Whether the proxy drop-in changed (or would, in check mode).
  returned: always
  type: bool
  sample: false
restarted:
  description: Whether dockerd was restarted (and came back).
  returned: always
  type: bool
  sample: true
logs:
  description: dockerd's last log lines when a restart failed and the file was rolled back.
  returned: failure
  type: list
  elements: str
  sample: ['failed to start daemon: error initializing graphdriver: no-such-driver']
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_converge, daemon_options
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.docker_proxy import secrets
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError, failure_message


def main():
    module = AnsibleModule(
        argument_spec=daemon_options.argument_spec(),
        supports_check_mode=True,
    )
    params = module.params

    def run(argv):
        return module.run_command(argv)

    try:
        module.no_log_values.update(secrets(params["proxy"]))  # before anything can fail with them in a message
        daemon_converge.check_params(params)
        result = daemon_converge.from_params(run, params, module.check_mode)
    except MlinfraError as exc:
        module.fail_json(msg=failure_message("daemon_config", exc), path=params["path"], **exc.extra)
    diff = result.pop("diff")
    result.pop("undo")
    if module._diff and result["changed"]:  # pylint: disable=protected-access
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
