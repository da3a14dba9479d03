"""python -m tests.fleet up|down|status|inventory [--name NAME] [--hosts N] [--os jammy,noble] [--gpu-hosts host1,...]"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import fleet
from .local_docker import FleetError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.fleet", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "inventory"))
    parser.add_argument("--name", default="default", help="fleet name (several fleets may coexist)")
    parser.add_argument("--hosts", type=int, default=3, help="number of hosts for 'up' (default 3)")
    parser.add_argument("--os", default="",
                        help="comma-separated OS per host, in host order: bookworm, jammy or noble (hosts beyond the list run bookworm)")
    parser.add_argument("--gpu-hosts", default="", help="comma-separated hosts to put in gpu_hosts")
    parser.add_argument("--fixtures", action="store_true",
                        help="also build the ML stack's test fixture images, push them to the fleet "
                             "registry and point the inventory's image variables at them")
    args = parser.parse_args(argv)

    def log(msg):
        print(f"[fleet {args.name}] {msg}", file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        if args.command == "up":
            gpu = [h for h in args.gpu_hosts.split(",") if h]
            path = fleet.up(args.name, args.hosts, gpu, log=log, fixtures=args.fixtures, oses=args.os)
            log(f"up in {time.monotonic() - started:.1f}s")
            print(path)
        elif args.command == "down":
            fleet.down(args.name, log=log)
            log(f"down in {time.monotonic() - started:.1f}s")
        elif args.command == "status":
            print(json.dumps(fleet.status(args.name, log=log), indent=2))
        else:
            print(fleet.inventory_path(args.name))
    except FleetError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
