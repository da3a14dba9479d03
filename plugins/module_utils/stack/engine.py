# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ml_stack's Docker operations: one API client per module run (docker_api, standard library only);
containers, images, volumes and networks are inspected by name (never by listing everything). docker_engine
asks the same client for the engine's facts (docker_install.engine_facts); docker_service restarts dockerd."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import time

from urllib.parse import quote

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.docker_api import (
    DockerAPI, DockerAPIError, DockerConnectionError, DockerDeadlineExceeded, DockerNotFound, demux, stream_errors)
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.registry_auth import config_auth, registry_auth_header
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.compare import device_requests, memory_limits
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError


def split_image(image):
    """'registry:5000/a/b:tag' -> ('registry:5000/a/b', 'tag'); digests kept whole."""
    if "@" in image:
        return image, None
    name, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return image, "latest"


def registry_of(image):
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"


def host_config(desired, restart=True):
    """The HostConfig of a desired container, shaped as the Docker SDK's create_host_config sent it."""
    config = {"NetworkMode": "default",
              "PortBindings": {port: [{"HostIp": ip, "HostPort": str(hp)} for ip, hp in binds]
                               for port, binds in desired["ports"].items()} or None,
              "Mounts": [{"Target": target, "Source": source, "Type": kind, "ReadOnly": bool(ro)}
                         for kind, source, target, ro in desired["mounts"]],
              "Ulimits": [dict(u) for u in desired["ulimits"]]}
    if desired["memory"] is not None:
        config.update(memory_limits(desired["memory"]))
    optional = (("NanoCpus", desired["nano_cpus"]), ("ShmSize", desired["shm_size"]),
                ("RestartPolicy", desired["restart_policy"] if restart else None),
                ("LogConfig", desired["log_config"]),
                ("DeviceRequests", device_requests(desired["device_requests"])))
    config.update((key, value) for key, value in optional if value)
    return {k: v for k, v in config.items() if v is not None}


def create_body(desired, command=None, oneshot=False):
    """The body of POST /containers/create for a desired container (a one-shot: no restart, no alias, no
    published ports: one left running must never hold the server's ports)."""
    if oneshot:
        desired = dict(desired, ports={})
    return {"Image": desired["image"], "Cmd": command if command is not None else desired["command"],
            "Env": ["%s=%s" % item for item in desired["env"].items()], "Labels": desired["labels"],
            "ExposedPorts": {port: {} for port in desired["ports"]}, "Healthcheck": desired["healthcheck"],
            "Tty": False, "NetworkDisabled": False, "OpenStdin": False, "StdinOnce": False,
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "HostConfig": host_config(desired, restart=not oneshot),
            "NetworkingConfig": {"EndpointsConfig": {desired["network"]: {} if oneshot else {"Aliases": desired["aliases"]}}}}


class Engine:
    def __init__(self, base_url, api_version="auto", timeout=120):
        try:
            self.api = DockerAPI(base_url, api_version, timeout)
        except ValueError as exc:
            raise StackError(str(exc))
        self.base_url = base_url

    @property
    def requests(self):
        return self.api.requests

    def unreachable(self, exc):
        return StackError("cannot reach the Docker engine at %s (%s). Is docker running (systemctl status docker)?"
                          % (self.base_url, exc), docker_host=self.base_url)

    def lost(self, what, exc):
        return StackError("lost the Docker engine at %s while trying to %s (%s). dockerd stopped or restarted "
                          "during the run; check 'systemctl status docker' and 'journalctl -u docker' on this host, "
                          "then rerun: services already converged are kept, the rest are repaired"
                          % (self.base_url, what, exc), docker_host=self.base_url)

    def _call(self, what, method, path, **kwargs):
        first = self.api.requests == 0
        try:
            return self.api.call(method, path, **kwargs)
        except DockerNotFound:
            raise
        except DockerAPIError as exc:
            raise StackError("Docker refused to %s: %s" % (what, exc.explanation))
        except DockerConnectionError as exc:
            raise self.unreachable(exc) if first else self.lost(what, exc)

    def _inspect(self, kind, name):
        """Inspect one object by name; None when Docker does not have it."""
        try:
            return self._call("inspect %s %s" % (kind, name), "GET", "/%ss/%s%s" % (
                kind, _quote(name), "/json" if kind in ("container", "image") else ""))
        except DockerNotFound:
            return None

    def container(self, name):
        return self._inspect("container", name)

    def image(self, ref):
        return self._inspect("image", ref)

    def pull(self, image, auth=None, timeout=None):
        """Pull one image (bounded by its own timeout in seconds, not the health budget); its inspect."""
        repo, tag = split_image(image)
        auth = auth or config_auth(registry_of(image))
        headers = {"X-Registry-Auth": registry_auth_header(auth)} if auth else {}
        try:
            status, raw = self.api.request("POST", "/images/create", params={"fromImage": repo, "tag": tag},
                                           headers=headers, deadline=time.monotonic() + timeout if timeout else None)
        except DockerConnectionError as exc:
            if "timed out" not in str(exc):
                raise self.lost("pull %s" % image, exc)
            raise StackError("pulling %s from %s stalled: no progress for %ss (%s); the pull was stopped and no container "
                             "was touched. Check the registry, or pre-pull the image on this host"
                             % (image, registry_of(image), self.api.timeout, exc), image=image, registry=registry_of(image))
        except DockerDeadlineExceeded:
            raise StackError("pulling %s from %s took longer than pull_timeout (%ss); the pull was stopped and no "
                             "container was touched. Raise pull_timeout (ml_stack_pull_timeout) for large images, or "
                             "pre-pull the image on this host" % (image, registry_of(image), timeout),
                             image=image, registry=registry_of(image))
        errors = stream_errors(raw)
        if status >= 400 or errors:
            try:
                message = errors[-1] if errors else json.loads(raw).get("message")
            except (ValueError, AttributeError):
                message = raw.decode("utf-8", "replace").strip()
            raise StackError("pulling %s from %s failed: %s. Check that the registry is reachable from this "
                             "host and the image name/tag exist (nothing was changed on the host)"
                             % (image, registry_of(image), message), image=image, registry=registry_of(image))
        return self.image(image)

    def network(self, name):
        return self._inspect("network", name)

    def create_network(self, name, labels):
        return self._call("create network %s" % name, "POST", "/networks/create",
                          body={"Name": name, "Driver": "bridge", "Labels": labels, "CheckDuplicate": True})["Id"]

    def remove_network(self, name):
        self._call("remove network %s" % name, "DELETE", "/networks/%s" % _quote(name))

    def volume(self, name):
        return self._inspect("volume", name)

    def create_volume(self, name, labels):
        return self._call("create volume %s" % name, "POST", "/volumes/create", body={"Name": name, "Labels": labels})

    def remove_volume(self, name):
        self._call("remove volume %s" % name, "DELETE", "/volumes/%s" % _quote(name), params={"force": 1})

    def create(self, desired, command=None, name=None):
        """Create (not start) a container from a desired spec; returns its id."""
        name = name or desired["name"]
        created = self._call("create container %s" % name, "POST", "/containers/create", params={"name": name},
                             body=create_body(desired, command, oneshot=name != desired["name"]))
        return created["Id"]

    def start(self, ident):
        self._call("start container %s" % ident, "POST", "/containers/%s/start" % ident)

    def stop(self, ident, timeout=30):
        self._call("stop container %s" % ident, "POST", "/containers/%s/stop" % ident, params={"t": timeout},
                   timeout=timeout + self.api.timeout)

    def restart(self, ident, timeout=30):
        self._call("restart container %s" % ident, "POST", "/containers/%s/restart" % ident, params={"t": timeout},
                   timeout=timeout + self.api.timeout)

    def remove(self, ident, volumes=False):
        self._call("remove container %s" % ident, "DELETE", "/containers/%s" % ident,
                   params={"v": int(volumes), "force": 1})

    def update(self, ident, desired):
        body = dict(memory_limits(desired["memory"]), NanoCpus=desired["nano_cpus"] or None,
                    RestartPolicy=desired["restart_policy"])
        self._call("update container %s" % ident, "POST", "/containers/%s/update" % ident,
                   body={k: v for k, v in body.items() if v is not None})

    def logs(self, ident, tail=30):
        try:
            status, raw = self.api.request("GET", "/containers/%s/logs" % ident,
                                           params={"stdout": 1, "stderr": 1, "tail": tail})
        except DockerConnectionError:
            return []
        if status >= 400:
            return []
        return demux(raw).decode("utf-8", "replace").splitlines()[-tail:]

    def wait_gone(self, name, timeout=30):
        deadline = time.monotonic() + timeout
        while self.container(name) is not None:
            if time.monotonic() > deadline:
                raise StackError("container %s was still there %ds after removal" % (name, timeout))
            time.sleep(0.2)

    def exec(self, ident, command, env=None, timeout=60):
        """Run a command in a running container (docker exec); (exit code, output). Env entries are the
        exec's own: they never appear in the container's configuration."""
        created = self._call("exec in container %s" % ident, "POST", "/containers/%s/exec" % ident, body={
            "AttachStdout": True, "AttachStderr": True, "Tty": False, "Cmd": list(command),
            "Env": ["%s=%s" % item for item in (env or {}).items()]})
        try:
            status, raw = self.api.request("POST", "/exec/%s/start" % created["Id"], body={"Detach": False, "Tty": False},
                                           timeout=timeout)
        except DockerConnectionError as exc:
            raise self.lost("exec in container %s" % ident, exc)
        if status >= 400:
            raise StackError("Docker refused to exec in container %s: %s" % (ident, raw.decode("utf-8", "replace")))
        result = self._call("inspect exec in %s" % ident, "GET", "/exec/%s/json" % created["Id"])
        return result.get("ExitCode"), demux(raw).decode("utf-8", "replace")

    def run_once(self, desired, command, timeout):
        """Run a one-shot container (same image, env, mounts, network) to completion; (exit code, logs).
        One still running after `timeout` seconds is left running, never killed: a schema migration
        stopped half-way can leave the database unusable."""
        name = desired["name"] + "-oneshot"
        previous = self.container(name)
        if previous is not None:
            if (previous.get("State") or {}).get("Running"):
                raise StackError("%s from an earlier run is still running (%s); it was left alone. Wait for it to "
                                 "finish (docker wait %s; docker logs %s), then rerun" % (
                                     name, " ".join(previous["Config"].get("Cmd") or []), name, name), container=name)
            self.remove(name)
        ident = self.create(desired, command=command, name=name)
        self.start(ident)
        try:
            result = self.api.call("POST", "/containers/%s/wait" % ident, timeout=timeout) or {}
        except (DockerAPIError, DockerConnectionError) as exc:
            raise StackError("%s did not finish within %ss (%s). It was left running so that it is not stopped "
                             "half-way; wait for it (docker wait %s), read its logs (docker logs %s), then rerun"
                             % (name, timeout, exc, name, name), container=name, logs=self.logs(ident, 60))
        logs = self.logs(ident, 60)
        self.remove(ident)
        return result.get("StatusCode"), logs


def _quote(name):
    return quote(name, safe="/:@")
