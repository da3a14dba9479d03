# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring daemon.json to a desired state: plan, validate, write atomically, restart, roll back.

Shared by the daemon_config and nvidia_toolkit modules. `run` is like AnsibleModule.run_command.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import tempfile

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_json as dj
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_service as svc
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.files import atomic_write


class DaemonConfigFailed(Exception):
    """Converging daemon.json failed; extra holds machine-readable details for fail_json."""

    def __init__(self, msg, **extra):
        super(DaemonConfigFailed, self).__init__(msg)
        self.extra = extra


def plan(path, settings, remove=(), mode="merge"):
    """Return (current, raw, desired, changed) without touching anything."""
    current, raw = dj.load(path)
    desired = dj.desired_config(current, settings, remove, mode)
    return current, raw, desired, desired != current


def _validate_with_dockerd(run, desired, path):
    if not svc.supports_validate(run):
        return
    fd, tmp = tempfile.mkstemp(prefix=".daemon.json.validate.", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dj.render(desired))
        problem = svc.validate_file(run, tmp)
    finally:
        os.unlink(tmp)
    if problem:
        raise DaemonConfigFailed("dockerd --validate rejects the new %s: %s. Nothing was written."
                                 % (path, problem), dockerd_message=problem)


def converge(run, path, settings, remove=(), mode="merge", backup=False, restart="auto",
             timeout=60, check_mode=False, validate=True):
    """Returns a result dict: changed, config, changed_keys, backup_file, restarted, diff."""
    current, raw, desired, changed = plan(path, settings, remove, mode)
    result = {
        "changed": changed, "path": path, "config": desired, "changed_keys": dj.changed_paths(current, desired),
        "backup_file": None, "restarted": False,
        "diff": {"before": dj.render(current) if raw is not None else "", "after": dj.render(desired),
                 "before_header": path, "after_header": path},
    }
    if not changed:
        result["diff"]["before"] = result["diff"]["after"]
        return result
    problems = dj.validate(desired, svc.service_uses_host_flag(run))
    if problems:
        raise DaemonConfigFailed("the new %s would stop dockerd from starting: %s. Nothing was written."
                                 % (path, "; ".join(problems)), problems=problems)
    if check_mode:
        return result
    if validate:
        _validate_with_dockerd(run, desired, path)
    if backup:
        result["backup_file"] = dj.backup(path)
    was_running = restart == "auto" and svc.is_active(run)
    atomic_write(path, dj.render(desired))
    if not was_running:
        return result
    try:
        svc.restart_and_verify(run, timeout)
    except svc.DockerServiceError as exc:
        _roll_back(run, path, raw, timeout, exc)
    result["restarted"] = True
    return result


def _roll_back(run, path, raw, timeout, failure):
    """Put the previous file back and restart; always raises DaemonConfigFailed."""
    if raw is None:
        os.unlink(path)
    else:
        atomic_write(path, raw)
    reason = ("; ".join(svc.error_lines(failure.logs)) or str(failure)).rstrip(".")
    try:
        svc.restart_and_verify(run, timeout)
        state = "the previous %s was restored and dockerd is running again" % path
    except svc.DockerServiceError as again:
        state = ("the previous %s was restored but dockerd still does not start: %s"
                 % (path, "; ".join(svc.error_lines(again.logs))))
    raise DaemonConfigFailed("dockerd rejected the new daemon.json and did not start: %s. %s. "
                             "Fix the setting and rerun." % (reason, state),
                             logs=failure.logs, rolled_back=True)
