# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NVIDIA Container Toolkit on a host: repository, the four packages pinned together, the runtime
in daemon.json (through daemon_converge: merge, atomic write, restart, rollback), and the CDI spec.

`host` bundles the effects: host.run(argv), host.run_env(argv, env), host.fetch(url) -> bytes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import json
import os
import re
import shutil
import tempfile

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError, MlinfraError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_converge, files, nvidia_runtime, repositories
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import os_release as distro
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import package_versions as pins
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.pkg_manager import ensure_packages, for_family

PACKAGES = ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
            "libnvidia-container1"]
APT_KEYRING = repositories.KEYRING_DIR + "/nvidia-container-toolkit.asc"
APT_SOURCES = repositories.SOURCES_DIR + "/nvidia-container-toolkit.sources"
DNF_REPO = repositories.YUM_REPOS_DIR + "/nvidia-container-toolkit.repo"
OWNER = "nvidia_toolkit"  # its name in daemon.json's managed-keys record
LEGACY_LISTS = ("nvidia-docker.list", "libnvidia-container.list", "nvidia-container-runtime.list",
                "nvidia-container-toolkit.list")


class ToolkitError(MlinfraError):
    """The NVIDIA Container Toolkit cannot be set up as asked; the message says what to do."""


def repo_files(fam, arch, base_url, key_bytes):
    """{path: content} for NVIDIA's flat repository (pure)."""
    base = base_url.rstrip("/")
    if fam == "debian":
        if not arch:
            raise ToolkitError("cannot tell the host's architecture (dpkg --print-architecture)")
        source = repositories.deb822_source("%s/stable/deb/%s" % (base, arch), "/", None, APT_KEYRING)
        return {APT_KEYRING: key_bytes, APT_SOURCES: source}
    # NVIDIA's own .repo checks the metadata's signature too (repo_gpgcheck=1), not only the packages'.
    return {DNF_REPO: repositories.dnf_repo("nvidia-container-toolkit", "NVIDIA Container Toolkit",
                                            base + "/stable/rpm/$basearch", base + "/gpgkey", repo_gpgcheck=True)}


# The CDI specs nvidia_toolkit wrote ({path: sha256}), so cdi turned off removes those and nothing else.
# Not beside the spec: dockerd's CDI cache reads every file in /etc/cdi.
CDI_RECORD = "/var/lib/mlinfra/nvidia_toolkit-cdi.json"
CDI_REFRESH_UNIT = "nvidia-cdi-refresh.service"  # toolkit >= 1.18: regenerates /var/run/cdi/nvidia.yaml itself
SYSTEMD_UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def cdi_refresh_enabled(host, unit_dirs=SYSTEMD_UNIT_DIRS):
    """Whether the toolkit's own nvidia-cdi-refresh service keeps a CDI spec on this host (no systemctl call
    unless its unit file is there)."""
    if not any(os.path.exists(os.path.join(d, CDI_REFRESH_UNIT)) for d in unit_dirs):
        return False
    return host.run(["systemctl", "is-enabled", "--quiet", CDI_REFRESH_UNIT])[0] == 0


def ensure_cdi_spec(host, path, check_mode, unit_dirs=SYSTEMD_UNIT_DIRS, record=None):
    """Generate the CDI spec into a private directory and replace `path` only when it differs. Where
    nvidia-cdi-refresh is enabled, leave the spec to it (its /var/run/cdi outranks /etc/cdi): returns False."""
    record = record or CDI_RECORD
    if cdi_refresh_enabled(host, unit_dirs):
        return False
    ctk = host.which("nvidia-ctk")
    if ctk is None:
        if check_mode:
            return True
        raise ToolkitError("nvidia-ctk is not installed, so the CDI spec cannot be generated; install the "
                           "toolkit packages (install_packages=true) or turn cdi off")
    # nvidia-ctk appends .yaml to an --output whose extension is not .yaml/.json (pkg/nvcdi/spec normalizePath),
    # so name the file ourselves; and keep it out of /etc/cdi, which dockerd's CDI cache watches.
    tmp = tempfile.mkdtemp(prefix="mlinfra-cdi-")
    generated = os.path.join(tmp, "nvidia.json" if path.endswith(".json") else "nvidia.yaml")
    try:
        rc, out, err = host.run([ctk, "cdi", "generate", "--output=%s" % generated])
        if rc != 0:
            raise ToolkitError("nvidia-ctk cdi generate failed (exit %d): %s. %s was left as it was"
                               % (rc, (err or out).strip(), path))
        content = files.read_bytes(generated)
        if not content:
            raise ToolkitError("nvidia-ctk cdi generate wrote no spec to %s; %s was left as it was" % (generated, path))
        changed = files.ensure_content(path, content, check_mode)
        if not check_mode:  # a spec an earlier release wrote is ours too once it holds what we generate
            _remember_spec(record, path, content)
        return changed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _spec_records(record):
    try:
        return json.loads(files.read_bytes(record) or b"{}")
    except ValueError:
        return {}


def _remember_spec(record, path, content):
    known = _spec_records(record)
    digest = hashlib.sha256(content).hexdigest() if content is not None else None
    if known.get(path) != digest:
        if digest is None:
            known.pop(path, None)
        else:
            known[path] = digest
        files.atomic_write(record, json.dumps(known, indent=2, sort_keys=True) + "\n", 0o644)


def remove_cdi_spec(path, check_mode, record=None):
    """cdi turned off: remove the spec this collection wrote at `path` while it still holds what was written
    (True). A spec it never wrote, or one changed since (nvidia-ctk run by hand), is left alone: (False, why)."""
    record = record or CDI_RECORD
    known = _spec_records(record).get(path)
    if known is None:
        return False, None
    current = files.read_bytes(path)
    if current is None:
        if not check_mode:
            _remember_spec(record, path, None)
        return False, None
    if hashlib.sha256(current).hexdigest() != known:
        return False, ("cdi is off, but %s changed since nvidia_toolkit wrote it, so it was left in place; remove it "
                       "yourself if nothing else uses it" % path)
    if not check_mode:
        files.ensure_absent(path, False)
        _remember_spec(record, path, None)
    return True, None


def retire_cdi_specs(keep, check_mode, record=None):
    """Every spec this collection wrote, other than `keep` (the current cdi_spec_path; None with cdi off), is
    removed while it still holds what was written: two specs for nvidia.com/gpu in one directory make the CDI
    cache drop the devices both define. Returns (actions, warnings)."""
    actions, warnings = [], []
    for path in sorted(_spec_records(record or CDI_RECORD)):
        if path == keep:
            continue
        removed, why = remove_cdi_spec(path, check_mode, record)
        if removed:
            actions.append("remove %s (%s)" % (path, "cdi is off" if keep is None else "no longer cdi_spec_path"))
        if why:
            warnings.append(why)
    return actions, warnings


RUNTIME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_params(params):
    """Input checks before anything is touched; raises InputError naming the parameter."""
    if not RUNTIME_NAME.fullmatch(params["runtime_name"] or ""):
        raise InputError("runtime_name: %r must be letters, digits, '.', '_' or '-' (it is the name containers "
                         "use in --runtime)" % params["runtime_name"])
    if not params["runtime_path"] or any(c.isspace() for c in params["runtime_path"]):
        raise InputError("runtime_path: %r must be a binary name or an absolute path without spaces"
                         % params["runtime_path"])
    daemon_converge.check_restart_timeout(params["restart_timeout"])
    pins.check_version_pin(params["version"])


def converge(host, params, check_mode):
    fam = distro.family(host.os_release())
    arch = host.architecture()
    result = {"changed": False, "actions": [], "packages": {}, "daemon_config": None, "runtime_binary": None}
    manager = for_family(fam, host.run, host.run_env)
    if params["configure_repo"]:
        key = repositories.repository_key(host, params["gpg_key"],
                                          params["gpg_key_url"] or params["repo_base_url"].rstrip("/") + "/gpgkey",
                                          APT_KEYRING, check_mode, "NVIDIA") if fam == "debian" else None
        changed = repositories.ensure_repository(
            repo_files(fam, arch, params["repo_base_url"], key), check_mode,
            repositories.url_host(params["repo_base_url"]) if fam == "debian" else None, LEGACY_LISTS)
        result["actions"] += ["write %s" % p for p in changed]
        if changed and not check_mode:
            manager.update()
    plan = []
    if params["install_packages"]:
        plan = ensure_packages(manager, PACKAGES, "present", params["version"], check_mode, False, PACKAGES)[0]
        result["actions"] += ["install %s%s" % (p, "=" + w if w else "") for p, _a, _c, w in plan]
        result["packages"] = {p: manager.installed(p) for p in PACKAGES}
    binary = nvidia_runtime.runtime_binary()
    result["runtime_binary"] = binary
    if params["default_runtime"] and binary is None and not (check_mode and plan):
        raise ToolkitError("default_runtime=true but %s is not on this host, and dockerd would fail every "
                           "container with it. daemon.json was left untouched. Install the toolkit first "
                           "(install_packages=true) or set default_runtime=false" % nvidia_runtime.RUNTIME_BINARY)
    settings = nvidia_runtime.runtime_settings(params["runtime_name"], params["runtime_path"], params["default_runtime"], params["cdi"])
    # Recorded as ours, so default_runtime or cdi turned off later removes the key (managed_keys).
    daemon = daemon_converge.converge(host.run, params["daemon_json"], settings, backup=params["backup"],
                                      restart=params["restart"], timeout=params["restart_timeout"],
                                      check_mode=check_mode, owner=OWNER)
    result["daemon_config"] = {k: daemon[k] for k in ("changed_keys", "backup_file", "restarted")}
    result["diff"] = daemon["diff"]
    if daemon["changed_keys"]:
        result["actions"].append("register runtime %s in %s" % (params["runtime_name"], params["daemon_json"]))
    elif daemon["changed"]:
        result["actions"].append("rewrite %s and its key record, settings unchanged" % params["daemon_json"])
    if params["cdi"] and ensure_cdi_spec(host, params["cdi_spec_path"], check_mode):
        result["actions"].append("write %s" % params["cdi_spec_path"])
    retired, warnings = retire_cdi_specs(params["cdi_spec_path"] if params["cdi"] else None, check_mode)
    result["actions"] += retired
    if warnings:
        result["warnings"] = warnings
    result["changed"] = bool(result["actions"])
    return result
