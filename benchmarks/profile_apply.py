#!/usr/bin/env python3
"""Where an `apply` from scratch spends its time: N containers on one bridge (bench_core.py's
spec), RUNS times, each alternating with the floor (benchmarks/floor.py, the same kernel
requests from one process) so both see the same minutes of the machine.

Each apply is a fresh process as an installed package runs it (bytecode compiled,
PYTHONDONTWRITEBYTECODE unset) with its phases timed inside it, wall and CPU time of the
process (all its threads): the imports, loading the spec, observing and planning (the
desired state and the firewall check within), each group of the writer (namespaces,
veths, addresses, routes, files, firewall, sysctls), the verification, and the whole
process from outside (os.wait4). Files run on a thread beside the veths, addresses and
routes, so the groups overlap and their times do not add up. After each apply the
containers are destroyed (not timed). Prints the medians.

SAFETY: the host namespaces and the container namespaces are named with a unique prefix
(baXXXX) and all deleted at the end, also on failure, Ctrl-C or SIGTERM; the container
files go to the scratch directory (--etc-netns) under /tmp, on the root filesystem as
/etc/netns is here (each new file's inode is part of the cost).

Needs root. Usage:
    python benchmarks/profile_apply.py [--containers 1000] [--runs 3] [--keep-scratch]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (  # noqa: E402
    REPO, Runner, check, create_host_netns, delete_netns, log, netns_with_prefix, spec_text, wait_for_idle,
)
from profile_noop import CHILD, median_table, profiler_main  # noqa: E402

# (module, attribute, phase): functions timed inside the child
PHASES = (
    ("reconciler.cli", "Context.load", "load the spec"),
    ("reconciler.run.engine", "_observe_and_plan", "observe, desired state, plan, firewall check"),
    ("reconciler.run.engine", "build_desired", "  desired state"),
    ("reconciler.run.engine", "_verify", "verify (read back)"),
)


def timed_child(argv: list[str]) -> None:
    """One apply in this process with its phases timed; the timings as JSON on stderr's last line."""
    started, started_cpu = time.perf_counter(), time.process_time()
    import importlib

    sys.path.insert(0, str(REPO))
    from reconciler import cli
    from reconciler.kernel import writer

    seconds = {"imports": [time.perf_counter() - started, time.process_time() - started_cpu],
               **{phase: [0.0, 0.0] for _, _, phase in PHASES}}  # in this order, the writer's groups after

    def timed(function, phase: str):
        def run(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                entry = seconds.setdefault(phase, [0.0, 0.0])
                entry[0] += time.perf_counter() - wall
                entry[1] += time.process_time() - cpu
        return run

    for module_name, attribute, phase in PHASES:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, timed(getattr(owner, name), phase))
    carry_out = writer.KernelWriter._carry_out
    writer.KernelWriter._carry_out = lambda self, op, kind, actions: timed(
        carry_out, f"write: {op} {kind}")(self, op, kind, actions)
    if hasattr(writer, "_Ahead"):  # (a checkout from before the files ran beside the batches has none)
        beside = writer._Ahead.__init__

        def ahead(self, number, run):
            beside(self, number, timed(run, "write: files, beside the batches"))
        writer._Ahead.__init__ = ahead
    sys.argv = ["reconciler", *argv]
    code = 0
    try:
        cli.main()
    except SystemExit as leaving:
        code = leaving.code
    print(json.dumps(seconds), file=sys.stderr)
    sys.exit(code)


def profile(count: int, runs: int, prefix: str, runner: Runner, scratch: Path) -> None:
    spec = scratch / "spec.yaml"
    spec.write_text(spec_text(f"{prefix}br", [f"{prefix}-c{index}" for index in range(count)], static_first=False))
    whole: dict[str, list[float]] = {"floor (kernel work, in-process)": [], "apply wall": [],
                                     "apply CPU (user + sys)": [], "other CPU during the apply": []}
    phases: dict[str, list[float]] = {}
    for run in range(runs):
        floor_host = f"{prefix}-hf"
        wait_for_idle()
        create_host_netns(floor_host)
        result = runner.run([sys.executable, str(REPO / "benchmarks" / "floor.py"), floor_host, f"{prefix}fbr",
                             f"{prefix}-f", str(count)])
        check(result, "the floor")
        whole["floor (kernel work, in-process)"].append(float(result.stdout.split()[-1]))
        delete_netns([floor_host, *netns_with_prefix(f"{prefix}-f")])

        host = f"{prefix}-h"
        base = ["--host-netns", host, "--state-dir", str(scratch / "state"), "--etc-netns", str(scratch / "etc")]
        wait_for_idle()
        create_host_netns(host)
        result = runner.run([sys.executable, str(Path(__file__).resolve()), CHILD, *base, "apply", str(spec),
                             "-o", "json"])
        check(result, "timed apply from scratch")
        whole["apply wall"].append(result.seconds)
        whole["apply CPU (user + sys)"].append(result.user_s + result.sys_s)
        whole["other CPU during the apply"].append(result.other_cpu)
        for phase, (wall, cpu) in json.loads(result.stderr.strip().splitlines()[-1]).items():
            phases.setdefault(f"{phase} (wall)", []).append(wall)
            phases.setdefault(f"{phase} (CPU)", []).append(cpu)
        check(runner.run([sys.executable, "-m", "reconciler", *base, "destroy", str(spec), "-o", "json"]), "destroy")
        delete_netns([host])
        log(f"run {run + 1}/{runs}: floor {whole['floor (kernel work, in-process)'][-1]:.2f} s, "
            f"apply {whole['apply wall'][-1]:.2f} s wall, {whole['apply CPU (user + sys)'][-1]:.2f} s CPU")
    print(f"\napply from scratch, N={count}, median of {runs} (seconds; other CPU as a share of both CPUs)")
    print(median_table(whole))
    print("\nphases, timed inside the apply (wall; CPU of the whole process, every thread)")
    print(median_table(phases))


def main() -> int:
    return profiler_main(__doc__, "profile_apply.py", "ba", timed_child, profile, 3, "floors and applies")


if __name__ == "__main__":
    sys.exit(main())
