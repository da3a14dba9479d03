"""Observe and drive the ML stack on a fleet from the outside: converge, containers, SSH tunnels,
MLflow's REST API, psql. Shared by the ml_stack and reliability scenarios."""

import contextlib
import io
import json
import subprocess
import threading
import time
import urllib.request

import docker

from tests.fleet import fleet as fleet_mod
from tests.fleet.access import tunnel as fleet_tunnel
from tests.integration.conftest import host_exec, recap, run_ansible

SITE = "playbooks/site.yml"
BASE_VARS = {"ml_stack_tf_serving_model_name": "half_plus_two", "ml_stack_tf_serving_models_path": "/srv/models",
             "ml_stack_health_timeout": 240}


def install_model(fl, host="host3"):
    """The TF Serving stand-in's demo model (y = 0.5 x + 2) under /srv/models on the serving host."""
    rc, out = host_exec(fl, host, "sh", "-c", "mkdir -p /srv/models/half_plus_two/1/assets && "
                        "echo fixture > /srv/models/half_plus_two/1/saved_model.pb && "
                        "echo '{\"w\": 0.5, \"b\": 2}' > /srv/models/half_plus_two/1/assets/standin.json")
    assert rc == 0, out


def converge(fl, *args, check=True, **extra_vars):
    variables = dict(getattr(fl, "vars", BASE_VARS), **extra_vars)
    return run_ansible("ansible-playbook", "-i", fl.inventory, SITE, "-e", json.dumps(variables), *args, check=check)


def converge_async(fl, *args, timeout=900, **extra_vars):
    """Start site.yml in the background (stdout to a pipe); the caller reads, interferes and waits.
    A watchdog kills it after timeout seconds (proc.watchdog; cancel it when done)."""
    from tests.integration.conftest import BIN, REPO, ansible_env  # pylint: disable=import-outside-toplevel
    variables = dict(getattr(fl, "vars", BASE_VARS), **extra_vars)
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [str(BIN / "ansible-playbook"), "-i", fl.inventory, SITE, "-e", json.dumps(variables), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=ansible_env())
    proc.watchdog = threading.Timer(timeout, proc.kill)
    proc.watchdog.start()
    return proc


def changed(proc):
    return {host: counts["changed"] for host, counts in recap(proc.stdout).items()}


def failed_hosts(proc):
    return {host for host, counts in recap(proc.stdout).items() if counts.get("failed") or counts.get("unreachable")}


def containers(fl, host):
    rc, out = host_exec(fl, host, "docker", "ps", "-a", "--format", "{{.Names}} {{.State}}")
    assert rc == 0, out
    return dict(line.split(" ", 1) for line in out.strip().splitlines())


def container_ids(fl, host):
    rc, out = host_exec(fl, host, "docker", "ps", "-a", "--format", "{{.Names}} {{.ID}} {{.State}}")
    assert rc == 0, out
    return sorted(out.split("\n"))


def health(fl, host, name):
    return host_exec(fl, host, "docker", "inspect", "-f", "{{.State.Health.Status}}", name)[1].strip()


def wait_for(check, timeout, what, interval=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise AssertionError(f"{what}: not true after {timeout}s")


def fleet_state(fl):
    """What the harness recorded for this fleet: hosts (name, port, ip), subnet, registry_port."""
    return json.loads((fleet_mod.state_dir(fl.name) / "state.json").read_text())


def host_record(fl, host):
    return {h["name"]: h for h in fleet_state(fl)["hosts"]}[host]


def ssh_port(fl, host):
    return host_record(fl, host)["port"]


def tunnel(fl, host, remote_port):
    """Reach a service published on a host's 127.0.0.1 through that host's sshd, like an operator would."""
    return fleet_tunnel(fl.name, ssh_port(fl, host), remote_port)


def call(url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=90) as resp:  # basic-auth hashes the password on every request: slow under load
        return json.load(resp)


def log_run(base, name, loss):
    """Through MLflow's REST API at base: a new experiment `name` with one run that logs metric `loss`;
    (experiment id, run id)."""
    experiment = call(f"{base}/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]
    run = call(f"{base}/api/2.0/mlflow/runs/create", {"experiment_id": experiment})["run"]["info"]["run_id"]
    call(f"{base}/api/2.0/mlflow/runs/log-metric",
         {"run_id": run, "key": "loss", "value": loss, "timestamp": int(time.time() * 1000), "step": 1})
    return experiment, run


def psql(fl, sql, host="host1"):
    rc, out = host_exec(fl, host, "docker", "exec", "mlstack-postgres", "psql", "-U", "mlflow", "-d", "mlflow",
                        "-tAc", sql)
    assert rc == 0, out
    return out.strip()


def rebuild_fixture(fl, service, new_tag):
    """Push <fixture image> + one label as a new tag to the fleet registry (an 'image bump'); return its name."""
    client = docker.from_env()
    state = fleet_state(fl)
    inventory = (fleet_mod.state_dir(fl.name) / "inventory.yml").read_text()
    current = next(line.split(": ", 1)[1].strip() for line in inventory.splitlines()
                   if line.strip().startswith(f"ml_stack_{service}_image:"))
    repo, tag = current.split("/", 1)[1].rsplit(":", 1)
    local = f"127.0.0.1:{state['registry_port']}/{repo}"
    client.images.pull(local, tag)
    dockerfile = f"FROM {local}:{tag}\nLABEL org.mlinfra.fixture.revision={new_tag}\n".encode()
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=f"{local}:{new_tag}", rm=True)
    client.images.push(local, new_tag)
    return f"registry:5000/{repo}:{new_tag}"
