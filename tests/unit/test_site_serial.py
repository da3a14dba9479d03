"""site.yml's serving play takes ml_stack_serving_serial from the inventory (issue 13, item 6).

Runs the two serving plays of playbooks/site.yml as they are (hosts, serial, the carrier task), with the
role swapped for a task that prints each batch, against local-connection hosts: no fleet needed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SERVING = "ML serving (TF Serving, rolling and health-gated)"


def batches(tmp_path, group_vars=None, extra=None):
    plays = yaml.safe_load((REPO / "playbooks" / "site.yml").read_text())
    serving = next(i for i, play in enumerate(plays) if play["name"] == SERVING)
    carrier, play = plays[serving - 1], dict(plays[serving])
    play["tasks"] = [{"name": "batch", "ansible.builtin.debug": {"msg": "BATCH {{ ansible_play_batch | to_json }}"},
                      "run_once": True}]
    (tmp_path / "site.yml").write_text(yaml.safe_dump([carrier, play]))
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
             for name in ("s1", "s2", "s3", "s4")}
    inventory = {"all": {"children": {"ml_serving": {"hosts": hosts}, "ml_db": {"hosts": {}}, "ml_tracking": {"hosts": {}}}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    if group_vars is not None:
        (tmp_path / "group_vars").mkdir()
        (tmp_path / "group_vars" / "ml_serving.yml").write_text(yaml.safe_dump(group_vars))
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
            str(tmp_path / "site.yml")] + (["-e", json.dumps(extra)] if extra else [])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(line.split("BATCH ", 1)[1].rstrip('"').replace('\\"', '"'))
            for line in proc.stdout.splitlines() if '"msg": "BATCH ' in line]


@pytest.mark.parametrize("group_vars, extra, expected", [
    (None, None, [["s1", "s2"], ["s3", "s4"]]),
    ({"ml_stack_serving_serial": 1}, None, [["s1"], ["s2"], ["s3"], ["s4"]]),
    ({"ml_stack_serving_serial": "75%"}, None, [["s1", "s2", "s3"], ["s4"]]),
    ({"ml_stack_serving_serial": [1, "100%"]}, None, [["s1"], ["s2", "s3", "s4"]]),
    ({"ml_stack_serving_serial": 1}, {"ml_stack_serving_serial": 3}, [["s1", "s2", "s3"], ["s4"]]),
])
def test_serving_serial_from_the_inventory(tmp_path, group_vars, extra, expected):
    assert batches(tmp_path, group_vars, extra) == expected
