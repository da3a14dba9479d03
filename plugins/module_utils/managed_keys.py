# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which daemon.json keys the collection set, recorded on the host, so it can unset them later.

The record sits beside daemon.json (`daemon.json.managed-keys`), lists key paths per owner (the docker
role, the NVIDIA toolkit), and is written in the same transaction as daemon.json. A recorded path that
its owner no longer sets is removed from daemon.json; a key nobody recorded is never removed.

Hosts converged before the record existed: the first run records exactly the paths it sets in that
run - the file then holds our value there, either because it already did (adopted: the value equals
what we set) or because we just wrote it. A key set by an earlier release that today's settings no
longer mention cannot be told from a hand-written one, so it is left alone: run once with the old
variables after upgrading, then clear them. Pure functions except load.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError

SUFFIX = ".managed-keys"
NOTE = "Keys of daemon.json set by mlinfra.docker_ml, per owner. A key listed here that its owner no longer sets is removed."


class RecordError(MlinfraError):
    """The record cannot be read; the message says what to do."""


def record_path(daemon_json_path):
    return daemon_json_path + SUFFIX


def load(path):
    """Return ({owner: [path, ...]}, raw text or None)."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return {}, None
    try:
        owners = json.loads(raw)["owners"]
        record = {str(owner): [list(p) for p in paths] for owner, paths in owners.items()}
        if not all(isinstance(part, str) for paths in record.values() for p in paths for part in p):
            raise ValueError("a key path holds a non-string")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RecordError("%s is not a record this collection wrote (%s). Nothing was written: delete it (the "
                          "collection then only adds keys until it records them again) and rerun" % (path, exc))
    return record, raw


def render(record):
    """The record's file text, or None when no owner records anything (the file is then removed)."""
    owners = {owner: sorted(paths) for owner, paths in sorted(record.items()) if paths}
    if not owners:
        return None
    return json.dumps({"comment": NOTE, "owners": owners}, indent=2, sort_keys=True) + "\n"


def leaf_paths(settings, prefix=()):
    """Key paths of the values settings sets: nested objects are followed, anything else (lists, an empty
    object) is a leaf. {"log-opts": {"max-size": "10m"}} -> [["log-opts", "max-size"]]."""
    paths = []
    for key, value in sorted(settings.items()):
        if isinstance(value, dict) and value:
            paths.extend(leaf_paths(value, prefix + (key,)))
        else:
            paths.append(list(prefix + (key,)))
    return paths


def _overlaps(path, others):
    """True if path is equal to, inside, or above any of others (removing it would touch theirs)."""
    return any(path[:len(other)] == other or other[:len(path)] == path for other in others)


def stale_paths(record, owner, wanted):
    """Paths owner recorded and no longer sets, that no other owner records: the ones to remove."""
    others = [p for name, paths in record.items() if name != owner for p in paths]
    return [p for p in record.get(owner, []) if not _overlaps(p, wanted) and not _overlaps(p, others)]


def updated(record, owner, wanted, removed=()):
    """The record after this run: owner's entry becomes what it sets now; paths removed explicitly (given
    as key paths) and everything below them leave every owner's entry."""
    def kept(paths):
        return [p for p in paths if not any(p[:len(gone)] == gone for gone in removed)]
    result = {name: kept(paths) for name, paths in record.items() if name != owner}
    result[owner] = kept(wanted)
    return {name: paths for name, paths in result.items() if paths}
