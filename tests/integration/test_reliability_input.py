"""Bad input on a converged host: every invalid parameter set fails at validation with a message
naming the parameter, and the host is exactly as before (files, containers, volumes, networks,
packages, dockerd itself). All cases run as one playbook against host1 (Postgres + Redis)."""

import json
import math

import pytest
import yaml

from tests.integration.conftest import host_exec, run_ansible
from tests.integration.stack_helpers import converge, failed_hosts

pytestmark = pytest.mark.fleet
REDIS = {"image": "{{ ml_stack_redis_image }}"}
TFS = {"image": "{{ ml_stack_tf_serving_image }}"}
NO_INSTALL = {"configure_repo": False, "install_packages": False}

# (case id, module, its arguments, words the failure message must contain: the parameter's name)
CASES = [
    ("daemon settings not a mapping", "daemon_config", {"settings": [1, 2]}, "settings"),
    # ansible-core itself refuses NaN when it serialises the arguments, before the module runs (it names the
    # value, not the parameter); daemon_config's own check covers JSON read from files (unit-tested).
    ("daemon value JSON cannot hold", "daemon_config", {"settings": {"max-concurrent-downloads": math.nan}},
     "not JSON compliant: nan"),
    ("daemon hosts against -H fd://", "daemon_config", {"settings": {"hosts": ["unix:///var/run/docker.sock"]}},
     "'hosts'"),
    ("daemon log-opts not an object", "daemon_config", {"settings": {"log-opts": "max-size=10m"}}, "log-opts"),
    ("daemon remove of a mapping", "daemon_config", {"remove": [{"log-opts": 1}]}, "remove"),
    ("daemon unknown mode", "daemon_config", {"mode": "overwrite"}, "mode"),
    ("daemon timeout not a number", "daemon_config", {"restart_timeout": "soon"}, "restart_timeout"),
    ("daemon timeout zero", "daemon_config", {"restart_timeout": 0, "settings": {"debug": True}}, "restart_timeout"),
    ("daemon misspelt option", "daemon_config", {"sttings": {"debug": True}}, "sttings"),
    ("engine unknown channel", "docker_engine", {"channel": "nightly"}, "channel"),
    ("engine latest with a pin", "docker_engine", {"state": "latest", "version": "20.10.*"}, "version"),
    ("engine version with a shell", "docker_engine", {"version": "20.10; rm -rf /"}, "version"),
    ("engine repo url without scheme", "docker_engine", {"repo_base_url": "download.docker.com/linux"}, "repo_base_url"),
    ("engine bool not a bool", "docker_engine", {"install_recommends": "maybe"}, "install_recommends"),
    ("toolkit runtime name with a space", "nvidia_toolkit", dict(NO_INSTALL, runtime_name="nvidia gpu"), "runtime_name"),
    ("toolkit default runtime missing", "nvidia_toolkit", dict(NO_INSTALL, default_runtime=True), "default_runtime"),
    ("toolkit unknown restart", "nvidia_toolkit", {"restart": "sometimes"}, "restart"),
    ("gpu_facts broken JMESPath", "gpu_facts", {"select": "[?memory_total_mib > `1000`"}, "select"),
    ("stack unknown service", "ml_stack", {"kafka": {"image": "kafka:3.7"}, "redis": REDIS}, "kafka"),
    ("stack no service", "ml_stack", {"project": "mlstack"}, "postgres, redis, mlflow, tf_serving"),
    ("stack negative memory", "ml_stack", {"redis": dict(REDIS, memory="-1g")}, "redis.memory"),
    ("stack port out of range", "ml_stack", {"redis": dict(REDIS, ports=["127.0.0.1:99999:6379"])}, "redis.ports"),
    ("stack port not a port", "ml_stack", {"redis": dict(REDIS, ports=["six-three-seven-nine"])}, "redis.ports"),
    ("stack timeout not a number", "ml_stack", {"health_timeout": "soon", "redis": REDIS}, "health_timeout"),
    ("stack timeout zero", "ml_stack", {"health_timeout": 0, "redis": REDIS}, "health_timeout"),
    ("stack pull timeout zero", "ml_stack", {"pull_timeout": 0, "redis": REDIS}, "pull_timeout"),
    ("stack migration timeout negative", "ml_stack", {"migration_timeout": -5, "redis": REDIS}, "migration_timeout"),
    ("stack project not a name", "ml_stack", {"project": "ML Stack!", "redis": REDIS}, "project"),
    ("stack latest tag", "ml_stack", {"redis": {"image": "redis:latest"}}, "redis.image"),
    ("stack unknown restart policy", "ml_stack", {"redis": dict(REDIS, restart_policy="sometimes")}, "restart_policy"),
    ("stack negative cpus", "ml_stack", {"redis": dict(REDIS, cpus=-2)}, "redis.cpus"),
    ("stack env value a mapping", "ml_stack", {"redis": dict(REDIS, env={"A": {"b": 1}})}, "redis.env.A"),
    ("stack volume without a target", "ml_stack", {"redis": dict(REDIS, volumes=["nocolon"])}, "redis.volumes"),
    ("stack ulimit soft above hard", "ml_stack", {"redis": dict(REDIS, ulimits=["nofile=10:5"])}, "redis.ulimits"),
    ("stack gpus auto plus an id", "ml_stack", {"tf_serving": dict(TFS, gpus=["auto", "0"])}, "gpus"),
    ("stack model_name and models", "ml_stack", {"tf_serving": dict(TFS, model_name="a", models=[{"name": "b"}])},
     "model_name and models"),
    ("stack registry auth without password", "ml_stack",
     {"registry_auth": [{"registry": "registry:5000", "username": "u"}], "redis": REDIS}, "password"),
    ("stack empty redis password", "ml_stack", {"redis": dict(REDIS, password="")}, "redis.password"),
    ("stack db password breaking pgpass", "ml_stack",
     {"postgres": {"image": "{{ ml_stack_postgres_image }}"}, "redis": REDIS,
      "mlflow": {"image": "{{ ml_stack_mlflow_image }}", "db_password": "pa:ss"}}, "mlflow.db_password"),
]

SNAPSHOT = r"""
set -e
sha256sum /etc/docker/daemon.json; stat -c '%n %a %U %Y %s' /etc/docker/daemon.json
ls -la --time-style=+%s /etc/docker /etc/apt/sources.list.d
find /etc/mlinfra -exec stat -c '%n %a %U %Y %s' {} + | sort
find /etc/mlinfra -type f -exec sha256sum {} + | sort
test ! -e /etc/cdi || ls -la /etc/cdi
docker ps -a --format '{{.ID}} {{.Names}} {{.State}} {{.Image}}' | sort
docker inspect -f '{{.Name}} {{.State.StartedAt}} {{.RestartCount}}' $(docker ps -aq) | sort
docker volume ls -q | sort; docker network ls --format '{{.ID}} {{.Name}}' | sort
systemctl show docker -p MainPID -p ActiveState -p NRestarts
dpkg-query -W -f '${Package} ${Version}\n' | sha256sum
"""


def host_state(fl):
    rc, out = host_exec(fl, "host1", "sh", "-c", SNAPSHOT)
    assert rc == 0, out
    return out


@pytest.fixture(scope="module")
def outcome(rel_fleet, tmp_path_factory):
    """Converge, snapshot host1, run every case in one playbook, snapshot again."""
    fl = rel_fleet
    assert not failed_hosts(converge(fl))
    work = tmp_path_factory.mktemp("bad-input")
    results = work / "results.json"
    tasks = [{"name": f"case {i}: {case}", f"mlinfra.docker_ml.{module}": args, "register": f"case_{i}",
              "ignore_errors": True} for i, (case, module, args, _words) in enumerate(CASES)]
    collected = "{{ {" + ", ".join(f"'{i}': case_{i}" for i in range(len(CASES))) + "} | to_json }}"
    tasks.append({"name": "Collect the results", "delegate_to": "localhost",
                  "ansible.builtin.copy": {"content": collected, "dest": str(results), "mode": "0600"}})
    playbook = work / "bad_input.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Bad input", "hosts": "host1", "gather_facts": False,
                                         "tasks": tasks}], sort_keys=False))
    before = host_state(fl)
    proc = run_ansible("ansible-playbook", "-i", fl.inventory, str(playbook), "-e", "ansible_python_interpreter=/usr/bin/python3")
    after = host_state(fl)
    return {"results": json.loads(results.read_text()), "before": before, "after": after, "stdout": proc.stdout}


@pytest.mark.tally("bad inputs refused")
@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_the_parameter(outcome, index):
    _case, module, _args, words = CASES[index]
    result = outcome["results"][str(index)]
    assert result.get("failed") is True, f"{module} accepted it: {result}"
    assert result.get("changed") is not True
    assert words in result["msg"], result["msg"]


def test_host_is_unchanged_after_all_the_bad_input(outcome):
    assert outcome["before"] == outcome["after"]
    assert len(CASES) >= 20
