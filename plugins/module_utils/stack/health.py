# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for several services at once, with one bounded deadline."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import datetime
import json
import os
import time

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import tf_models
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError


def disk_versions(models_dir, base_path):
    """The version directories (integer names, as upstream's file system source reads them) under a model's
    base_path when /models is a host directory we can read; None when unknown."""
    if not models_dir or not base_path.startswith("/models/"):
        return None
    directory = os.path.join(models_dir, base_path[len("/models/"):])
    try:
        return [int(entry) for entry in os.listdir(directory) if entry.isdigit() and os.path.isdir(os.path.join(directory, entry))]
    except OSError:
        return []


def model_problem(model, states, on_disk):
    """Why a model's reported versions ({version: state}) do not match what its policy serves; None if they do.
    Disk unknown (a volume, another host): some version AVAILABLE and none still loading."""
    expected = tf_models.expected_versions(model["policy"], on_disk)
    if expected is None:
        if not any(state == "AVAILABLE" for state in states.values()):
            return "model %s: no version AVAILABLE" % model["name"]
        loading = sorted(v for v, state in states.items() if state in ("START", "LOADING"))
        return "model %s: version %d is %s" % (model["name"], loading[0], states[loading[0]]) if loading else None
    if not expected:
        return "model %s: no version directory under %s" % (model["name"], model["base_path"])
    for version in expected:
        if states.get(version) != "AVAILABLE":
            return "model %s: version %d is %s, not AVAILABLE" % (model["name"], version, states.get(version) or "not reported")
    extra = sorted(v for v, state in states.items() if v not in expected and state in ("START", "LOADING", "AVAILABLE"))
    if extra:
        return "model %s: version %d is still %s; its policy does not serve it" % (model["name"], extra[0], states[extra[0]])
    return None


def model_states(address, port, name, timeout):
    """{version: state} from GET /v1/models/<name>; None when the server does not know the model (404)."""
    # Imported here: ansible's urls pulls in ssl and urllib.request, which only a TF Serving health wait needs.
    from ansible.module_utils.urls import open_url  # pylint: disable=import-outside-toplevel
    from ansible.module_utils.six.moves.urllib.error import HTTPError  # pylint: disable=import-outside-toplevel
    try:
        resp = open_url("http://%s:%d/v1/models/%s" % (address, port, name), timeout=timeout, use_proxy=False)
    except HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    status = json.loads(resp.read().decode("utf-8")).get("model_version_status") or []
    return {int(entry["version"]): entry.get("state") for entry in status}


def models_problem(address, probe, timeout=3, states_fn=None):
    """TF Serving: None when every model serves the versions its policy selects (GET /v1/models/<name>) and every
    model removed from models.config is gone (unknown, or every version END); else what is still wrong."""
    states_fn = states_fn or model_states
    for model in probe["models"]:
        try:
            states = states_fn(address, probe["port"], model["name"], timeout)
        except Exception:  # pylint: disable=broad-except  # not up yet: refused, reset, bad JSON
            return "model %s: the REST API does not answer yet" % model["name"]
        if states is None:
            return "model %s: not known to the server yet" % model["name"]
        problem = model_problem(model, states, disk_versions(probe.get("models_dir"), model["base_path"]))
        if problem:
            return problem
    for name in probe.get("removed") or []:
        try:
            states = states_fn(address, probe["port"], name, timeout)
        except Exception:  # pylint: disable=broad-except
            return "model %s: the REST API does not answer yet" % name
        live = sorted(v for v, state in (states or {}).items() if state != "END")
        if live:
            return "model %s: removed from models.config but version %d is still %s" % (name, live[0], states[live[0]])
    return None


def refuse_label_moves(address, probe, moves, states_fn=None):
    """Raise StackError for a label move [(model, label, old version, new version)] to a version the running server
    does not report AVAILABLE: TF Serving moves an existing label only to an AVAILABLE version, even with
    --allow_version_labels_for_unavailable_models, and otherwise refuses the whole new config, keeping the old one
    (server_core.cc UpdateModelVersionLabelMap)."""
    states_fn = states_fn or model_states
    for model, label, before, after in moves:
        try:
            states = states_fn(address, probe["port"], model, 3) or {}
        except Exception:  # pylint: disable=broad-except  # no answer: the version's state is unknown
            states = {}
        if states.get(after) != "AVAILABLE":
            raise StackError("tf_serving: model %s label %r would move from version %d to version %d, which the running "
                             "server reports %s, not AVAILABLE. TF Serving refuses such a config and keeps its old one. "
                             "Nothing was changed. Serve that version first (a run that does not move the label), then "
                             "move the label" % (model, label, before, after, states.get(after) or "not loaded"))


def models_available(address, probe, timeout=3):
    """True when models_problem finds nothing wrong."""
    return models_problem(address, probe, timeout) is None


def container_address(inspect, network):
    net = ((inspect.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
    return net.get("IPAddress")


def is_ready(inspect, desired, probe_fn=models_problem):
    """(ready, state words for messages). probe_fn(address, probe) -> None when ready, else what is wrong."""
    state = inspect.get("State") or {}
    status, health = state.get("Status"), (state.get("Health") or {}).get("Status")
    words = {"status": status, "health": health, "restarts": inspect.get("RestartCount", 0)}
    if status != "running":
        return False, words
    if desired.get("probe"):
        address = container_address(inspect, desired["network"])
        problem = probe_fn(address, desired["probe"]) if address else "no address on network %s" % desired["network"]
        words["health"] = "models not available: %s" % problem if problem else "models available"
        return problem is None, words
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


def wait_ready(engine, desired_by_service, deadline, probe_fn=models_problem, sleep=time.sleep,
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
