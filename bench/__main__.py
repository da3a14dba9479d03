"""python -m bench [--sizes 1,3,10] [--reps 5] [--fresh-reps 3] [--keep] [--name-prefix P]

Times, on local fleets of N hosts (forks = N), interleaved for each repetition:
  floor     ansible all -m ping
  ours      playbooks/site.yml on a converged fleet (no-op)
  full-peer bench/peer/full-site.yml: the whole of site.yml's scope as users of the popular roles write it
            (Docker, daemon.json, NVIDIA toolkit skipped without a GPU, the community.docker stack) (no-op)
  peer      bench/peer/site.yml (community.docker, the stack only) on a converged fleet (no-op)
  ours-ml   site.yml --tags ml_stack: the same scope as the peer (containers only, no engine/daemon.json/GPU)
  first     the first converge of each stack, images already on the hosts, no containers
with remote module runs per host (bench/callback/module_runs.py) and controller CPU seconds per host of
each no-op; then the first converge of a fresh host (no Docker) with each whole-scope playbook, on
fleets of its own; and the ml_stack module alone on one host (no-op, its AnsiballZ payload run on the
host) with its Docker API request count. Writes bench/results/<date>.md and a PNG plot."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.report import write_results

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


PREFIX = {"name": "bench"}
COUNTS = Path("/tmp/bench-module-runs.json")


def env(forks, **extra):
    collections = f"{REPO / '.build' / 'collections'}:{VENV}/lib/python3.11/site-packages"
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORKS=str(forks),
                ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{os.environ['PATH']}",
                ANSIBLE_CALLBACK_PLUGINS=str(REPO / "bench" / "callback"), ANSIBLE_CALLBACKS_ENABLED="module_runs",
                BENCH_MODULE_RUNS=str(COUNTS), **extra)


def controller_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_cpu():
    """Busy CPU seconds of the whole machine so far (/proc/stat: user, nice, system, irq, softirq, steal): the
    controller and every fleet host (their sshd, python and dockerd) together, since they share the cores."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    return (sum(fields[0:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")


def timed(cmd, forks, check=True, cpu=None, machine=None):
    """Seconds of wall time; with cpu (a list), the controller CPU seconds of the run (ansible-playbook, its
    workers and their ssh clients: every child it waited for) are appended to it; with machine (a list), the
    busy CPU seconds of the whole machine during the run."""
    before, busy = controller_cpu(), machine_cpu()
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env(forks), capture_output=True, text=True, timeout=1800, check=False)
    elapsed = time.monotonic() - started
    if cpu is not None:
        cpu.append(controller_cpu() - before)
    if machine is not None:
        machine.append(machine_cpu() - busy)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc


def module_runs():
    """{host: remote module runs} of the last playbook run (bench/callback/module_runs.py)."""
    return json.loads(COUNTS.read_text()) if COUNTS.exists() else {}


def fleet(*args):
    subprocess.run([sys.executable, "-m", "tests.fleet", *args], cwd=REPO, check=True, timeout=3600,
                   stdout=subprocess.DEVNULL)


def changed_hosts(stdout):
    import re  # pylint: disable=import-outside-toplevel
    return sum(1 for m in re.finditer(r"changed=(\d+)", stdout) if int(m.group(1)) > 0)


def models_dir(inv, hosts):
    timed([str(BIN / "ansible"), "all", "-i", inv, "-m", "ansible.builtin.shell", "-a",
           "mkdir -p /srv/models/half_plus_two/1 && echo bench > /srv/models/half_plus_two/1/saved_model.pb"], hosts)


def prepare(name, hosts):
    """A converged Docker fleet with the fixture images pulled on every host and no stack containers."""
    fleet("up", "--name", name, "--hosts", str(hosts), "--fixtures")
    inv = str(REPO / ".fleet" / name / "inventory.yml")
    timed([str(BIN / "ansible-playbook"), "-i", inv, "playbooks/site.yml", "--tags", "docker"], hosts)
    models_dir(inv, hosts)
    import yaml  # pylint: disable=import-outside-toplevel
    variables = yaml.safe_load(open(inv, encoding="utf-8"))["all"]["vars"]
    images = " ".join(v for k, v in variables.items() if k.startswith("ml_stack_") and k.endswith("_image"))
    timed([str(BIN / "ansible"), "all", "-i", inv, "-m", "ansible.builtin.shell", "-a",
           f"for i in {images}; do docker pull -q $i >/dev/null || exit 1; done"], hosts)
    return inv


def playbook(inv, path):
    return [str(BIN / "ansible-playbook"), "-i", inv, path, "-e", json.dumps(STACK_VARS)]


KINDS = ("floor", "ours", "full_peer", "peer", "ours_ml")


def run_size(hosts, reps):
    name = f"{PREFIX['name']}-{hosts}"
    inv = prepare(name, hosts)
    ours, peer = playbook(inv, "playbooks/site.yml"), playbook(inv, "bench/peer/site.yml")
    cmds = {"floor": [str(BIN / "ansible"), "all", "-i", inv, "-m", "ansible.builtin.ping"], "ours": ours,
            "full_peer": playbook(inv, "bench/peer/full-site.yml"), "peer": peer, "ours_ml": ours + ["--tags", "ml_stack"]}
    row = {"hosts": hosts, **{k: [] for k in KINDS}, **{k + "_changed": [] for k in KINDS[1:]},
           **{k + "_cpu": [] for k in KINDS[1:]}, **{k + "_machine_cpu": [] for k in KINDS}, "module_runs": {}}
    row["first_ours"] = timed(ours, hosts)[0]
    row["first_peer"] = timed(peer, hosts)[0]
    timed(cmds["full_peer"], hosts)  # its Docker part is a no-op from here on too
    for rep in range(reps):
        for key in KINDS:
            elapsed, proc = timed(cmds[key], hosts, cpu=row.get(key + "_cpu"), machine=row[key + "_machine_cpu"])
            row[key].append(elapsed)
            if key != "floor":
                row[key + "_changed"].append(changed_hosts(proc.stdout))
                row["module_runs"][key] = module_runs()
        log(f"{hosts} hosts, rep {rep + 1}/{reps}: " + " ".join(f"{k} {row[k][-1]:.2f}s" for k in KINDS))
    return row, inv


def first_fresh(reps):
    """The first converge of a fresh host (no Docker; images pulled from the fixture registry by the run),
    whole scope: site.yml against full-site.yml, each on a fleet of its own, alternating."""
    times = {"ours": [], "full_peer": []}
    for rep in range(reps):
        for key, path in (("ours", "playbooks/site.yml"), ("full_peer", "bench/peer/full-site.yml")):
            name = f"{PREFIX['name']}-fresh"
            fleet("up", "--name", name, "--hosts", "1", "--fixtures")
            try:
                inv = str(REPO / ".fleet" / name / "inventory.yml")
                models_dir(inv, 1)
                cmd = playbook(inv, path) + (["-e", "peer_daemon_json=/etc/docker/daemon.json"] if key == "full_peer" else [])
                times[key].append(timed(cmd, 1)[0])
            finally:
                fleet("down", "--name", name)
        log(f"fresh host, rep {rep + 1}/{reps}: ours {times['ours'][-1]:.1f}s full-peer {times['full_peer'][-1]:.1f}s")
    return times


def module_alone(inv, reps):
    """Run ml_stack's AnsiballZ payload on host1 itself: the module's own cost, without SSH and Ansible."""
    args = json.dumps({"postgres": {"image": "registry:5000/fixtures/postgres:15-fixture", "memory": "2g",
                                    "shm_size": "256m"}, "redis": {"image": "registry:5000/fixtures/redis:7-fixture"}})
    runner = ("f=$(ls -t /root/.ansible/tmp/*/AnsiballZ_ml_stack.py | head -1); for i in $(seq %d); do "
              "s=$(date +%%s%%N); python3 $f >/tmp/ml_stack.out; e=$(date +%%s%%N); echo $(( (e-s)/1000000 )); done; "
              "python3 -c \"import json;print('requests', json.load(open('/tmp/ml_stack.out'))['api_requests'])\"" % reps)
    env_keep = dict(ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_PIPELINING="0")  # leave the payload on the host
    first = subprocess.run([str(BIN / "ansible"), "host1", "-i", inv, "-m", "mlinfra.docker_ml.ml_stack", "-a", args],
                           cwd=REPO, env=dict(env(1), **env_keep), capture_output=True, text=True, check=False, timeout=600)
    if first.returncode != 0:
        raise RuntimeError(f"ml_stack alone failed:\n{first.stdout[-4000:]}\n{first.stderr[-2000:]}")
    proc = timed([str(BIN / "ansible"), "host1", "-i", inv, "-m", "ansible.builtin.shell", "-a", runner], 1)[1]
    lines = [line.strip() for line in proc.stdout.splitlines()]
    millis = [int(line) for line in lines if line.isdigit()]
    requests = next(int(line.split()[1]) for line in lines if line.startswith("requests"))
    return {"seconds": [m / 1000 for m in millis], "api_requests": requests}


def main():
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,3,10")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--fresh-reps", type=int, default=3, help="first converges of a fresh host, each playbook")
    parser.add_argument("--keep", action="store_true", help="keep the bench fleets")
    parser.add_argument("--name-prefix", default="bench", help="fleet names: <prefix>-<hosts>, <prefix>-fresh")
    args = parser.parse_args()
    PREFIX["name"] = args.name_prefix
    ensure_venv()
    if Path(sys.prefix).resolve() != VENV.resolve():  # run the rest (matplotlib included) in the bench venv
        os.execv(str(BIN / "python"), [str(BIN / "python"), "-m", "bench", *sys.argv[1:]])
    subprocess.run(["make", "collection"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    rows, alone = [], None
    load_start = os.getloadavg()[0]
    for size in [int(s) for s in args.sizes.split(",")]:
        try:
            row, inv = run_size(size, args.reps)
            rows.append(row)
            # Kept as it goes: a later failure (a fleet, the fresh-host phase) does not lose what was measured.
            (RESULTS / "partial.json").write_text(json.dumps(rows, indent=1))
            if size == 1:
                alone = module_alone(inv, 10)
        finally:
            if not args.keep:
                fleet("down", "--name", f"{PREFIX['name']}-{size}")
    fresh = first_fresh(args.fresh_reps) if args.fresh_reps else {"ours": [], "full_peer": []}
    print(write_results(RESULTS, rows, alone or {"seconds": [], "api_requests": 0}, fresh, args.reps,
                        (load_start, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
