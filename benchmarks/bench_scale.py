#!/usr/bin/env python3
"""Benchmark the pure parts of a pass at 1000 and 5000 containers: does any grow faster than N?

Pure: no kernel, no root. The spec is bench_core.py's (one network of 1000 containers, or
networks of 1000 each with its own bridge and /22; --ipv6: dual stack), with name
discovery on, so each hosts file lists its network's 1000 members: that part is
O(N x network size) by nature, linear in N here. Timed, median of --repeat runs after
an untimed warm-up:

1. load: reading and validating the spec text;
2. ipam: interface names, IPv4 and IPv6 addresses, host-side veth names;
3. discovery: the names in scope of every container and their hosts-file sections;
4. desired: the whole `build_desired` against an empty live state (from scratch);
5. plan: `plan(desired, State())`, every object created;
6. desired (live): `build_desired` against the live state that apply leaves (file texts
   strings of their own, as read from disk), as a no-op apply or a watch pass does;
7. plan (no-op): `plan` of that against the live state (must be empty).

Prints each step's seconds per size, and for the largest size its ratio to the smallest
scaled to N (ratio / (N / N0)): near 1 is linear, well above 1 is worse. Fails (exit 1)
if the no-op plan is not empty. Like bench_core.py it runs with PYTHONDONTWRITEBYTECODE
unset. Usage:
    python benchmarks/bench_scale.py [--sizes 1000,5000] [--ipv6] [--repeat 5]
"""

from __future__ import annotations

import os
import sys

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

import argparse  # noqa: E402
import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_core import spec_text  # noqa: E402
from bench_discovery import HOST_FILES, timed  # noqa: E402

from reconciler.spec.loader import load_spec_text  # noqa: E402
from reconciler.state.desired import build_desired, discovery_sections  # noqa: E402
from reconciler.state.ipam import assign_addresses, assign_host_ends, assign_interfaces  # noqa: E402
from reconciler.state.model import File, State  # noqa: E402
from reconciler.state.planner import plan  # noqa: E402

STEPS = ("load", "ipam", "discovery", "desired", "plan", "desired (live)", "plan (no-op)")


def ipam(spec, live: State) -> tuple:
    interfaces = assign_interfaces(spec, live)
    return (assign_addresses(spec, live, interfaces), assign_addresses(spec, live, interfaces, family=6),
            assign_host_ends(spec, live))


def measure(count: int, ipv6: bool, repeat: int) -> dict[str, float]:
    text = spec_text("bsbr", [f"bs-c{number}" for number in range(count)], static_first=False, ipv6=ipv6)
    seconds: dict[str, float] = {}
    seconds["load"], spec = timed(lambda: load_spec_text(text, "scale.yaml"), repeat)
    seconds["ipam"], (addresses, addresses6, _) = timed(lambda: ipam(spec, State()), repeat)
    seconds["discovery"], _ = timed(lambda: discovery_sections(spec, addresses, addresses6), repeat)
    seconds["desired"], desired = timed(lambda: build_desired(spec, State(), HOST_FILES), repeat)
    seconds["plan"], _ = timed(lambda: plan(desired, State()), repeat)
    live = State.of(dataclasses.replace(o, content="".join(o.content)) if isinstance(o, File) else o
                    for o in desired.objects.values())
    seconds["desired (live)"], again = timed(lambda: build_desired(spec, live, HOST_FILES), repeat)
    seconds["plan (no-op)"], noop = timed(lambda: plan(again, live), repeat)
    if noop.actions:
        raise SystemExit(f"FAIL: the no-op plan at N={count} has {len(noop.actions)} action(s)")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--ipv6", action="store_true", help="dual-stack networks")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    results = {n: measure(n, args.ipv6, args.repeat) for n in sizes}
    first, last = sizes[0], sizes[-1]
    print(f"{'step':<16}" + "".join(f"{f'N={n} s':>11}" for n in sizes) + f"{'ratio':>9}{'per N':>8}")
    for step in STEPS:
        ratio = results[last][step] / results[first][step]
        print(f"{step:<16}" + "".join(f"{results[n][step]:>11.3f}" for n in sizes)
              + f"{ratio:>8.1f}x{ratio / (last / first):>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
