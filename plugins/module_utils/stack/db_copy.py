# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A remote MLflow's copy of the database password, kept without reading the database host on every run.

The database host's ml_stack reports a version of its password file (ansible_facts.mlinfra_postgres_password_version):
a digest of the file's identity (inode, modification time, size), never of its content, so it tells
nothing about the password. Any rewrite of the file (the module writes through a new inode) changes it. The
MLflow host keeps the password it was given in mlflow_db_password and, beside it, the version it was given
with (mlflow_db_password.version). A later run given only the version uses the kept copy when both versions
agree; otherwise it asks for the password (DbPasswordNeeded) before anything is written, and the role reads
it from the database host and runs again."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import os

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import files
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import MlinfraError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.stack.errors import StackInputError

FACT = "mlinfra_postgres_password_version"
VERSION_FILE = "mlflow_db_password.version"
PENDING = "pending"  # check mode, or a file this run rewrites: no kept copy matches it


class DbPasswordNeeded(MlinfraError):
    """Not a failure (Converger.run returns db_password_needed): this run needs mlflow.db_password itself.
    Raised by secrets.plan, before anything is pulled, written or started."""


def version(path):
    """The version of a password file: 16 hex digits from its identity, None when it does not exist."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    # Not st_dev: overlayfs (a container's root) and btrfs subvolumes may number their device anew at each mount.
    identity = "%d:%d:%d" % (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return hashlib.sha256(identity.encode("ascii")).hexdigest()[:16]


def facts(params, directory, writes, check_mode):
    """The database host's fact for its remote MLflow hosts, after this run's writes; {} on a host without
    postgres. PENDING in check mode when a real run would rewrite the file (or it does not exist yet), so no
    kept copy matches a file about to change."""
    if not params.get("postgres") or params.get("state") == "absent":
        return {}
    current = version(os.path.join(directory, "postgres_password"))
    return {FACT: PENDING if (check_mode and "postgres_password" in writes) or current is None else current}


def _read(path):
    data = files.read_bytes(path)
    return data.decode("utf-8").strip() if data is not None else None


def fill(params, directory):
    """params with mlflow.db_password taken from the kept copy when the module was given only its version and
    it matches; the same params otherwise. Raises DbPasswordNeeded when the copy cannot be used."""
    mlflow = params.get("mlflow")
    if params.get("state") == "absent" or not mlflow or params.get("postgres") or mlflow.get("db_password") is not None:
        return params
    wanted = mlflow.get("db_password_version")
    if wanted is None:
        raise StackInputError("mlflow.db_password is required when postgres runs on another host (or "
                              "mlflow.db_password_version, to use the copy kept on this host; the role passes it)")
    kept = _read(os.path.join(directory, "mlflow_db_password"))
    kept_version = _read(os.path.join(directory, VERSION_FILE))
    if not wanted or wanted == PENDING or not kept or kept_version != wanted:
        raise DbPasswordNeeded("the copy of the database password on this host is %s; give mlflow.db_password"
                               % ("missing" if not kept else "not known to match the database host's (version %s, "
                                  "kept %s)" % (wanted or "unknown", kept_version or "none")))
    return dict(params, mlflow=dict(mlflow, db_password=kept))


def plan(params, directory, values):
    """{VERSION_FILE: (path, stored)} when the version file must be rewritten, and its value in values: the given
    version beside a given password (PENDING too: in check mode, the file a real run would record anew); emptied
    when a password is given without a version and differs from the kept copy (the old version no longer
    describes it)."""
    mlflow = params.get("mlflow")
    if not mlflow or params.get("postgres") or mlflow.get("db_password") is None:
        return {}
    path = os.path.join(directory, VERSION_FILE)
    stored = _read(path)
    wanted = mlflow.get("db_password_version")
    if not wanted:
        if stored is None:
            return {}
        wanted = stored if values["mlflow_db_password"] == _read(os.path.join(directory, "mlflow_db_password")) else ""
    if stored == wanted:
        return {}
    values[VERSION_FILE] = wanted
    return {VERSION_FILE: (path, stored)}
