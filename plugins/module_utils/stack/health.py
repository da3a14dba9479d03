# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for several services at once, with one bounded deadline."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import time

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.engine import StackError

from ansible.module_utils.urls import open_url


def models_available(address, probe, timeout=3):
    """TF Serving: every configured model reports a version AVAILABLE on its REST port."""
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


def wait_ready(engine, desired_by_service, deadline, probe_fn=models_available, sleep=time.sleep,
               clock=time.monotonic):
    """Poll every pending service until all are ready or the deadline passes; on timeout raise
    StackError naming each service, its state and its last 30 log lines."""
    pending = dict(desired_by_service)
    delay = 0.25
    last = {}
    while pending:
        for service, desired in list(pending.items()):
            inspect = engine.container(desired["name"]) or {}
            ready, words = is_ready(inspect, desired, probe_fn)
            last[service] = words
            if ready:
                del pending[service]
        if not pending:
            return
        if clock() >= deadline:
            details = {}
            for service, desired in pending.items():
                details[service] = dict(last[service], logs=engine.logs(desired["name"], 30))
            names = ", ".join("%s (status %s, health %s, %s restarts)" % (s, d["status"], d["health"], d["restarts"])
                              for s, d in details.items())
            raise StackError("not healthy before the deadline: %s. Their last log lines are in 'services'; the "
                             "other services were left running" % names, services=details)
        sleep(delay)
        delay = min(delay * 2, 2.0)
