"""docker_install pieces that need no host: engine facts from the socket, the package plan's reuse."""

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import docker_install
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import pkg_manager
from ansible_collections.mlinfra.docker_ml.plugins.module_utils.docker_api import DockerAPI


def test_engine_facts_from_the_socket(dockerd):
    dockerd.routes[("GET", "/version")] = (200, {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41"})
    dockerd.routes[("GET", "/info")] = (200, {"Driver": "overlay2"})
    assert docker_install.engine_facts(DockerAPI(dockerd.url)) == {
        "version": "20.10.24+dfsg1", "api_version": "1.41", "storage_driver": "overlay2"}


def test_engine_facts_when_the_engine_is_down(tmp_path):
    assert docker_install.engine_facts(DockerAPI("unix://%s" % (tmp_path / "none.sock"))) == {
        "version": None, "api_version": None, "storage_driver": None}


class Manager:
    """Counts dpkg-query look-ups: a no-op run asks once per package."""

    def __init__(self, installed):
        self.versions, self.asked, self.updated = installed, [], False

    def installed(self, package):
        self.asked.append(package)
        return self.versions.get(package)


def test_no_op_package_plan_reports_versions_without_asking_twice():
    manager = Manager({"docker.io": "20.10.24+dfsg1-1+deb12u1", "python3-docker": "5.0.3-1"})
    plan, before = pkg_manager.ensure_packages(manager, ["docker.io", "python3-docker"], "present", "20.10.*",
                                               False, False, docker_install.PINNED)
    assert plan == [] and before == manager.versions and manager.asked == ["docker.io", "python3-docker"]
