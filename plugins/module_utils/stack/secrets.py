# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack's secrets on the host: given or generated once, kept under /etc/mlinfra/<project>/ (0600
root), reused on every run; and the runtime files handed to containers (exact owner and mode)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import secrets as pysecrets

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import files
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack import db_copy, services
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError

PLACEHOLDER = "(generated on the first real run)"


def needed(params):
    """[(secret name, value given as a parameter or None, parameter name)] for the enabled services (services.SECRETS)."""
    wanted = []
    for service in services.NAMES:
        svc = params.get(service)
        for name, option, needs in services.SECRETS[service] if svc else ():
            if needs is None or svc.get(needs):
                wanted.append((name, svc.get(option) if option else None, "%s.%s" % (service, option) if option else None))
    return wanted


def check_given(params):
    """Every secret given as a parameter is usable, checked before any secret file is written."""
    for name, given, param in needed(params):
        if given is None:
            continue
        if not given or "\n" in given:
            raise StackInputError("%s must be a non-empty single line" % param)
        if name == "mlflow_db_password" and (":" in given or "\\" in given):
            raise StackInputError("mlflow.db_password may not contain ':' or '\\' (it goes into a pgpass file)")


def _ensure_dir(path, check_mode):
    if os.path.isdir(path):
        if (os.stat(path).st_mode & 0o777) != 0o700 and not check_mode:
            os.chmod(path, 0o700)
        return False
    if not check_mode:
        os.makedirs(path, 0o700)
        os.chmod(path, 0o700)
    return True


def plan(params, directory, check_mode):
    """Decide every secret without writing anything: ({name: value}, {name: (path, stored value or None)}
    for the secret files that must be (re)written). mlflow_db_password falls back to the local
    postgres_password; a given value replaces the stored one (see rotation.py for what that implies). A remote
    MLflow's kept copy of the database password stands in for one not given when its version matches (db_copy)."""
    params = db_copy.fill(params, directory)
    check_given(params)
    values, writes = {}, {}
    for name, given, _param in needed(params):
        if name == "mlflow_db_password" and given is None:
            values[name] = values["postgres_password"]
            continue
        path = os.path.join(directory, name)
        stored = files.read_bytes(path)
        stored = stored.decode("utf-8").strip() if stored is not None else None
        value = given if given is not None else stored
        if value is None:
            value = PLACEHOLDER if check_mode else pysecrets.token_urlsafe(24)
        if stored != value or _wrong_mode(path, 0o600, 0):
            writes[name] = (path, stored)
        values[name] = value
    writes.update(db_copy.plan(params, directory, values))
    return values, writes


def placeholders():
    """state=absent needs names, not secrets: placeholders let the spec be built."""
    return {name: "absent" for rows in services.SECRETS.values() for name, _option, _needs in rows}


def apply(directory, values, writes, check_mode):
    """Write the planned secret files (0600 root in a 0700 directory); return the changed paths."""
    changed = [directory] if _ensure_dir(directory, check_mode) else []
    for name, (path, _stored) in sorted(writes.items()):
        changed.append(path)
        if not check_mode:
            write_exact(path, values[name] + "\n", 0o600, 0, 0)
    return changed


def resolve(params, directory, check_mode):
    """plan + apply in one step: ({name: value}, [changed paths])."""
    values, writes = plan(params, directory, check_mode)
    return values, apply(directory, values, writes, check_mode)


def _wrong_mode(path, mode, uid):
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return True
    return (stat.st_mode & 0o7777) != mode or stat.st_uid != uid


def write_exact(path, content, mode, uid, gid):
    files.atomic_write(path, content, default_mode=mode)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def ensure_runtime_files(runtime_files, check_mode):
    """Make each runtime file hold its content with its exact owner and mode; return changed paths."""
    changed = []
    for item in runtime_files:
        directory = os.path.dirname(item["path"])
        if not os.path.isdir(directory) and not check_mode:
            os.makedirs(directory, 0o700)
        current = files.read_bytes(item["path"])
        if current == item["content"].encode("utf-8") and not _wrong_mode(item["path"], item["mode"], item["uid"]):
            continue
        changed.append(item["path"])
        if not check_mode:
            write_exact(item["path"], item["content"], item["mode"], item["uid"], item["gid"])
    return changed


def stale_runtime_files(runtime_dir, names, files_wanted):
    """The runtime files (of `names`, a service's) present in runtime_dir that the desired state no longer
    has: an S3 credentials file after S3 is turned off, basic_auth.ini after basic auth, all of them after
    state=absent. Derived copies of secrets: the secrets themselves stay in secrets_dir."""
    wanted = {item["path"] for item in files_wanted}
    paths = [os.path.join(runtime_dir, name) for name in names]
    stale = [path for path in paths if path not in wanted and os.path.lexists(path)]
    # A service's own subdirectory (runtime/tf_serving/) goes too, after its files, once nothing else is in it.
    for sub in sorted({os.path.dirname(name) for name in names if os.path.dirname(name)}):
        directory = os.path.join(runtime_dir, sub)
        going = {os.path.basename(path) for path in stale if os.path.dirname(path) == directory}
        if os.path.isdir(directory) and not os.path.islink(directory) and set(os.listdir(directory)) <= going:
            stale.append(directory)
    return stale


def remove_runtime_files(paths, check_mode):
    """Remove them (after the container that mounted them was recreated or removed); return host changes."""
    for path in paths:
        if not check_mode:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)  # only ever an emptied service subdirectory (stale_runtime_files)
            else:
                os.unlink(path)
    return ["%s (removed)" % path for path in paths]
