"""All or nothing: an apply that fails part-way leaves the host as it found it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.kernel.nlsocket import NetlinkSocket
from tests.conftest import REPO, netns_names, sh

pytestmark = pytest.mark.kernel

BEFORE = """\
version: 1
networks:
  front: {bridge: "@br", subnet: 172.23.0.0/24}
containers:
  "@web": {networks: [front], ports: ["8080:80"]}
  "@db": {networks: [front]}
  "@old": {networks: [front]}
"""
# every kind of change: a container added and one removed, an address moved, a port changed
AFTER = """\
version: 1
networks:
  front: {bridge: "@br", subnet: 172.23.0.0/24}
  back: {bridge: "@bk", subnet: 172.23.1.0/24}
containers:
  "@web": {networks: [front, back], ports: ["8081:80"]}
  "@db": {networks: {front: {ipv4_address: 172.23.0.77}}}
  "@new": {networks: [back]}
"""


def snapshot(sandbox) -> dict:
    """Everything netreconcile could have touched, without what the kernel renumbers."""
    names = sorted(n for n in netns_names() if n.startswith(sandbox.prefix))
    state = {"namespaces": names}
    for name in names:
        links = json.loads(sh(f"ip -n {name} -j -d link show"))
        # the host ends of veths get random MACs from the kernel: netreconcile does not manage them
        state[f"{name} links"] = sorted(
            (link["ifname"], None if name == sandbox.host and link["ifname"].startswith("veth") else link.get("address"),
             link["mtu"], link.get("master"), "UP" in link["flags"], link.get("ifalias")) for link in links)
        state[f"{name} addresses"] = sorted(sh(f"ip -n {name} -4 -o addr show").split("\n"))
        state[f"{name} routes"] = sh(f"ip -n {name} route show")
        etc = Path("/etc/netns") / name
        state[f"{name} files"] = {f.name: f.read_text() for f in sorted(etc.iterdir())} if etc.is_dir() else {}
    state["firewall"] = re.sub(r" # handle \d+", "", sh(f"ip netns exec {sandbox.host} nft list ruleset"))
    state["ip_forward"] = sh(f"ip netns exec {sandbox.host} sysctl -n net.ipv4.ip_forward")
    return state


def run_failing(sandbox, spec: Path, fail_after: int, *extra: str):
    command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), "apply", *extra, str(spec)]
    environment = {**os.environ, "NETRECONCILE_FAIL_AFTER": str(fail_after)}
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPO, timeout=300)


@pytest.mark.parametrize("fail_after", [0, 1, 3, 6, 10, 16])
def test_an_apply_failing_after_n_actions_is_rolled_back(sandbox, fail_after):
    before_spec = sandbox.write_spec(BEFORE)
    sandbox.apply(before_spec)
    before = snapshot(sandbox)
    after_spec = sandbox.write_spec(AFTER, "after.yaml")
    total = len(sandbox.run("plan", "-o", "json", spec=after_spec).json()["actions"])
    assert total > 16

    result = run_failing(sandbox, after_spec, fail_after)
    assert result.returncode == 1
    assert f"injected failure after action {fail_after} of {total}" in result.stderr
    assert "rolled back: the host is as it was before" in result.stderr
    assert snapshot(sandbox) == before
    assert sandbox.run("status", "--detailed-exitcode", spec=before_spec).code == 0


def test_no_rollback_keeps_the_partial_changes_and_the_next_apply_converges(sandbox):
    before_spec = sandbox.write_spec(BEFORE)
    sandbox.apply(before_spec)
    before = snapshot(sandbox)
    after_spec = sandbox.write_spec(AFTER, "after.yaml")
    result = run_failing(sandbox, after_spec, 6, "--no-rollback")
    assert result.returncode == 1 and "rolled back" not in result.stderr
    assert snapshot(sandbox) != before
    sandbox.apply(after_spec)
    assert sandbox.run("status", "--detailed-exitcode", spec=after_spec).code == 0


def test_a_real_failure_part_way_is_rolled_back_and_named_with_its_location(sandbox, tmp_path):
    etc = tmp_path / "etc-netns"
    etc.mkdir()
    before_spec = sandbox.write_spec(BEFORE)
    assert sandbox.run("--etc-netns", str(etc), "apply", spec=before_spec).code == 0
    # an immutable directory: nothing can be written in it, not even by root (a file or a
    # link there would be a conflict found before any change)
    immutable = etc / sandbox.name("new")
    immutable.mkdir()
    after_spec = sandbox.write_spec(AFTER, "after.yaml")
    links_before = set(sandbox.links(sandbox.host))
    sh(f"chattr +i {immutable}")
    try:
        result = sandbox.run("--etc-netns", str(etc), "apply", spec=after_spec)
    finally:
        sh(f"chattr -i {immutable}")
    assert result.code == 1
    assert re.search(rf"{re.escape(str(after_spec))}:\d+:\d+: cannot create file {sandbox.name('new')}/", result.stderr)
    assert "rolled back: the host is as it was before" in result.stderr
    assert set(sandbox.links(sandbox.host)) == links_before
    assert sandbox.name("new") not in netns_names()
    assert sandbox.run("--etc-netns", str(etc), "status", "--detailed-exitcode", spec=before_spec).code == 0


# make before break: @x goes and @y takes its address; @keep leaves the network spare,
# which goes too. The namespace of @x and the interface of @keep on spare are deleted
# only after everything else, then the bridge of spare.
KEPT_BEFORE = """\
version: 1
networks:
  front: {bridge: "@br", subnet: 172.23.0.0/24}
  spare: {bridge: "@sp", subnet: 172.23.1.0/24}
containers:
  "@x": {networks: {front: {ipv4_address: 172.23.0.10}}}
  "@keep": {networks: [front, spare]}
"""
KEPT_AFTER = """\
version: 1
networks:
  front: {bridge: "@br", subnet: 172.23.0.0/24}
containers:
  "@y": {networks: {front: {ipv4_address: 172.23.0.10}}}
  "@keep": {networks: [front]}
"""
BREAK_KINDS = {"veth", "alias", "netns", "bridge"}


def namespace_identity(sandbox, short: str) -> dict:
    """The namespace's cookie (its inode number may be given to a new namespace once the
    old one is freed; a cookie is never reused) and its addresses."""
    fd = os.open(f"/run/netns/{sandbox.name(short)}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sock = NetlinkSocket.open_in(fd)
    finally:
        os.close(fd)
    try:
        cookie = sock.netns_cookie()
    finally:
        sock.close()
    return {"cookie": cookie, "addresses": json.loads(sh(f"ip -n {sandbox.name(short)} -j addr"))}


def planned(sandbox, spec: Path) -> list[tuple[str, str, str]]:
    return [(a["op"], a["kind"], a["description"])
            for a in sandbox.run("plan", "-o", "json", spec=spec).json()["actions"]]


def test_the_break_comes_last(sandbox):
    sandbox.apply(sandbox.write_spec(KEPT_BEFORE))
    actions = planned(sandbox, sandbox.write_spec(KEPT_AFTER, "after.yaml"))
    first_break = next(i for i, (op, kind, _) in enumerate(actions) if op == "delete" and kind in BREAK_KINDS)
    assert [(op, kind) for op, kind, _ in actions[first_break:]] == [
        ("delete", "veth"), ("delete", "netns"), ("delete", "bridge")]
    assert actions[0] == ("delete", "address", f"172.23.0.10/24 on {sandbox.name('x')}:eth0")
    assert ("create", "netns", sandbox.name("y")) in actions[1:first_break]


@pytest.mark.parametrize("before_the_break", [1, 2])
def test_a_failure_before_the_break_leaves_running_containers_untouched(sandbox, before_the_break):
    sandbox.apply(sandbox.write_spec(KEPT_BEFORE))
    before = snapshot(sandbox)
    x_before, keep_before = namespace_identity(sandbox, "x"), namespace_identity(sandbox, "keep")
    after_spec = sandbox.write_spec(KEPT_AFTER, "after.yaml")
    actions = planned(sandbox, after_spec)
    first_break = next(i for i, (op, kind, _) in enumerate(actions) if op == "delete" and kind in BREAK_KINDS)
    fail_after = 1 if before_the_break == 1 else first_break  # the first action, or the last one before the break

    result = run_failing(sandbox, after_spec, fail_after)
    assert result.returncode == 1
    assert f"injected failure after action {fail_after} of {len(actions)}" in result.stderr
    assert "rolled back: the host is as it was before" in result.stderr
    assert "not undone" not in result.stderr
    assert namespace_identity(sandbox, "x") == x_before
    assert namespace_identity(sandbox, "keep") == keep_before
    assert snapshot(sandbox) == before


def test_a_failure_after_the_break_says_what_cannot_be_undone(sandbox):
    before_spec = sandbox.write_spec(KEPT_BEFORE)
    sandbox.apply(before_spec)
    x_before = namespace_identity(sandbox, "x")
    after_spec = sandbox.write_spec(KEPT_AFTER, "after.yaml")
    actions = planned(sandbox, after_spec)
    netns_deleted = actions.index(("delete", "netns", sandbox.name("x"))) + 1
    assert netns_deleted < len(actions)  # the bridge of spare is still to go

    result = run_failing(sandbox, after_spec, netns_deleted)
    assert result.returncode == 1
    assert "as it was before" not in result.stderr
    assert "but not everything can be restored" in result.stderr
    assert f"not undone: namespace {sandbox.name('x')} was deleted" in result.stderr
    assert f"not undone: interface eth1 of container {sandbox.name('keep')}" in result.stderr
    # the rollback made a namespace of that name again: a new one
    assert namespace_identity(sandbox, "x")["cookie"] != x_before["cookie"]
    assert sandbox.run("status", "--detailed-exitcode", spec=before_spec).code == 0


def test_a_late_failure_in_a_large_apply_is_rolled_back_without_a_difference_left(sandbox):
    """Issue 19: at scale (200 containers joining 20: files written on threads,
    a thousand actions), a failure near the end still leaves the host as it was."""
    def spec(count: int) -> str:
        return ('version: 1\nnetworks:\n  front: {bridge: "@br", subnet: 172.23.0.0/16}\ncontainers:\n'
                + "".join(f'  "@c{n}": {{networks: [front]}}\n' for n in range(count)))

    sandbox.apply(sandbox.write_spec(spec(20)))
    before = snapshot(sandbox)
    large = sandbox.write_spec(spec(220), "large.yaml")
    actions = planned(sandbox, large)
    assert len(actions) > 1000
    result = run_failing(sandbox, large, len(actions) - 2)
    assert result.returncode == 1
    assert "rolled back: the host is as it was before" in result.stderr, result.stderr[-2000:]
    assert snapshot(sandbox) == before
