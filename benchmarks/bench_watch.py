#!/usr/bin/env python3
"""Benchmark watch mode's reaction time: from a change to the kernel being converged again.

Starts `netreconcile watch` (resync one hour, so only events can trigger a pass) on N
containers in a throwaway host namespace, then, one at a time, and R rounds each:

- deletes a managed veth by hand                  -> until it is back;
- appends a line to a container's /etc/netns hosts -> until the file is restored;
- deletes the nftables table inet netreconcile     -> until it is back;
- replaces the host resolv.conf (rename)           -> until every container's file has it;
- adds a container to the spec (write + rename)    -> until its namespace has its address.

Each latency is measured by polling every 10 ms; the target is 2 s. It also reports the
passes' own durations from watch's log (a no-op pass is a full observation).

SAFETY: namespaces are named bwXXXX-*, deleted at the end, also on failure. Needs root.

Usage: python benchmarks/bench_watch.py [--containers 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 2.0
POLL_S = 0.01


def sh(command: str) -> str:
    return subprocess.run(command, shell=True, capture_output=True, text=True).stdout


def until(check, limit: float = 30.0) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > limit:
            raise RuntimeError("no convergence within 30 s")
        time.sleep(POLL_S)
    return time.perf_counter() - started


def spec_text(prefix: str, resolv: Path, containers: int, extra: int = 0) -> str:
    lines = ["version: 1", "host:", f"  resolv_conf: {resolv}", "networks:", "  front:",
             f"    bridge: {prefix}-br", "    subnet: 10.87.0.0/16", "containers:"]
    for index in range(containers + extra):
        lines += [f"  {prefix}-c{index}:", "    networks: [front]"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    prefix = f"bw{uuid.uuid4().hex[:4]}"
    host = f"{prefix}-host"
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as scratch_name:
        scratch = Path(scratch_name)
        resolv, spec, log = scratch / "resolv.conf", scratch / "spec.yaml", scratch / "watch.log"
        resolv.write_text("nameserver 198.51.100.53\n")
        spec.write_text(spec_text(prefix, resolv, options.containers))
        command = [sys.executable, "-m", "reconciler", "--host-netns", host, "--state-dir", str(scratch / "state"),
                   "watch", str(spec), "--resync", "3600", "-v"]
        watch = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO)
        try:
            until(lambda: f"{prefix}-c{options.containers - 1}" in sh("ip netns list"), 120)
            time.sleep(2)
            for round_ in range(options.rounds):
                veth = sh(f"ip -n {host} -o link show type veth").split(":")[1].strip().split("@")[0]
                sh(f"ip -n {host} link del {veth}")
                results.setdefault("veth deleted", []).append(
                    until(lambda: f" {veth}@" in sh(f"ip -n {host} -o link show type veth")))
                hosts = Path("/etc/netns") / f"{prefix}-c0" / "hosts"
                original = hosts.read_text()
                with open(hosts, "a") as handle:
                    handle.write("203.0.113.9\tintruder\n")
                results.setdefault("hosts edited", []).append(until(lambda: hosts.read_text() == original))
                sh(f"ip netns exec {host} nft delete table inet netreconcile")
                results.setdefault("nft table deleted", []).append(
                    until(lambda: "inet netreconcile" in sh(f"ip netns exec {host} nft list tables")))
                server = f"198.51.100.{60 + round_}"
                (scratch / "resolv.new").write_text(f"nameserver {server}\n")
                os.replace(scratch / "resolv.new", resolv)
                files = [Path("/etc/netns") / f"{prefix}-c{i}" / "resolv.conf" for i in range(options.containers)]
                results.setdefault("host resolv.conf changed", []).append(
                    until(lambda: all(server in f.read_text() for f in files)))
                (scratch / "spec.new").write_text(spec_text(prefix, resolv, options.containers, round_ + 1))
                os.replace(scratch / "spec.new", spec)
                added = f"{prefix}-c{options.containers + round_}"
                results.setdefault("container added to spec", []).append(
                    until(lambda: "inet 10.87." in sh(f"ip -n {added} -o -4 addr show eth0 2>/dev/null")))
                time.sleep(1)
        finally:
            watch.send_signal(signal.SIGTERM)
            watch.wait(timeout=30)
            subprocess.run(["cp", str(log), "/tmp/bench_watch.log"])
            passes = [json.loads(line) for line in log.read_text().splitlines() if '"event": "pass"' in line]
            for name in sorted(sh("ip netns list").split()):
                if name.startswith(prefix):
                    sh(f"ip netns del {name}")
            sh(f"rm -rf /etc/netns/{prefix}-*")
    noop = [p["duration_ms"] for p in passes if p.get("outcome") == "noop"]
    print(f"watch, {options.containers} containers, {options.rounds} rounds; seconds from change to converged "
          f"(target {TARGET_S} s)")
    for name, values in results.items():
        worst = max(values)
        print(f"  {name:<28} median {statistics.median(values):6.3f}  worst {worst:6.3f}  "
              f"{'PASS' if worst <= TARGET_S else 'MISS'}")
    if noop:
        print(f"  no-op pass (full observation)  median {statistics.median(noop) / 1000:6.3f} s over {len(noop)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
