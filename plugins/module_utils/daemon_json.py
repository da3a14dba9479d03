# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""daemon.json as data: load, deep-merge, remove, compare, render, validate, backup.

Pure functions except load/atomic_write/backup, which touch only the file they are given.
No Ansible imports: unit tests use this directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import codecs
import copy
import json
import math
import os
import shutil
import time

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError


class DaemonJsonError(MlinfraError):
    """daemon.json cannot be read, merged or written as asked; the message says what to do."""


# A byte-order mark picks the encoding and is dropped, as dockerd reads daemon.json (moby decodes it with
# golang.org/x/text's BOMOverride: UTF-8 or UTF-16 by BOM, UTF-8 without one; then trims whitespace).
BOMS = ((codecs.BOM_UTF8, "utf-8", "UTF-8"), (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"))


def decode(data, path):
    """File bytes -> (text, name of the byte-order mark or None)."""
    for bom, codec, name in BOMS:
        if data.startswith(bom):
            encoded, found = data[len(bom):], name
            break
    else:
        encoded, codec, found = data, "utf-8", None
    try:
        return encoded.decode(codec), found
    except UnicodeDecodeError as exc:
        raise DaemonJsonError("%s is not %s text (%s); fix or remove it, then rerun" % (path, found or "UTF-8", exc))


def load(path):
    """Return (parsed dict, text or None if missing, byte-order mark name or None). Empty is {}."""
    try:
        with open(path, "rb") as handle:
            raw, bom = decode(handle.read(), path)
    except FileNotFoundError:
        return {}, None, None
    if not raw.strip():
        return {}, raw, bom
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise DaemonJsonError(
            "%s is not valid JSON (%s). dockerd will not start with it either. The file was left "
            "untouched: fix it by hand (or restore a backup), then rerun" % (path, exc))
    if not isinstance(data, dict):
        raise DaemonJsonError("%s holds a JSON %s, not an object; dockerd expects an object"
                              % (path, type(data).__name__))
    return data, raw, bom


def write_target(path):
    """The file to write: path itself, or where a symlink at path points (configuration kept in a
    config repository stays there; replacing the link would silently stop it being managed)."""
    if not os.path.islink(path):
        return path
    target = os.path.realpath(path)
    if os.path.islink(target):
        raise DaemonJsonError("%s is a symlink loop (through %s). Nothing was written: fix the link, then rerun" % (path, target))
    if not os.path.isdir(os.path.dirname(target)):
        raise DaemonJsonError("%s is a symlink to %s, whose directory does not exist. Nothing was written: fix "
                              "or remove the link, then rerun" % (path, target))
    return target


def deep_merge(current, settings):
    """Return current with settings merged in: nested dicts merge key by key; anything else
    (lists included) replaces. Neither argument is modified."""
    merged = copy.deepcopy(current)
    for key, value in settings.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def key_path(item):
    """A key to remove: a string is a top-level key, a list is a path into nested objects."""
    if isinstance(item, str):
        return [item]
    if isinstance(item, (list, tuple)) and item and all(isinstance(part, str) for part in item):
        return list(item)
    raise DaemonJsonError("remove: %r is neither a key nor a list of keys (e.g. ['log-opts', 'max-size'])"
                          % (item,))


def remove_keys(config, paths):
    """Return config without the given key paths; missing keys are ignored; objects left empty
    by a nested removal are removed too."""
    result = copy.deepcopy(config)
    for item in paths:
        path = key_path(item)
        parents = [result]
        node = result
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                break
            parents.append(node)
        else:
            node.pop(path[-1], None)
            for depth in range(len(path) - 1, 0, -1):
                if parents[depth]:
                    break
                parents[depth - 1].pop(path[depth - 1], None)
    return result


def desired_config(current, settings, remove=(), mode="merge"):
    """What daemon.json should hold: settings merged into (or replacing) current, minus remove."""
    base = {} if mode == "replace" else current
    return remove_keys(deep_merge(base, settings or {}), remove or ())


def _check_json_values(value, where):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise DaemonJsonError("settings%s is %r, which JSON cannot hold" % (where, value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DaemonJsonError("settings%s has a non-string key %r" % (where, key))
            _check_json_values(item, "%s.%s" % (where, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_values(item, "%s[%d]" % (where, index))
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise DaemonJsonError("settings%s is a %s, which JSON cannot hold" % (where, type(value).__name__))


def validate(config, service_uses_host_flag=False):
    """Problems dockerd would refuse to start with, found before anything is written."""
    _check_json_values(config, "")
    problems = []
    if "hosts" in config and service_uses_host_flag:
        problems.append("'hosts' is set in daemon.json while the docker service already passes -H "
                        "(systemd's `-H fd://`): dockerd refuses to start with both. Remove 'hosts' "
                        "or override ExecStart in a systemd drop-in")
    for key in ("log-opts", "runtimes", "features", "default-ulimits"):
        if key in config and not isinstance(config[key], dict):
            problems.append("'%s' must be an object, got %s" % (key, type(config[key]).__name__))
    for key in ("registry-mirrors", "insecure-registries", "default-address-pools", "dns"):
        if key in config and not isinstance(config[key], list):
            problems.append("'%s' must be a list, got %s" % (key, type(config[key]).__name__))
    if "log-opts" in config and isinstance(config["log-opts"], dict):
        bad = sorted(k for k, v in config["log-opts"].items() if not isinstance(v, str))
        if bad:
            problems.append("log-opts values must be strings (dockerd rejects numbers): %s" % ", ".join(bad))
    return problems


def render(config):
    """The canonical file text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n"


def changed_paths(before, after, prefix=""):
    """Dotted paths whose values differ between two configs (for messages and tests)."""
    paths = []
    for key in sorted(set(before) | set(after)):
        path = prefix + key
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            paths.extend(changed_paths(old, new, path + "."))
        elif key not in before or key not in after or old != new:
            paths.append(path)
    return paths


def backup(path):
    """Copy path to path.<timestamp>.bak (metadata kept); return the backup path or None."""
    if not os.path.exists(path):
        return None
    dest = "%s.%s.bak" % (path, time.strftime("%Y%m%d-%H%M%S"))
    shutil.copy2(path, dest)
    return dest
