#!/usr/bin/env python3
"""Benchmark publishing K ports: netreconcile's one-transaction firewall against per-rule commands.

In ONE invocation, for K published ports spread over C containers (default K=1000, C=10):

1. Baseline: what Docker-style tools do, one process per rule: `nft add rule ... dnat`
   K times into a table of a throwaway namespace (the same DNAT rules netreconcile
   renders).
2. The firewall load alone: netreconcile's rendered tables (NAT, forward, guard, the
   maps of the single ports and the rules of the ranges) loaded with one `nft -f`
   transaction, as the writer does; then, in the same namespace, the nft processes of
   a one-port change (medians of 9): the whole tables loaded again (what a change cost
   before single ports became map elements) against the one-element update the writer
   now loads, each with its `nft -c` check, `nft list` of the table, and `nft
   --version` (a process through `ip netns exec`, the floor of each).
3. netreconcile end to end, each step a fresh process: `apply` from scratch
   (containers included), `apply` again (no-op: must report no actions), `apply` after
   one port's host port changed, and `destroy`; with `--rounds R` all four R times
   (the table shows medians), and the fixed cost of a fresh process
   (`python -m reconciler --version`) as a reference row.

With `--ranges`, the issue's case: the K ports are published on one host address
(198.51.100.3) and two more containers publish `1-65535:1-65535` over tcp and over udp
each on an address of its own (198.51.100.1 and .2: the four full-range entries of
bench_port_ranges.py). Target: `apply` from scratch and the one-port change each under
0.5 s beyond process start (the `--version` row).

Every step starts on an idle machine (bench_core.wait_for_idle); the "other CPU" column
is the machine's busy time outside the measured process. PYTHONDONTWRITEBYTECODE is unset
for the children and an untimed warm-up compiles the package, so the figures are what an
installed package costs.

SAFETY: everything lives in network namespaces whose names start with a unique prefix
(bfXXXX), deleted at the end, also on failure; container files go to a scratch directory
(--etc-netns). Needs root and nft.

Usage: python benchmarks/bench_firewall.py [--ports 1000] [--containers 10] [--ranges] [--rounds 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_core import BenchError, Runner, check, delete_netns, netns_with_prefix, wait_for_idle  # noqa: E402

from reconciler.render import firewall  # noqa: E402
from reconciler.spec.loader import load_spec  # noqa: E402
from reconciler.state.desired import bridge_ports, firewall_objects, publications  # noqa: E402
from reconciler.state.ipam import assign_addresses  # noqa: E402
from reconciler.state.model import Firewall, State  # noqa: E402

FIRST_HOST_PORT = 20000
PORTS_ADDRESS = "198.51.100.3"  # with --ranges: the K ports' host address (the ranges take .1 and .2)
TARGET_BEYOND_START = 0.5  # --ranges: apply from scratch and the one-port change, seconds beyond --version
TARGETED = ("apply from scratch", "apply, one port changed")
STARTUP = "--version (process start)"


def spec_text(prefix: str, ports: int, containers: int, ranges: bool = False) -> str:
    per_container = ports // containers
    host_ip = f"{PORTS_ADDRESS}:" if ranges else ""
    lines = ["version: 1", "networks:", "  front:", f"    bridge: {prefix}-br", "    subnet: 10.89.0.0/16",
             "containers:"]
    for index in range(containers):
        host_ports = range(FIRST_HOST_PORT + index * per_container, FIRST_HOST_PORT + (index + 1) * per_container)
        lines += [f"  {prefix}-c{index}:", "    networks: [front]",
                  "    ports: [" + ", ".join(f'"{host_ip}{port}:80"' for port in host_ports) + "]"]
    if ranges:
        for index in (1, 2):
            entries = [f'"198.51.100.{index}:1-65535:1-65535/{protocol}"' for protocol in ("tcp", "udp")]
            lines += [f"  {prefix}-r{index}:", "    networks: [front]", f"    ports: [{', '.join(entries)}]"]
    return "\n".join(lines) + "\n"


def moved_port_spec(text: str, ranges: bool) -> str:
    """The spec with its first published port moved one below (a port no other entry uses)."""
    host_ip = f"{PORTS_ADDRESS}:" if ranges else ""
    moved = f'"{host_ip}{FIRST_HOST_PORT}:80"'
    if moved not in text:
        raise BenchError(f"the spec has no entry {moved}")
    return text.replace(moved, f'"{host_ip}{FIRST_HOST_PORT - 1}:80"', 1)


def timed(command: list[str], stdin: str | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"{' '.join(command[:6])}... failed: {result.stderr.strip()[:500]}")
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
    published = sum(len(p.mappings) for p in publications(spec, addresses, {}))
    return timed(["ip", "netns", "exec", netns, "nft", "-f", "-"], script), published


NFT_REPEAT = 9


def nft_steps(netns: str, spec_path: Path, ranges: bool) -> dict[str, float]:
    """Medians of the nft processes a one-port change runs: a reload of the whole tables
    against the one-element update, each checked (nft -c), and a listing. The tables of
    `spec_path` are live when it starts, and again when it ends."""
    moved = spec_path.with_name("moved.yaml")
    moved.write_text(moved_port_spec(spec_path.read_text(), ranges))
    tables = [_firewall_object(path) for path in (spec_path, moved)]
    whole = [firewall.load_script(table.ruleset, table.elements) for table in tables]
    updates = [firewall.load_script(new.ruleset, new.elements, (("elements", old.elements, new.elements),))
               for old, new in (tables, tables[::-1])]
    nft = ["ip", "netns", "exec", netns, "nft"]

    def median(make_command, scripts) -> float:
        return statistics.median(timed(make_command, scripts[index % 2]) for index in range(NFT_REPEAT))

    # the reloads alternate and end with the first spec's tables (NFT_REPEAT is odd): the
    # updates then move the port there and back
    return {
        "nft_reload_whole_tables": median([*nft, "-f", "-"], whole),
        "nft_check_whole_tables": median([*nft, "-c", "-f", "-"], whole),
        "nft_check_one_element_update": median([*nft, "-c", "-f", "-"], [updates[0]] * 2),  # while the first spec's are live
        "nft_one_element_update": median([*nft, "-f", "-"], updates),  # there and back
        "nft_list_table": median([*nft, "list", "table", "inet", "netreconcile"], [None, None]),
        "nft_version": median([*nft, "--version"], [None, None]),
    }


def _firewall_object(spec_path: Path) -> Firewall:
    spec = load_spec(spec_path)
    return next(o for o in firewall_objects(spec, assign_addresses(spec, State()), {}) if isinstance(o, Firewall))


def netreconcile_rounds(runner: Runner, base: list[str], spec: Path, ranges: bool, rounds: int) -> dict[str, list]:
    """Each round: the process start (`--version`), apply from scratch, no-op apply, one
    port moved, destroy; each a fresh process."""
    original = spec.read_text()
    samples: dict[str, list] = {}
    for _ in range(rounds):
        spec.write_text(original)
        _, idle = wait_for_idle()
        startup = runner.run([sys.executable, "-m", "reconciler", "--version"])
        check(startup, "--version")
        samples.setdefault(STARTUP, []).append((startup, idle, []))
        for name, args, spec_for_step in [
            ("apply from scratch", ["apply"], original),
            ("apply no-op", ["apply"], original),
            ("apply, one port changed", ["apply"], moved_port_spec(original, ranges)),
            ("destroy", ["destroy"], None),
        ]:
            if spec_for_step is not None:
                spec.write_text(spec_for_step)
            _, idle = wait_for_idle()
            result = runner.run([*base, *args, str(spec), "-o", "json"])
            check(result, f"netreconcile {name}")
            actions = json.loads(result.stdout)["actions"]
            if name == "apply no-op" and actions:
                raise BenchError(f"the second apply was not a no-op: {actions[:3]}")
            if name == "apply, one port changed" and sorted(a["kind"] for a in actions) != ["firewall"]:
                raise BenchError(f"changing one port planned {[a['kind'] for a in actions]}, not one firewall update")
            samples.setdefault(name, []).append((result, idle, actions))
    return samples


def print_report(results: dict[str, float], steps: dict[str, list], options, ports: int) -> dict:
    what = f"{ports} published ports over {options.containers} containers"
    if options.ranges:
        what += " plus four full-range entries (1-65535:1-65535 tcp/udp on two more containers)"
    print(f"{what}; seconds, netreconcile steps as medians of {options.rounds} fresh process(es)")
    baseline = results["per_rule_nft_processes"]
    print(f"  {'step':<34} {'seconds':>8} {'beyond start':>12} {'peak RSS':>9} {'other CPU':>9}  note")
    print(f"  {'1 nft add rule per port':<34} {baseline:8.3f} {'':>12} {'':>9} {'':>9}  baseline")
    one = results["one_nft_transaction"]
    print(f"  {'one nft -f of the whole firewall':<34} {one:8.3f} {'':>12} {'':>9} {'':>9}  "
          f"{baseline / one:.0f}x faster than the baseline")
    for name in results:
        if name.startswith("nft_"):
            print(f"  {name.replace('_', ' '):<34} {results[name]:8.3f}   (median of {NFT_REPEAT})")
    startup = statistics.median(result.seconds for result, _, _ in steps[STARTUP])
    report = {"ports": ports, "containers": options.containers, "ranges": options.ranges, **results,
              "startup": startup, "steps": {}}
    for name, samples in steps.items():
        seconds = statistics.median(result.seconds for result, _, _ in samples)
        rss = max(result.max_rss_mb for result, _, _ in samples)
        other = statistics.median(result.other_cpu for result, _, _ in samples)
        beyond = seconds - startup
        note = f"{len(samples[-1][2])} action(s)" if name != STARTUP else "the reference"
        if options.ranges and name in TARGETED:
            note += f", {'PASS' if beyond < TARGET_BEYOND_START else 'MISS'} (< {TARGET_BEYOND_START:g} s beyond start)"
        if not all(idle for _, idle, _ in samples):
            note += ", ! started before the machine was idle"
        print(f"  {name:<34} {seconds:8.3f} {beyond:12.3f} {rss:6.1f} MB {other:8.0%}  {note}")
        report["steps"][name] = {"seconds": [r.seconds for r, _, _ in samples], "median": seconds,
                                 "beyond_start": beyond, "max_rss_mb": rss, "other_cpu": other}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--ranges", action="store_true", help="add four full-range entries (the issue's case)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the netreconcile steps; medians are shown")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what an installed package costs
    os.chdir(REPO)  # `python -m reconciler` runs this checkout
    prefix = f"bf{uuid.uuid4().hex[:4]}"
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-bench-firewall-") as scratch:
        runner = Runner(Path(scratch))
        spec = Path(scratch) / "spec.yaml"
        spec.write_text(spec_text(prefix, options.ports, options.containers, options.ranges))
        host = f"{prefix}-host"
        base = [sys.executable, "-m", "reconciler", "--host-netns", host, "--state-dir", f"{scratch}/state",
                "--etc-netns", f"{scratch}/etc"]
        try:
            subprocess.run(["ip", "netns", "add", f"{prefix}-base"], check=True)
            wait_for_idle()
            results["per_rule_nft_processes"] = per_rule_baseline(f"{prefix}-base", spec)
            wait_for_idle()
            results["one_nft_transaction"], ports = one_transaction(f"{prefix}-base", spec)
            results.update(nft_steps(f"{prefix}-base", spec, options.ranges))
            check(runner.run([sys.executable, "-m", "reconciler", "--version"]), "warm-up")
            steps = netreconcile_rounds(runner, base, spec, options.ranges, options.rounds)
        finally:
            runner.stop()
            delete_netns(netns_with_prefix(prefix))
    report = print_report(results, steps, options, ports)
    if options.json:
        options.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
