"""Crash recovery: an apply killed with SIGKILL part-way leaves nothing the next apply cannot finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, netns_names

pytestmark = pytest.mark.kernel

COUNT = 200
ETC_NETNS = Path("/etc/netns")  # glob, unlike iterdir, finds nothing where the directory is not made yet


def spec_text() -> str:
    return "version: 1\nnetworks:\n  front: {bridge: '@br', subnet: 172.22.0.0/16}\ncontainers:\n" + "".join(
        f"  '@c{i}': {{networks: [front], ports: ['{20000 + i}:80']}}\n" for i in range(COUNT))


def debris(sandbox) -> dict:
    """What a destroyed sandbox must not hold any more."""
    host_links = {name for name in sandbox.links(sandbox.host) if name != "lo"}
    return {
        "namespaces": sorted(n for n in netns_names() if n.startswith(sandbox.prefix) and n != sandbox.host),
        "host links": sorted(host_links),
        "files": sorted(d.name for d in ETC_NETNS.glob(f"{sandbox.prefix}*")),
        "nft": sandbox.host_sh("nft list tables"),
        "state": sorted(p.name for p in (sandbox.state_dir / f"netns-{sandbox.host}").glob("pending*")),
    }


def namespaces_made(sandbox, at_least: int):
    return lambda: len([n for n in netns_names() if n.startswith(f"{sandbox.prefix}-c")]) >= at_least


def veths_made(sandbox, at_least: int):
    def check():
        if not os.path.exists(f"/run/netns/{sandbox.host}"):
            return False
        listing = subprocess.run(["ip", "-n", sandbox.host, "-o", "link", "show", "type", "veth"],
                                 capture_output=True, text=True).stdout
        return listing.count("\n") >= at_least
    return check


def files_made(sandbox):
    return lambda: (Path("/etc/netns") / f"{sandbox.prefix}-c0" / "hostname").exists()


KILL_POINTS = {
    "while creating namespaces": lambda box: namespaces_made(box, 20),
    "after half the namespaces": lambda box: namespaces_made(box, COUNT // 2),
    "while creating veths": lambda box: veths_made(box, 1),
    "while writing files": files_made,
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_an_apply_killed_part_way_is_finished_by_the_next_and_leaves_no_debris(sandbox, point):
    spec = sandbox.write_spec(spec_text())
    command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), "apply", str(spec)]
    reached = KILL_POINTS[point](sandbox)
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    while not reached() and victim.poll() is None:
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the apply finished before it could be killed"
    plan = sandbox.run("plan", "-o", "json", spec=spec)
    assert plan.code == 0, f"killed {point}, the next plan finds a conflict: {plan.stdout}{plan.stderr}"
    remaining = plan.json()["actions"]
    assert remaining, f"killed {point}, yet nothing was left to do"

    again = sandbox.run("apply", "-o", "json", spec=spec)
    assert again.code == 0, again.stderr
    assert again.json()["actions"] == remaining, "the finishing apply did other than what plan said was left"
    assert sandbox.run("status", "--detailed-exitcode", spec=spec).code == 0
    assert len([n for n in netns_names() if n.startswith(sandbox.prefix) and n != sandbox.host]) == COUNT
    assert "1 received" in sandbox.in_ns(f"c{COUNT - 1}", "ping -c1 -W2 172.22.0.2")

    destroyed = sandbox.run("destroy", spec=spec)
    assert destroyed.code == 0, destroyed.stderr
    assert debris(sandbox) == {"namespaces": [], "host links": [], "files": [], "nft": "", "state": []}


def test_an_interface_created_but_not_yet_marked_is_known_from_the_journal(sandbox):
    """The state a kill between creating a veth and marking it leaves: replaced, not a conflict."""
    from reconciler.kernel.statedir import StateDir
    from reconciler.drivers.bridge import veth_name

    spec = sandbox.write_spec("version: 1\nnetworks:\n  front: {bridge: '@br', subnet: 172.22.0.0/16}\n"
                              "containers:\n  '@c0': {networks: [front]}\n")
    subprocess.run(["ip", "netns", "add", sandbox.host], check=True)
    unmarked = veth_name(sandbox.name("c0"), "front")
    sandbox.host_sh(f"ip link add {unmarked} type veth peer name half0")
    conflict = sandbox.run("apply", spec=spec)
    assert conflict.code == 1 and f"interface {unmarked} exists and is not managed" in conflict.stderr

    StateDir(sandbox.state_dir, sandbox.host).write_pending_links({unmarked: "veth"})
    finished = sandbox.run("apply", spec=spec)
    assert finished.code == 0, finished.stderr
    assert sandbox.links(sandbox.host)[unmarked]["ifalias"] == f"netreconcile:veth:{sandbox.name('c0')}:front"
    assert "half0" not in sandbox.links(sandbox.host)
    assert sandbox.run("status", "--detailed-exitcode", spec=spec).code == 0
