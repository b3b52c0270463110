#!/usr/bin/env python3
"""Benchmark hosts-file discovery: N containers on one network, then one more joins.

Pure: no kernel, no root, nothing written. The "live" state is the desired state of the
spec before the join (what the kernel holds after applying it), its file contents copied
into strings of their own as reading them from disk would give. Then, timed (median of
--repeat runs, after one untimed warm-up run):

1. files: the desired files of the spec after the join: the discovery sections
   (`discovery_sections`) and every container's hostname, hosts and resolv.conf
   (`container_files`), as `build_desired` makes them;
2. desired: the whole `build_desired` (files, veths, addresses, routes, firewall);
3. plan: `plan(desired, live)`;
4. write: the plan's file writes carried out as apply carries them out
   (reconciler.kernel.files: each a temporary file, then a rename over the old one; the
   directories on WRITE_THREADS threads), into a scratch tree of one directory per container that holds the files
   before the join, made under --write-dir (default: a temporary directory under /var/tmp,
   on the filesystem that holds /etc/netns on most hosts; removed afterwards).

The run fails (exit 1) unless the plan's file writes are exactly the files whose content
changes: the joining container's three, and the hosts file of each of the N others.
Target (N=1000): desired + plan + write (rewriting the hosts files after a join) < 0.3 s.

Like bench_core.py, it runs with PYTHONDONTWRITEBYTECODE unset, so the package's
bytecode is written and reused as an installed package's is.

Usage:
    python benchmarks/bench_discovery.py [--sizes 100,1000] [--ipv6] [--repeat 5] [--write-dir DIR]
"""

from __future__ import annotations

import os
import sys

# the tests' environment sets it; an installed package has its bytecode (set before importing reconciler)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.kernel.files import for_each, write_atomically  # noqa: E402
from reconciler.render import resolvconf  # noqa: E402
from reconciler.spec.loader import load_spec_text  # noqa: E402
from reconciler.state import desired as desired_state  # noqa: E402
from reconciler.state.ipam import assign_addresses, assign_interfaces  # noqa: E402
from reconciler.state.model import File, State  # noqa: E402
from reconciler.state.planner import plan  # noqa: E402

TARGET_N = 1000
TARGET_S = 0.3
HOST_FILES = desired_state.HostFiles(resolv_conf="nameserver 198.51.100.53\n")


def spec_text(count: int, ipv6: bool) -> str:
    six = ', enable_ipv6: true, subnet6: "fd42:88::/64"' if ipv6 else ""
    lines = ["version: 1", "networks:", f"  front: {{subnet: 10.88.0.0/16{six}}}", "containers:"]
    lines += [f"  c{number}: {{networks: {{front: {{aliases: [svc{number % 10}]}}}}}}" for number in range(count)]
    return "\n".join(lines) + "\n"


def desired_files(spec, live: State) -> list:
    """The files part of build_desired, on its own."""
    interfaces = assign_interfaces(spec, live)
    addresses = assign_addresses(spec, live, interfaces)
    addresses6 = assign_addresses(spec, live, interfaces, family=6)
    host_resolv = resolvconf.parse(HOST_FILES.resolv_conf, HOST_FILES.resolv_conf_path)
    sections = desired_state.discovery_sections(spec, addresses, addresses6)
    return [
        obj for container in spec.containers
        for obj in desired_state.container_files(spec, container, addresses, host_resolv, HOST_FILES, addresses6,
                                                 discovery=sections[container.name])
    ]


def timed(function, repeat: int) -> tuple[float, object]:
    result = function()  # warm-up, untimed
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def write_files(files: list[File], dir_fds: dict[str, int]) -> None:
    """As reconciler.kernel.files.FileWriter writes them: per directory, directories in parallel."""
    per_netns: dict[str, list[File]] = {}
    for obj in files:
        per_netns.setdefault(obj.netns, []).append(obj)

    def write_directory(netns: str, group: list[File]) -> None:
        for obj in group:
            write_atomically(dir_fds[netns], obj.filename, obj.content)
    for_each(write_directory, per_netns.items())


def timed_writes(live: State, writes: list[File], write_dir: str, repeat: int) -> float:
    """Median seconds to carry out `writes` over a scratch tree holding the files of `live`."""
    scratch = tempfile.mkdtemp(prefix="bench-discovery-", dir=write_dir)
    dir_fds: dict[str, int] = {}
    try:
        for netns in sorted({obj.netns for obj in [*live.of_kind(File), *writes]}):
            os.mkdir(os.path.join(scratch, netns), 0o755)
            dir_fds[netns] = os.open(os.path.join(scratch, netns), os.O_RDONLY | os.O_DIRECTORY)
        write_files(live.of_kind(File), dir_fds)
        seconds, _ = timed(lambda: write_files(writes, dir_fds), repeat)
        return seconds
    finally:
        for fd in dir_fds.values():
            os.close(fd)
        shutil.rmtree(scratch)


def run(count: int, ipv6: bool, repeat: int, write_dir: str) -> dict:
    before = load_spec_text(spec_text(count, ipv6), "before.yaml")
    built = desired_state.build_desired(before, State(), HOST_FILES)
    # the kernel's copy: file contents are strings of their own, as read from disk
    live = State.of(dataclasses.replace(o, content="".join(o.content)) if isinstance(o, File) else o
                    for o in built.objects.values())
    after = load_spec_text(spec_text(count + 1, ipv6), "after.yaml")
    files_s, _ = timed(lambda: desired_files(after, live), repeat)
    desired_s, wanted = timed(lambda: desired_state.build_desired(after, live, HOST_FILES), repeat)
    plan_s, planned = timed(lambda: plan(wanted, live), repeat)
    writes = {a.key for a in planned.actions if a.kind == "file"}
    changing = {f.key for f in wanted.of_kind(File) if live.objects.get(f.key) != f}
    if writes != changing or len(writes) != count + 3:
        raise SystemExit(f"FAIL: {len(writes)} file writes planned, {len(changing)} files change, "
                         f"expected {count + 3}")
    write_s = timed_writes(live, [a.obj for a in planned.actions if a.kind == "file"], write_dir, repeat)
    hosts_size = len(wanted.objects[("file", "c0", "hosts")].content)
    return {"n": count, "ipv6": ipv6, "files_s": files_s, "desired_s": desired_s, "plan_s": plan_s,
            "write_s": write_s, "writes": len(writes), "hosts_bytes": hosts_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--ipv6", action="store_true", help="also on a dual-stack network")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write-dir", default="/var/tmp", help="where the scratch tree of files is made")
    args = parser.parse_args()
    rows = [run(int(n), ipv6, args.repeat, args.write_dir) for n in args.sizes.split(",") for ipv6 in (False, True)[:1 + args.ipv6]]
    print(f"{'N':>6} {'stack':>6} {'files s':>8} {'desired s':>9} {'plan s':>7} {'write s':>7} {'total s':>7} "
          f"{'writes':>6} {'hosts KB':>8}  target")
    failed = False
    for row in rows:
        total = row["desired_s"] + row["plan_s"] + row["write_s"]
        verdict = ""
        if row["n"] == TARGET_N:
            verdict = f"{'PASS' if total < TARGET_S else 'MISS'} (< {TARGET_S} s)"
            failed |= total >= TARGET_S
        print(f"{row['n']:>6} {'dual' if row['ipv6'] else 'ipv4':>6} {row['files_s']:>8.3f} {row['desired_s']:>9.3f} "
              f"{row['plan_s']:>7.3f} {row['write_s']:>7.3f} {total:>7.3f} {row['writes']:>6} {row['hosts_bytes'] / 1024:>8.1f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
