# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring the services enabled on this host to the declared state, phase by phase:
postgres + redis -> mlflow -> tf_serving, each phase health-gated before the next."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import time

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import nvml
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import compare, health, secrets, spec
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.engine import StackError, registry_of


def _image(engine, desired, pull, auth, check_mode):
    """The image to run (inspect), pulling per policy; (image inspect or None, pulled?)."""
    image = engine.image(desired["image"])
    if pull == "never" or (pull == "missing" and image is not None):
        if image is None and pull == "never":
            raise StackError("image %s is not on this host and pull is 'never'" % desired["image"])
        return image, False
    if check_mode:
        return image, image is None
    pulled = engine.pull(desired["image"], auth)
    return pulled, image is None or pulled.get("Id") != image.get("Id")


def _pg_guard(engine, desired, image):
    """Refuse to start a postgres image on a data volume of another major version."""
    if desired.get("data_path") == "/var/lib/postgresql":  # 18+: PGDATA is <major>/docker below it
        return
    volume = next((m[1] for m in desired["mounts"] if m[0] == "volume" and m[2] == desired.get("data_path")), None)
    info = engine.volume(volume) if volume else None
    if not info or not info.get("Mountpoint"):
        return
    path = os.path.join(info["Mountpoint"], "PG_VERSION")
    try:
        with open(path, "r") as handle:
            on_disk = handle.read().strip()
    except (IOError, OSError):
        return
    image_env = compare.env_dict(((image or {}).get("Config") or {}).get("Env"))
    major = image_env.get("PG_MAJOR") or str(spec.services.pg_major_from_image(desired["image"]) or "")
    if major and on_disk.split(".")[0] != major.split(".")[0]:
        raise StackError("postgres: volume %s holds a PostgreSQL %s data directory but %s is PostgreSQL %s; the "
                         "server would refuse to start. Nothing was changed. Upgrade the data (pg_upgrade or dump "
                         "and restore) or pin the image back to %s" % (volume, on_disk, desired["image"], major, on_disk),
                         volume=volume, data_version=on_disk, image_major=major)


def _migrate(engine, desired, timeout):
    """MLflow's schema upgrade as a one-shot container; migrations are not transactional, so a failure stops here."""
    uri = desired["command"][desired["command"].index("--backend-store-uri") + 1]
    code, logs = engine.run_once(desired, ["mlflow", "db", "upgrade", uri], timeout)
    if code != 0:
        raise StackError("mlflow db upgrade %s failed (exit %s). The old mlflow container is stopped; restore the "
                         "database from a backup or fix and rerun" % (uri, code), logs=logs)
    return logs


class Converger:
    def __init__(self, engine, params, check_mode):
        self.engine, self.params, self.check_mode = engine, params, check_mode
        self.network_name = params["network"] or params["project"]
        self.network_id = None
        self.results, self.diffs, self.host_changes = {}, [], []
        self.deadline = time.monotonic() + params["health_timeout"]

    def run(self):
        directory = os.path.join(self.params["secrets_dir"], self.params["project"])
        if self.params["state"] == "absent":
            return self.absent(spec.desired_state(self.params, _absent_secrets(self.params)))
        gpu_facts = _gpu_facts(self.params)
        spec.desired_state(self.params, _absent_secrets(self.params), gpu_facts)  # validate before touching the host
        values, changed = secrets.resolve(self.params, directory, self.check_mode)
        self.host_changes += changed
        desired = spec.desired_state(self.params, values, gpu_facts)
        self.ensure_network()
        for phase in spec.PHASES:
            phase_desired = {s: desired[s] for s in phase if s in desired}
            if not phase_desired:
                continue
            for service, item in phase_desired.items():
                self.host_changes += secrets.ensure_runtime_files(item["files"], self.check_mode)
                self.converge_service(service, item)
            if self.params["state"] == "present" and not self.check_mode:
                waiting = {s: d for s, d in phase_desired.items() if not self.results[s]["ready"]}
                if waiting:
                    health.wait_ready(self.engine, waiting, self.deadline)
                    for service in waiting:
                        self.refresh(service, desired[service])
        return self.summary()

    def ensure_network(self):
        net = self.engine.network(self.network_name)
        if net is None:
            self.host_changes.append("network %s" % self.network_name)
            if not self.check_mode:
                self.network_id = self.engine.create_network(self.network_name, {spec.LABEL_PROJECT: self.params["project"]})
        else:
            self.network_id = net["Id"]

    def ensure_volume(self, name):
        if self.engine.volume(name) is None:
            self.host_changes.append("volume %s" % name)
            if not self.check_mode:
                self.engine.create_volume(name, {spec.LABEL_PROJECT: self.params["project"]})

    def converge_service(self, service, desired):
        auth = (self.params.get("auths") or {}).get(registry_of(desired["image"]))
        image, pulled = _image(self.engine, desired, self.params["pull"], auth, self.check_mode)
        inspect = self.engine.container(desired["name"])
        if inspect is None:
            action, diffs = "create", []
        else:
            actual = compare.actual_state(inspect)
            diffs = compare.differences(desired, actual, image, self.network_id)
            action = compare.action_for(diffs, actual["status"], self.params["state"])
            if action is None and self.params["state"] == "present" and health.health_stalled(inspect):
                action = "restart"  # its health checks stopped when dockerd restarted (moby#41871)
        if action in ("create", "recreate"):
            # A volume in use cannot be removed, so only a new container needs its volumes checked.
            for volume in desired["volumes"]:
                self.ensure_volume(volume)
            if service == "postgres":
                _pg_guard(self.engine, desired, image)
        if action:
            if diffs:
                self.diffs.append(compare.diff_view(service, diffs))
            elif action == "restart":
                self.diffs.append({"before_header": service, "after_header": service,
                                   "before": {"container": "running, health checks stalled"},
                                   "after": {"container": "restarted, health checks running"}})
            else:
                self.diffs.append({"before_header": service, "after_header": service,
                                   "before": {"container": inspect and "stopped" or "absent"},
                                   "after": {"container": "running" if self.params["state"] == "present" else "stopped"}})
        result = {"action": action, "changed_fields": [d[0] for d in diffs], "pulled": pulled, "ready": False,
                  "container": desired["name"]}
        self.results[service] = result
        if self.check_mode or not action:
            result["ready"] = action is None and inspect is not None and health.is_ready(inspect, desired)[0]
            self.describe(service, inspect, image)
            return
        self.apply(service, desired, inspect, action, image)
        self.refresh(service, desired)

    def apply(self, service, desired, inspect, action, image):
        engine, running = self.engine, self.params["state"] == "present"
        if action == "recreate":
            if service == "mlflow" and inspect["Image"] != image["Id"]:
                engine.stop(inspect["Id"])
                self.results[service]["migration"] = _migrate(engine, desired, self.params["health_timeout"])
            engine.remove(inspect["Id"])
            engine.wait_gone(desired["name"])
        if action in ("create", "recreate"):
            ident = engine.create(desired, self.network_id)
            if running:
                engine.start(ident)
        elif action == "update":
            engine.update(inspect["Id"], desired)
            if running and inspect["State"]["Status"] != "running":
                engine.start(inspect["Id"])
        elif action == "start":
            engine.start(inspect["Id"])
        elif action == "restart":
            engine.restart(inspect["Id"])
        elif action == "stop":
            engine.stop(inspect["Id"])

    def refresh(self, service, desired):
        inspect = self.engine.container(desired["name"])
        self.results[service]["ready"] = bool(inspect) and health.is_ready(inspect, desired)[0]
        self.describe(service, inspect, None)

    def describe(self, service, inspect, image):
        result = self.results[service]
        state = (inspect or {}).get("State") or {}
        result.update({
            "id": (inspect or {}).get("Id"),
            "image_id": (inspect or {}).get("Image") or (image or {}).get("Id"),
            "status": state.get("Status") or ("absent" if inspect is None else None),
            "health": (state.get("Health") or {}).get("Status"),
            "endpoints": {port: ["%s:%s" % (ip, hp) for ip, hp in binds]
                          for port, binds in compare.port_bindings(((inspect or {}).get("HostConfig") or {}).get("PortBindings")).items()},
        })

    def absent(self, desired):
        for service in reversed(spec.SERVICES):
            if service not in desired:
                continue
            item = desired[service]
            inspect = self.engine.container(item["name"])
            removes = [v for v in item["volumes"] if self.params["purge_volumes"] and self.engine.volume(v)]
            action = "remove" if inspect is not None else None
            self.results[service] = {"action": action, "container": item["name"], "status": "absent",
                                     "removed_volumes": removes}
            if action:
                self.diffs.append({"before_header": service, "after_header": service,
                                   "before": {"container": inspect["State"]["Status"]}, "after": {"container": "absent"}})
            if self.check_mode:
                self.host_changes += ["volume %s" % v for v in removes]
                continue
            if inspect is not None:
                self.engine.remove(inspect["Id"])
                self.engine.wait_gone(item["name"])
            for volume in removes:
                self.engine.remove_volume(volume)
                self.host_changes.append("volume %s" % volume)
        net = self.engine.network(self.network_name)
        if net is not None and not net.get("Containers"):
            self.host_changes.append("network %s" % self.network_name)
            if not self.check_mode:
                self.engine.remove_network(self.network_name)
        return self.summary()

    def summary(self):
        changed = bool(self.host_changes) or any(r.get("action") or r.get("pulled") for r in self.results.values())
        for result in self.results.values():
            result.pop("ready", None)
        return {"changed": changed, "services": self.results, "host_changes": self.host_changes,
                "diff": self.diffs, "api_requests": self.engine.requests}


def _gpu_facts(params):
    """Read NVML only when a service asks for gpus: ['auto']."""
    if not any("auto" in ((params.get(s) or {}).get("gpus") or []) for s in spec.SERVICES):
        return None
    pynvml, reason = nvml.load_pynvml()
    return nvml.read_gpus(pynvml) if pynvml else nvml.empty(reason)


def _absent_secrets(params):
    """state=absent needs names, not secrets: placeholders let the spec be built."""
    return dict.fromkeys(("postgres_password", "redis_password", "mlflow_db_password", "mlflow_admin_password",
                          "mlflow_secret_key"), "absent")
