# -*- coding: utf-8 -*-
# Copyright: mlinfra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker Engine on a host: repository, packages, service, docker group, engine facts.

`host` bundles the effects: host.run(argv), host.run_env(argv, env), host.fetch(url) -> bytes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import grp
import pwd

from ansible_collections.mlinfra.docker_ml.plugins.module_utils.errors import InputError, MlinfraError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_converge
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_json as dj
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_service as svc
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.docker_api import DockerAPI, DockerAPIError, DockerConnectionError
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import package_holds, repositories
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import os_release as distro
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import package_versions as pins
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.pkg_manager import ensure_packages, for_family

DISTRO_PACKAGES = {"debian": ["docker.io"], "redhat": ["moby-engine"]}
UPSTREAM_PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io"]
UPSTREAM_PLUGINS = ["docker-buildx-plugin", "docker-compose-plugin"]
PINNED = ("docker.io", "moby-engine", "docker-ce", "docker-ce-cli")
APT_KEYRING = repositories.KEYRING_DIR + "/docker.asc"
APT_SOURCES = repositories.SOURCES_DIR + "/docker.sources"
DNF_REPO = repositories.YUM_REPOS_DIR + "/docker-ce.repo"


class EngineError(MlinfraError):
    """Docker Engine cannot be installed or run as asked; the message says what to do."""


def is_enterprise_linux(os_release):
    """RHEL and its rebuilds (CentOS Stream, Rocky, Alma): dnf hosts that are not Fedora."""
    return distro.family(os_release) == "redhat" and os_release.get("ID") != "fedora"


def choose_channel(channel, os_release):
    """auto: upstream on Enterprise Linux, which ships no moby-engine (and podman-docker is no engine),
    distro elsewhere. distro on Enterprise Linux fails here, before anything is touched."""
    if channel == "auto":
        return "upstream" if is_enterprise_linux(os_release) else "distro"
    if channel == "distro" and is_enterprise_linux(os_release):
        raise EngineError("%s %s does not ship moby-engine, so the distro channel cannot install Docker. Nothing was "
                          "changed: set docker_channel: upstream (Docker's docker-ce repository; channel=upstream for "
                          "the module) or auto" % (os_release.get("ID"), os_release.get("VERSION_ID", "")))
    return channel


def sdk_wanted(sdk, os_release):
    """The Docker SDK package (python3-docker) is in EPEL only on Enterprise Linux: auto skips it there."""
    if sdk == "auto":
        return not is_enterprise_linux(os_release)
    return sdk == "always"


def hold_packages(channel, fam):
    """The engine packages docker_hold holds (an upgrade of any of them restarts dockerd)."""
    return list(DISTRO_PACKAGES[fam]) if channel == "distro" else list(UPSTREAM_PACKAGES)


def package_list(channel, fam, plugins=True, extra=()):
    base = list(DISTRO_PACKAGES[fam]) if channel == "distro" else list(UPSTREAM_PACKAGES)
    if channel == "upstream" and plugins:
        base += UPSTREAM_PLUGINS
    return base + [p for p in extra if p not in base]


def distro_path(os_release):
    """download.docker.com's path for this distribution (debian, ubuntu, rhel, fedora, centos)."""
    os_id = os_release.get("ID", "")
    if os_id in ("debian", "ubuntu", "rhel", "fedora", "centos"):
        return os_id
    likes = os_release.get("ID_LIKE", "").split()
    for candidate in ("ubuntu", "debian", "rhel", "fedora", "centos"):
        if candidate in likes:
            return candidate
    return os_id


def repo_files(fam, os_release, arch, base_url, key_bytes):
    """{path: content} of the upstream repository definition (pure)."""
    root = "%s/%s" % (base_url.rstrip("/"), distro_path(os_release))
    if fam == "debian":
        suite = os_release.get("UBUNTU_CODENAME") or os_release.get("VERSION_CODENAME")
        if not suite:
            raise EngineError("/etc/os-release has no VERSION_CODENAME; cannot pick the docker-ce suite")
        return {APT_KEYRING: key_bytes,
                APT_SOURCES: repositories.deb822_source(root, suite, "stable", APT_KEYRING, arch)}
    return {DNF_REPO: repositories.dnf_repo("docker-ce-stable", "Docker CE Stable - $basearch",
                                            root + "/$releasever/$basearch/stable", root + "/gpg")}


def key_url(os_release, base_url, given=None):
    return given or "%s/%s/gpg" % (base_url.rstrip("/"), distro_path(os_release))


def ensure_repository(host, fam, os_release, arch, params, check_mode):
    """Write keyring + source (or .repo), drop leftovers; return the list of changed paths."""
    key = None
    if fam == "debian":
        key = repositories.repository_key(host, params["gpg_key"],
                                          key_url(os_release, params["repo_base_url"], params["gpg_key_url"]),
                                          APT_KEYRING, check_mode, "Docker")
    wanted = repo_files(fam, os_release, arch, params["repo_base_url"], key)
    return repositories.ensure_repository(
        wanted, check_mode, repositories.url_host(params["repo_base_url"]) if fam == "debian" else None,
        legacy_keyrings=("/etc/apt/trusted.gpg.d/docker*.gpg",))


def ensure_service(host, check_mode, timeout=60, base_url=svc.DEFAULT_HOST):
    """Docker enabled at boot and running; return the list of actions taken."""
    actions = []
    if svc.has_systemd():
        rc, out, _err = host.run(["systemctl", "is-enabled", svc.SERVICE])
        if rc != 0 or out.strip() not in ("enabled", "static", "enabled-runtime"):
            actions.append("enable docker.service")
        if not svc.is_active(host.run):
            actions.append("start docker.service")
        if actions and not check_mode:
            rc, out, err = host.run(["systemctl", "enable", "--now", svc.SERVICE])
            if rc != 0:
                raise EngineError("systemctl enable --now docker failed: %s. See 'journalctl -u docker'"
                                  % (err or out).strip())
    elif not svc.is_active(host.run):
        actions.append("start docker (init script)")
        if not check_mode:
            host.run(["update-rc.d", svc.SERVICE, "defaults"])
            rc, out, err = host.run(["service", svc.SERVICE, "start"])
            if rc != 0:
                raise EngineError("service docker start failed: %s; see %s" % ((err or out).strip(), svc.DOCKERD_LOG))
    if actions and not check_mode and not svc.wait_for_api(timeout, base_url):
        raise EngineError("dockerd did not answer within %ds of starting: %s"
                          % (timeout, "; ".join(svc.error_lines(svc.recent_logs(host.run)))))
    return actions


def ensure_group_members(host, users, check_mode):
    """Add users to the docker group; return the users added."""
    if not users:
        return []
    try:
        members = set(grp.getgrnam("docker").gr_mem)
        gid = grp.getgrnam("docker").gr_gid
    except KeyError:
        if check_mode:
            return list(users)
        raise EngineError("the docker group does not exist although Docker is installed")
    added = []
    for user in users:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise EngineError("user %r does not exist on this host; create it first or drop it from users" % user)
        if user in members or entry.pw_gid == gid:
            continue
        added.append(user)
        if not check_mode:
            rc, out, err = host.run(["usermod", "-aG", "docker", user])
            if rc != 0:
                raise EngineError("usermod -aG docker %s failed: %s" % (user, (err or out).strip()))
    return added


def engine_facts(api=None):
    """Server version, API version and storage driver from the running engine (None if it is down),
    asked on its socket: two requests instead of two docker CLI runs."""
    facts = {"version": None, "api_version": None, "storage_driver": None}
    api = api or DockerAPI(timeout=10)
    try:
        server = api.call("GET", "/version") or {}
        facts["version"], facts["api_version"] = server.get("Version"), server.get("ApiVersion")
        facts["storage_driver"] = (api.call("GET", "/info") or {}).get("Driver")
    except (DockerAPIError, DockerConnectionError, AttributeError):
        pass
    return facts


def check_params(params):
    """Input checks the argument spec cannot express, before anything is read or touched."""
    if params["state"] == "latest" and params["version"]:
        raise InputError("state=latest and a version pin contradict each other: drop one of them")
    if params["hold"] and params["state"] == "latest":
        raise InputError("hold=true and state=latest contradict each other (a hold stops upgrades): drop one of them")
    if not params["repo_base_url"].startswith(("http://", "https://", "file://")):
        raise InputError("repo_base_url must be an http(s):// or file:// URL, got %r" % params["repo_base_url"])
    pins.check_version_pin(params["version"])
    if params.get("daemon") is not None:
        daemon_converge.check_params(params["daemon"], prefix="daemon.")


def daemon_actions(daemon):
    """The daemon.json part of `actions`."""
    actions = []
    if daemon["changed_keys"]:
        actions.append("write %s (%s)" % (daemon["path"], ", ".join(daemon["changed_keys"])))
    elif daemon["changed"] and not daemon["proxy_changed"]:
        actions.append("rewrite %s and its key record, settings unchanged" % daemon["path"])
    if daemon["proxy_changed"]:
        actions.append("write the proxy drop-in of docker.service")
    if daemon["restarted"]:
        actions.append("restart docker")
    return actions


def converge(host, params, check_mode):
    """Repository, packages, holds, service, group; with `daemon`, daemon.json first (see converge_daemon)."""
    daemon = None
    if params.get("daemon") is not None and params["state"] != "absent":
        # Before the packages: a first install then starts dockerd once, with data-root and the storage
        # settings in place before dockerd creates its state (one start, not a start and a restart).
        daemon = daemon_converge.from_params(host.run, params["daemon"], check_mode)
    try:
        result = _converge_engine(host, params, check_mode, params["daemon"]["restart_timeout"] if daemon else 60,
                                  svc.api_address(daemon["config"]) if daemon else svc.DEFAULT_HOST)
    except (MlinfraError, OSError) as exc:
        if daemon and daemon["changed"] and not daemon["restarted"] and not check_mode:
            _undo_daemon(host, daemon, exc, params["daemon"]["restart_timeout"])
        raise
    if daemon is not None:
        daemon.pop("undo")
        result["daemon"] = daemon
        result["actions"] = daemon_actions(daemon) + result["actions"]
        result["changed"] = bool(result["actions"])
    return result


def _undo_daemon(host, daemon, failure, timeout):
    """The engine did not come up after this run wrote daemon.json (never started with it): the previous
    files go back, and dockerd is started again if it is installed. Always raises EngineError."""
    daemon["undo"]()
    state = "the previous daemon configuration was put back"
    if svc.dockerd_installed():
        try:
            svc.restart_and_verify(host.run, timeout, svc.api_address(dj.load(daemon["path"])[0] or {}))
            state += " and dockerd is running with it"
        except svc.DockerServiceError as again:
            state += " but dockerd still does not start: %s" % "; ".join(svc.error_lines(again.logs))
    raise EngineError("%s. This run had written %s (%s) before it; %s. Fix the setting (or the failure above) and rerun."
                      % (str(failure).rstrip("."), daemon["path"], ", ".join(daemon["changed_keys"]) or "its key record",
                         state), rolled_back=True, **getattr(failure, "extra", {}))


def _converge_engine(host, params, check_mode, timeout, base_url):
    os_release = host.os_release()
    fam = distro.family(os_release)
    channel = choose_channel(params["channel"], os_release)
    arch = host.architecture() if channel == "upstream" else None  # only the upstream repository needs it
    manager = for_family(fam, host.run, host.run_env)
    result = {"changed": False, "actions": [], "repo_changed": [], "packages": {}, "channel": channel}
    params = dict(params, channel=channel)
    if channel == "upstream" and params["state"] != "absent":
        result["repo_changed"] = ensure_repository(host, fam, os_release, arch, params, check_mode)
        result["actions"] += ["write %s" % p for p in result["repo_changed"]]
        if result["repo_changed"] and not check_mode:
            manager.update()
    sdk = [params["sdk_package"]] if sdk_wanted(params["sdk"], os_release) else []
    wanted = package_list(channel, fam, params["plugins"], list(params["extra_packages"]) + sdk)
    engine = hold_packages(channel, fam)
    release = package_holds.movable(engine, params["hold"], package_holds.recorded())
    plan, before = ensure_packages(manager, wanted, params["state"], params["version"], check_mode,
                                   params["install_recommends"], PINNED, release)
    result["actions"] += ["%s %s%s" % (action, pkg, "=" + to if to else "") for pkg, action, _f, to in plan]
    if params["state"] != "absent":
        result["actions"] += package_holds.ensure_holds(manager, engine, params["hold"], check_mode)
        if params["manage_service"]:
            if check_mode and plan:
                result["actions"].append("enable and start docker")  # not installed yet: nothing to ask
            else:
                result["actions"] += ensure_service(host, check_mode, timeout, base_url)
        result["actions"] += ["add %s to group docker" % u
                              for u in ensure_group_members(host, params["users"], check_mode)]
    result["changed"] = bool(result["actions"])
    result["packages"] = {p: manager.installed(p) for p in wanted} if plan and not check_mode else before
    result.update(engine_facts())
    return result
