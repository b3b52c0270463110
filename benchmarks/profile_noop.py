#!/usr/bin/env python3
"""Where a no-op `apply` spends its time: N containers on one bridge (bench_core.py's
spec), built once in a throwaway host namespace, then RUNS no-op applies, each a fresh
process as an installed package runs it (bytecode compiled, PYTHONDONTWRITEBYTECODE unset).

Two kinds of runs, alternating: plain `python -m reconciler ... apply` (the whole
process: wall time and CPU time from os.wait4), and the same apply with its phases timed
inside the process (imports, loading the spec, each part of the observation, the
desired state, the plan, the cycle collector). Also the interpreter's own start
(`python -c pass`) and `python -m reconciler --version`. Prints the medians.

SAFETY: the host namespace and the container namespaces are named with a unique prefix
(bpXXXX) and all deleted at the end, also on failure, Ctrl-C or SIGTERM; the container
files go to the scratch directory (--etc-netns), never /etc/netns.

Needs root. Usage:
    python benchmarks/profile_noop.py [--containers 1000] [--runs 5] [--keep-scratch]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (  # noqa: E402
    REPO, BenchError, Runner, check, create_host_netns, delete_netns, log, netns_with_prefix, spec_text,
    wait_for_idle,
)

CHILD = "--timed-child"  # the process that runs one apply with its phases timed
# (module, attribute, phase): the functions timed inside the child, outermost first
PHASES = (
    ("reconciler.cli", "Context.load", "load the spec (parse, validate)"),
    ("reconciler.kernel.observe", "observe", "observe"),  # Readers.observe calls it
    ("reconciler.kernel.observe", "read_links", "  host links (one dump)"),
    ("reconciler.kernel.observe", "owned_netns", "  owned namespaces (open, cookies)"),
    ("reconciler.kernel.observe", "read_containers", "  container namespaces (3 dumps each) and files"),
    ("reconciler.kernel.observe", "observe_firewall", "  firewall (nft list)"),
    ("reconciler.kernel.file_record", "load", "file record: load"),
    ("reconciler.kernel.file_record", "settle", "file record: files left out, settled (digests)"),
    ("reconciler.kernel.file_record", "write", "file record: write (when changed)"),
    ("reconciler.run.engine", "build_desired", "desired state"),
    ("reconciler.run.engine", "plan", "plan"),
)


def timed_child(argv: list[str]) -> None:
    """One apply in this process with its phases timed; the timings as JSON on stderr's last line."""
    started = time.perf_counter()
    import gc
    import importlib

    sys.path.insert(0, str(REPO))  # this checkout's package, as `python -m reconciler` from it finds it

    collecting = {"seconds": 0.0, "since": 0.0}

    def on_collection(phase: str, info: dict) -> None:
        if phase == "start":
            collecting["since"] = time.perf_counter()
        else:
            collecting["seconds"] += time.perf_counter() - collecting["since"]

    gc.callbacks.append(on_collection)
    from reconciler import cli

    imported = time.perf_counter()
    seconds: dict[str, float] = {}
    for module_name, attribute, phase in PHASES:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        seconds[phase] = 0.0
        setattr(owner, name, _timed(getattr(owner, name), phase, seconds))
    sys.argv = ["reconciler", *argv]
    try:
        cli.main()
    except SystemExit as leaving:
        code = leaving.code
    else:
        code = 0
    ended = time.perf_counter()
    seconds = {"imports (reconciler.cli)": imported - started, **seconds,
               "cycle collector (all of the process)": collecting["seconds"], "main, all of it": ended - imported}
    print(json.dumps(seconds), file=sys.stderr)
    sys.exit(code)


def _timed(function, phase: str, seconds: dict[str, float]):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[phase] += time.perf_counter() - started
    return timed


def median_table(rows: dict[str, list[float]]) -> str:
    width = max(len(name) for name in rows)
    return "\n".join(f"{name:<{width}}  {statistics.median(values):7.3f}" for name, values in rows.items())


def profile(count: int, runs: int, prefix: str, runner: Runner, scratch: Path) -> None:
    host = f"{prefix}-h"
    containers = [f"{prefix}-c{index}" for index in range(count)]
    spec = scratch / "spec.yaml"
    spec.write_text(spec_text(f"{prefix}br", containers, static_first=False))
    base = [sys.executable, "-m", "reconciler", "--host-netns", host, "--state-dir", str(scratch / "state"),
            "--etc-netns", str(scratch / "etc")]
    create_host_netns(host)
    log(f"building {count} containers (not timed)")
    check(runner.run([*base, "apply", str(spec), "-o", "json"]), "apply from scratch")

    whole: dict[str, list[float]] = {"wall": [], "CPU (user + sys)": [], "other CPU": []}
    phases: dict[str, list[float]] = {}
    start: dict[str, list[float]] = {"python -c pass": [], "python -m reconciler --version": []}
    for run in range(runs):
        wait_for_idle()
        result = runner.run([*base, "apply", str(spec), "-o", "json"])
        check(result, "no-op apply")
        if json.loads(result.stdout).get("actions") != []:
            raise BenchError(f"the no-op apply was not a no-op: {result.stdout[:300]}")
        whole["wall"].append(result.seconds)
        whole["CPU (user + sys)"].append(result.user_s + result.sys_s)
        whole["other CPU"].append(result.other_cpu)
        result = runner.run([sys.executable, str(Path(__file__).resolve()), CHILD, *base[3:], "apply", str(spec),
                             "-o", "json"])
        check(result, "timed no-op apply")
        for phase, seconds in json.loads(result.stderr.strip().splitlines()[-1]).items():
            phases.setdefault(phase, []).append(seconds)
        for name, argv in (("python -c pass", [sys.executable, "-c", "pass"]),
                           ("python -m reconciler --version", [sys.executable, "-m", "reconciler", "--version"])):
            result = runner.run(argv)
            check(result, name)
            start[name].append(result.seconds)
        log(f"run {run + 1}/{runs}: {whole['wall'][-1]:.3f} s wall, {whole['CPU (user + sys)'][-1]:.3f} s CPU")
    log("destroying (not timed)")
    check(runner.run([*base, "destroy", str(spec), "-o", "json"]), "destroy")
    print(f"\nno-op apply, N={count}, median of {runs} (seconds; other CPU as a share of both CPUs)")
    print(median_table(whole))
    print("\nphases, timed inside the process (the spec's load and a pass run with the cycle collector off)")
    print(median_table(phases))
    print("\nstart-up")
    print(median_table(start))


def clean_up(prefix: str, runner: Runner, scratch: Path, keep_scratch: bool, code: int) -> int:
    """Stop a running child, delete every namespace of the run and (unless kept or failed)
    the scratch directory; the exit code, 1 when namespaces are left behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # let cleanup finish
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    runner.stop()
    delete_netns(netns_with_prefix(prefix))
    if netns_with_prefix(prefix):
        print(f"WARNING: namespaces left behind: {netns_with_prefix(prefix)[:10]}", file=sys.stderr)
        code = code or 1
    if keep_scratch or code not in (0, 130):
        log(f"scratch kept at {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return code


def run_profiler(script: str, tag: str, profile_with: Callable[[str, Runner, Path], None], keep_scratch: bool) -> int:
    """What every profiler here does around its runs: as root, bytecode compiled as
    installed, namespaces prefixed `tag`XXXX, a scratch directory, Ctrl-C and SIGTERM
    cleaned up after (clean_up). `profile_with(prefix, runner, scratch)` runs them; the exit code."""
    if os.geteuid() != 0:
        print(f"{script} needs root: it creates throwaway network namespaces", file=sys.stderr)
        return 1
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode written and reused, as installed
    os.chdir(REPO)
    prefix = tag + uuid.uuid4().hex[:4]
    scratch = Path(tempfile.mkdtemp(prefix=f"{prefix}-profile-", dir="/tmp"))
    runner = Runner(scratch)
    warm_up = "import compileall, os, reconciler; compileall.compile_dir(os.path.dirname(reconciler.__file__), quiet=1)"

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    code = 0
    try:
        check(runner.run([sys.executable, "-c", warm_up]), "compiling the package (warm-up)")
        profile_with(prefix, runner, scratch)
    except (BenchError, KeyboardInterrupt) as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        print("\ninterrupted" if interrupted else f"\nPROFILE FAILED: {error}", file=sys.stderr)
        code = 130 if interrupted else 1
    finally:
        code = clean_up(prefix, runner, scratch, keep_scratch, code)
    return code


def profiler_main(doc: str, script: str, tag: str, timed_child: Callable[[list[str]], None],
                  profile: Callable[..., None], runs: int, runs_help: str) -> int:
    """A profiler's command line: the timed child when called as one (CHILD), else
    --containers N, --runs (default `runs`) and --keep-scratch, run by run_profiler."""
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        timed_child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=1000, help="N (default 1000)")
    parser.add_argument("--runs", type=int, default=runs, help=f"{runs_help} (default {runs})")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the scratch dir")
    args = parser.parse_args()
    return run_profiler(script, tag, lambda prefix, runner, scratch: profile(
        args.containers, args.runs, prefix, runner, scratch), args.keep_scratch)


def main() -> int:
    return profiler_main(__doc__, "profile_noop.py", "bp", timed_child, profile, 5, "no-op applies of each kind")


if __name__ == "__main__":
    sys.exit(main())
