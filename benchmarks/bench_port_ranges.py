#!/usr/bin/env python3
"""Benchmark published port ranges: what a spec of four full-range entries costs.

The spec has two containers, each publishing `1-65535:1-65535` over tcp and over udp
on an address of its own (four entries, about 300 bytes). Each step runs as a fresh
process (wall time around it, peak RSS of that child from os.wait4): `validate`,
`plan` (which checks the rendered tables with `nft -c`), `apply` from scratch,
`apply` again (must plan nothing: the live tables compare equal to the rendered
ones), and `destroy`. Targets: `plan` and `apply` each under 1 s and 150 MB.

A second spec publishes four ranges moved to other container ports
(`1-1024:20001-21024`): nft cannot shift a port range, so such a range is one rule
with a map of one element per port, and the loader allows at most 4096 such ports per
spec (MAX_MOVED_RANGE_PORTS): this spec spends exactly that budget, the most any spec
can make the firewall hold. Its row shows that cost; no target.

The environment of the tests sets PYTHONDONTWRITEBYTECODE=1; it is unset here for the
children, and a warm-up run compiles the bytecode first, so every step costs what an
installed package costs.

SAFETY: the host namespaces are throwaway ones named with a unique prefix (bpXXXX),
container files go to a scratch directory (--etc-netns), and every namespace with the
prefix is deleted at the end, also on failure.

Needs root and nft. Usage: python benchmarks/bench_port_ranges.py [--only same|moved] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (  # noqa: E402
    BenchError, Runner, check, create_host_netns, delete_netns, log, netns_with_prefix, wait_for_idle,
)

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 1.0
TARGET_RSS_MB = 150.0
TARGETED = ("plan", "apply")
SCENARIOS = {  # name: (host ports, container ports)
    "same": ("1-65535", "1-65535"),
    "moved": ("1-1024", "20001-21024"),  # 4 x 1024 ports: the whole budget
}


@dataclass
class Row:
    scenario: str
    step: str
    seconds: float
    max_rss_mb: float
    actions: int | None = None


def spec_text(prefix: str, host_ports: str, container_ports: str) -> str:
    lines = ["version: 1", "networks:", "  ranges:", f"    bridge: {prefix}-br", "    subnet: 10.87.0.0/24",
             "containers:"]
    for index in (1, 2):
        entries = [f'"198.51.100.{index}:{host_ports}:{container_ports}/{protocol}"' for protocol in ("tcp", "udp")]
        lines += [f"  {prefix}-c{index}:", "    networks: [ranges]", f"    ports: [{', '.join(entries)}]"]
    return "\n".join(lines) + "\n"


def run_scenario(index: int, name: str, prefix: str, runner: Runner, scratch: Path) -> list[Row]:
    host = f"{prefix}-host{index}"
    spec = scratch / f"{host}.yaml"
    spec.write_text(spec_text(prefix, *SCENARIOS[name]))
    create_host_netns(host)  # so that plan runs nft -c as it would on a real host
    base = [sys.executable, "-m", "reconciler", "--host-netns", host, "--state-dir", str(scratch / f"{host}-state"),
            "--etc-netns", str(scratch / f"{host}-etc")]
    rows = []
    for step, command, must_be_empty in [
        ("validate", ["validate", str(spec)], False),
        ("plan", ["plan", str(spec), "-o", "json"], False),
        ("apply", ["apply", str(spec), "-o", "json"], False),
        ("apply again (no-op)", ["apply", str(spec), "-o", "json"], True),
        ("destroy", ["destroy", str(spec), "-o", "json"], False),
    ]:
        wait_for_idle()
        log(f"{name}: {step}")
        result = runner.run(base + command)
        check(result, f"{name}: {step}")
        actions = len(json.loads(result.stdout)["actions"]) if "-o" in command else None
        if must_be_empty and actions:
            raise BenchError(f"{name}: the second apply planned {actions} action(s): {result.stdout[:500]}")
        rows.append(Row(name, step, result.seconds, result.max_rss_mb, actions))
    return rows


def print_report(rows: list[Row]) -> None:
    print("\nFour published port-range entries (tcp and udp, two containers); each step a fresh process")
    print(f"{'spec':<12} {'step':<20} {'seconds':>8} {'peak RSS':>9} {'actions':>8}  target")
    for row in rows:
        target = ""
        if row.scenario == "same" and row.step in TARGETED:
            met = row.seconds < TARGET_SECONDS and row.max_rss_mb < TARGET_RSS_MB
            target = f"{'PASS' if met else 'MISS'} (< {TARGET_SECONDS:g} s, < {TARGET_RSS_MB:g} MB)"
        actions = "" if row.actions is None else str(row.actions)
        print(f"{row.scenario:<12} {row.step:<20} {row.seconds:8.3f} {row.max_rss_mb:6.1f} MB {actions:>8}  {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="run one of the two specs")
    options = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what an installed package costs
    os.chdir(REPO)  # `python -m reconciler` runs this checkout
    prefix = f"bp{uuid.uuid4().hex[:4]}"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-bench-") as directory:
        scratch = Path(directory)
        runner = Runner(scratch)
        try:
            check(runner.run([sys.executable, "-m", "reconciler", "--version"]), "warm-up")
            for index, name in enumerate(SCENARIOS):
                if options.only in (None, name):
                    rows += run_scenario(index, name, prefix, runner, scratch)
        finally:
            runner.stop()
            delete_netns(netns_with_prefix(prefix))
    print_report(rows)
    if options.json:
        options.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
