# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The docker service on a host: systemd or init script, restart, wait for the API, logs.

`run` is a callable like AnsibleModule.run_command: run(argv) -> (rc, stdout, stderr).
No Ansible imports: unit tests pass a fake runner.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import re
import shutil
import time

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.docker_api import DEFAULT_HOST, DockerAPI
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError

SERVICE = "docker"
DOCKERD_LOG = "/var/log/docker.log"


class DockerServiceError(MlinfraError):
    """dockerd did not do what was asked; `logs` holds its own last lines."""

    def __init__(self, msg, logs=None):
        super(DockerServiceError, self).__init__(msg)
        self.logs = logs or []


def has_systemd():
    return os.path.isdir("/run/systemd/system")


def unit_passes_host_flag(execstart):
    """True if a systemd ExecStart line hands dockerd a -H/--host flag (conflicts with 'hosts')."""
    return bool(re.search(r"(^|\s)(-H|--host)(\s|=|$)", execstart or ""))


def service_uses_host_flag(run):
    if not has_systemd():
        return False
    rc, out, _err = run(["systemctl", "show", SERVICE, "--property", "ExecStart", "--no-pager"])
    return rc == 0 and unit_passes_host_flag(out)


def supports_validate(run, dockerd="dockerd"):
    """`dockerd --validate` exists from Docker 23.0; older engines (Debian 12's 20.10) lack it."""
    if shutil.which(dockerd) is None and not os.path.exists("/usr/sbin/" + dockerd):
        return False
    rc, out, err = run([dockerd, "--help"])
    return rc == 0 and "--validate" in (out + err)


def validate_file(run, path, dockerd="dockerd"):
    """Return None if dockerd accepts the config file, else its error text."""
    rc, out, err = run([dockerd, "--validate", "--config-file", path])
    if rc == 0:
        return None
    return (err or out).strip()


def dockerd_installed(dirs=("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")):
    return any(os.path.exists(os.path.join(d, "dockerd")) for d in dirs)


def is_active(run):
    if has_systemd():
        rc, out, _err = run(["systemctl", "is-active", SERVICE])
        return rc == 0 and out.strip() == "active"
    rc, _out, _err = run(["service", SERVICE, "status"])
    return rc == 0


def api_answers(timeout=5, base_url=DEFAULT_HOST):
    """True if the engine answers on its socket: GET /_ping, as every Docker client checks (no `docker` CLI start)."""
    try:
        status, body = DockerAPI(base_url, timeout=timeout).request("GET", "/_ping")
    except MlinfraError:
        return False
    return status == 200 and body.strip() == b"OK"


ERROR_KEYS = ("level=fatal", "level=error", "failed to start", "unable to configure", "invalid")
NOISE = ("[core]", "module=grpc")


def _read_logs(run, since_epoch, lines):
    if has_systemd():
        cmd = ["journalctl", "-u", SERVICE, "--no-pager", "-o", "cat", "-n", str(lines * 10)]
        if since_epoch:
            cmd += ["--since", "@%d" % int(since_epoch)]
        _rc, out, _err = run(cmd)
        text = out
    else:
        try:
            with open(DOCKERD_LOG, "r", encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            text = ""
    return [line for line in text.splitlines() if line.strip() and not any(n in line for n in NOISE)][-lines:]


def recent_logs(run, since_epoch=None, lines=30, settle=5, sleep=time.sleep):
    """dockerd's own last lines (the journal under systemd, else its log file), without gRPC noise.
    journald may lag behind a unit that just failed: wait up to `settle` s for an error line."""
    logs = _read_logs(run, since_epoch, lines)
    for _attempt in range(settle):
        if any(key in line.lower() for line in logs for key in ERROR_KEYS):
            break
        sleep(1)
        logs = _read_logs(run, since_epoch, lines)
    return logs


def error_lines(logs):
    """The lines that say why dockerd stopped (level=error/fatal, 'failed to start')."""
    picked = [line for line in logs if any(key in line.lower() for key in ERROR_KEYS)]
    return picked or logs[-5:]


def daemon_reload(run):
    """systemd rereads unit files and drop-ins (a changed proxy drop-in)."""
    if has_systemd():
        rc, out, err = run(["systemctl", "daemon-reload"])
        if rc != 0:
            raise DockerServiceError("systemctl daemon-reload failed: %s" % (err or out).strip())


def restart(run):
    """Restart dockerd; return (ok, message)."""
    if has_systemd():
        # A failed start earlier may have tripped StartLimitBurst; clear it so this attempt counts.
        run(["systemctl", "reset-failed", SERVICE])
        rc, out, err = run(["systemctl", "restart", SERVICE])
    else:
        rc, out, err = run(["service", SERVICE, "restart"])
    return rc == 0, (err or out).strip()


def api_address(config):
    """Where dockerd answers under daemon.json `config`: its first unix:// socket in `hosts`; the default socket
    for none or fd:// (systemd's docker.socket); else its first plain tcp:// address (0.0.0.0 asked on
    127.0.0.1). A restart judged on the default socket alone failed, and was rolled back, for a daemon.json
    whose hosts do not include it."""
    hosts = config.get("hosts") or []
    hosts = [hosts] if isinstance(hosts, str) else [h for h in hosts if isinstance(h, str)]
    for prefix in ("unix://", "fd://"):
        found = next((h for h in hosts if h.startswith(prefix)), None)
        if found:
            return found if prefix == "unix://" else DEFAULT_HOST
    tcp = next((h for h in hosts if h.startswith("tcp://")), None)
    if tcp and not (config.get("tls") or config.get("tlsverify")):
        return tcp.replace("tcp://0.0.0.0:", "tcp://127.0.0.1:").replace("tcp://:", "tcp://127.0.0.1:")
    return DEFAULT_HOST


def wait_for_api(timeout, base_url=DEFAULT_HOST, sleep=time.sleep, clock=time.monotonic):
    """Poll until the API answers; bounded by timeout seconds."""
    deadline = clock() + timeout
    while True:
        if api_answers(base_url=base_url):
            return True
        if clock() >= deadline:
            return False
        sleep(1)


def restart_and_verify(run, timeout, base_url=DEFAULT_HOST):
    """Restart and wait for the API at base_url; raise DockerServiceError with dockerd's lines if it fails."""
    started = time.time()
    ok, message = restart(run)
    if ok and wait_for_api(timeout, base_url):
        return
    logs = recent_logs(run, since_epoch=started - 1)
    raise DockerServiceError(
        "dockerd did not come back within %ds after restart (%s)" % (timeout, message or "no message"),
        logs=logs)
