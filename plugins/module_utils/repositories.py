# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a package repository's files and drop the leftovers that make apt fail with
"Conflicting values set for option Signed-By". Shared by docker_engine and nvidia_toolkit."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import glob
import os

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import files
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import packages as pk


def url_host(url):
    return url.split("://", 1)[-1].split("/", 1)[0]


def ensure_repository(wanted, check_mode, apt_hostname=None, legacy_names=(), legacy_keyrings=()):
    """wanted: {path: content}. On apt hosts also remove *.list files that point at apt_hostname or
    carry a legacy name, and legacy apt-key keyrings. Returns the changed paths."""
    changed = [path for path, content in wanted.items() if files.ensure_content(path, content, check_mode)]
    if apt_hostname is None:
        return changed
    lists = {}
    for path in glob.glob(os.path.join(pk.SOURCES_DIR, "*.list")):
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            lists[path] = handle.read()
    leftovers = set(pk.legacy_entries(lists, apt_hostname))
    leftovers.update(os.path.join(pk.SOURCES_DIR, name) for name in legacy_names)
    for pattern in legacy_keyrings:
        leftovers.update(glob.glob(pattern))
    for path in sorted(leftovers):
        if path not in wanted and files.ensure_absent(path, check_mode):
            changed.append(path)
    return changed


def repository_key(host, given, url, existing_path, check_mode, what):
    """The repository's OpenPGP key as bytes: given inline, else downloaded. In check mode an
    unreachable URL is not an error (the plan says the keyring would be written)."""
    key = given
    if key is None:
        try:
            key = host.fetch(url)
        except Exception as exc:  # pylint: disable=broad-except
            if not check_mode:
                raise pk.PackagesError("could not download the %s repository key from %s: %s. Set the key's content "
                                 "inline, or point the key URL at a mirror" % (what, url, exc))
            return files.read_bytes(existing_path) or b"<key from %s>" % url_host(url).encode()
    if not pk.looks_like_key(key):
        raise pk.PackagesError("the %s repository key is not an OpenPGP public key (armored or binary)" % what)
    return key.encode() if isinstance(key, str) else key
