# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Package holds the collection sets (docker_hold), recorded on the host so that it can release them.

A hold found in place (apt-mark hold / dnf versionlock by hand) is not recorded, so hold=false never
releases it. `manager` is a pkg_manager Apt or Dnf whose `held` set is filled in.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import files

RECORD = "/var/lib/mlinfra/docker-engine-holds.json"


def recorded(path=RECORD):
    """The packages this collection put on hold, from its record (none if there is no record)."""
    data = files.read_bytes(path)
    try:
        return sorted(json.loads(data.decode("utf-8"))["held_by_mlinfra"]) if data else []
    except (ValueError, KeyError, TypeError):
        return []  # an unreadable record releases nothing: never a hold we cannot prove is ours


def movable(packages, hold, ours):
    """Held packages a change may unhold and hold again: all engine packages when the role manages holds
    (hold=true), otherwise only those it held itself (released anyway)."""
    return list(packages) if hold else [p for p in packages if p in ours]


def ensure_holds(manager, packages, hold, check_mode, path=RECORD):
    """hold: put the engine packages on hold, recording the ones this run held. not hold: release the
    holds recorded as ours. Returns the actions (planned only, in check mode)."""
    ours = recorded(path)
    if hold:
        missing = [p for p in packages if p not in manager.held]
        if missing and not check_mode:
            manager.hold(missing)
            files.ensure_content(path, json.dumps({"held_by_mlinfra": sorted(set(ours) | set(missing))}) + "\n", False)
        return ["hold %s" % p for p in missing]
    release = [p for p in ours if p in manager.held]
    if release and not check_mode:
        manager.hold(release, on=False)
    actions = ["release the hold on %s" % p for p in release]
    if ours and not release:
        actions.append("forget %s (its holds were released by hand)" % path)
    if ours:
        files.ensure_absent(path, check_mode)
    return actions
