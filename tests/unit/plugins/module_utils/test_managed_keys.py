"""What the collection set, it can unset: the managed-keys record beside daemon.json (issue 13, item 1)."""

import json

import pytest

from ansible_collections.mlinfra.docker_ml.plugins.module_utils import daemon_converge as dc
from ansible_collections.mlinfra.docker_ml.plugins.module_utils import managed_keys as mk
from test_daemon_converge import FakeHost

INSECURE = {"insecure-registries": ["registry:5000"]}


pytestmark = pytest.mark.usefixtures("systemd")


def record(path):
    return json.loads((path.parent / (path.name + ".managed-keys")).read_text())["owners"]


def run(path, settings, owner="docker", **kwargs):
    return dc.converge(FakeHost(str(path)), str(path), settings, owner=owner, **kwargs)


@pytest.mark.parametrize("settings, expected", [
    ({}, []),
    ({"debug": True}, [["debug"]]),
    ({"log-opts": {"max-size": "10m", "max-file": "3"}}, [["log-opts", "max-file"], ["log-opts", "max-size"]]),
    ({"features": {}}, [["features"]]),
    ({"runtimes": {"nvidia": {"path": "x", "args": []}}}, [["runtimes", "nvidia", "args"], ["runtimes", "nvidia", "path"]]),
])
def test_leaf_paths(settings, expected):
    assert mk.leaf_paths(settings) == expected


def test_stale_paths_spare_what_is_still_set_or_recorded_by_another_owner():
    recorded = {"docker": [["insecure-registries"], ["default-runtime"], ["log-opts", "max-size"]],
                "nvidia_toolkit": [["default-runtime"]]}
    assert mk.stale_paths(recorded, "docker", [["log-opts"]]) == [["insecure-registries"]]
    assert mk.stale_paths(recorded, "nvidia_toolkit", []) == []


def test_cleared_key_is_removed_foreign_keys_kept(daemon_json):
    first = run(daemon_json, INSECURE)
    assert first["changed"] and record(daemon_json) == {"docker": [["insecure-registries"]]}
    cleared = run(daemon_json, {})
    assert cleared["changed"] and cleared["changed_keys"] == ["insecure-registries"] and cleared["restarted"]
    assert json.loads(daemon_json.read_text()) == {"debug": True, "log-opts": {"labels": "x"}}
    assert not (daemon_json.parent / "daemon.json.managed-keys").exists()
    assert not run(daemon_json, {})["changed"]


def test_nested_key_cleared_leaves_the_rest_of_its_object(daemon_json):
    run(daemon_json, {"log-opts": {"max-size": "10m", "max-file": "3"}})
    run(daemon_json, {"log-opts": {"max-size": "10m"}})
    assert json.loads(daemon_json.read_text())["log-opts"] == {"labels": "x", "max-size": "10m"}


def test_key_the_collection_never_set_is_never_removed(daemon_json):
    result = run(daemon_json, {})
    assert not result["changed"] and json.loads(daemon_json.read_text())["debug"] is True


def test_host_without_record_adopts_keys_equal_to_ours_without_restart(daemon_json):
    daemon_json.write_text('{"debug": true, "insecure-registries": ["registry:5000"]}')
    host = FakeHost(str(daemon_json))
    result = dc.converge(host, str(daemon_json), INSECURE, owner="docker")
    assert result["changed"] and not result["restarted"] and host.restarts() == 0
    assert [d["before_header"] for d in result["diff"]][1].endswith("daemon.json.managed-keys")
    assert record(daemon_json) == {"docker": [["insecure-registries"]]}
    assert not run(daemon_json, INSECURE)["changed"]


def test_owners_do_not_remove_each_others_keys(daemon_json):
    run(daemon_json, {"default-runtime": "nvidia"}, owner="nvidia_toolkit")
    run(daemon_json, INSECURE, owner="docker")
    assert json.loads(daemon_json.read_text())["default-runtime"] == "nvidia"
    assert record(daemon_json) == {"docker": [["insecure-registries"]], "nvidia_toolkit": [["default-runtime"]]}
    run(daemon_json, {}, owner="nvidia_toolkit")
    assert "default-runtime" not in json.loads(daemon_json.read_text())


def test_explicit_remove_leaves_the_record(daemon_json):
    run(daemon_json, INSECURE, owner="docker")
    run(daemon_json, {}, owner="other", remove=["insecure-registries"])
    assert not (daemon_json.parent / "daemon.json.managed-keys").exists()


def test_check_mode_shows_the_record_and_writes_nothing(daemon_json):
    run(daemon_json, INSECURE)
    before = (daemon_json.read_text(), (daemon_json.parent / "daemon.json.managed-keys").read_text())
    result = run(daemon_json, {}, check_mode=True)
    assert result["changed"] and result["changed_keys"] == ["insecure-registries"]
    assert "insecure-registries" in result["diff"][1]["before"] and result["diff"][1]["after"] == ""
    assert (daemon_json.read_text(), (daemon_json.parent / "daemon.json.managed-keys").read_text()) == before


def test_rollback_restores_daemon_json_and_record(daemon_json):
    run(daemon_json, INSECURE)
    before = (daemon_json.read_text(), (daemon_json.parent / "daemon.json.managed-keys").read_text())
    with pytest.raises(dc.DaemonConfigFailed, match="restored"):
        run(daemon_json, {"log-driver": "no-such-driver"}, timeout=1)
    assert (daemon_json.read_text(), (daemon_json.parent / "daemon.json.managed-keys").read_text()) == before


def test_unreadable_record_refused_before_writing(daemon_json):
    (daemon_json.parent / "daemon.json.managed-keys").write_text("[1]")
    before = daemon_json.read_text()
    with pytest.raises(mk.RecordError, match="Nothing was written"):
        run(daemon_json, INSECURE)
    assert daemon_json.read_text() == before


def test_without_owner_nothing_is_recorded(daemon_json):
    dc.converge(FakeHost(str(daemon_json)), str(daemon_json), INSECURE)
    assert not (daemon_json.parent / "daemon.json.managed-keys").exists()
