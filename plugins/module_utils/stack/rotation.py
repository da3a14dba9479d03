# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Changing a password that a server already holds. POSTGRES_PASSWORD_FILE acts only at initdb and
MLflow's basic-auth ini only when its user database is created: after that, a new secret on disk is
not the server's password. So a changed password is set in the running server first, checked to work,
and only then stored; when that cannot be done the run is refused before anything changes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import base64
import http.client
import json

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.health import container_address

POSTGRES_DONE = "postgres password rotated in the running server"
MLFLOW_ADMIN_DONE = "mlflow admin password rotated in the running server"

# psql interpolates :"u" and :'pw' with its own quoting (identifier / literal) in what it reads from stdin, and
# \getenv (psql 15+) reads the values from the exec's environment: no password is ever in a process's argv
# (other users of the Docker host see those). The new password is then checked over TCP to the container's
# own address: the official image trusts local and 127.0.0.1 connections, only `host all all all` asks for it.
_ALTER = r'''printf '%s\n' '\getenv u MLINFRA_USER' '\getenv pw MLINFRA_NEW' "ALTER ROLE :\"u\" PASSWORD :'pw';" \
  | PGPASSWORD="$MLINFRA_OLD" psql -X -q -v ON_ERROR_STOP=1 -U "$MLINFRA_USER" -d "$MLINFRA_DB" || exit 2
addr="$(hostname -i | cut -d' ' -f1)"
PGPASSWORD="$MLINFRA_NEW" psql -X -q -h "$addr" -U "$MLINFRA_USER" -d "$MLINFRA_DB" -c "select 1" >/dev/null || exit 3
'''


def changed_secret(writes, values, name):
    """A stored secret is being replaced by another value (not just a first write or a mode fix). For
    Postgres a rotation is then due when the volume holds a cluster initialised with the stored one (an
    empty volume takes the new password at initdb); for MLflow's admin when its user database exists."""
    stored = writes.get(name, (None, None))[1]
    return stored is not None and stored != values.get(name)


def check_secret_kept(param, given, stored, path, what):
    """A server that holds a password (a cluster, an auth database) whose stored copy is gone: a generated one
    would lock its clients out, so ask for it instead."""
    if stored is None and given is None:
        raise StackError("%s holds %s password, but %s is gone and %s was not given: a generated one would lock its "
                         "clients out. Nothing was changed. Give %s (the password it was set up with), or restore %s "
                         "from a backup" % (what, param.replace(".", " "), path, param, param, path), secret=param)


def check_postgres(inspect, volume):
    """Refuse up front when there is no running server to change the password in."""
    if not inspect or (inspect.get("State") or {}).get("Status") != "running":
        raise StackError(
            "postgres.password changed, but the cluster in volume %s was initialised with the stored password and "
            "no postgres container is running to change it in (POSTGRES_PASSWORD_FILE acts only on an empty data "
            "directory). Nothing was changed. Converge once with the stored password (leave postgres.password "
            "unset) so the server runs, then set the new one" % volume, volume=volume)


def rotate_postgres(engine, inspect, user, db, old, new):
    """ALTER ROLE in the running server over its local socket, then log in over TCP with the new password."""
    code, output = engine.exec(inspect["Id"], ["sh", "-c", _ALTER], env={
        "MLINFRA_USER": user, "MLINFRA_DB": db, "MLINFRA_OLD": old, "MLINFRA_NEW": new}, timeout=60)
    if code != 0:
        what = {2: "ALTER ROLE failed", 3: "logging in with the new password failed"}.get(code, "exit %s" % code)
        raise StackError("postgres: changing the password of role %s in the running server: %s (%s). The stored "
                         "password was kept and nothing else was changed" % (user, what, output.strip()[-500:]))


def _auth_request(address, method, path, username, password, body=None, timeout=90):
    token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
    conn = http.client.HTTPConnection(address, 5000, timeout=timeout)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Authorization": "Basic " + token, "Content-Type": "application/json",
                              "Host": "127.0.0.1:5000"})
        response = conn.getresponse()
        return response.status, response.read()[:300].decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return None, str(exc)
    finally:
        conn.close()


def check_mlflow_admin(inspect, network):
    if not inspect or (inspect.get("State") or {}).get("Status") != "running" or not container_address(inspect, network):
        raise StackError(
            "mlflow.admin_password changed, but MLflow's user database already holds the stored admin password and no "
            "mlflow container is running to change it in (the basic-auth ini acts only when that database is created). "
            "Nothing was changed. Converge once with the stored password, then set the new one")


def rotate_mlflow_admin(inspect, network, username, old, new, request=_auth_request):
    """MLflow's own user API: update the admin password as the admin, then log in with the new one. The
    login decides, not the update's answer: an update that timed out (basic-auth hashes every password,
    slow on a loaded host) may still have been applied. Returns an error message when the server took
    the new password but did not say so cleanly (the caller stores it, then reports), None when all is well."""
    address = container_address(inspect, network)
    # MLflow 3.x asks a user changing their own password for the current one too (a hijacked session must not
    # rotate it); older releases ignore the extra field.
    status, text = request(address, "PATCH", "/api/2.0/mlflow/users/update-password", username, old,
                           {"username": username, "password": new, "current_password": old})
    confirmed, _text = request(address, "GET", "/api/2.0/mlflow/users/get?username=%s" % username, username, new)
    if confirmed == 200:
        return None if status == 200 else (
            "mlflow: the admin password update answered HTTP %s (%s) but the new password works; it was stored"
            % (status, text))
    still_old, _text = request(address, "GET", "/api/2.0/mlflow/users/get?username=%s" % username, username, old)
    if still_old != 200:  # neither logs in now: the server most likely took the update; keep the host with it
        return ("mlflow: the admin password update answered HTTP %s and neither password could be confirmed (new: HTTP "
                "%s, old: HTTP %s); the new one was stored, as the server most likely has it" % (status, confirmed, still_old))
    raise StackError("mlflow: changing the admin password through MLflow's user API failed (HTTP %s: %s) and the new "
                     "password does not log in (HTTP %s). The stored password was kept and nothing else was changed"
                     % (status, text, confirmed))
