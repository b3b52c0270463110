#!/usr/bin/env python3
"""Measure where watch's full observation costs less than reading some containers again.

Applies N containers in a throwaway host namespace, then in this process times the
watch's readers (reconciler.kernel.observe_cache.CachingReaders): a full observation
(`read_everything`: every namespace's dumps, the files on a second thread, the host),
and observations that read again only K containers (their namespace's three dumps, the
host ends of their veths, their files), for growing K. Where the two meet is what
READ_ALL_FROM in observe_cache.py should be. Wall and CPU time (user+sys of this
process), median of --repeat.

SAFETY: namespaces are named brXXXX-*, destroyed at the end, also on failure. Needs root.

Usage: python benchmarks/bench_read_again.py [--containers 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
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

from bench_watch import sh, spec_text  # noqa: E402

from reconciler.kernel.observe_cache import CachingReaders, Scopes  # noqa: E402
from reconciler.kernel.session import KernelSession  # noqa: E402
from reconciler.kernel.statedir import StateDir  # noqa: E402


def timed(function, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `function()`."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    prefix = f"br{uuid.uuid4().hex[:4]}"
    host = f"{prefix}-host"
    with tempfile.TemporaryDirectory(prefix="bench-read-again-") as scratch_name:
        scratch = Path(scratch_name)
        resolv, spec, state = scratch / "resolv.conf", scratch / "spec.yaml", scratch / "state"
        resolv.write_text("nameserver 198.51.100.53\n")
        spec.write_text(spec_text(prefix, resolv, options.containers))
        cli = [sys.executable, "-m", "reconciler", "--host-netns", host, "--state-dir", str(state)]
        try:
            subprocess.run([*cli, "apply", str(spec)], cwd=REPO, check=True, capture_output=True)
            session = KernelSession(host, StateDir(str(state), host))
            readers = CachingReaders()

            def full() -> None:
                readers.read_everything()
                readers.observe(session)

            def again(names: frozenset[str]) -> None:
                readers.read_again(Scopes(netns=names, files=names))
                readers.observe(session)

            full()  # fills the kept state
            wall, cpu = timed(full, options.repeat)
            print(f"{options.containers} containers: a full observation {wall * 1000:7.1f} ms wall, "
                  f"{cpu * 1000:7.1f} ms CPU")
            import reconciler.kernel.observe_cache as observe_cache
            observe_cache.READ_ALL_FROM = options.containers + 1  # measure the reads again past it too
            names = [f"{prefix}-c{index}" for index in range(options.containers)]
            for count in (10, 50, 100, 200, 500, 1000, 2000, 5000):
                if count > options.containers:
                    break
                wall_k, cpu_k = timed(lambda: again(frozenset(names[:count])), options.repeat)
                print(f"  {count:5} containers read again {wall_k * 1000:7.1f} ms wall ({wall_k / wall:4.2f} of "
                      f"the full), {cpu_k * 1000:7.1f} ms CPU ({cpu_k / cpu:4.2f})")
            session.close()
        finally:
            subprocess.run([*cli, "destroy", str(spec)], cwd=REPO, capture_output=True)
            for name in sorted(sh("ip netns list").split()):
                if name.startswith(prefix):
                    sh(f"ip netns del {name}")
            sh(f"rm -rf /etc/netns/{prefix}-*")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
