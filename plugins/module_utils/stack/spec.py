# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parameters -> desired containers (pure). One plain dict per container, in the shape compare.py
reads back from `docker inspect`, so desired and actual are compared field by field."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import json

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import services
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.compare import env_dict
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.units import (
    duration_ns, nano_cpus, parse_port, parse_ulimit, size_bytes)

LABEL_PROJECT = "org.mlinfra.project"
LABEL_SERVICE = "org.mlinfra.service"
LABEL_HASH = "org.mlinfra.config-hash"
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")


def _ports(specs, where):
    ports = {}
    for spec in specs or []:
        container_port, ip, host_port = parse_port(spec, where)
        ports.setdefault(container_port, []).append([ip, host_port])
    return {port: sorted(bindings) for port, bindings in ports.items()}


def _extra_volumes(specs, where):
    mounts = []
    for spec in specs or []:
        pieces = str(spec).split(":")
        if len(pieces) not in (2, 3) or not pieces[1].startswith("/") or (len(pieces) == 3 and pieces[2] not in ("ro", "rw")):
            raise StackInputError("%s: %r is not source:/container/path[:ro|rw]" % (where, spec))
        kind = "bind" if pieces[0].startswith("/") else "volume"
        mounts.append([kind, pieces[0], pieces[1], len(pieces) == 3 and pieces[2] == "ro"])
    return mounts


def _healthcheck(default, override, where):
    """The service's built-in check unless overridden; `{"disable": true}` turns it off."""
    if override is None:
        return default
    if override.get("disable"):
        return {"Test": ["NONE"]}
    check = dict(default or {})
    if override.get("test"):
        test = override["test"]
        check["Test"] = ["CMD-SHELL", test] if isinstance(test, str) else list(test)
    for key, name in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if override.get(key) is not None:
            check[name] = duration_ns(override[key], "%s.healthcheck.%s" % (where, key))
    if override.get("retries") is not None:
        if override["retries"] < 1:
            raise StackInputError("%s.healthcheck.retries must be at least 1, got %r" % (where, override["retries"]))
        check["Retries"] = override["retries"]
    if "Test" not in check:
        raise StackInputError("%s.healthcheck needs a test: this service has no built-in one" % where)
    return check


def device_requests(gpus, where):
    """gpus: [] / None -> none; ['all'] -> every GPU; ['0', 'GPU-uuid'] -> those devices."""
    if not gpus:
        return None
    if "all" in gpus:
        if len(gpus) > 1:
            raise StackInputError("%s.gpus: 'all' cannot be combined with device ids %r" % (where, gpus))
        return [{"Driver": "nvidia", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]
    return [{"Driver": "nvidia", "Count": 0, "DeviceIDs": [str(g) for g in gpus], "Capabilities": [["gpu"]],
             "Options": {}}]


def common(project, network, service, svc_params, built):
    """Fill the fields every service shares from its parameters, on top of the service's own `built`."""
    where = service
    restart = svc_params.get("restart_policy") or "unless-stopped"
    if restart not in RESTART_POLICIES:
        raise StackInputError("%s.restart_policy: %r is not one of %s" % (where, restart, ", ".join(RESTART_POLICIES)))
    env = dict(built.get("env", {}))
    for key, value in (svc_params.get("env") or {}).items():
        if not isinstance(value, (str, int, float, bool)):
            raise StackInputError("%s.env.%s must be a string or number, got %s" % (where, key, type(value).__name__))
        env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    log_config = None
    if svc_params.get("log_driver") or svc_params.get("log_options"):
        log_config = {"Type": svc_params.get("log_driver") or "json-file",
                      "Config": {k: str(v) for k, v in (svc_params.get("log_options") or {}).items()}}
    desired = {
        "name": services.container_name(project, service),
        "service": service,
        "image": svc_params["image"],
        "command": built.get("command"),
        "env": env,
        "labels": {LABEL_PROJECT: project, LABEL_SERVICE: service},
        "ports": _ports(svc_params.get("ports") if svc_params.get("ports") is not None else built.get("ports"),
                        where + ".ports"),
        "mounts": sorted(built.get("mounts", []) + _extra_volumes(svc_params.get("volumes"), where + ".volumes")),
        "network": network,
        "aliases": [service.replace("_", "-")],
        "memory": size_bytes(svc_params.get("memory"), where + ".memory"),
        "nano_cpus": nano_cpus(svc_params.get("cpus"), where + ".cpus"),
        "shm_size": size_bytes(svc_params.get("shm_size"), where + ".shm_size"),
        "ulimits": sorted((parse_ulimit(u, where + ".ulimits") for u in svc_params.get("ulimits") or []),
                          key=lambda u: u["Name"]),
        "restart_policy": {"Name": restart, "MaximumRetryCount": 0},
        "log_config": log_config,
        "healthcheck": _healthcheck(built.get("healthcheck"), svc_params.get("healthcheck"), where),
        "device_requests": device_requests(svc_params.get("gpus"), where),
    }
    extras = {"files": built.get("files", []), "probe": built.get("probe"), "data_path": built.get("data_path"),
              "db_uri": built.get("db_uri"), "volumes": sorted({m[1] for m in desired["mounts"] if m[0] == "volume"})}
    desired.update(extras)
    return desired


# The container fields the config hash covers (not the labels it is stored in, not the extras beside them).
HASHED = ("name", "service", "image", "command", "env", "ports", "mounts", "network", "aliases", "memory", "nano_cpus",
          "shm_size", "ulimits", "restart_policy", "log_config", "healthcheck", "device_requests")


def config_hash(desired):
    """A digest of the container's configuration and its runtime files' contents (secrets included,
    so a changed redis.conf recreates redis); only the digest is ever shown. A live file (one the server
    re-reads by itself: TF Serving's polled models.config) is left out, so changing it needs no new container."""
    body = json.dumps({k: desired[k] for k in HASHED}, sort_keys=True)
    digest = hashlib.sha256(body.encode())
    for item in sorted((f for f in desired["files"] if not f.get("live")), key=lambda f: f["path"]):
        digest.update(item["path"].encode() + b"\0" + item["content"].encode())
    return digest.hexdigest()[:16]


def resolve_gpus(gpus, gpu_facts):
    """['auto'] means every usable GPU the host has (none on a CPU host): all of them, or their UUIDs when NVML
    failed on some (a lost GPU must not be requested); anything else is taken as given."""
    if list(gpus or []) == ["auto"]:
        if not gpu_facts or gpu_facts.get("count", 0) < 1:
            return []
        if gpu_facts.get("failed_gpus"):
            return [g["uuid"] for g in gpu_facts.get("gpus") or []]
        return ["all"]
    if "auto" in (gpus or []):
        raise StackInputError("gpus: 'auto' cannot be combined with other values %r" % (gpus,))
    return list(gpus or [])


def service_params(params, gpu_facts=None):
    """{service: its parameters} for the services enabled on this host, gpus resolved and the image
    chosen (a service that gets GPUs runs its gpu_image when one is given)."""
    chosen = {}
    for service in services.NAMES:
        svc_params = params.get(service)
        if not svc_params:
            continue
        if not svc_params.get("image"):
            raise StackInputError("%s.image is required" % service)
        svc_params = dict(svc_params, gpus=resolve_gpus(svc_params.get("gpus"), gpu_facts))
        if svc_params["gpus"] and svc_params.get("gpu_image"):
            svc_params["image"] = svc_params["gpu_image"]
        chosen[service] = svc_params
    return chosen


def build(params, secrets, gpu_facts=None):
    """{service: desired container} for the services enabled on this host, from the parameters alone: every
    input check runs here, before anything is pulled or written. gpu_facts (from NVML) resolves gpus: ['auto'].
    The containers are not final until settle() has added what only the images know."""
    project, network = params["project"], params["network"] or params["project"]
    ctx = {"project": project, "network": network, "runtime_dir": "%s/%s/runtime" % (params["secrets_dir"], project),
           "secrets": secrets, "enabled": [s for s in services.NAMES if params.get(s)],
           "local": (params.get("docker_host") or "unix://").startswith("unix://")}
    desired = {}
    for service, svc_params in service_params(params, gpu_facts).items():
        built = services.BUILDERS[service](svc_params, ctx)
        desired[service] = common(project, network, service, svc_params, built)
    return desired


def settle(desired, params, images=None):
    """Add the facts only the images know ({service: image inspect or None}), then label each container
    with its config hash. Today one fact: Postgres' data path follows the image's PG_MAJOR (never its tag)
    unless postgres.data_path is given."""
    pg = desired.get("postgres")
    if pg is not None and not params["postgres"].get("data_path"):
        image_env = env_dict((((images or {}).get("postgres") or {}).get("Config") or {}).get("Env"))
        path = services.pg_data_path(services.pg_major(image_env))
        pg["mounts"] = sorted([m[0], m[1], path, m[3]] if m[0] == "volume" and m[2] == pg["data_path"] else m
                              for m in pg["mounts"])
        pg["data_path"] = path
    for item in desired.values():
        item["labels"][LABEL_HASH] = config_hash(item)
    return desired


def desired_state(params, secrets, gpu_facts=None, images=None):
    """build() and settle() in one step: the final desired containers."""
    return settle(build(params, secrets, gpu_facts), params, images)
