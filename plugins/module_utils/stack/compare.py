# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`docker inspect` -> the desired-state shape, and the differences that matter (pure).

Only fields we set are compared, with Docker's own defaults normalised: the image's env and
labels count as expected, an unset command means the image's, daemon log options may add keys,
durations are nanoseconds on both sides, an empty host IP means 0.0.0.0."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

RECREATE, UPDATE = "recreate", "update"
SECRET_KEY = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY$|AUTH)", re.I)


def env_dict(entries):
    result = {}
    for entry in entries or []:
        key, _sep, value = entry.partition("=")
        result[key] = value
    return result


def port_bindings(bindings):
    ports = {}
    for port, items in (bindings or {}).items():
        ports[port] = sorted([item.get("HostIp") or "0.0.0.0", str(item.get("HostPort") or "")] for item in items or [])
    return ports


def actual_state(inspect):
    """The fields we manage, read from a container's inspect output."""
    cfg, host = inspect.get("Config") or {}, inspect.get("HostConfig") or {}
    networks = (inspect.get("NetworkSettings") or {}).get("Networks") or {}
    return {
        "name": inspect.get("Name", "").lstrip("/"),
        "image_id": inspect.get("Image"),
        "command": cfg.get("Cmd"),
        "env": env_dict(cfg.get("Env")),
        "labels": cfg.get("Labels") or {},
        "ports": port_bindings(host.get("PortBindings")),
        "mounts": sorted([m.get("Type"), m.get("Source"), m.get("Target"), bool(m.get("ReadOnly"))]
                         for m in host.get("Mounts") or []),
        "networks": {name: {"id": net.get("NetworkID"), "aliases": net.get("Aliases") or []}
                     for name, net in networks.items()},
        "memory": host.get("Memory") or None,
        "nano_cpus": host.get("NanoCpus") or None,
        "shm_size": host.get("ShmSize"),
        "ulimits": sorted(host.get("Ulimits") or [], key=lambda u: u.get("Name")),
        "restart_policy": {"Name": (host.get("RestartPolicy") or {}).get("Name") or "no",
                           "MaximumRetryCount": (host.get("RestartPolicy") or {}).get("MaximumRetryCount") or 0},
        "log_config": host.get("LogConfig") or {},
        "healthcheck": cfg.get("Healthcheck"),
        "device_requests": host.get("DeviceRequests") or None,
        "status": (inspect.get("State") or {}).get("Status"),
        "health": ((inspect.get("State") or {}).get("Health") or {}).get("Status"),
    }


def _healthcheck_norm(check):
    if not check:
        return None
    return {"Test": list(check.get("Test") or []), "Interval": check.get("Interval") or 0,
            "Timeout": check.get("Timeout") or 0, "Retries": check.get("Retries") or 0,
            "StartPeriod": check.get("StartPeriod") or 0}


def device_requests(requests):
    """Device requests as Docker's API takes them, Docker's zero values for the fields left unset."""
    return [{"Driver": r.get("Driver") or "", "Count": r.get("Count") or 0, "DeviceIDs": r.get("DeviceIDs") or [],
             "Capabilities": r.get("Capabilities") or [], "Options": r.get("Options") or {}} for r in requests or []]


def memory_limits(memory):
    """Memory and MemorySwap as Docker takes them: swap unlimited beside a memory limit (-1), else unset (None)."""
    return {"Memory": memory or None, "MemorySwap": -1 if memory else None}


def _device_norm(requests):
    """Device requests compared without their Options (dockerd may fill in its own)."""
    return [{k: v for k, v in request.items() if k != "Options"} for request in device_requests(requests)]


def differences(desired, actual, image, network_id):
    """[(field, before, after, how)] where how is RECREATE or UPDATE (in place)."""
    image_cfg = (image or {}).get("Config") or {}
    found = []

    def differ(field, before, after, how=RECREATE):
        if before != after:
            found.append((field, before, after, how))

    if image is not None:
        differ("image", actual["image_id"], image.get("Id"))
    differ("command", actual["command"], desired["command"] if desired["command"] is not None else image_cfg.get("Cmd"))
    expected_env = env_dict(image_cfg.get("Env"))
    expected_env.update(desired["env"])
    differ("env", actual["env"], expected_env)
    differ("labels", {k: actual["labels"].get(k) for k in desired["labels"]}, desired["labels"])
    differ("ports", actual["ports"], desired["ports"])
    differ("mounts", actual["mounts"], desired["mounts"])
    net = actual["networks"].get(desired["network"])
    on_network = bool(net) and (network_id is None or net["id"] == network_id) and \
        all(alias in net["aliases"] for alias in desired["aliases"])
    differ("network", sorted(actual["networks"]) if not on_network else desired["network"], desired["network"])
    for field in ("memory", "nano_cpus"):
        if desired[field] is None:
            differ(field, actual[field], None)  # removing a limit needs a new container
        else:
            differ(field, actual[field], desired[field], UPDATE)
    if desired["shm_size"] is not None:
        differ("shm_size", actual["shm_size"], desired["shm_size"])
    # dockerd copies its default-ulimits into every new container: compare only the limits we set.
    wanted_names = [u["Name"] for u in desired["ulimits"]]
    differ("ulimits", [u for u in actual["ulimits"] if u.get("Name") in wanted_names], desired["ulimits"])
    differ("restart_policy", actual["restart_policy"], desired["restart_policy"], UPDATE)
    if desired["log_config"] is not None:
        have = actual["log_config"]
        wanted = desired["log_config"]
        differ("log_config", {"Type": have.get("Type"), "Config": {k: (have.get("Config") or {}).get(k) for k in wanted["Config"]}},
               wanted)
    wanted_check = desired["healthcheck"] if desired["healthcheck"] is not None else image_cfg.get("Healthcheck")
    differ("healthcheck", _healthcheck_norm(actual["healthcheck"]), _healthcheck_norm(wanted_check))
    differ("device_requests", _device_norm(actual["device_requests"]), _device_norm(desired["device_requests"]))
    return found


def action_for(diffs, status, state):
    """What to do with an existing container: recreate, update, start, stop or None."""
    if any(how == RECREATE for _f, _b, _a, how in diffs):
        return "recreate"
    if state == "stopped":
        return "stop" if status in ("running", "restarting", "paused") else ("update" if diffs else None)
    if diffs:
        return "update"
    if status != "running":
        return "start"
    return None


def masked(field, value):
    """Values safe to show in diffs and results: env values that look secret are hidden."""
    if field == "env" and isinstance(value, dict):
        return {k: ("********" if SECRET_KEY.search(k) else v) for k, v in value.items()}
    return value


def service_diff(service, before, after):
    """One Ansible diff entry (before/after dicts) for a service."""
    return {"before_header": service, "after_header": service, "before": before, "after": after}


def diff_view(service, diffs):
    """Ansible diff before/after for one service, only the fields that differ."""
    return service_diff(service, {f: masked(f, b) for f, b, _a, _h in diffs}, {f: masked(f, a) for f, _b, a, _h in diffs})


def container_diff(service, before, after):
    """The diff of a change to the container's state only (start, stop, restart, remove)."""
    return service_diff(service, {"container": before}, {"container": after})
