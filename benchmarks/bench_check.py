#!/usr/bin/env python3
"""Benchmark `netreconcile check`: every probe of N containers (default 200), target < 10 s.

The spec has N containers on two bridge networks, one of them `icc: false` (so that
every container there has a ping that must go unanswered), the first ten publishing
a TCP port each, with aliases and links. It is applied once, then `check -o json` runs
--repeat times as a fresh process (wall time around it, peak RSS from os.wait4); the
run fails (exit 1) if a probe fails. Probes that should go unanswered wait the check's
--timeout (1 s) once for all containers, not once each.

SAFETY: the host namespace is a throwaway one named with a unique prefix (bcXXXX),
container files go to a scratch directory (--etc-netns), and every namespace with the
prefix is deleted at the end, also on failure.

Needs root and nft. Usage: python benchmarks/bench_check.py [--containers 200] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import Runner, check, create_host_netns, delete_netns, log, netns_with_prefix, wait_for_idle  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0


def spec_text(prefix: str, count: int) -> str:
    lines = ["version: 1", "networks:",
             f"  front: {{bridge: {prefix}-fr, subnet: 10.89.0.0/16}}",
             f"  back: {{bridge: {prefix}-bk, subnet: 10.90.0.0/16, icc: false}}", "containers:"]
    for index in range(count):
        network = "front" if index % 2 == 0 else "back"
        lines.append(f"  {prefix}-c{index}:")
        lines.append(f"    networks: {{{network}: {{aliases: [svc{index % 10}-{network}]}}}}")
        if index >= 2:
            lines.append(f"    links: [\"{prefix}-c{index - 2}:previous\"]")
        if index < 10:
            lines.append(f"    ports: [\"{20000 + index}:80\"]")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what an installed package costs
    os.chdir(REPO)  # `python -m reconciler` runs this checkout
    prefix = f"bc{uuid.uuid4().hex[:4]}"
    host = f"{prefix}-host"
    runs = []
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-bench-") as directory:
        scratch = Path(directory)
        runner = Runner(scratch)
        spec = scratch / "spec.yaml"
        spec.write_text(spec_text(prefix, options.containers))
        base = [sys.executable, "-m", "reconciler", "--host-netns", host, "--state-dir", str(scratch / "state"),
                "--etc-netns", str(scratch / "etc")]
        try:
            create_host_netns(host)
            log(f"apply {options.containers} containers")
            check(runner.run(base + ["apply", "-o", "json", str(spec)]), "apply")
            for round_number in range(options.repeat):
                wait_for_idle()
                log(f"check, round {round_number + 1}")
                result = runner.run(base + ["check", "-o", "json", str(spec)])
                if result.code == 1 and result.stdout.startswith("{"):  # probes failed: say which
                    failed = [row for row in json.loads(result.stdout)["results"] if row["result"] == "failed"]
                    log(f"{len(failed)} probe(s) failed after {result.seconds:.2f} s, e.g. {failed[:5]}")
                check(result, "check")
                document = json.loads(result.stdout)
                runs.append({"seconds": result.seconds, "max_rss_mb": result.max_rss_mb,
                             "probes": len(document["results"]), "counts": document["counts"]})
        finally:
            runner.stop()
            delete_netns(netns_with_prefix(prefix))
    median = statistics.median(run["seconds"] for run in runs)
    verdict = "PASS" if median < TARGET_SECONDS else "MISS"
    print(f"\ncheck of {options.containers} containers: {runs[0]['probes']} probes {runs[0]['counts']}")
    seconds = ", ".join(f"{run['seconds']:.2f}" for run in runs)
    print(f"seconds per run: {seconds}; median {median:.2f} s; "
          f"peak RSS {max(run['max_rss_mb'] for run in runs):.1f} MB; {verdict} (< {TARGET_SECONDS:g} s)")
    if options.json:
        options.json.write_text(json.dumps(runs, indent=2))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
