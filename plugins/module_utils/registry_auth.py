# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry credentials for image pulls: the X-Registry-Auth header, and what `docker login` left in the
Docker CLI's config.json (inline or through a credential helper), found as the CLI finds it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import base64
import json
import os
import subprocess


def registry_auth_header(auth):
    """X-Registry-Auth: base64url(JSON) of username/password (and the server address when known)."""
    return base64.urlsafe_b64encode(json.dumps(auth).encode("utf-8")).decode("ascii")


def config_auth(registry, config_path=None, run=None):
    """Credentials for a registry from the Docker CLI's config.json (what `docker login` wrote), as the
    Docker SDK would use them; None when there are none. Credential helpers are asked like the CLI does."""
    path = config_path or os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    try:
        with open(path, "r") as handle:
            config = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    keys = [registry] + (["https://index.docker.io/v1/", "index.docker.io"] if registry == "docker.io" else [])
    helper = next((config.get("credHelpers", {}).get(k) for k in keys if config.get("credHelpers", {}).get(k)), None)
    helper = helper or config.get("credsStore")
    for key in keys + ["https://" + registry, "http://" + registry]:
        entry = (config.get("auths") or {}).get(key)
        if entry and entry.get("auth"):
            user, _sep, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            return {"username": user, "password": password, "serveraddress": registry}
        if entry and entry.get("identitytoken"):
            return {"identitytoken": entry["identitytoken"], "serveraddress": registry}
    if helper:
        return _helper_auth(helper, keys[0] if registry != "docker.io" else keys[1], run or _run_helper)
    return None


def _run_helper(argv, data):
    proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=False)
    return proc.returncode, proc.stdout


def _helper_auth(helper, server, run):
    try:
        rc, out = run(["docker-credential-" + helper, "get"], server.encode("utf-8"))
    except (OSError, subprocess.SubprocessError):
        return None
    if rc != 0:
        return None
    try:
        found = json.loads(out)
    except ValueError:
        return None
    if found.get("Username") == "<token>":
        return {"identitytoken": found.get("Secret"), "serveraddress": server}
    return {"username": found.get("Username"), "password": found.get("Secret"), "serveraddress": server}
