# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only code that talks to Docker: one low-level SDK client per module run; containers,
images, volumes and networks are inspected by name (never by listing everything)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import time

try:
    import docker
    from docker.errors import APIError, DockerException, ImageNotFound, NotFound
    from requests.exceptions import RequestException  # the SDK's transport; dockerd gone mid-call
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = exc
    APIError = DockerException = ImageNotFound = NotFound = RequestException = Exception


class StackError(Exception):
    """Docker refused or a service did not come up; extra carries details (logs, states)."""

    def __init__(self, msg, **extra):
        super(StackError, self).__init__(msg)
        self.extra = extra


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


class Engine:
    def __init__(self, base_url, api_version="auto", timeout=120):
        try:
            self.api = docker.APIClient(base_url=base_url, version=api_version, timeout=timeout)
        except DockerException as exc:
            raise StackError("cannot reach the Docker engine at %s: %s. Is docker running "
                             "(systemctl status docker)?" % (base_url, exc))
        self.base_url = base_url
        self.requests = 0

    def lost(self, what, exc):
        return StackError("lost the Docker engine at %s while trying to %s (%s). dockerd stopped or restarted "
                          "during the run; check 'systemctl status docker' and 'journalctl -u docker' on this host, "
                          "then rerun: services already converged are kept, the rest are repaired"
                          % (self.base_url, what, exc), docker_host=self.base_url)

    def _call(self, what, func, *args, **kwargs):
        self.requests += 1
        try:
            return func(*args, **kwargs)
        except (NotFound, ImageNotFound):
            raise
        except (APIError, DockerException) as exc:
            raise StackError("Docker refused to %s: %s" % (what, getattr(exc, "explanation", None) or exc))
        except RequestException as exc:
            raise self.lost(what, exc)

    def _inspect(self, kind, func, name):
        """Inspect one object by name; None when Docker does not have it."""
        try:
            return self._call("inspect %s %s" % (kind, name), func, name)
        except (NotFound, ImageNotFound):
            return None

    def container(self, name):
        return self._inspect("container", self.api.inspect_container, name)

    def image(self, ref):
        return self._inspect("image", self.api.inspect_image, ref)

    def pull(self, image, auth=None):
        repo, tag = split_image(image)
        self.requests += 1
        try:
            self.api.pull(repo, tag=tag, auth_config=auth)
        except (APIError, DockerException) as exc:
            raise StackError("pulling %s from %s failed: %s. Check that the registry is reachable from this "
                             "host and the image name/tag exist (nothing was changed on the host)"
                             % (image, registry_of(image), getattr(exc, "explanation", None) or exc),
                             image=image, registry=registry_of(image))
        except RequestException as exc:  # after APIError, which is also a requests HTTPError
            raise self.lost("pull %s" % image, exc)
        return self.image(image)

    def network(self, name):
        return self._inspect("network", self.api.inspect_network, name)

    def create_network(self, name, labels):
        return self._call("create network %s" % name, self.api.create_network, name, driver="bridge",
                          labels=labels, check_duplicate=True)["Id"]

    def remove_network(self, name):
        self._call("remove network %s" % name, self.api.remove_network, name)

    def volume(self, name):
        return self._inspect("volume", self.api.inspect_volume, name)

    def create_volume(self, name, labels):
        return self._call("create volume %s" % name, self.api.create_volume, name, labels=labels)

    def remove_volume(self, name):
        self._call("remove volume %s" % name, self.api.remove_volume, name, force=True)

    def create(self, desired, network_id, command=None, name=None):
        """Create (not start) a container from a desired spec; returns its id."""
        api = self.api
        mounts = [docker.types.Mount(target, source, type=kind, read_only=ro) for kind, source, target, ro in desired["mounts"]]
        host_config = api.create_host_config(
            port_bindings={port: [tuple(b) for b in binds] for port, binds in desired["ports"].items()},
            mounts=mounts, mem_limit=desired["memory"], memswap_limit=-1 if desired["memory"] else None,
            nano_cpus=desired["nano_cpus"], shm_size=desired["shm_size"],
            ulimits=[docker.types.Ulimit(name=u["Name"], soft=u["Soft"], hard=u["Hard"]) for u in desired["ulimits"]],
            restart_policy=desired["restart_policy"] if name is None else None,
            log_config=docker.types.LogConfig(type=desired["log_config"]["Type"], config=desired["log_config"]["Config"])
            if desired["log_config"] else None,
            device_requests=[docker.types.DeviceRequest(driver=r["Driver"], count=r["Count"], device_ids=r["DeviceIDs"],
                                                        capabilities=r["Capabilities"]) for r in desired["device_requests"] or []]
            or None)
        networking = api.create_networking_config({desired["network"]: api.create_endpoint_config(
            aliases=desired["aliases"] if name is None else None)})
        created = self._call("create container %s" % (name or desired["name"]), api.create_container,
                             desired["image"], name=name or desired["name"],
                             command=command if command is not None else desired["command"],
                             environment=desired["env"], labels=desired["labels"],
                             ports=[tuple(p.split("/")) if "/" in p else p for p in desired["ports"]],
                             healthcheck=desired["healthcheck"], host_config=host_config,
                             networking_config=networking, detach=True)
        return created["Id"]

    def start(self, ident):
        self._call("start container %s" % ident, self.api.start, ident)

    def stop(self, ident, timeout=30):
        self._call("stop container %s" % ident, self.api.stop, ident, timeout=timeout)

    def restart(self, ident, timeout=30):
        self._call("restart container %s" % ident, self.api.restart, ident, timeout=timeout)

    def remove(self, ident, volumes=False):
        self._call("remove container %s" % ident, self.api.remove_container, ident, v=volumes, force=True)

    def update(self, ident, desired):
        self._call("update container %s" % ident, self.api.update_container, ident,
                   mem_limit=desired["memory"] or None, memswap_limit=-1 if desired["memory"] else None,
                   nano_cpus=desired["nano_cpus"] or None, restart_policy=desired["restart_policy"])

    def logs(self, ident, tail=30):
        try:
            out = self.api.logs(ident, stdout=True, stderr=True, tail=tail)
        except (APIError, DockerException, RequestException):
            return []
        return out.decode("utf-8", "replace").splitlines()[-tail:]

    def wait_gone(self, name, timeout=30):
        deadline = time.monotonic() + timeout
        while self.container(name) is not None:
            if time.monotonic() > deadline:
                raise StackError("container %s was still there %ds after removal" % (name, timeout))
            time.sleep(0.2)

    def run_once(self, desired, command, timeout):
        """Run a one-shot container (same image, env, mounts, network) to completion; (exit code, logs)."""
        name = desired["name"] + "-oneshot"
        if self.container(name) is not None:
            self.remove(name)
        ident = self.create(desired, None, command=command, name=name)
        try:
            self.start(ident)
            try:
                result = self.api.wait(ident, timeout=timeout)
            except Exception:  # pylint: disable=broad-except
                return None, self.logs(ident, 60)
            return result.get("StatusCode"), self.logs(ident, 60)
        finally:
            self.remove(ident)
