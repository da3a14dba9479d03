# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring the services enabled on this host to the declared state: first a plan and every preflight check
(pulls, image facts, volume contents, ports, password rotations) with nothing written, then the changes
phase by phase, postgres + redis -> mlflow -> tf_serving, each phase health-gated before the next."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import time

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import files, nvml
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import compare, db_copy, health, preflight, rotation, secrets, services, spec, tf_models
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.params import registry_auths


# One-shot schema check + upgrade in the MLflow image. `mlflow db upgrade` is alembic's upgrade to head
# (a no-op at head), but on an empty database it fails: MLflow's server creates the first tables itself.
MIGRATE = """
import subprocess, sys
import sqlalchemy as sa
uri = sys.argv[1]
def revision():
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("select version_num from alembic_version")).scalar()
    finally:
        engine.dispose()
before = revision()
if before is None:
    print("mlinfra: no MLflow schema in the database yet; the server creates it")
    sys.exit(0)
code = subprocess.call(["mlflow", "db", "upgrade", uri])
print("mlinfra: schema revision %s -> %s" % (before, revision()))
sys.exit(code)
"""


def _migrate(engine, desired, timeout):
    """MLflow's schema upgrade as a one-shot container before a server is created; migrations are not
    transactional, so a failure stops here and the one-shot is never killed half-way (engine.run_once)."""
    code, logs = engine.run_once(desired, ["python", "-c", MIGRATE, desired["db_uri"]], timeout)
    if code != 0:
        raise StackError("mlflow db upgrade %s failed (exit %s); no new mlflow server was started. Its last log lines "
                         "are in 'logs'." % (desired["db_uri"], code), logs=logs)
    return logs


def _held_ports(inspect):
    """Host ports a container holds now (only a running one holds them)."""
    if not inspect or (inspect.get("State") or {}).get("Status") != "running":
        return {}
    return compare.port_bindings((inspect.get("HostConfig") or {}).get("PortBindings"))


class Converger:
    def __init__(self, engine, params, check_mode, clock=time.monotonic):
        self.engine, self.params, self.check_mode, self.clock = engine, params, check_mode, clock
        self.network_name = params["network"] or params["project"]
        self.network, self.network_id = None, None
        self.results, self.diffs, self.host_changes, self.warnings, self.facts = {}, [], [], [], {}

    def run(self):
        """The run's result; a StackError raised on the way carries what was done until then in its extras."""
        try:
            return self._run()
        except db_copy.DbPasswordNeeded as exc:  # not a failure: nothing was done; the role reads it and runs again
            return dict(self.summary(), db_password_needed=True, msg=str(exc))
        except StackError as exc:
            exc.extra = self.failure_extras(exc.extra)
            raise

    def failure_extras(self, extra):
        """The summary so far (no diff or warnings) with the error's extras; per-service details (health,
        logs) merge into the per-service results."""
        partial = self.summary()
        partial.pop("diff", None)
        partial.pop("warnings", None)
        partial.pop("ansible_facts", None)
        extra = dict(extra)
        for service, details in extra.pop("services", {}).items():
            partial["services"].setdefault(service, {}).update(details)
        return dict(partial, **extra)

    def _run(self):
        directory = os.path.join(self.params["secrets_dir"], self.params["project"])
        if self.params["state"] == "absent":
            return self.absent(spec.desired_state(self.params, secrets.placeholders()))
        # Preflight: nothing is pulled, written, created or stopped until every check below has passed.
        values, writes = secrets.plan(self.params, directory, self.check_mode)
        desired = spec.build(self.params, values, _gpu_facts(self.params))  # every input check, before any pull
        images, pulled = preflight.pull_images(self.engine, {s: d["image"] for s, d in desired.items()}, self.params["pull"],
                                               registry_auths(self.params), self.check_mode, self.params["pull_timeout"])
        spec.settle(desired, self.params, images)
        self.network = self.engine.network(self.network_name)
        self.network_id = self.network["Id"] if self.network else None
        plans = {service: self.plan(service, item, images[service], pulled[service]) for service, item in desired.items()}
        rotations = self.preflight(desired, plans, writes, values)
        # Apply.
        self.rotate(rotations, plans, values, writes)
        self.host_changes += secrets.apply(directory, values, writes, self.check_mode)
        self.facts = db_copy.facts(self.params, directory, writes, self.check_mode)
        self.ensure_network()
        for phase in services.PHASES:
            phase_desired = {s: desired[s] for s in phase if s in desired}
            for service, item in phase_desired.items():
                written = secrets.ensure_runtime_files(item["files"], self.check_mode)
                self.host_changes += written
                self.converge_service(service, item, plans[service])
                self.live_reload(service, item, plans[service], written)
                stale = secrets.stale_runtime_files(os.path.join(directory, "runtime"), services.RUNTIME_FILES[service],
                                                    item["files"])
                self.host_changes += secrets.remove_runtime_files(stale, self.check_mode)
            if self.params["state"] == "present" and not self.check_mode:
                waiting = {s: d for s, d in phase_desired.items() if not self.results[s]["ready"]}
                if waiting:  # the budget starts now, when this phase's containers have started
                    health.wait_ready(self.engine, waiting, self.clock() + self.params["health_timeout"], clock=self.clock)
                    for service in waiting:
                        self.refresh(service, desired[service])
        return self.summary()

    def plan(self, service, desired, image, pulled):
        """What converging one service means: (re)create, update in place, start, stop or nothing."""
        inspect = self.engine.container(desired["name"])
        if inspect is None:
            action, diffs = "create", []
        else:
            actual = compare.actual_state(inspect)
            diffs = compare.differences(desired, actual, image, self.network_id)
            action = compare.action_for(diffs, actual["status"], self.params["state"])
            if action is None and self.params["state"] == "present" and health.health_stalled(inspect):
                action = "restart"  # its health checks stopped when dockerd restarted (moby#41871)
        live = [f["path"] for f in desired["files"] if f.get("live")]
        before = files.read_bytes(live[0]) if live else None  # a live file's content before this run
        return {"inspect": inspect, "image": image, "pulled": pulled, "action": action, "diffs": diffs,
                "live_before": before.decode("utf-8", "replace") if before is not None else None}

    def preflight(self, desired, plans, writes, values):
        """Checks on volume contents and ports for the planned changes; the rotations a changed password needs."""
        problems, rotations = [], []
        local = self.params["docker_host"].startswith("unix://")
        for service, plan in plans.items():
            if plan["action"] not in ("create", "recreate"):
                continue
            if service == "postgres":
                if not local:
                    self.warnings.append("postgres: the Docker engine %s is not on this host, so the data volume could "
                                         "not be checked against the image's PostgreSQL major" % self.params["docker_host"])
                elif plan["image"] is None:  # check mode, image not pulled yet: its PG_MAJOR is unknown
                    self.warnings.append("postgres: %s is not on this host yet, so the data volume can be checked "
                                         "against its PostgreSQL major only by a real run" % desired[service]["image"])
                else:
                    if plan["action"] == "recreate":
                        preflight.stranded_cluster(plan["inspect"], desired[service])
                    warning = preflight.pg_guard(self.engine, desired[service], plan["image"])
                    if warning:
                        self.warnings.append(warning)
            if local and self.params["state"] == "present":
                problems += preflight.ports_taken(service, desired[service], _held_ports(plan["inspect"]))
        if problems:
            raise StackError("%s. Nothing was changed beyond pulling the images it needs. Stop what holds the port, "
                             "or publish the service elsewhere (its ports option)" % "; ".join(problems), ports=problems)
        if "tf_serving" in desired:
            self.check_label_moves(desired["tf_serving"], plans["tf_serving"])
        if "postgres" in desired:
            rotations += self.postgres_rotation(desired["postgres"], plans["postgres"], writes, values, local)
        mlflow = self.params.get("mlflow") or {}
        if "mlflow" in desired and mlflow.get("artifacts_destination") and local:
            unserved = preflight.unserved_artifacts(self.engine, desired["mlflow"], mlflow["artifacts_destination"])
            if unserved:
                self.warnings.append(unserved)
        if "mlflow" in desired and mlflow.get("basic_auth") and "mlflow_admin_password" in writes:
            info = self.engine.volume("%s-auth" % desired["mlflow"]["name"]) if local else None
            if info and os.path.exists(os.path.join(info.get("Mountpoint") or "/nonexistent", "basic_auth.db")):
                rotation.check_secret_kept("mlflow.admin_password", mlflow.get("admin_password"),
                                           *writes["mlflow_admin_password"][::-1], what="mlflow: volume %s" % info["Name"])
                if rotation.changed_secret(writes, values, "mlflow_admin_password"):
                    rotation.check_mlflow_admin(plans["mlflow"]["inspect"], self.network_name)
                    rotations.append("mlflow")
        return rotations

    def postgres_rotation(self, desired, plan, writes, values, local):
        """[postgres] when its password changes on a cluster initialised with the stored one; refusals when
        that cannot be done (no running server, the stored password lost, an engine on another host)."""
        if "postgres_password" not in writes:
            return []
        if not local:
            if rotation.changed_secret(writes, values, "postgres_password"):
                raise StackError("postgres.password changed, but the Docker engine %s is not on this host, so the data "
                                 "volume cannot be read to tell whether the server holds the old one. Nothing was "
                                 "changed. Run the module on the Docker host itself" % self.params["docker_host"])
            return []
        volume = preflight.data_volume(desired)
        info = self.engine.volume(volume) if volume else None
        if not (info and preflight.pg_clusters(info["Mountpoint"])):
            return []  # an empty volume takes the new password at initdb
        rotation.check_secret_kept("postgres.password", (self.params["postgres"] or {}).get("password"),
                                   *writes["postgres_password"][::-1], what="postgres: volume %s" % volume)
        if not rotation.changed_secret(writes, values, "postgres_password"):
            return []
        rotation.check_postgres(plan["inspect"], volume)
        return ["postgres"]

    def check_label_moves(self, desired, plan):
        """Before anything is written: no label may move to a version the running server has not loaded."""
        inspect = plan["inspect"] or {}
        if plan.get("live_before") is not None and plan["action"] in (None, "update") and \
                (inspect.get("State") or {}).get("Status") == "running":
            health.refuse_label_moves(health.container_address(inspect, desired["network"]), desired["probe"],
                                      tf_models.moved_labels(plan["live_before"], desired["probe"]["models"]))

    def live_reload(self, service, desired, plan, written):
        """A live file (TF Serving's polled models.config) rewritten under a kept container, which reloads it itself:
        a file diff, and a health gate until the models match it (removed ones unloaded)."""
        live = [f for f in desired["files"] if f.get("live") and f["path"] in written]
        if live and plan["action"] in (None, "update"):
            before = plan.get("live_before")
            self.diffs.append(compare.service_diff("%s %s" % (service, live[0]["path"]), before or "", live[0]["content"]))
            desired["probe"]["removed"] = tf_models.removed_names(before, desired["probe"]["models"])
            self.results[service]["reloaded"] = True
            self.results[service]["ready"] = self.check_mode and self.results[service]["ready"]

    def rotate(self, rotations, plans, values, writes):
        """Set a changed password in the running server, then store it at once (before the next rotation can
        fail), so the host's secret and the server never disagree."""
        directory = os.path.join(self.params["secrets_dir"], self.params["project"])
        for service in rotations:
            name = "postgres_password" if service == "postgres" else "mlflow_admin_password"
            if not self.check_mode:
                if service == "postgres":
                    pg = self.params["postgres"]
                    rotation.rotate_postgres(self.engine, plans["postgres"]["inspect"], pg["user"], pg["db"],
                                             writes[name][1], values[name])
                else:
                    problem = rotation.rotate_mlflow_admin(plans["mlflow"]["inspect"], self.network_name,
                                                           self.params["mlflow"]["admin_username"], writes[name][1],
                                                           values[name])
                    if problem:  # the server has the new password: it is stored below all the same
                        self.warnings.append(problem)
                self.host_changes += secrets.apply(directory, values, {name: writes.pop(name)}, False)
            self.host_changes.append(rotation.POSTGRES_DONE if service == "postgres" else rotation.MLFLOW_ADMIN_DONE)

    def ensure_network(self):
        net = self.network
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

    def converge_service(self, service, desired, plan):
        action, diffs, inspect, image = plan["action"], plan["diffs"], plan["inspect"], plan["image"]
        if action in ("create", "recreate"):
            # A volume in use cannot be removed, so only a new container needs its volumes checked.
            for volume in desired["volumes"]:
                self.ensure_volume(volume)
        if action:
            if diffs:
                self.diffs.append(compare.diff_view(service, diffs))
            elif action == "restart":
                self.diffs.append(compare.container_diff(service, "running, health checks stalled",
                                                         "restarted, health checks running"))
            else:
                self.diffs.append(compare.container_diff(service, inspect and "stopped" or "absent",
                                                         "running" if self.params["state"] == "present" else "stopped"))
        result = {"action": action, "changed_fields": [d[0] for d in diffs], "pulled": plan["pulled"], "ready": False,
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
        was_running = inspect is not None and inspect["State"]["Status"] == "running"
        # A server about to start in a new container, or in one that was stopped (it may have been recreated
        # with a new image under state=stopped, which never migrates), meets its schema migrated first.
        if service == "mlflow" and running and (action in ("create", "recreate") or (action in ("start", "update") and not was_running)):
            if was_running:  # the old server stops before its schema may change under it
                engine.stop(inspect["Id"])
            try:
                self.results[service]["migration"] = _migrate(engine, desired, self.params["migration_timeout"])
            except StackError as exc:
                if not was_running or exc.extra.get("container"):  # nothing to start again, or the migration still runs
                    raise
                engine.start(inspect["Id"])
                raise StackError("%s The old mlflow container was started again; if the migration changed the "
                                 "schema part-way it will not come up: restore the database from a backup" % exc, **exc.extra)
        if action == "recreate":
            engine.remove(inspect["Id"])
            engine.wait_gone(desired["name"])
        if action in ("create", "recreate"):
            ident = engine.create(desired)
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

    def owned(self, volume):
        """A volume this project created (labelled when created); anything else is never removed."""
        info = self.engine.volume(volume)
        return info is not None and (info.get("Labels") or {}).get(spec.LABEL_PROJECT) == self.params["project"], info

    def absent(self, desired):
        for service in reversed(services.NAMES):
            if service not in desired:
                continue
            item = desired[service]
            inspect = self.engine.container(item["name"])
            removes, kept = [], []
            if self.params["purge_volumes"]:
                for volume in item["volumes"]:
                    mine, info = self.owned(volume)
                    if mine:
                        removes.append(volume)
                    elif info is not None:
                        kept.append(volume)
            action = "remove" if inspect is not None else None
            self.results[service] = {"action": action, "container": item["name"], "status": "absent",
                                     "removed_volumes": removes, "kept_volumes": kept}
            if action:
                self.diffs.append(compare.container_diff(service, inspect["State"]["Status"], "absent"))
            if self.check_mode:
                self.host_changes += secrets.remove_runtime_files(self._runtime_files(service), True)
                self.host_changes += ["volume %s" % v for v in removes]
                continue
            if inspect is not None:
                self.engine.remove(inspect["Id"])
                self.engine.wait_gone(item["name"])
            self.host_changes += secrets.remove_runtime_files(self._runtime_files(service), False)
            for volume in removes:
                self.engine.remove_volume(volume)
                self.host_changes.append("volume %s" % volume)
        net = self.engine.network(self.network_name)
        if net is not None and not net.get("Containers"):
            self.host_changes.append("network %s" % self.network_name)
            if not self.check_mode:
                self.engine.remove_network(self.network_name)
        return self.summary()

    def _runtime_files(self, service):
        runtime = os.path.join(self.params["secrets_dir"], self.params["project"], "runtime")
        return secrets.stale_runtime_files(runtime, services.RUNTIME_FILES[service], [])

    def summary(self):
        changed = bool(self.host_changes) or any(r.get("action") or r.get("pulled") for r in self.results.values())
        for result in self.results.values():
            result.pop("ready", None)
        return {"changed": changed, "services": self.results, "host_changes": self.host_changes,
                "diff": self.diffs, "api_requests": self.engine.requests, "warnings": self.warnings,
                "ansible_facts": self.facts}


def _gpu_facts(params):
    """Read NVML only when a service asks for gpus: ['auto']."""
    if not any("auto" in ((params.get(s) or {}).get("gpus") or []) for s in services.NAMES):
        return None
    pynvml, reason = nvml.load_pynvml()
    return nvml.read_gpus(pynvml) if pynvml else nvml.empty(reason)
