# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small, safe file operations: read if present, atomic write keeping owner and mode, remove."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import os
import tempfile


def read_bytes(path):
    """The file's bytes, or None if it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def atomic_write(path, content, default_mode=0o644):
    """Write content (str or bytes) to path via a temp file in the same directory, fsync, rename;
    keep the existing owner and mode (default_mode for a new file). Never leaves a partial file."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    try:
        stat = os.stat(path)
        mode, owner = stat.st_mode & 0o7777, (stat.st_uid, stat.st_gid)
    except FileNotFoundError:
        mode, owner = default_mode, None
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, owner[0], owner[1])
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def ensure_content(path, content, check_mode, default_mode=0o644):
    """Make path hold content; return True if it changed (or would, in check mode)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if read_bytes(path) == data:
        return False
    if not check_mode:
        atomic_write(path, data, default_mode)
    return True


def ensure_absent(path, check_mode):
    if not os.path.lexists(path):
        return False
    if not check_mode:
        os.unlink(path)
    return True
