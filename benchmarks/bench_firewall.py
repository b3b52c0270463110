#!/usr/bin/env python3
"""Benchmark publishing K ports: netreconcile's one-transaction firewall against per-rule commands.

In ONE invocation, for K published ports spread over C containers (default K=1000, C=10):

1. Baseline: what Docker-style tools do, one process per rule: `nft add rule ... dnat`
   K times into a table of a throwaway namespace (the same DNAT rules netreconcile
   renders).
2. The firewall load alone: netreconcile's rendered tables (NAT, forward, guard and
   the K DNAT rules) loaded with one `nft -f` transaction, as the writer does.
3. netreconcile end to end, each step a fresh process: `apply` from scratch
   (containers included), `apply` again (no-op: must report no actions), `apply` after
   one port's host port changed, and `destroy`.

SAFETY: everything lives in network namespaces whose names start with a unique prefix
(bfXXXX), deleted at the end, also on failure. Needs root and nft.

Usage: python benchmarks/bench_firewall.py [--ports 1000] [--containers 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reconciler.render import firewall  # noqa: E402
from reconciler.spec.loader import load_spec  # noqa: E402
from reconciler.state.desired import bridge_ports, publications  # noqa: E402
from reconciler.state.ipam import assign_addresses  # noqa: E402
from reconciler.state.model import State  # noqa: E402

FIRST_HOST_PORT = 20000


def spec_text(prefix: str, ports: int, containers: int) -> str:
    per_container = ports // containers
    lines = ["version: 1", "networks:", "  front:", f"    bridge: {prefix}-br", "    subnet: 10.89.0.0/16",
             "containers:"]
    for index in range(containers):
        host_ports = range(FIRST_HOST_PORT + index * per_container, FIRST_HOST_PORT + (index + 1) * per_container)
        lines += [f"  {prefix}-c{index}:", "    networks: [front]",
                  "    ports: [" + ", ".join(f'"{port}:80"' for port in host_ports) + "]"]
    return "\n".join(lines) + "\n"


def timed(command: list[str], stdin: str | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])}... failed: {result.stderr.strip()[:500]}")
    return elapsed


def per_rule_baseline(netns: str, spec_path: Path) -> float:
    """K `nft add rule` processes, after one that makes the table and chain (untimed)."""
    spec = load_spec(spec_path)
    published = publications(spec, assign_addresses(spec, State()), {})
    rules = [rule for p in published for rule in firewall._dnat_rules(p)]
    subprocess.run(["ip", "netns", "exec", netns, "nft", "add table inet baseline ; "
                    "add chain inet baseline published"], check=True)
    started = time.perf_counter()
    for rule in rules:
        subprocess.run(["ip", "netns", "exec", netns, "nft", f"add rule inet baseline published {rule}"],
                       check=True, capture_output=True)
    return time.perf_counter() - started


def one_transaction(netns: str, spec_path: Path) -> tuple[float, int]:
    """netreconcile's whole rendered firewall in one `nft -f` (the writer's script)."""
    spec = load_spec(spec_path)
    addresses = assign_addresses(spec, State())
    tables = firewall.render(list(spec.networks), publications(spec, addresses, {}), bridge_ports(spec))
    script = firewall.replace_script(tables)
    return timed(["ip", "netns", "exec", netns, "nft", "-f", "-"], script), tables.count("dnat ip to")


def netreconcile(host: str, state: str, *args: str) -> tuple[float, dict]:
    command = [sys.executable, "-m", "reconciler", "--host-netns", host, "--state-dir", state, *args, "-o", "json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"netreconcile {' '.join(args)} failed: {result.stderr.strip()[-800:]}")
    return elapsed, json.loads(result.stdout)


def cleanup(prefix: str) -> None:
    for name in sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []:
        if name.startswith(prefix):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    for directory in Path("/etc/netns").glob(f"{prefix}-*"):
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    prefix = f"bf{uuid.uuid4().hex[:4]}"
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-firewall-") as scratch:
        spec = Path(scratch) / "spec.yaml"
        spec.write_text(spec_text(prefix, options.ports, options.containers))
        state = str(Path(scratch) / "state")
        try:
            subprocess.run(["ip", "netns", "add", f"{prefix}-base"], check=True)
            results["per_rule_nft_processes"] = per_rule_baseline(f"{prefix}-base", spec)
            results["one_nft_transaction"], rules = one_transaction(f"{prefix}-base", spec)
            host = f"{prefix}-host"
            results["apply_from_scratch"], first = netreconcile(host, state, "apply", str(spec))
            results["apply_noop"], again = netreconcile(host, state, "apply", str(spec))
            if again["actions"]:
                raise RuntimeError(f"the second apply was not a no-op: {again['actions'][:3]}")
            moved = str(FIRST_HOST_PORT)
            spec.write_text(spec.read_text().replace(f'"{moved}:80"', f'"{FIRST_HOST_PORT - 1}:80"', 1))
            results["apply_one_port_changed"], changed = netreconcile(host, state, "apply", str(spec))
            kinds = sorted(a["kind"] for a in changed["actions"])
            if kinds != ["firewall"]:
                raise RuntimeError(f"changing one port planned {kinds}, not one firewall update")
            results["destroy"], _ = netreconcile(host, state, "destroy", str(spec))
        finally:
            cleanup(prefix)
    print(f"K = {rules} published ports over {options.containers} containers (seconds, one run)")
    baseline = results["per_rule_nft_processes"]
    for name, seconds in results.items():
        ratio = f"{baseline / seconds:6.1f}x faster" if name != "per_rule_nft_processes" else "baseline"
        print(f"  {name:<26} {seconds:8.3f}   {ratio}")
    if options.json:
        options.json.write_text(json.dumps({"ports": rules, "containers": options.containers, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
