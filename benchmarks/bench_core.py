#!/usr/bin/env python3
"""Benchmark netreconcile's core paths against an iproute2 shell baseline.

For each N (default 100 and 1000) this runs, in ONE invocation:

1. Baseline: an iproute2 shell script, one `ip` command per step (10 per
   container), that builds the same topology netreconcile builds (a bridge with
   the gateway address, N container namespaces, each with a veth on the bridge,
   `eth0` with an address, `lo` up and a default route). Every command targets a
   throwaway host namespace or a throwaway container namespace, never the root
   network namespace. Timed with `sh script`, then torn down (not timed).
1b. The floor (benchmarks/floor.py): the same kernel requests, hand-packed with
   netreconcile's codec and sent from one process, with no files, firewall, sysctls,
   observation or verification; the seconds of its kernel work (timed inside, after
   its imports) are the row. Torn down, not timed.
2. netreconcile, each step a fresh process (wall time around it, peak RSS of
   that child from os.wait4): from-scratch `apply`, no-op `apply` (must report
   "actions": []), `apply` after giving container 0 a static address, `destroy`.
3. With --ipv6, step 2 again on a dual-stack network (`enable_ipv6`, a /64 `subnet6`):
   every container also gets an IPv6 address and default route, with IPv6 on in its
   namespace (the second apply changes its IPv6 address too). With --macvlan, step 2
   again with the containers on a macvlan network whose parent is an unmanaged veth in
   the host namespace.
   Above 1000 containers they are spread over networks of 1000 (a bridge holds at most
   1023 ports), each with its own bridge (or parent) and /22 (and /64); the floor too.
   The iproute2 baseline runs only where one bridge holds them all (N <= 1000).
4. A table with seconds, the ratio to the baseline, peak RSS, and the targets
   (defined for N=1000): from-scratch apply <= baseline/10, from-scratch apply
   <= 1.5x the floor plus the interpreter's start (the `--version` row), no-op < 1 s,
   destroy < 2 s, peak memory < 200 MB; with --ipv6 also dual-stack apply from
   scratch <= 1.5x the IPv4-only one of the same run. Every step of another N gets its
   ratio to the same step at N=1000 (when both ran); at N=5000 the targets are each
   netreconcile step <= 5.5x its N=1000 figure and peak memory < 300 MB.

SAFETY: everything lives in network namespaces whose names start with a unique
prefix (bnXXXX); all of them are deleted at the end, also on failure, Ctrl-C or
SIGTERM. Scratch files live in a temporary directory under /tmp.

Every netreconcile step runs this checkout (`python -m reconciler` from the repository)
with PYTHONDONTWRITEBYTECODE unset and the package compiled first, untimed: the figures are
what an installed package costs, not the recompilation the tests' environment forces.

Needs root. Usage:
    python benchmarks/bench_core.py [--sizes 100,1000] [--ipv6] [--macvlan] [--json FILE]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

NETNS_DIR = Path("/run/netns")
SUBNET = ipaddress.IPv4Network("10.88.0.0/16")
GATEWAY = SUBNET.network_address + 1
STATIC_ADDRESS = ipaddress.IPv4Address("10.88.250.250")  # container 0's new address in the second spec
SUBNET6 = ipaddress.IPv6Network("fd42:88::/64")
STATIC_ADDRESS6 = ipaddress.IPv6Address("fd42:88::fa:fa")
STEP_TIMEOUT = 1800.0  # seconds; a step that takes longer is killed and the run fails

REPO = Path(__file__).resolve().parent.parent
TARGET_N = 1000
TARGET_APPLY_RATIO = 10.0  # from-scratch apply must be at least 10x faster than the baseline
TARGET_NOOP_S = 1.0
TARGET_DESTROY_S = 2.0
TARGET_RSS_MB = 200.0
TARGET_DUAL_STACK_RATIO = 1.5  # dual-stack apply from scratch within 1.5x of the IPv4-only one
DUAL_STACK = "dual-stack "  # prefix of the names of the dual-stack steps
MACVLAN = "macvlan "  # prefix of the names of the macvlan steps
PER_NETWORK = 1000  # containers per network; a bridge holds at most 1023 ports (BR_MAX_PORTS)
SCALE_N = 5000  # the size whose steps are held to TARGET_SCALE_RATIO times their N=1000 figures
TARGET_SCALE_RATIO = 5.5
TARGET_SCALE_RSS_MB = 300.0
TARGET_FLOOR_RATIO = 1.5  # from-scratch apply within 1.5x the floor, plus the interpreter's start
FLOOR = "floor: same requests, one process"


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- helpers

def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def netns_with_prefix(prefix: str) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(prefix))


def delete_netns(names: list[str]) -> None:
    """Delete namespaces by name with one `ip -batch` process (fast for thousands)."""
    if not names:
        return
    batch = "".join(f"netns del {name}\n" for name in names)
    subprocess.run(["ip", "-force", "-batch", "-"], input=batch, text=True, capture_output=True)
    for name in names:  # anything `ip -batch` left behind (e.g. a half-created entry)
        if (NETNS_DIR / name).exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            try:
                (NETNS_DIR / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as error:
                log(f"warning: could not remove {NETNS_DIR / name}: {error}")


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])  # guest time is already counted in user


def wait_for_idle(threshold: float = 0.80, window: float = 1.0, limit: float = 60.0) -> tuple[float, bool]:
    """Poll /proc/stat until one `window` had idle > threshold; at most `limit` s.

    The kernel destroys namespaces in kworkers after `ip netns del` returns, and
    the IPv6 multicast flood after a burst of veths can keep both CPUs busy for
    seconds, so every timed step starts on an idle machine.
    """
    started = time.monotonic()
    idle0, total0 = _cpu_times()
    while True:
        time.sleep(window)
        idle1, total1 = _cpu_times()
        fraction = (idle1 - idle0) / max(1, total1 - total0)
        waited = time.monotonic() - started
        if fraction > threshold:
            return waited, True
        if waited >= limit:
            log(f"warning: machine not idle after {limit:.0f} s (idle {fraction:.0%}); continuing")
            return waited, False
        idle0, total0 = idle1, total1


def _other_cpu(total_jiffies: int, idle_jiffies: int, child_cpu_s: float) -> float:
    """Busy CPU not spent in the child itself, as a share of all CPUs. Includes kernel work
    the step caused in kworkers/softirq, and any other load on a shared machine."""
    if total_jiffies <= 0:
        return 0.0
    busy_s = (total_jiffies - idle_jiffies) / os.sysconf("SC_CLK_TCK")
    capacity_s = total_jiffies / os.sysconf("SC_CLK_TCK")
    return max(0.0, min(1.0, (busy_s - child_cpu_s) / capacity_s))


@dataclass
class ChildResult:
    code: int
    seconds: float
    max_rss_mb: float
    user_s: float
    sys_s: float
    stdout: str
    stderr: str
    other_cpu: float  # share of the machine's CPU capacity busy with anything but this child during the step


class Runner:
    """Runs one child at a time so that cleanup can stop it first."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.current: subprocess.Popen | None = None
        self.count = 0

    def run(self, argv: list[str], timeout: float = STEP_TIMEOUT) -> ChildResult:
        self.count += 1
        out_path = self.scratch / f"step{self.count}.out"
        err_path = self.scratch / f"step{self.count}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            idle0, total0 = _cpu_times()
            started = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            self.current = proc
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            seconds = time.perf_counter() - started
            idle1, total1 = _cpu_times()
            proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen never waits for it again
            self.current = None
        return ChildResult(
            code=proc.returncode,
            seconds=seconds,
            max_rss_mb=usage.ru_maxrss / 1024.0,  # KiB on Linux
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            stdout=out_path.read_text(errors="replace"),
            stderr=err_path.read_text(errors="replace"),
            other_cpu=_other_cpu(total1 - total0, idle1 - idle0, usage.ru_utime + usage.ru_stime),
        )

    def stop(self) -> None:
        proc = self.current
        if proc is not None and proc.poll() is None:
            log(f"stopping child {proc.pid}")
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.current = None


def check(result: ChildResult, what: str) -> None:
    if result.code != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-20:])
        raise BenchError(f"{what} failed with exit code {result.code} after {result.seconds:.2f} s:\n{tail}")


# ---------------------------------------------------------------- layout

def network_count(n: int) -> int:
    return -(-n // PER_NETWORK)


def network_subnets(count: int) -> list[tuple[ipaddress.IPv4Network, ipaddress.IPv6Network]]:
    """Per network its IPv4 and IPv6 subnet: SUBNET and SUBNET6 for one network, else
    10.88.0.0/22, 10.89.0.0/22, ... and fd42:88:0::/64, fd42:88:1::/64, ... (1022
    addresses each: the gateway and PER_NETWORK containers fit)."""
    if count == 1:
        return [(SUBNET, SUBNET6)]
    return [(ipaddress.IPv4Network(f"10.{88 + k}.0.0/22"), ipaddress.IPv6Network(f"fd42:88:{k:x}::/64"))
            for k in range(count)]


def static_addresses(count: int) -> tuple[ipaddress.IPv4Address, ipaddress.IPv6Address]:
    """Container 0's static addresses in the second spec, in its network's subnets."""
    if count == 1:
        return STATIC_ADDRESS, STATIC_ADDRESS6
    subnet, subnet6 = network_subnets(count)[0]
    return subnet.broadcast_address - 5, subnet6.network_address + 0xfafa


# ---------------------------------------------------------------- baseline

def container_address(index: int) -> ipaddress.IPv4Address:
    """netreconcile's dynamic IPAM: lowest free address after the gateway, in spec order."""
    return SUBNET.network_address + 2 + index


def baseline_script(host: str, containers: list[str]) -> str:
    prefixlen = SUBNET.prefixlen
    lines = [
        "set -e",
        f"ip -n {host} link add br0 type bridge",
        f"ip -n {host} addr add {GATEWAY}/{prefixlen} dev br0",
        f"ip -n {host} link set br0 up",
    ]
    for index, name in enumerate(containers):
        veth, tmp = f"veth{index}", f"tmp{index}"
        lines += [
            f"ip netns add {name}",
            f"ip -n {host} link add {veth} type veth peer name {tmp}",
            f"ip -n {host} link set {tmp} netns {name}",
            f"ip -n {name} link set {tmp} name eth0",
            f"ip -n {host} link set {veth} master br0",
            f"ip -n {host} link set {veth} up",
            f"ip -n {name} addr add {container_address(index)}/{prefixlen} dev eth0",
            f"ip -n {name} link set eth0 up",
            f"ip -n {name} link set lo up",
            f"ip -n {name} route add default via {GATEWAY}",
        ]
    # Safety net: every command must name a throwaway namespace explicitly.
    allowed = {host, *containers}
    for line in lines[1:]:
        words = line.split()
        if words[:3] == ["ip", "netns", "add"] and words[3] in allowed and len(words) == 4:
            continue
        if words[:2] == ["ip", "-n"] and words[2] in allowed:
            continue
        raise AssertionError(f"baseline line does not target a throwaway namespace: {line!r}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- netreconcile

def network_names(count: int) -> list[str]:
    return ["bench"] if count == 1 else [f"bench{k}" for k in range(count)]


def spec_text(bridge: str, containers: list[str], static_first: bool, ipv6: bool = False,
              parents: list[str] | None = None) -> str:
    """PER_NETWORK containers per network, each network on its own bridge `bridge`+k (with
    one network: `bridge`), or with `parents` a macvlan network on parents[k]."""
    count = network_count(len(containers))
    names = network_names(count)
    lines = ["version: 1", "networks:"]
    for k, (name, (subnet, subnet6)) in enumerate(zip(names, network_subnets(count))):
        lines += [f"  {name}:"]
        if parents:
            lines += ["    driver: macvlan", f"    parent: {parents[k]}"]
        else:
            lines += [f"    bridge: {bridge if count == 1 else f'{bridge}{k}'}"]
        lines += [f"    subnet: {subnet}", *(["    enable_ipv6: true", f"    subnet6: {subnet6}"] if ipv6 else [])]
    lines.append("containers:")
    address, address6 = static_addresses(count)
    static = f"ipv4_address: {address}" + (f", ipv6_address: '{address6}'" if ipv6 else "")
    for index, name in enumerate(containers):
        lines.append(f"  {name}:")
        network = names[index // PER_NETWORK]
        if index == 0 and static_first:
            lines.append(f"    networks: {{{network}: {{{static}}}}}")
        else:
            lines.append(f"    networks: [{network}]")
    return "\n".join(lines) + "\n"


def create_host_netns(name: str) -> None:
    """A throwaway host namespace with lo up, made the same way for both methods (not timed)."""
    for argv in (["ip", "netns", "add", name], ["ip", "-n", name, "link", "set", "lo", "up"]):
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise BenchError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


@dataclass
class Step:
    name: str
    seconds: float
    max_rss_mb: float
    user_s: float = 0.0
    sys_s: float = 0.0
    actions: int | None = None
    idle_wait_s: float = 0.0
    idle_reached: bool = True
    other_cpu: float = 0.0


@dataclass
class SizeResult:
    n: int
    baseline: Step | None  # None where one bridge cannot hold N containers (skipped)
    steps: list[Step] = field(default_factory=list)
    leftover_container_netns_after_destroy: int = 0
    targets: dict = field(default_factory=dict)


def run_size(n: int, prefix: str, runner: Runner, scratch: Path, ipv6: bool = False, macvlan: bool = False,
             startup: Step | None = None, skip_baseline: bool = False) -> SizeResult:
    tag = f"{prefix}n{n}"
    out = SizeResult(n, run_baseline(n, tag, runner, scratch) if n <= PER_NETWORK and not skip_baseline else None)
    if skip_baseline:
        log(f"N={n}: iproute2 baseline skipped (--skip-baseline)")
    elif out.baseline is None:
        log(f"N={n}: iproute2 baseline skipped (its script uses one bridge, which holds at most 1023 ports)")

    # ---- the floor: the same kernel requests from one process, nothing else
    floor_host, floor_prefix = f"{tag}-hf", f"{tag}-f"
    idle_wait, idle_ok = wait_for_idle()
    create_host_netns(floor_host)
    log(f"N={n}: floor (the requests hand-packed in one process)")
    result = runner.run([sys.executable, str(REPO / "benchmarks" / "floor.py"), floor_host, f"{prefix}bf{n}"[:14],
                         floor_prefix, str(n)])
    check(result, "the floor")
    kernel_seconds = float(result.stdout.split()[-1])
    out.steps.append(Step(FLOOR, kernel_seconds, result.max_rss_mb, result.user_s, result.sys_s, None, idle_wait,
                          idle_ok, result.other_cpu))
    log(f"N={n}: floor {kernel_seconds:.2f} s of kernel work ({result.seconds:.2f} s with start-up); tearing down")
    delete_netns([floor_host, *netns_with_prefix(floor_prefix)])

    # ---- 2. netreconcile (3. dual stack, macvlan)
    out.steps += run_netreconcile(n, tag, f"{prefix}br{n}"[:14], runner, scratch, ipv6=False)
    if ipv6:
        out.steps += run_netreconcile(n, f"{tag}d", f"{prefix}bd{n}"[:14], runner, scratch, ipv6=True)
    if macvlan:
        out.steps += run_netreconcile(n, f"{tag}m", f"{prefix}mv{n}"[:13], runner, scratch, ipv6=False,
                                      macvlan=True)
    delete_netns(netns_with_prefix(tag))
    out.targets = evaluate_targets(out, startup)
    return out


def run_baseline(n: int, tag: str, runner: Runner, scratch: Path) -> Step:
    host_base = f"{tag}-hb"
    base_containers = [f"{tag}-b{i}" for i in range(n)]
    script = scratch / f"baseline-{n}.sh"
    script.write_text(baseline_script(host_base, base_containers))
    idle_wait, idle_ok = wait_for_idle()
    create_host_netns(host_base)
    log(f"N={n}: baseline iproute2 script ({10 * n + 3} ip commands)")
    result = runner.run(["sh", str(script)])
    check(result, f"baseline script {script}")
    baseline = Step("iproute2 baseline (sh script)", result.seconds, result.max_rss_mb, result.user_s, result.sys_s,
                    None, idle_wait, idle_ok, result.other_cpu)
    log(f"N={n}: baseline {result.seconds:.2f} s; tearing down")
    delete_netns([host_base, *base_containers])
    return baseline


def make_parents(host: str, count: int, name: str) -> list[str]:
    """`count` unmanaged veth pairs in the throwaway host namespace, up: the macvlan
    networks' parents (`name`0, ...), as a LAN interface netreconcile only uses."""
    parents = [f"{name}{k}" for k in range(count)]
    for parent in parents:
        for argv in (["ip", "-n", host, "link", "add", parent, "type", "veth", "peer", "name", f"w{parent}"],
                     ["ip", "-n", host, "link", "set", parent, "up"], ["ip", "-n", host, "link", "set", f"w{parent}", "up"]):
            result = subprocess.run(argv, capture_output=True, text=True)
            if result.returncode != 0:
                raise BenchError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return parents


def run_netreconcile(n: int, tag: str, bridge: str, runner: Runner, scratch: Path, ipv6: bool,
                     macvlan: bool = False) -> list[Step]:
    """The four netreconcile steps on a spec of N containers (dual stack with `ipv6`; on
    macvlan networks with `macvlan`, `bridge` then naming their parents)."""
    label = MACVLAN if macvlan else DUAL_STACK if ipv6 else ""
    host_nr = f"{tag}-hnr"
    containers = [f"{tag}-c{i}" for i in range(n)]
    create_host_netns(host_nr)
    parents = make_parents(host_nr, network_count(n), bridge) if macvlan else None
    spec1 = scratch / f"spec-{tag}.yaml"
    spec2 = scratch / f"spec-{tag}-static.yaml"
    spec1.write_text(spec_text(bridge, containers, static_first=False, ipv6=ipv6, parents=parents))
    spec2.write_text(spec_text(bridge, containers, static_first=True, ipv6=ipv6, parents=parents))
    state_dir = Path(tempfile.mkdtemp(prefix=f"state-{tag}-", dir=scratch))
    base = [sys.executable, "-m", "reconciler", "--host-netns", host_nr, "--state-dir", str(state_dir)]

    plan = [
        (f"{label}apply from scratch", ["apply", str(spec1), "-o", "json"]),
        (f"{label}apply no-op", ["apply", str(spec1), "-o", "json"]),
        (f"{label}apply, 1 address changed", ["apply", str(spec2), "-o", "json"]),
        (f"{label}destroy", ["destroy", str(spec2), "-o", "json"]),
    ]
    steps = []
    for name, args in plan:
        idle_wait, idle_ok = wait_for_idle()
        log(f"N={n}: netreconcile {name}")
        result = runner.run([*base, *args])
        check(result, f"netreconcile {name} (N={n})")
        try:
            document = json.loads(result.stdout)
        except json.JSONDecodeError as error:
            raise BenchError(f"netreconcile {name} (N={n}) printed no JSON document: {error}\n"
                             f"{result.stdout[:500]}") from None
        actions = len(document.get("actions", []))
        step = Step(name, result.seconds, result.max_rss_mb, result.user_s, result.sys_s, actions, idle_wait, idle_ok,
                    result.other_cpu)
        steps.append(step)
        log(f"N={n}: {name}: {result.seconds:.3f} s, {actions} action(s), {result.max_rss_mb:.0f} MB")
        if name.endswith("apply from scratch"):
            present = set(netns_with_prefix(f"{tag}-c"))
            missing = [c for c in containers if c not in present]
            if missing or actions == 0:
                raise BenchError(f"from-scratch apply (N={n}): {actions} action(s), "
                                 f"{len(missing)} container namespace(s) missing, e.g. {missing[:3]}")
            if ipv6:
                check_dual_stack(containers[-1], network_subnets(network_count(n))[-1][1])
        elif name.endswith("apply no-op") and document.get("actions") != []:
            raise BenchError(f"no-op apply (N={n}) was not a no-op: {actions} action(s), e.g. "
                             f"{json.dumps(document['actions'][:3])}")
        elif name.endswith("apply, 1 address changed") and actions == 0:
            raise BenchError(f"apply after changing container 0's address (N={n}) reported no actions")
    leftover = len(netns_with_prefix(f"{tag}-c"))
    if leftover:
        raise BenchError(f"{label}destroy (N={n}) left {leftover} container namespace(s)")
    return steps


def check_dual_stack(container: str, subnet6: ipaddress.IPv6Network) -> None:
    """The last container has an address of its network's subnet6: the dual-stack run measured what it claims."""
    result = subprocess.run(["ip", "-n", container, "-6", "-o", "addr", "show", "scope", "global"],
                            capture_output=True, text=True)
    if str(subnet6.network_address).rstrip(":") not in result.stdout:
        raise BenchError(f"dual-stack apply: {container} has no address of {subnet6}: {result.stdout or result.stderr}")


# ---------------------------------------------------------------- report

def step_by_name(result: SizeResult, name: str) -> Step:
    return next(s for s in result.steps if s.name == name)


def evaluate_targets(result: SizeResult, startup: Step | None = None) -> dict:
    apply = step_by_name(result, "apply from scratch")
    floor = step_by_name(result, FLOOR)
    floor_limit = floor.seconds * TARGET_FLOOR_RATIO + (startup.seconds if startup else 0.0)
    noop = step_by_name(result, "apply no-op")
    destroy = step_by_name(result, "destroy")
    peak = max(s.max_rss_mb for s in result.steps)
    dual = next((s for s in result.steps if s.name == f"{DUAL_STACK}apply from scratch"), None)
    dual_stack = {} if dual is None else {
        "dual-stack apply <= 1.5x IPv4-only apply": {
            "value": dual.seconds, "limit": apply.seconds * TARGET_DUAL_STACK_RATIO, "unit": "s",
            "pass": dual.seconds <= apply.seconds * TARGET_DUAL_STACK_RATIO},
    }
    limit = result.baseline.seconds / TARGET_APPLY_RATIO if result.baseline else None
    baseline = {} if limit is None else {
        "from-scratch apply <= baseline/10": {"value": apply.seconds, "limit": limit, "unit": "s",
                                              "pass": apply.seconds <= limit},
    }
    return {
        **baseline,
        "from-scratch apply <= 1.5x floor + start": {"value": apply.seconds, "limit": floor_limit, "unit": "s",
                                                     "pass": apply.seconds <= floor_limit},
        "no-op apply < 1 s": {"value": noop.seconds, "limit": TARGET_NOOP_S, "unit": "s",
                              "pass": noop.seconds < TARGET_NOOP_S},
        "destroy < 2 s": {"value": destroy.seconds, "limit": TARGET_DESTROY_S, "unit": "s",
                          "pass": destroy.seconds < TARGET_DESTROY_S},
        "peak memory < 200 MB": {"value": peak, "limit": TARGET_RSS_MB, "unit": "MB",
                                 "pass": peak < TARGET_RSS_MB},
        **dual_stack,
    }


def scaling_targets(result: SizeResult, reference: SizeResult) -> dict:
    """Each netreconcile step of `result` (N=5000) <= TARGET_SCALE_RATIO times the same step
    of `reference` (N=1000), and its peak RSS < TARGET_SCALE_RSS_MB."""
    targets = {}
    for step in result.steps:
        before = next((s for s in reference.steps if s.name == step.name), None)
        if before is None or step.name == FLOOR:
            continue
        ratio = step.seconds / before.seconds
        targets[f"{step.name} <= {TARGET_SCALE_RATIO}x N={reference.n}"] = {
            "value": ratio, "limit": TARGET_SCALE_RATIO, "unit": "x", "pass": ratio <= TARGET_SCALE_RATIO}
    peak = max(s.max_rss_mb for s in result.steps)
    targets[f"peak memory < {TARGET_SCALE_RSS_MB:.0f} MB"] = {
        "value": peak, "limit": TARGET_SCALE_RSS_MB, "unit": "MB", "pass": peak < TARGET_SCALE_RSS_MB}
    return targets


def ratio_text(baseline: float, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    ratio = baseline / seconds
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"


def measure_startup(runner: Runner) -> Step:
    """Reference: a fresh `python -m reconciler --version` (interpreter + imports), no kernel work."""
    idle_wait, idle_ok = wait_for_idle()
    result = runner.run([sys.executable, "-m", "reconciler", "--version"])
    check(result, "python -m reconciler --version")
    return Step("startup (--version), reference", result.seconds, result.max_rss_mb, result.user_s, result.sys_s,
                None, idle_wait, idle_ok, result.other_cpu)


def print_report(results: list[SizeResult], startup: Step | None = None) -> None:
    reference = next((r for r in results if r.n == TARGET_N), None)
    header = (f"{'N':>5}  {'step':<40} {'seconds':>9}  {'vs baseline':>14}  {f'vs N={TARGET_N}':>10}"
              f"  {'peak RSS MB':>11}  {'actions':>7}  {'other CPU':>9}")
    print()
    print(header)
    print("-" * len(header))

    def row(n, s: Step, ratio: str, scale: str = "") -> None:
        mark = "" if s.idle_reached else " !"
        actions = s.actions if s.actions is not None else ""
        print(f"{n:>5}  {s.name:<40} {s.seconds:>9.3f}  {ratio:>14}  {scale:>10}  {s.max_rss_mb:>11.1f}  {actions:>7}"
              f"  {s.other_cpu:>8.0%}{mark}")

    for result in results:
        b = result.baseline
        if b is not None:
            row(result.n, b, "1.0x")
        for s in result.steps:
            before = next((r for r in reference.steps if r.name == s.name), None) if reference else None
            scale = f"{s.seconds / before.seconds:.2f}x" if before and result is not reference else ""
            row(result.n, s, ratio_text(b.seconds, s.seconds) if b else "skipped", scale)
        print()
    if startup is not None:
        row("", startup, "")
        print()
    target_runs = [r for r in results if r.n == TARGET_N]
    if not target_runs:
        print(f"Targets are defined for N={TARGET_N}, which was not run; reference only:")
        target_runs = results[-1:]
    for result in target_runs:
        print(f"Targets at N={result.n}" + ("" if result.n == TARGET_N else " (reference only, not the target N)"))
        for name, t in result.targets.items():
            verdict = "PASS" if t["pass"] else "MISS"
            print(f"  {verdict}  {name:<36} measured {t['value']:.3f} {t['unit']} (limit {t['limit']:.3f} {t['unit']})")
    for result in results:
        if reference is None or result.n != SCALE_N:
            continue
        print(f"Scaling targets at N={result.n} (each step against the same step at N={reference.n})")
        for name, t in scaling_targets(result, reference).items():
            verdict = "PASS" if t["pass"] else "MISS"
            print(f"  {verdict}  {name:<48} measured {t['value']:.2f} {t['unit']} (limit {t['limit']:.1f} {t['unit']})")
    print("\n'skipped': no iproute2 baseline at this N (its script puts every container on one bridge), "
          "or --skip-baseline.")
    print("Peak RSS is the child's ru_maxrss (os.wait4); for the baseline it is the largest of sh and its ip children.")
    print("other CPU: share of both CPUs busy with anything but the step's own process while it ran (kernel work it")
    print("caused in kworkers/softirq, plus other load on a shared machine). '!': the machine was not idle (>80 %)")
    print("within 60 s before the step started. Numbers are noisy on shared machines (10-30 % run to run).")


# ---------------------------------------------------------------- main

def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes wants comma-separated integers, got {text!r}") from None
    if not sizes or any(n < 1 or n > 60000 for n in sizes):
        raise argparse.ArgumentTypeError("sizes must be between 1 and 60000")
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[100, 1000], help="comma-separated N (default 100,1000)")
    parser.add_argument("--ipv6", action="store_true",
                        help="also run netreconcile's steps on a dual-stack network (enable_ipv6, a /64 subnet6)")
    parser.add_argument("--macvlan", action="store_true",
                        help="also run netreconcile's steps on a macvlan network (parent: an unmanaged veth)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="leave out the iproute2 script (a minute at N=1000): the floor and netreconcile only")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the scratch dir (scripts, specs, logs)")
    args = parser.parse_args()

    if os.geteuid() != 0:
        print("bench_core.py needs root: it creates throwaway network namespaces", file=sys.stderr)
        return 1
    for tool in ("ip", "sh"):
        if shutil.which(tool) is None:
            print(f"{tool} not found", file=sys.stderr)
            return 1

    # measure what an installed package costs: bytecode written and reused, compiled in an
    # untimed warm-up (the tests' environment sets PYTHONDONTWRITEBYTECODE=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.chdir(REPO)  # `python -m reconciler` runs this checkout
    prefix = "bn" + uuid.uuid4().hex[:4]
    scratch = Path(tempfile.mkdtemp(prefix=f"{prefix}-bench-", dir="/tmp"))
    runner = Runner(scratch)
    warm_up = "import compileall, os, reconciler; compileall.compile_dir(os.path.dirname(reconciler.__file__), quiet=1)"
    check(runner.run([sys.executable, "-c", warm_up]), "compiling the package (warm-up)")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored (e.g. `cmd &`)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    log(f"prefix {prefix}, scratch {scratch}, sizes {args.sizes}")
    results: list[SizeResult] = []
    startup: Step | None = None
    code = 0
    try:
        startup = measure_startup(runner)
        for n in args.sizes:
            results.append(run_size(n, prefix, runner, scratch, ipv6=args.ipv6, macvlan=args.macvlan,
                                    startup=startup, skip_baseline=args.skip_baseline))
    except BenchError as error:
        print(f"\nBENCHMARK FAILED: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        runner.stop()
        leftovers = netns_with_prefix(prefix)
        if leftovers:
            log(f"cleanup: deleting {len(leftovers)} namespace(s) with prefix {prefix}")
            delete_netns(leftovers)
        still = netns_with_prefix(prefix)
        if still:
            print(f"WARNING: namespaces left behind: {still[:10]}", file=sys.stderr)
            code = code or 1
        if args.keep_scratch or code not in (0, 130):
            log(f"scratch kept at {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if results:
        print_report(results, startup)
        if args.json:
            reference = next((r for r in results if r.n == TARGET_N), None)
            document = {
                "prefix": prefix,
                "sizes": [r.n for r in results],
                "startup": asdict(startup) if startup else None,
                "complete": code == 0,
                "results": [
                    {"n": r.n, "baseline": asdict(r.baseline) if r.baseline else None,
                     "steps": [asdict(s) for s in r.steps],
                     "targets": r.targets, "targets_apply": r.n == TARGET_N,
                     "scaling_targets": scaling_targets(r, reference) if reference and r.n == SCALE_N else {}}
                    for r in results
                ],
            }
            Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
            log(f"results written to {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
