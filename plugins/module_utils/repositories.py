# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Package repositories: their files rendered (deb822 source, dnf .repo), the key checked and fetched, the
files written, and the leftovers dropped that make apt fail with "Conflicting values set for option
Signed-By". Shared by docker_engine and nvidia_toolkit."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import glob
import os

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import files
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.package_versions import PackagesError

KEYRING_DIR = "/etc/apt/keyrings"
SOURCES_DIR = "/etc/apt/sources.list.d"
YUM_REPOS_DIR = "/etc/yum.repos.d"


def deb822_source(uris, suite, components, keyring, architectures=None):
    """A deb822 .sources stanza with Signed-By (the form that avoids 'Conflicting values set for
    option Signed-By' when no other entry for the same URI exists)."""
    lines = ["Types: deb", "URIs: %s" % uris, "Suites: %s" % suite]
    if components:  # a flat repository (Suites: /) has none
        lines.append("Components: %s" % components)
    if architectures:
        lines.append("Architectures: %s" % architectures)
    lines.append("Signed-By: %s" % keyring)
    return "# Managed by mlinfra.docker_ml\n" + "\n".join(lines) + "\n"


def dnf_repo(repo_id, name, baseurl, gpgkey, repo_gpgcheck=False):
    """A .repo file; repo_gpgcheck=True also verifies the repository metadata's signature."""
    return ("# Managed by mlinfra.docker_ml\n[%s]\nname=%s\nbaseurl=%s\nenabled=1\ngpgcheck=1\n%sgpgkey=%s\n"
            % (repo_id, name, baseurl, "repo_gpgcheck=1\n" if repo_gpgcheck else "", gpgkey))


def looks_like_key(content):
    """An OpenPGP public key, armored or binary (keyring)."""
    if not content:
        return False
    if isinstance(content, bytes):
        if content.lstrip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"):
            return True
        return content[:1] in (b"\x99", b"\xc6")  # old/new format public-key packet tags
    return content.lstrip().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def legacy_entries(files, hostname):
    """From {path: text} of sources.list.d/*.list, the paths that point at hostname: leftovers that
    make apt fail with 'Conflicting values set for option Signed-By'."""
    return sorted(path for path, text in files.items()
                  if hostname and hostname in text and path.endswith(".list"))


def url_host(url):
    return url.split("://", 1)[-1].split("/", 1)[0]


def ensure_repository(wanted, check_mode, apt_hostname=None, legacy_names=(), legacy_keyrings=()):
    """wanted: {path: content}. On apt hosts also remove *.list files that point at apt_hostname or
    carry a legacy name, and legacy apt-key keyrings. Returns the changed paths."""
    changed = [path for path, content in wanted.items() if files.ensure_content(path, content, check_mode)]
    if apt_hostname is None:
        return changed
    lists = {}
    for path in glob.glob(os.path.join(SOURCES_DIR, "*.list")):
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            lists[path] = handle.read()
    leftovers = set(legacy_entries(lists, apt_hostname))
    leftovers.update(os.path.join(SOURCES_DIR, name) for name in legacy_names)
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
                raise PackagesError("could not download the %s repository key from %s: %s. Set the key's content "
                                    "inline, or point the key URL at a mirror" % (what, url, exc))
            return files.read_bytes(existing_path) or b"<key from %s>" % url_host(url).encode()
    if not looks_like_key(key):
        raise PackagesError("the %s repository key is not an OpenPGP public key (armored or binary)" % what)
    return key.encode() if isinstance(key, str) else key
