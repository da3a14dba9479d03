"""python -m bench [--sizes 1,3,10] [--reps 5] [--keep]

Times, on local fleets of N hosts (forks = N), interleaved ours/peer for each repetition:
  floor   ansible all -m ping
  ours    playbooks/site.yml on a converged fleet (no-op)
  peer    bench/peer/site.yml (community.docker, same stack) on a converged fleet (no-op)
  ours-ml site.yml --tags ml_stack: the same scope as the peer (containers only, no engine/daemon.json/GPU)
  first   the first converge of each stack, images already on the hosts, no containers
and the ml_stack module alone on one host (no-op, its AnsiballZ payload run on the host) with its
Docker API request count. Writes bench/results/<date>.md and a PNG plot."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-bench"
BIN = VENV / "bin"
RESULTS = REPO / "bench" / "results"
STACK_VARS = {"ml_stack_tf_serving_model_name": "half_plus_two", "ml_stack_tf_serving_models_path": "/srv/models",
              "peer_password": "bench-only-password"}


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def ensure_venv():
    stamp = VENV / ".stamp"
    requirements = REPO / "bench" / "requirements.txt"
    if stamp.exists() and stamp.read_text() == requirements.read_text():
        return
    log("creating .venv-bench (ansible-core, ansible for community.docker, matplotlib)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(BIN / "pip"), "install", "-q", "-r", str(requirements)], check=True, timeout=1800)
    stamp.write_text(requirements.read_text())


def env(forks):
    collections = f"{REPO / '.build' / 'collections'}:{VENV}/lib/python3.11/site-packages"
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORKS=str(forks),
                ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{os.environ['PATH']}")


def timed(cmd, forks, check=True):
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env(forks), capture_output=True, text=True, timeout=1800, check=False)
    elapsed = time.monotonic() - started
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc


def fleet(*args):
    subprocess.run([sys.executable, "-m", "tests.fleet", *args], cwd=REPO, check=True, timeout=3600,
                   stdout=subprocess.DEVNULL)


def changed_hosts(stdout):
    import re  # pylint: disable=import-outside-toplevel
    return sum(1 for m in re.finditer(r"changed=(\d+)", stdout) if int(m.group(1)) > 0)


def prepare(name, hosts):
    """A converged Docker fleet with the fixture images pulled on every host and no stack containers."""
    fleet("up", "--name", name, "--hosts", str(hosts), "--fixtures")
    inv = str(REPO / ".fleet" / name / "inventory.yml")
    timed([str(BIN / "ansible-playbook"), "-i", inv, "playbooks/site.yml", "--tags", "docker"], hosts)
    import yaml  # pylint: disable=import-outside-toplevel
    variables = yaml.safe_load(open(inv, encoding="utf-8"))["all"]["vars"]
    images = " ".join(v for k, v in variables.items() if k.startswith("ml_stack_") and k.endswith("_image"))
    timed([str(BIN / "ansible"), "all", "-i", inv, "-m", "ansible.builtin.shell", "-a",
           f"for i in {images}; do docker pull -q $i >/dev/null || exit 1; done; "
           "mkdir -p /srv/models/half_plus_two/1 && echo bench > /srv/models/half_plus_two/1/saved_model.pb"], hosts)
    return inv


def run_size(hosts, reps):
    name = f"bench-{hosts}"
    inv = prepare(name, hosts)
    ours = [str(BIN / "ansible-playbook"), "-i", inv, "playbooks/site.yml", "-e", json.dumps(STACK_VARS)]
    peer = [str(BIN / "ansible-playbook"), "-i", inv, "bench/peer/site.yml", "-e", json.dumps(STACK_VARS)]
    floor = [str(BIN / "ansible"), "all", "-i", inv, "-m", "ansible.builtin.ping"]
    row = {"hosts": hosts, "floor": [], "ours": [], "peer": [], "ours_ml": [], "ours_changed": [], "peer_changed": [],
           "ours_ml_changed": []}
    row["first_ours"] = timed(ours, hosts)[0]
    row["first_peer"] = timed(peer, hosts)[0]
    for rep in range(reps):
        for key, cmd in (("floor", floor), ("ours", ours), ("peer", peer), ("ours_ml", ours + ["--tags", "ml_stack"])):
            elapsed, proc = timed(cmd, hosts)
            row[key].append(elapsed)
            if key != "floor":
                row[key + "_changed"].append(changed_hosts(proc.stdout))
        log(f"{hosts} hosts, rep {rep + 1}/{reps}: floor {row['floor'][-1]:.2f}s ours {row['ours'][-1]:.2f}s "
            f"peer {row['peer'][-1]:.2f}s ours-ml {row['ours_ml'][-1]:.2f}s")
    return row, inv


def module_alone(inv, reps):
    """Run ml_stack's AnsiballZ payload on host1 itself: the module's own cost, without SSH and Ansible."""
    args = json.dumps({"postgres": {"image": "registry:5000/fixtures/postgres:15-fixture", "memory": "2g",
                                    "shm_size": "256m"}, "redis": {"image": "registry:5000/fixtures/redis:7-fixture"}})
    runner = ("f=$(ls -t /root/.ansible/tmp/*/AnsiballZ_ml_stack.py | head -1); for i in $(seq %d); do "
              "s=$(date +%%s%%N); python3 $f >/tmp/ml_stack.out; e=$(date +%%s%%N); echo $(( (e-s)/1000000 )); done; "
              "python3 -c \"import json;print('requests', json.load(open('/tmp/ml_stack.out'))['api_requests'])\"" % reps)
    env_keep = dict(ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_PIPELINING="0")  # leave the payload on the host
    subprocess.run([str(BIN / "ansible"), "host1", "-i", inv, "-m", "mlinfra.docker_ml.ml_stack", "-a", args],
                   cwd=REPO, env=dict(env(1), **env_keep), capture_output=True, check=True, timeout=600)
    proc = timed([str(BIN / "ansible"), "host1", "-i", inv, "-m", "ansible.builtin.shell", "-a", runner], 1)[1]
    lines = [line.strip() for line in proc.stdout.splitlines()]
    millis = [int(line) for line in lines if line.isdigit()]
    requests = next(int(line.split()[1]) for line in lines if line.startswith("requests"))
    return {"seconds": [m / 1000 for m in millis], "api_requests": requests}


def median(values):
    return statistics.median(values) if values else float("nan")


def write_results(rows, alone, reps):
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.date.today().isoformat()
    one = next((r for r in rows if r["hosts"] == 1), None)
    lines = [f"# Benchmark {day}", "",
             f"Machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"ansible-core 2.19.14, community.docker from ansible 12.3.0. {reps} repetitions, interleaved "
             "floor/ours/peer; medians in seconds. Fleet hosts are local containers (tests/fleet), forks = hosts.", "",
             "| hosts | floor (ping) | ours no-op | peer no-op | ours/peer | ours/floor | ours ML plays only | "
             "ours ML only/peer | first ours | first peer | changed hosts in no-op runs (ours / peer) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['hosts']} | {median(r['floor']):.2f} | {median(r['ours']):.2f} | {median(r['peer']):.2f} | "
                     f"{median(r['ours']) / median(r['peer']):.2f} | {median(r['ours']) / median(r['floor']):.2f} | "
                     f"{median(r['ours_ml']):.2f} | {median(r['ours_ml']) / median(r['peer']):.2f} | {r['first_ours']:.1f} | "
                     f"{r['first_peer']:.1f} | {max(r['ours_changed'] + r['ours_ml_changed'])} / {max(r['peer_changed'])} |")
    lines += ["", "\"ours ML plays only\" is `site.yml --tags ml_stack`: the peer's scope (containers), without "
              "the Docker engine, daemon.json and GPU tasks that only ours has."]
    lines += ["", f"ml_stack module alone on one host (postgres + redis, no-op, run on the host): median "
              f"{median(alone['seconds']):.3f} s over {len(alone['seconds'])} runs, {alone['api_requests']} Docker API requests."]
    if one:
        ten = next((r for r in rows if r["hosts"] == 10), None)
        if ten:
            lines.append(f"10-host no-op / 1-host no-op: {median(ten['ours']) / median(one['ours']):.2f}.")
    lines += ["", "Raw samples:", "", "```json", json.dumps({"rows": rows, "module_alone": alone}, indent=1), "```", ""]
    path = RESULTS / f"{day}.md"
    path.write_text("\n".join(lines))
    plot(rows, RESULTS / f"{day}.png")
    return path


def plot(rows, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    hosts = [r["hosts"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (("ours", "ours: site.yml no-op"), ("ours_ml", "ours: ML plays only (peer's scope)"),
                       ("peer", "peer: community.docker no-op"), ("floor", "floor: ping")):
        ax.plot(hosts, [median(r[key]) for r in rows], marker="o", label=label)
    ax.set_xlabel("hosts (forks = hosts)")
    ax.set_ylabel("median seconds")
    ax.set_title("No-op converge time vs fleet size")
    ax.set_xticks(hosts)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,3,10")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the bench fleets")
    args = parser.parse_args()
    ensure_venv()
    if Path(sys.prefix).resolve() != VENV.resolve():  # run the rest (matplotlib included) in the bench venv
        os.execv(str(BIN / "python"), [str(BIN / "python"), "-m", "bench", *sys.argv[1:]])
    subprocess.run(["make", "collection"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    rows, alone = [], None
    for size in [int(s) for s in args.sizes.split(",")]:
        try:
            row, inv = run_size(size, args.reps)
            rows.append(row)
            if size == 1:
                alone = module_alone(inv, 10)
        finally:
            if not args.keep:
                fleet("down", "--name", f"bench-{size}")
    print(write_results(rows, alone or {"seconds": [], "api_requests": 0}, args.reps))


if __name__ == "__main__":
    main()
