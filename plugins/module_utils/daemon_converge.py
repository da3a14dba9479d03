# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring dockerd's configuration to a desired state: plan, validate, write atomically, restart, roll back.

One transaction over up to three files: daemon.json (through a symlink to its target), the record of
the keys the collection set (managed_keys), and the proxy drop-in for docker.service. Shared by the
daemon_config and nvidia_toolkit modules. `run` is like AnsibleModule.run_command.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import tempfile

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError, MlinfraError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_json as dj
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_proxy as dp
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_service as svc
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import managed_keys as mk
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.files import atomic_write, read_bytes


class DaemonConfigFailed(MlinfraError):
    """Converging daemon.json failed; extra holds machine-readable details for fail_json."""


def check_restart_timeout(timeout):
    if timeout < 1:
        raise InputError("restart_timeout must be at least 1 second, got %d" % timeout)


def check_params(params, prefix=""):
    """Input checks of the daemon options (daemon_options.argument_spec) the spec cannot express."""
    try:
        check_restart_timeout(params["restart_timeout"])
    except InputError as exc:
        raise InputError(prefix + str(exc)) from exc


def from_params(run, params, check_mode):
    """converge() with the daemon options as daemon_options.argument_spec() parses them."""
    return converge(run, params["path"], params["settings"], params["remove"], params["mode"], params["backup"],
                    params["restart"], params["restart_timeout"], check_mode, params["validate"],
                    owner=params["owner"], proxy=params["proxy"])


def plan(path, settings, remove=(), mode="merge", owner=None):
    """What the run would do, touching nothing: a dict of current, raw, bom, desired, changed, record, new_record.
    With an owner, keys it recorded earlier and no longer sets are removed too (see managed_keys)."""
    current, raw, bom = dj.load(path)
    removed = [dj.key_path(item) for item in remove or ()]
    record, _record_raw = mk.load(mk.record_path(path))
    new_record = record
    if owner:
        wanted = mk.leaf_paths(settings or {})
        removed += mk.stale_paths(record, owner, wanted)
        new_record = mk.updated(record, owner, wanted, removed)
    desired = dj.desired_config(current, settings, removed, mode)
    return {"current": current, "raw": raw, "bom": bom, "desired": desired, "changed": desired != current,
            "record": record, "new_record": new_record}


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


def _file_diff(path, before, after):
    return {"before": before or "", "after": after or "", "before_header": path, "after_header": path}


class _Files:
    """The files of one transaction: {path: (previous bytes or None, new text or None)}; written
    together, restored together."""

    def __init__(self):
        self.changes = {}

    def add(self, path, previous, new):
        self.changes[path] = (previous, new)

    def write(self):
        for path, (_previous, new) in self.changes.items():
            _put(path, new)

    def restore(self):
        for path, (previous, _new) in self.changes.items():
            _put(path, previous)


def _put(path, content):
    if content is not None:
        atomic_write(path, content)
    elif os.path.lexists(path):
        os.unlink(path)


def converge(run, path, settings, remove=(), mode="merge", backup=False, restart="auto",
             timeout=60, check_mode=False, validate=True, owner=None, proxy=None, dropin=dp.DROPIN):
    """Returns a result dict: changed, config, changed_keys, backup_file, restarted, diff (a list, one
    entry per file that changes, daemon.json first) and undo (a callable that puts the previous files back,
    for a caller whose later step fails because of them; it restarts nothing). proxy None leaves the
    drop-in alone; {} removes it."""
    target = dj.write_target(path)
    planned = plan(path, settings, remove, mode, owner)
    current, raw, bom, desired, changed = (planned[k] for k in ("current", "raw", "bom", "desired", "changed"))
    record, new_record = planned["record"], planned["new_record"]
    header = path if target == path else "%s (symlink; written to %s)" % (path, target)
    before = dj.render(current) if raw is not None else ""
    if bom:
        # dockerd reads a BOM from 23.0 on (moby#44770, #44790); 20.10 (Debian 12's docker.io) refuses to start
        # with one. Dropping it keeps the meaning for every version; no restart, since the meaning is the same.
        header += " (had a %s byte-order mark; written back without it)" % bom
        before = "# %s byte-order mark\n%s" % (bom, before)
    result = {"changed": changed, "path": path, "config": desired, "changed_keys": dj.changed_paths(current, desired),
              "backup_file": None, "restarted": False, "diff": [_file_diff(header, before, dj.render(desired))]}
    files = _Files()
    if changed or bom:
        files.add(target, read_bytes(target), dj.render(desired))
    record_file = mk.record_path(path)
    if mk.render(new_record) != mk.render(record):
        files.add(record_file, read_bytes(record_file), mk.render(new_record))
        result["diff"].append(_file_diff(record_file, mk.render(record), mk.render(new_record)))
    dropin_changed = False
    if proxy is not None:
        wanted, previous = dp.render(proxy), read_bytes(dropin)
        dropin_changed = (wanted or "").encode("utf-8") != (previous or b"")
        if dropin_changed:
            if wanted and not svc.has_systemd():
                raise DaemonConfigFailed("a proxy for dockerd is a systemd drop-in, and this host does not run systemd. "
                                         "Nothing was written: unset the proxy, or set it in the init script's environment")
            files.add(dropin, previous, wanted)
            old_text = previous.decode("utf-8", "replace") if previous else ""
            result["diff"].append(_file_diff(dropin, dp.redact(old_text), dp.redact(wanted or "")))
    if not changed and not bom:
        result["diff"][0]["before"] = result["diff"][0]["after"]
    result["changed"] = bool(files.changes)
    result["proxy_changed"] = dropin_changed
    result["undo"] = lambda: None
    if not files.changes:
        return result
    problems = dj.validate(desired, svc.service_uses_host_flag(run)) if changed else []
    if problems:
        raise DaemonConfigFailed("the new %s would stop dockerd from starting: %s. Nothing was written."
                                 % (path, "; ".join(problems)), problems=problems)
    if check_mode:
        return result
    if validate and changed:
        _validate_with_dockerd(run, desired, target)
    if backup and target in files.changes:
        result["backup_file"] = dj.backup(target)
    was_running = restart == "auto" and (changed or dropin_changed) and svc.is_active(run)
    files.write()
    result["undo"] = lambda: _undo(run, files, dropin_changed)
    try:
        if dropin_changed:
            svc.daemon_reload(run)
        if was_running:
            svc.restart_and_verify(run, timeout, svc.api_address(desired))
    except svc.DockerServiceError as exc:
        _roll_back(run, files, dropin_changed, timeout, exc, svc.api_address(current))
    result["restarted"] = was_running
    return result


def _undo(run, files, dropin_changed):
    files.restore()
    if dropin_changed:
        svc.daemon_reload(run)


def _roll_back(run, files, dropin_changed, timeout, failure, base_url):
    """Put the previous files back and restart; always raises DaemonConfigFailed."""
    files.restore()
    if dropin_changed:
        try:
            svc.daemon_reload(run)
        except svc.DockerServiceError:
            pass  # the restart below reports what state dockerd is in
    reason = ("; ".join(svc.error_lines(failure.logs)) or str(failure)).rstrip(".")
    what = "configuration (%s)" % ", ".join(sorted(files.changes))
    try:
        svc.restart_and_verify(run, timeout, base_url)
        state = "the previous %s was restored and dockerd is running again" % what
    except svc.DockerServiceError as again:
        state = ("the previous %s was restored but dockerd still does not start: %s"
                 % (what, "; ".join(svc.error_lines(again.logs))))
    raise DaemonConfigFailed("dockerd rejected the new configuration and did not start: %s. %s. "
                             "Fix the setting and rerun." % (dp.redact(reason), state),
                             logs=[dp.redact(line) for line in failure.logs], rolled_back=True)
