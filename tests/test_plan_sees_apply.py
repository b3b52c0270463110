"""plan sees what apply will hit, and an apply that fails before changing anything changes nothing,
not even the --host-netns namespace it would have created."""

from __future__ import annotations

import os
import subprocess

import pytest

from reconciler.kernel.nlsocket import NetlinkSocket
from reconciler.kernel.statedir import StateDir
from tests.conftest import netns_names

pytestmark = pytest.mark.kernel

ONE = "version: 1\nnetworks:\n  front: {bridge: '@br', subnet: 172.30.7.0/24}\ncontainers:\n  '@c0': {networks: [front]}\n"


def cookie_of(name: str) -> int:
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sock = NetlinkSocket.open_in(fd)
        try:
            return sock.netns_cookie()
        finally:
            sock.close()
    finally:
        os.close(fd)


def test_plan_without_the_host_namespace_sees_the_namespace_apply_will_hit(sandbox):
    spec = sandbox.write_spec(ONE)
    subprocess.run(["ip", "netns", "add", sandbox.name("c0")], check=True)  # a stranger's namespace
    conflict = f"{spec}:5:3: network namespace {sandbox.name('c0')} exists and is not managed by netreconcile"
    assert sandbox.host not in netns_names()

    plan = sandbox.run("plan", spec=spec)
    status = sandbox.run("status", "-o", "json", spec=spec)
    applied = sandbox.run("apply", spec=spec)

    assert plan.code == 1 and f"conflict: {conflict}" in plan.stdout
    assert status.code == 1 and status.json()["conflicts"] == [conflict]
    assert applied.code == 1 and f"error: {conflict}\nnothing was changed" in applied.stderr
    assert sandbox.host not in netns_names(), "the failed apply left the host namespace it created"


def test_a_failed_apply_keeps_a_host_namespace_that_was_there_before(sandbox):
    spec = sandbox.write_spec(ONE)
    subprocess.run(["ip", "netns", "add", sandbox.host], check=True)
    subprocess.run(["ip", "netns", "add", sandbox.name("c0")], check=True)

    assert sandbox.run("apply", spec=spec).code == 1
    assert sandbox.host in netns_names()


def test_a_namespace_managed_for_another_host_namespace_is_named_as_such(sandbox):
    spec = sandbox.write_spec(ONE)
    sandbox.apply(spec)
    other = sandbox.name("other-host")
    command = ["--host-netns", other]
    conflict = (f"{spec}:5:3: network namespace {sandbox.name('c0')} is managed by netreconcile "
                f"for host namespace {sandbox.host}, not for this one")

    plan = sandbox.run(*command, "plan", spec=spec)
    applied = sandbox.run(*command, "apply", spec=spec)

    assert plan.code == 1 and f"conflict: {conflict}" in plan.stdout
    assert applied.code == 1 and f"error: {conflict}\nnothing was changed" in applied.stderr
    assert other not in netns_names()


def test_a_namespace_recorded_for_the_root_namespace_is_named_as_such_while_it_is_the_recorded_one(sandbox):
    spec = sandbox.write_spec(ONE)
    name = sandbox.name("c0")
    subprocess.run(["ip", "netns", "add", name], check=True)
    root_record = StateDir(sandbox.state_dir, None)

    root_record.write_netns_record({name: cookie_of(name)})
    recorded = sandbox.run("plan", spec=spec)
    root_record.write_netns_record({name: cookie_of(name) + 1})  # made again by someone else since
    stale = sandbox.run("plan", spec=spec)

    assert (f"network namespace {name} is managed by netreconcile for the root network namespace "
            "(no --host-netns), not for this one") in recorded.stdout
    assert f"network namespace {name} exists and is not managed by netreconcile" in stale.stdout


def test_an_apply_rolled_back_to_nothing_removes_the_host_namespace_it_created(sandbox, monkeypatch):
    spec = sandbox.write_spec(ONE)
    monkeypatch.setenv("NETRECONCILE_FAIL_AFTER", "3")  # after the bridge, the namespace and the veth

    applied = sandbox.run("apply", spec=spec)

    assert applied.code == 1 and "rolled back: the host is as it was before" in applied.stderr, applied.stderr
    assert not {sandbox.host, sandbox.name("c0")} & netns_names(), "the rolled-back apply left namespaces behind"
