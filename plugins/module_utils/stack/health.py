# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for several services at once, with one bounded deadline."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import datetime
import json
import time

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError


def models_available(address, probe, timeout=3):
    """TF Serving: every configured model reports a version AVAILABLE on its REST port."""
    # Imported here: ansible's urls pulls in ssl and urllib.request, which only a TF Serving health wait needs.
    from ansible.module_utils.urls import open_url  # pylint: disable=import-outside-toplevel
    for model in probe["models"]:
        try:
            resp = open_url("http://%s:%d/v1/models/%s" % (address, probe["port"], model), timeout=timeout,
                            use_proxy=False)
            status = json.loads(resp.read().decode("utf-8")).get("model_version_status") or []
        except Exception:  # pylint: disable=broad-except  # not up yet: refused, 404, bad JSON
            return False
        if not any(entry.get("state") == "AVAILABLE" for entry in status):
            return False
    return True


def container_address(inspect, network):
    net = ((inspect.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
    return net.get("IPAddress")


def is_ready(inspect, desired, probe_fn=models_available):
    """(ready, state words for messages)."""
    state = inspect.get("State") or {}
    status, health = state.get("Status"), (state.get("Health") or {}).get("Status")
    words = {"status": status, "health": health, "restarts": inspect.get("RestartCount", 0)}
    if status != "running":
        return False, words
    if desired.get("probe"):
        address = container_address(inspect, desired["network"])
        ok = bool(address) and probe_fn(address, desired["probe"])
        words["health"] = "models available" if ok else "models not available yet"
        return ok, words
    if health is not None:
        return health == "healthy", words
    return True, words


CRASH_LOOP_RESTARTS = 3


def _started_epoch(started_at):
    """Docker's RFC 3339 StartedAt (nanoseconds, Z) -> seconds since the epoch; None if unparsable."""
    try:
        stamp = started_at.rstrip("Z").split(".")[0]
        moment = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S")
    except (AttributeError, ValueError):
        return None
    return (moment - datetime.datetime(1970, 1, 1)).total_seconds()


def health_stalled(inspect, now=None):
    """Docker runs a container's first health probe one interval after it starts, and logs every
    probe. A running container still 'starting' with no probe logged after three intervals has lost its
    health monitor: dockerd restarted and did not resume it (moby#41871). Only a restart brings it back."""
    state = inspect.get("State") or {}
    health = state.get("Health") or {}
    if state.get("Status") != "running" or health.get("Status") != "starting" or health.get("Log"):
        return False
    check = (inspect.get("Config") or {}).get("Healthcheck") or {}
    if not check.get("Test") or check["Test"][0] == "NONE":
        return False
    started = _started_epoch(state.get("StartedAt"))
    interval, timeout = (check.get("Interval") or 30e9) / 1e9, (check.get("Timeout") or 30e9) / 1e9
    now = time.time() if now is None else now
    return started is not None and now - started > 3 * interval + timeout


def _failure(engine, details_by_service, desired_by_service, what):
    details = {}
    for service, words in details_by_service.items():
        details[service] = dict(words, logs=engine.logs(desired_by_service[service]["name"], 30))
    names = ", ".join("%s (status %s, health %s, %s restarts)" % (s, d["status"], d["health"], d["restarts"])
                      for s, d in details.items())
    return StackError("%s: %s. Their last log lines are in 'services'; the other services were left running"
                      % (what, names), services=details)


def wait_ready(engine, desired_by_service, deadline, probe_fn=models_available, sleep=time.sleep,
               clock=time.monotonic):
    """Poll every pending service until all are ready or the deadline passes; on timeout raise
    StackError naming each service, its state and its last 30 log lines. A service whose container
    restarts CRASH_LOOP_RESTARTS times while we wait fails at once: waiting longer will not help."""
    pending = dict(desired_by_service)
    delay = 0.25
    last, first_restarts, revived = {}, {}, set()
    while pending:
        for service, desired in list(pending.items()):
            inspect = engine.container(desired["name"]) or {}
            if service not in revived and health_stalled(inspect):
                engine.restart(desired["name"])
                revived.add(service)
                inspect = engine.container(desired["name"]) or {}
            ready, words = is_ready(inspect, desired, probe_fn)
            last[service] = words
            first_restarts.setdefault(service, words["restarts"])
            if ready:
                del pending[service]
        if not pending:
            return
        looping = {s: last[s] for s in pending if last[s]["restarts"] - first_restarts[s] >= CRASH_LOOP_RESTARTS}
        if looping:
            raise _failure(engine, looping, desired_by_service, "crash-looping (the container keeps exiting)")
        if clock() >= deadline:
            raise _failure(engine, {s: last[s] for s in pending}, desired_by_service, "not healthy before the deadline")
        sleep(delay)
        delay = min(delay * 2, 2.0)
