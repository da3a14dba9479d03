# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Docker Engine API client over the engine's socket, on the standard library only.

The Docker SDK for Python costs 130-170 ms of imports (requests, urllib3, chardet) on every module run,
more than the API requests of a no-op run together. The modules need a dozen endpoints, so they speak
HTTP/1.1 to dockerd themselves: unix:// sockets and plain tcp:// (no TLS). One fresh connection per
request, so a dockerd restart between two requests is never mistaken for a stale keep-alive."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import http.client
import json
import socket
import struct
import time

from urllib.parse import urlencode

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError

DEFAULT_HOST = "unix:///var/run/docker.sock"


class DockerAPIError(MlinfraError):
    """dockerd answered with an error status; `explanation` is dockerd's own message."""

    def __init__(self, status, explanation):
        super(DockerAPIError, self).__init__("%s (HTTP %s)" % (explanation, status))
        self.status, self.explanation = status, explanation


class DockerNotFound(DockerAPIError):
    """404: no such container, image, network or volume."""


class DockerConnectionError(MlinfraError):
    """The engine could not be reached, or the connection broke mid-request."""


class DockerDeadlineExceeded(MlinfraError):
    """A streamed answer (a pull) was still coming when its own deadline passed; the request was dropped."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def parse_base_url(base_url):
    """'unix:///run/docker.sock' -> ('unix', path); 'tcp://h:2375' or 'http://h:2375' -> ('tcp', (h, port))."""
    scheme, sep, rest = (base_url or DEFAULT_HOST).partition("://")
    if not sep:
        raise ValueError("docker_host %r has no scheme: use unix:///path/to/docker.sock or tcp://host:port" % base_url)
    if scheme == "unix":
        if not rest.startswith("/"):
            raise ValueError("docker_host %r: a unix socket needs an absolute path" % base_url)
        return "unix", rest
    if scheme in ("tcp", "http"):
        host, _sep, port = rest.rstrip("/").rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("docker_host %r is not tcp://host:port" % base_url)
        return "tcp", (host.strip("[]"), int(port))
    raise ValueError("docker_host %r: only unix:// sockets and plain tcp://host:port are supported (no TLS or "
                     "ssh://); run the module on the Docker host itself" % base_url)


def demux(raw):
    """Docker's multiplexed log stream (8-byte frame headers) -> plain bytes; a TTY's raw stream as is."""
    if len(raw) < 8 or raw[0:1] not in (b"\x00", b"\x01", b"\x02") or raw[1:4] != b"\x00\x00\x00":
        return raw
    out, pos = [], 0
    while pos + 8 <= len(raw):
        size = struct.unpack(">I", raw[pos + 4:pos + 8])[0]
        out.append(raw[pos + 8:pos + 8 + size])
        pos += 8 + size
    return b"".join(out)


def stream_errors(raw):
    """The error lines of a JSON progress stream (pull): dockerd answers 200 and reports failures inline."""
    errors = []
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("error"):
            errors.append(item.get("errorDetail", {}).get("message") or item["error"])
    return errors


class DockerAPI:
    """Requests to one engine. `version` None (or 'auto') uses unversioned paths: the engine's own API version."""

    def __init__(self, base_url=DEFAULT_HOST, version=None, timeout=60):
        self.kind, self.address = parse_base_url(base_url)
        self.base_url, self.timeout = base_url, timeout
        self.prefix = "/v%s" % version.lstrip("v") if version and version != "auto" else ""
        self.requests = 0

    def _connection(self, timeout):
        if self.kind == "unix":
            return _UnixConnection(self.address, timeout)
        return http.client.HTTPConnection(self.address[0], self.address[1], timeout=timeout)

    def request(self, method, path, params=None, body=None, headers=None, timeout=None, deadline=None):
        """One request; (status, body bytes). Raises DockerConnectionError when the engine is unreachable.
        With a deadline (time.monotonic() value) the body is read in pieces and the request is dropped
        (DockerDeadlineExceeded) once it passes: a pull streams progress for as long as it runs."""
        url = self.prefix + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            url += "?" + urlencode(query)
        send_headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        self.requests += 1
        conn = self._connection(self.timeout if timeout is None else timeout)
        try:
            conn.request(method, url, body=payload, headers=send_headers)
            response = conn.getresponse()
            if deadline is None:
                return response.status, response.read()
            pieces = []
            while True:
                piece = response.read1(65536)
                if not piece:
                    return response.status, b"".join(pieces)
                pieces.append(piece)
                if time.monotonic() > deadline:
                    raise DockerDeadlineExceeded("%s %s" % (method, path))
        except (OSError, http.client.HTTPException) as exc:
            raise DockerConnectionError("%s %s: %s" % (method, path, exc or type(exc).__name__))
        finally:
            conn.close()

    def call(self, method, path, params=None, body=None, headers=None, timeout=None):
        """A request whose non-2xx/304 answer is an error; the decoded JSON body (None when empty)."""
        status, raw = self.request(method, path, params, body, headers, timeout)
        if status >= 400:
            try:
                message = json.loads(raw).get("message")
            except (ValueError, AttributeError):
                message = None
            error = DockerNotFound if status == 404 else DockerAPIError
            raise error(status, message or raw.decode("utf-8", "replace").strip() or http.client.responses.get(status, "error"))
        if not raw or status == 304:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw
