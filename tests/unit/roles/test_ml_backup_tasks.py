"""The ml_backup role's task files read as data: the order backup.yml writes in across hosts (every dump
before any artifacts archive), and the variable checks rendered by Ansible's templar."""

from pathlib import Path

import pytest
import yaml
from test_ml_backup_script import role_vars as script_role_vars  # pylint: disable=import-error
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "roles" / "ml_backup"


def tasks(name):
    return yaml.safe_load((ROLE / "tasks" / name).read_text())


def role_vars(**overrides):
    """The role's variables as the script tests build them, outside check mode."""
    return script_role_vars(**{"ansible_check_mode": False, **overrides})


def holds(condition, **overrides):
    return Templar(loader=DataLoader(), variables=role_vars(**overrides)).template(
        trust_as_template("{{ (%s) | bool }}" % condition))


def write_tasks():
    return [t for t in tasks("main.yml") if t.get("ansible.builtin.shell", {}).get("cmd", "").find("backup.sh.j2") >= 0]


def test_dumps_are_written_in_a_task_before_the_artifacts_of_tracking_only_hosts():
    first, second = write_tasks()  # linear strategy: the second starts when the first is done on every host
    assert first["when"] == "ml_backup_database | bool"
    assert "not ml_backup_database | bool" in second["when"]
    assert all("strategy" not in play for play in yaml.safe_load((REPO / "playbooks" / "backup.yml").read_text()))


@pytest.mark.parametrize("groups, database, tracking", [
    ({"ml_db": ["host1"], "ml_tracking": ["host1"]}, True, False),  # one host: both parts, dump first, in one run
    ({"ml_db": ["host1"], "ml_tracking": ["host2"]}, True, False),
    ({"ml_db": ["host2"], "ml_tracking": ["host1"]}, False, True),
])
def test_each_host_writes_in_one_of_the_two_tasks(groups, database, tracking):
    first, second = write_tasks()
    assert holds(first["when"], groups=groups) is database
    assert holds(second["when"], groups=groups) is tracking


@pytest.mark.parametrize("overrides, ok", [
    ({}, True),
    ({"ml_backup_fetch": True}, False),  # no default under the playbook dir (inside an installed collection)
    ({"ml_backup_fetch": True, "ml_backup_fetch_dir": "/srv/backups"}, True),
    ({"ml_backup_keep": 0}, False),
    ({"ml_backup_name": "../etc"}, False),
])
def test_backup_variables_checked_before_anything_runs(overrides, ok):
    check = tasks("main.yml")[0]
    assert check["ansible.builtin.assert"] and check["tags"] == ["ml_backup", "ml_backup_timer"]
    assert all(holds(c, **overrides) for c in check["ansible.builtin.assert"]["that"]) is ok


@pytest.mark.parametrize("overrides, ok", [
    ({"ml_backup_restore_name": "b2"}, True),
    ({"ml_backup_restore_name": "latest"}, True),
    ({"ml_backup_restore_name": ""}, False),
    ({"ml_backup_restore_name": "b2", "ml_backup_restore_from_controller": True}, False),  # no fetch dir
    ({"ml_backup_restore_name": "b2", "ml_backup_restore_from_controller": True, "ml_backup_fetch_dir": "/srv/b"}, True),
    ({"ml_backup_restore_name": "latest", "ml_backup_restore_from_controller": True, "ml_backup_fetch_dir": "/srv/b"}, False),
])
def test_restore_variables(overrides, ok):
    check = tasks("restore_check.yml")[0]
    assert all(holds(c, **overrides) for c in check["ansible.builtin.assert"]["that"]) is ok


def test_a_missing_backup_is_refused_in_check_mode_unless_the_controller_brings_it():
    refusal = next(t for t in tasks("restore_check.yml") if t["name"] == "Refuse a backup that is not there")
    found = {"_ml_backup_restore": "nope", "_ml_backup_found": {"stat": {"exists": False}}}
    assert holds(refusal["when"], ansible_check_mode=True, **found)
    assert not holds(refusal["when"], ansible_check_mode=True, ml_backup_restore_from_controller=True, **found)
