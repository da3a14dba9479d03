"""The roles' GPU templates rendered by Ansible's own templar: which GPUs TF Serving gets from the gpu
facts (ml_stack_tf_serving_gpus), and what the nvidia_toolkit role says about each host."""

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLES = Path(__file__).resolve().parents[3] / "roles"
GPUS = yaml.safe_load((ROLES / "ml_stack/defaults/main.yml").read_text())["ml_stack_tf_serving_gpus"]
NOTICES = yaml.safe_load((ROLES / "nvidia_toolkit/vars/main.yml").read_text())["_nvidia_toolkit_notices"]
TWO = [{"index": 0, "uuid": "GPU-a"}, {"index": 1, "uuid": "GPU-b"}]


def render(expression, variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


@pytest.mark.parametrize("facts, expected", [
    ({}, ["auto"]),  # the ml_stack role alone, no gpu facts: the module reads NVML itself
    ({"count": 2, "gpus": TWO, "failed_gpus": []}, ["auto"]),  # no selection asked for
    ({"count": 2, "gpus": TWO, "failed_gpus": [], "selected": []}, []),  # a selection that matched nothing
    ({"count": 2, "gpus": TWO, "failed_gpus": [], "selected": ["GPU-b"]}, ["GPU-b"]),
    ({"count": 2, "gpus": TWO, "failed_gpus": [{"index": 2, "error": "GPU is lost"}]}, ["GPU-a", "GPU-b"]),
])
def test_tf_serving_gpus_from_the_gpu_facts(facts, expected):
    variables = {"ansible_facts": {"mlinfra_gpu": facts} if facts else {}}
    assert render(GPUS, variables) == expected


def test_notices_say_why_for_each_host():
    hostvars = {
        "cpu": {"ansible_facts": {"mlinfra_gpu": {"count": 0, "reason": "the NVIDIA kernel driver is not loaded"}}},
        "listed": {"ansible_facts": {"mlinfra_gpu": {"count": 0, "reason": "no driver"}}},
        "picky": {"ansible_facts": {"mlinfra_gpu": {"count": 2, "gpus": TWO, "failed_gpus": [], "selected": []}}},
        "lossy": {"ansible_facts": {"mlinfra_gpu": {"count": 2, "gpus": TWO, "reason": "1 of 3 GPUs failed in NVML: "
                                                    "GPU 2: GPU is lost", "failed_gpus": [{"index": 2}]}}},
        "fine": {"ansible_facts": {"mlinfra_gpu": {"count": 2, "gpus": TWO, "failed_gpus": [], "selected": ["GPU-a"]}}},
    }
    lines = render(NOTICES, {"ansible_play_hosts": list(hostvars), "hostvars": hostvars,
                             "groups": {"gpu_hosts": ["listed"]}})
    assert lines == [
        "No NVIDIA GPU on cpu (the NVIDIA kernel driver is not loaded) and not in gpu_hosts: skipping the NVIDIA "
        "Container Toolkit.",
        "nvidia_toolkit_gpu_select matched none of the 2 GPU(s) on picky: TF Serving there gets no GPU and runs its "
        "CPU image.",
        "lossy: 1 of 3 GPUs failed in NVML: GPU 2: GPU is lost; the 2 other GPU(s) are used.",
    ]
