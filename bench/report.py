"""The benchmark's report: bench/results/<date>.md (tables, the ratio lines the issues track, raw samples)
and a PNG plot of all of it."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics

LABELS = {"floor": "floor: ping", "ours": "ours: site.yml no-op", "full_peer": "full peer: whole scope no-op",
          "peer": "peer: community.docker stack no-op", "ours_ml": "ours: ML plays only (peer's scope)"}


def median(values):
    return statistics.median(values) if values else float("nan")


def per_host(runs):
    """(max, mean) remote module runs per host of one no-op run; None when not measured."""
    counts = [n for host, n in runs.items() if not host.startswith("localhost")]  # the controller's own runs apart
    return (max(counts), sum(counts) / len(counts)) if counts else None


def changed(row, *kinds):
    counts = [c for kind in kinds for c in row.get(kind + "_changed", [])]
    return max(counts) if counts else "not recorded"


def first(row, key):
    return f"{row[key]:.1f}" if row.get(key) is not None else "not recorded"


def ratio_line(rows, a, b):
    return " / ".join(f"{median(r[a]) / median(r[b]):.2f}" for r in rows)


def cpu_bound(rows):
    """The machine's busy CPU seconds per no-op run (controller and fleet hosts share the cores), and what
    that allows: no scheduling can make a run shorter than its CPU seconds over the cores."""
    if not any(r.get("ours_machine_cpu") for r in rows):
        return []
    cores = os.cpu_count()
    lines = ["", f"Machine CPU seconds per no-op run (every process on the machine: controller, ssh, and each fleet "
             f"host's sshd, python and dockerd; /proc/stat, medians), and the shortest wall time that CPU allows on "
             f"{cores} cores:", "", "| hosts | ping | ours | full peer | peer | ours CPU / cores | ours wall |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = {k: median(r.get(k + "_machine_cpu", [])) for k in ("floor", "ours", "full_peer", "peer")}
        lines.append(f"| {r['hosts']} | " + " | ".join(f"{v:.1f}" for v in cpu.values())
                     + f" | {cpu['ours'] / cores:.1f} | {median(r['ours']):.1f} |")
    one = next((r for r in rows if r["hosts"] == 1), None)
    ten = next((r for r in rows if r["hosts"] == 10), None)
    if one and ten and one.get("ours_machine_cpu") and ten.get("ours_machine_cpu"):
        extra = {k: (median(ten[k + "_machine_cpu"]) - median(one[k + "_machine_cpu"])) / 9 for k in ("floor", "ours")}
        lines += ["", f"Each host beyond the first costs ours {extra['ours']:.2f} CPU s (ping: {extra['floor']:.2f}). "
                  f"10-host no-op <= 2.0 x 1-host no-op ({2 * median(one['ours']):.1f} s) needs at most "
                  f"{2 * median(one['ours']) * cores:.1f} CPU s for the 10-host run; it used "
                  f"{median(ten['ours_machine_cpu']):.1f}."]
    return lines


def write_results(results, rows, alone, fresh, reps, load=None, notes=(), name=None):
    results.mkdir(parents=True, exist_ok=True)
    day = datetime.date.today().isoformat()
    sizes = " / ".join(str(r["hosts"]) for r in rows)
    lines = [f"# Benchmark {day}", "",
             f"Machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"ansible-core 2.19.14, community.docker from ansible 12.3.0. {reps} repetitions, interleaved "
             "floor/ours/full-peer/peer/ours-ML; medians in seconds. Fleet hosts are local containers (tests/fleet), "
             "forks = hosts; they share the machine's cores with the controller."
             + (f" Load average (1 min) at the start / end: {load[0]:.2f} / {load[1]:.2f}." if load else ""), "",
             "| hosts | floor (ping) | ours no-op | full peer no-op | ours/full-peer | peer no-op | ours/peer | ours/floor | "
             "ours ML plays only | ours ML only/peer | first ours (stack) | first peer (stack) | changed hosts in no-op runs "
             "(ours / full peer / peer) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = {k: median(r[k]) for k in LABELS}
        lines.append(f"| {r['hosts']} | {m['floor']:.2f} | {m['ours']:.2f} | {m['full_peer']:.2f} | "
                     f"{m['ours'] / m['full_peer']:.2f} | {m['peer']:.2f} | {m['ours'] / m['peer']:.2f} | "
                     f"{m['ours'] / m['floor']:.2f} | {m['ours_ml']:.2f} | {m['ours_ml'] / m['peer']:.2f} | "
                     f"{first(r, 'first_ours')} | {first(r, 'first_peer')} | {changed(r, 'ours', 'ours_ml')} / "
                     f"{changed(r, 'full_peer')} / {changed(r, 'peer')} |")
    lines += ["", f"ours/full-peer: {ratio_line(rows, 'ours', 'full_peer')} ({sizes} hosts, medians).",
              f"ours/peer: {ratio_line(rows, 'ours', 'peer')} ({sizes} hosts, medians; the peer does containers only)."]
    one = next((r for r in rows if r["hosts"] == 1), None)
    ten = next((r for r in rows if r["hosts"] == 10), None)
    if one and ten:
        lines.append(f"10-host no-op / 1-host no-op: {median(ten['ours']) / median(one['ours']):.2f} "
                     f"(ping alone: {median(ten['floor']) / median(one['floor']):.2f}).")
    lines += ["", "Per host, for one no-op run: remote module runs (max / mean over the hosts; "
              "bench/callback/module_runs.py) and controller CPU seconds (ansible-playbook, its workers and ssh, "
              "median of the repetitions, divided by the hosts).", "",
              "| hosts | ours module runs | full peer module runs | peer module runs | ours CPU s/host | "
              "full peer CPU s/host | peer CPU s/host |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = {k: per_host(r.get("module_runs", {}).get(k, {})) for k in ("ours", "full_peer", "peer")}
        cpu = {k: median(r.get(k + "_cpu", [])) / r["hosts"] for k in ("ours", "full_peer", "peer")}
        counts = [f"{runs[k][0]} / {runs[k][1]:.1f}" if runs[k] else "not measured" for k in runs]
        lines.append(f"| {r['hosts']} | " + " | ".join(counts) + " | " + " | ".join(f"{cpu[k]:.2f}" for k in cpu) + " |")
    lines += cpu_bound(rows)
    if fresh["ours"]:
        lines += ["", f"First converge of a fresh host (no Docker; Docker, daemon.json, images and the whole stack), "
                  f"whole scope, median of {len(fresh['ours'])}: ours {median(fresh['ours']):.1f} s, full peer "
                  f"{median(fresh['full_peer']):.1f} s (ours/full-peer {median(fresh['ours']) / median(fresh['full_peer']):.2f})."]
    lines += [""] + list(notes) if notes else []
    lines += ["", "\"ours ML plays only\" is `site.yml --tags ml_stack`: the peer's scope (containers), without "
              "the Docker engine, daemon.json and GPU tasks that only ours has. \"first ... (stack)\": the first "
              "converge of each stack on a host with Docker and the images, no containers."]
    if alone["seconds"]:
        lines += ["", f"ml_stack module alone on one host (postgres + redis, no-op, run on the host): median "
                  f"{median(alone['seconds']):.3f} s over {len(alone['seconds'])} runs, {alone['api_requests']} Docker API requests."]
    lines += ["", "Raw samples:", "", "```json",
              json.dumps({"rows": rows, "module_alone": alone, "first_fresh": fresh}, indent=1), "```", ""]
    path = results / f"{name or day}.md"
    path.write_text("\n".join(lines))
    plot(rows, fresh, results / f"{name or day}.png")
    return path


def plot(rows, fresh, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    hosts = [r["hosts"] for r in rows]
    fig, (times, ratios, per, cpu) = plt.subplots(1, 4, figsize=(22, 5))
    for key, label in LABELS.items():
        times.plot(hosts, [median(r[key]) for r in rows], marker="o", label=label)
    times.set(xlabel="hosts (forks = hosts)", ylabel="median seconds", title="No-op converge time", xticks=hosts)
    times.legend(fontsize=8)
    one = next((r for r in rows if r["hosts"] == 1), None)
    ratios.plot(hosts, [median(r["ours"]) / median(r["full_peer"]) for r in rows], marker="o", label="ours / full peer")
    ratios.plot(hosts, [median(r["ours"]) / median(r["peer"]) for r in rows], marker="o", label="ours / peer (stack only)")
    if one:
        ratios.plot(hosts, [median(r["ours"]) / median(one["ours"]) for r in rows], marker="o",
                    label="ours N hosts / ours 1 host")
        ratios.plot(hosts, [median(r["floor"]) / median(one["floor"]) for r in rows], marker="x", linestyle=":",
                    label="ping N hosts / ping 1 host")
    ratios.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    ratios.axhline(2.0, color="grey", linestyle="--", linewidth=0.8)
    ratios.set(xlabel="hosts", ylabel="ratio", title="Ratios (targets: 0.5 vs full peer, 2.0 for 10/1)", xticks=hosts)
    ratios.legend(fontsize=8)
    width = 0.25
    for i, key in enumerate(("ours", "full_peer", "peer")):
        xs = [x + (i - 1) * width for x in range(len(rows))]
        per.bar(xs, [(per_host(r.get("module_runs", {}).get(key, {})) or (0, 0))[1] for r in rows], width,
                label=f"{key}: module runs/host (mean)", color=f"C{i}")
        cpu.plot(hosts, [median(r.get(key + "_cpu", [])) / r["hosts"] for r in rows], marker="s", color=f"C{i}",
                 label=f"{key}: controller CPU s/host")
        cpu.plot(hosts, [median(r.get(key + "_machine_cpu", [])) / r["hosts"] for r in rows], marker="o", linestyle=":", color=f"C{i}",
                 label=f"{key}: machine CPU s/host (controller + fleet hosts)")
    title = "Per host, no-op"
    if fresh["ours"]:
        title += f"; fresh host first converge: ours {median(fresh['ours']):.0f}s, full peer {median(fresh['full_peer']):.0f}s"
    per.set(xticks=range(len(rows)), xticklabels=[str(h) for h in hosts], xlabel="hosts", title=title)
    per.title.set_fontsize(9)
    per.legend(fontsize=7)
    cpu.set(xlabel="hosts", ylabel="CPU seconds per host", title="No-op CPU per host", xticks=hosts)
    cpu.legend(fontsize=7)
    for ax in (times, ratios, per, cpu):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
