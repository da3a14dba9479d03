"""The demo smoke check's pure parts: where each service is reached and the ssh -L commands it prints."""

import json

import pytest
import yaml

from tests.fleet import access, fleet, smoke


@pytest.mark.parametrize("ports, expected", [(["127.0.0.1:5000:5000"], 5000),
                                             (["127.0.0.1:8501:8501", "127.0.0.1:8500:8500"], 8501),
                                             (["0.0.0.0:15000:5000"], 15000)])
def test_published_port(ports, expected):
    assert smoke.published_port(ports) == expected


def test_plan_uses_the_fleets_ssh_ports_and_the_published_ports(monkeypatch, tmp_path):
    monkeypatch.setenv("MLINFRA_FLEET_DIR", str(tmp_path))
    sdir = fleet.state_dir("demo")
    sdir.mkdir()
    (sdir / "state.json").write_text(json.dumps({"hosts": [{"name": "host1", "port": 2201}, {"name": "host2", "port": 2202},
                                                           {"name": "host3", "port": 2203}]}))
    inventory = {"all": {"vars": {"ml_stack_tf_serving_ports": ["127.0.0.1:18501:8501"]}, "children": {
        "ml_tracking": {"hosts": {"host2": {}}}, "ml_serving": {"hosts": {"host3": {}}}}}}
    (sdir / "inventory.yml").write_text(yaml.safe_dump(inventory))
    assert smoke.plan("demo") == {"MLflow UI": ("host2", 2202, 5000), "TF Serving REST": ("host3", 2203, 18501)}
    cmd = access.printable(access.ssh_forward_command("demo", 2202, 5000, 5000))
    assert cmd.startswith(f"ssh -N -i {sdir}/id_ed25519 -p 2202 ") and cmd.endswith("-L 127.0.0.1:5000:127.0.0.1:5000 root@127.0.0.1")
