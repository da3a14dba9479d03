"""python -m tests.fleet.smoke [--name demo]: after `make demo`, show that the ML platform answers from this
machine (an MLflow run logged through the tracking host, a TF Serving prediction from the serving host),
then print one `ssh -L` command per service that opens it here."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

import yaml

from .access import printable, ssh_forward_command, tunnel
from .fleet import REPO_ROOT, inventory_path, state_dir

HALF_PLUS_TWO = [2.5, 3.0, 4.5]  # TF Serving's own test model computes 0.5 x + 2
DEFAULTS = REPO_ROOT / "roles" / "ml_stack" / "defaults" / "main.yml"


class SmokeError(RuntimeError):
    """The platform did not answer as it should; the message says where."""


def published_port(ports):
    """'127.0.0.1:5000:5000' (the role's ports syntax) -> 5000, the port on the host's loopback."""
    return int(ports[0].rsplit(":", 2)[-2])


def call(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SmokeError(f"{url.split('/', 3)[-1]}: {exc}") from exc


def plan(name):
    """Where each service runs: {service: (host, ssh port, port on the host's loopback)}."""
    state = json.loads((state_dir(name) / "state.json").read_text())
    inventory = yaml.safe_load(inventory_path(name).read_text())
    groups, all_vars = inventory["all"]["children"], inventory["all"]["vars"]
    defaults = yaml.safe_load(DEFAULTS.read_text())
    ssh = {h["name"]: h["port"] for h in state["hosts"]}
    where = {}
    for service, group, var in (("MLflow UI", "ml_tracking", "ml_stack_mlflow_ports"),
                                ("TF Serving REST", "ml_serving", "ml_stack_tf_serving_ports")):
        host = next(iter(groups[group]["hosts"]))
        where[service] = (host, ssh[host], published_port(all_vars.get(var, defaults[var])))
    return where


def log_mlflow_run(name, ssh_port, port):
    with tunnel(name, ssh_port, port) as base:
        api = f"{base}/api/2.0/mlflow"
        try:
            experiment = call(f"{api}/experiments/create", {"name": f"demo-smoke-{int(time.time())}"})["experiment_id"]
        except SmokeError as exc:
            raise SmokeError(f"MLflow did not create an experiment ({exc})") from exc
        run = call(f"{api}/runs/create", {"experiment_id": experiment, "start_time": int(time.time() * 1000)})
        run_id = run["run"]["info"]["run_id"]
        call(f"{api}/runs/log-metric", {"run_id": run_id, "key": "smoke", "value": 1.0,
                                        "timestamp": int(time.time() * 1000), "step": 0})
        metrics = call(f"{api}/runs/get?run_id={run_id}")["run"]["data"].get("metrics", [])
    if [m["value"] for m in metrics if m["key"] == "smoke"] != [1.0]:
        raise SmokeError(f"MLflow run {run_id} does not hold the metric just logged: {metrics}")
    return run_id


def predict(name, ssh_port, port, model):
    with tunnel(name, ssh_port, port) as base:
        answer = call(f"{base}/v1/models/{model}:predict", {"instances": [1.0, 2.0, 5.0]})
    predictions = answer.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != 3:
        raise SmokeError(f"TF Serving's answer for model {model} has no 3 predictions: {answer}")
    if model == "half_plus_two" and predictions != HALF_PLUS_TWO:
        raise SmokeError(f"half_plus_two([1, 2, 5]) should be {HALF_PLUS_TWO}, TF Serving answered {predictions}")
    return predictions


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.fleet.smoke", description=__doc__)
    parser.add_argument("--name", default="demo", help="fleet name (default demo)")
    parser.add_argument("--model", default="half_plus_two", help="the model TF Serving serves")
    args = parser.parse_args(argv)
    where = plan(args.name)
    try:
        host, ssh_port, port = where["MLflow UI"]
        run_id = log_mlflow_run(args.name, ssh_port, port)
        print(f"smoke: MLflow on {host} logged run {run_id} (metric smoke=1.0) and read it back")
        host, ssh_port, port = where["TF Serving REST"]
        predictions = predict(args.name, ssh_port, port, args.model)
        print(f"smoke: TF Serving on {host} predicts {args.model}([1.0, 2.0, 5.0]) = {predictions}")
    except SmokeError as exc:
        print(f"smoke check failed: {exc}; see 'python -m tests.fleet status --name {args.name}'", file=sys.stderr)
        return 1
    print("\nOpen the services from this machine (one command each, leave it running):")
    for service, (host, ssh_port, port) in where.items():
        print(f"  # {service} on {host}: then open http://127.0.0.1:{port}/")
        print("  " + printable(ssh_forward_command(args.name, ssh_port, port, port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
