#!/usr/bin/env python3
"""Benchmark planning one node's part of a multi-host spec: --nodes nodes (default 50),
--containers containers (default 1000) spread over them in turn, all on one overlay network.

Pure: no kernel, no root. Timed (median of --repeat runs, after one untimed warm-up run):
1. load: reading and validating the spec text as node-0;
2. desired: `build_desired` against an empty live state (addresses from the spec alone,
   the overlay's FDB and neighbour entries for every remote container, files, veths);
3. plan: `plan(desired, State())`.

The run fails (exit 1) unless node-0 wants one FDB and one neighbour entry per remote
container and one all-zero FDB entry per other node. Planning a node's part must grow with
the containers, not with nodes x containers squared.

Usage:
    python benchmarks/bench_overlay.py [--nodes 50] [--containers 1000] [--repeat 5]
"""

from __future__ import annotations

import os
import sys

# the tests' environment sets it; an installed package has its bytecode (set before importing reconciler)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

import argparse  # noqa: E402

from bench_discovery import timed  # noqa: E402  (median of runs after a warm-up)

from reconciler.kernel.netlink import ZERO_MAC  # noqa: E402
from reconciler.spec.loader import load_spec_text  # noqa: E402
from reconciler.spec.nodes import NodeChoice  # noqa: E402
from reconciler.state.desired import build_desired  # noqa: E402
from reconciler.state.model import FdbEntry, NeighEntry, State  # noqa: E402
from reconciler.state.planner import plan  # noqa: E402


def fleet_spec(nodes: int, containers: int) -> str:
    lines = ["version: 1", "nodes:"]
    lines += [f"  node-{n}: {{address: 198.51.{100 + n // 250}.{n % 250 + 1}}}" for n in range(nodes)]
    lines += ["networks:", "  mesh: {driver: overlay, subnet: 10.200.0.0/16}", "containers:"]
    lines += [f"  c{i}: {{node: node-{i % nodes}, networks: [mesh]}}" for i in range(containers)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text = fleet_spec(args.nodes, args.containers)
    load_time, spec = timed(lambda: load_spec_text(text, "fleet.yaml", NodeChoice("node-0")), args.repeat)
    desired_time, desired = timed(lambda: build_desired(spec, State()), args.repeat)
    plan_time, made = timed(lambda: plan(desired, State()), args.repeat)
    objects = desired.objects.values()
    remote = sum(1 for c in spec.containers if c.node != "node-0")
    fdb = [o for o in objects if isinstance(o, FdbEntry)]
    expected = (remote + args.nodes - 1, remote)
    found = (len(fdb), sum(1 for o in objects if isinstance(o, NeighEntry)))
    print(f"{args.nodes} nodes x {args.containers} containers, as node-0 ({len(spec.local_containers)} local): "
          f"load {load_time * 1000:.0f} ms, desired {desired_time * 1000:.0f} ms, plan {plan_time * 1000:.0f} ms "
          f"({len(made.actions)} actions; {found[0]} FDB entries, {found[1]} neighbour entries)")
    zero = sum(1 for o in fdb if o.mac == ZERO_MAC)
    if found != expected or zero != args.nodes - 1:
        print(f"FAIL: expected {expected} FDB and neighbour entries and {args.nodes - 1} all-zero ones, "
              f"found {found} and {zero}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
