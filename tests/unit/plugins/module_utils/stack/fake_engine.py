"""An in-memory stand-in for stack.engine.Engine, for converge-level tests of ordering and data safety.

It keeps containers, images, volumes and networks as dicts shaped like `docker inspect`, records every
call in `calls`, and lets a test make any operation fail. Docker behaviour it mirrors: a container's
Mounts/Config come from its create body; a volume's Mountpoint is a real directory (tmp_path) so the
Postgres guard reads real files; removing a volume that does not exist is a 404."""

import itertools
import os

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.engine import create_body

MUTATING = {"create_network", "remove_network", "create_volume", "remove_volume", "create", "start", "stop",
            "restart", "remove", "update", "run_once", "exec"}


class FakeEngine:
    def __init__(self, root):
        self.root = str(root)
        self.containers, self.images, self.volumes, self.networks = {}, {}, {}, {}
        self.calls, self.fail, self.requests = [], {}, 0
        self.pull_hook, self.exec_hook, self.run_once_hook = None, None, None
        self.health_after = 0  # polls a new container reports "starting" before "healthy"
        self._ids = itertools.count(1)

    # --- test set-up -------------------------------------------------------------------------------
    def add_image(self, ref, env=(), ident=None):
        self.images[ref] = {"Id": ident or "sha256:%s" % ref.replace("/", "_"), "Config": {"Env": list(env), "Cmd": None}}
        return self.images[ref]

    def add_volume(self, name, labels=None, files=None):
        mountpoint = os.path.join(self.root, "volumes", name)
        os.makedirs(mountpoint, exist_ok=True)
        for rel, content in (files or {}).items():
            path = os.path.join(mountpoint, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(content)
        self.volumes[name] = {"Name": name, "Labels": labels or {}, "Mountpoint": mountpoint}
        return mountpoint

    def mutations(self):
        return [c for c in self.calls if c[0] in MUTATING]

    def _record(self, *call):
        self.calls.append(call)
        self.requests += 1
        if call[0] in self.fail:
            raise StackError(self.fail[call[0]])

    # --- the Engine interface ----------------------------------------------------------------------
    def container(self, name):
        self._record("inspect_container", name)
        found = self.containers.get(name) or next((c for c in self.containers.values() if c["Id"] == name), None)
        if found and found["State"].get("Health") is not None and found["_polls"] >= 0:
            found["_polls"] += 1
            if found["_polls"] > self.health_after:
                found["State"]["Health"]["Status"] = "healthy"
        return found

    def image(self, ref):
        self._record("inspect_image", ref)
        return self.images.get(ref)

    def pull(self, image, auth=None, timeout=None):
        self._record("pull", image)
        if self.pull_hook:
            self.pull_hook(image)
        if image not in self.images:
            self.add_image(image)
        return self.images[image]

    def network(self, name):
        self._record("inspect_network", name)
        return self.networks.get(name)

    def create_network(self, name, labels):
        self._record("create_network", name)
        self.networks[name] = {"Id": "net-" + name, "Labels": labels, "Containers": {}}
        return self.networks[name]["Id"]

    def remove_network(self, name):
        self._record("remove_network", name)
        self.networks.pop(name)

    def volume(self, name):
        self._record("inspect_volume", name)
        return self.volumes.get(name)

    def create_volume(self, name, labels):
        self._record("create_volume", name)
        self.add_volume(name, labels)

    def remove_volume(self, name):
        self._record("remove_volume", name)
        if name not in self.volumes:
            raise StackError("no such volume %s" % name)
        users = [c["Name"] for c in self.containers.values()
                 if any(m.get("Source") == name for m in c["HostConfig"].get("Mounts") or [])]
        if users:  # dockerd answers 409 even for a stopped container
            raise StackError("remove %s: volume is in use - %s" % (name, users))
        del self.volumes[name]

    def create(self, desired, command=None, name=None):
        name = name or desired["name"]
        self._record("create", name)
        body = create_body(desired, command)
        ident = "c%d" % next(self._ids)
        image = self.images.get(desired["image"]) or {"Id": "sha256:unknown"}
        networks = {desired["network"]: {"NetworkID": (self.networks.get(desired["network"]) or {}).get("Id"),
                                         "Aliases": desired["aliases"], "IPAddress": "10.0.0.2"}}
        self.containers[name] = {
            "Id": ident, "Name": "/" + name, "Image": image["Id"],
            "Config": {"Cmd": body["Cmd"], "Env": body["Env"], "Labels": body["Labels"], "Healthcheck": body["Healthcheck"]},
            "HostConfig": body["HostConfig"], "NetworkSettings": {"Networks": networks},
            "State": {"Status": "created", "Health": {"Status": "starting"} if body["Healthcheck"] else None},
            "RestartCount": 0, "_polls": -1}
        return ident

    def _by_id(self, ident):
        return next(c for c in self.containers.values() if c["Id"] == ident or c["Name"] == "/" + ident)

    def start(self, ident):
        self._record("start", ident)
        found = self._by_id(ident)
        found["State"]["Status"], found["_polls"] = "running", 0

    def stop(self, ident, timeout=30):
        self._record("stop", ident)
        self._by_id(ident)["State"]["Status"] = "exited"

    def restart(self, ident, timeout=30):
        self._record("restart", ident)

    def remove(self, ident, volumes=False):
        self._record("remove", ident)
        found = self._by_id(ident)
        del self.containers[found["Name"][1:]]

    def update(self, ident, desired):
        self._record("update", ident)

    def logs(self, ident, tail=30):
        return ["log line of %s" % ident]

    def wait_gone(self, name, timeout=30):
        assert name not in self.containers

    def run_once(self, desired, command, timeout):
        self._record("run_once", desired["name"], tuple(command))
        if self.run_once_hook:
            return self.run_once_hook(desired, command, timeout)
        return 0, ["mlinfra: schema at head"]

    def exec(self, ident, command, env=None, timeout=60):
        self._record("exec", ident, tuple(command))
        if self.exec_hook:
            return self.exec_hook(ident, command, env or {})
        return 0, ""
