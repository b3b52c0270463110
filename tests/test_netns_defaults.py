"""Namespaces and links by the thousand. The IPv6 defaults of many new namespaces, written
by a forked child through a proc instance of its own (the host's /proc walks one dentry
per namespace for each new one): each namespace gets exactly its defaults, and the host's
mounts are as they were. Thousands of link lookups in one call."""

from __future__ import annotations

import os

import pytest

from reconciler.kernel.namespaces import (
    FRESH_PROC_EVERY, FRESH_PROC_FROM, create_netns, prepare_netns_dir, write_ipv6_defaults,
)
from reconciler.kernel.nlsocket import NetlinkSocket
from tests.conftest import sh

pytestmark = pytest.mark.kernel


def proc_mounts() -> list[str]:
    """The host's mounts of proc instances and on /proc (namespace names come and go)."""
    return sorted(line.split(" - ")[0].split()[4] + " " + line.split(" - ")[1].split()[0]
                  for line in open("/proc/self/mountinfo")
                  if line.split()[4].startswith("/proc") or line.split(" - ")[1].startswith("proc "))


def sysctl(netns: str, setting: str) -> str:
    return sh(f"ip netns exec {netns} cat /proc/sys/net/ipv6/conf/{setting}").strip()


def test_many_new_namespaces_get_their_ipv6_defaults_and_the_host_mounts_stay(sandbox):
    count = max(FRESH_PROC_FROM, FRESH_PROC_EVERY + 8)  # through more than one proc instance
    mounts = proc_mounts()
    prepare_netns_dir()
    created = []
    try:
        for number in range(count):
            fd, sock = create_netns(sandbox.name(f"n{number}"), defaults=False)
            sock.close()
            created.append((fd, number % 2 == 0))  # even: IPv6 on, with the quiet defaults
        write_ipv6_defaults(created)
    finally:
        for fd, _ in created:
            os.close(fd)
    for number in (0, 1, count - 2, count - 1):
        name = sandbox.name(f"n{number}")
        if number % 2 == 0:
            assert (sysctl(name, "all/disable_ipv6"), sysctl(name, "default/addr_gen_mode"),
                    sysctl(name, "default/dad_transmits"), sysctl(name, "default/router_solicitations")) == \
                ("0", "1", "0", "0"), name
        else:
            assert (sysctl(name, "all/disable_ipv6"), sysctl(name, "default/disable_ipv6"),
                    sysctl(name, "lo/disable_ipv6")) == ("1", "1", "1"), name
    assert proc_mounts() == mounts


def test_a_few_new_namespaces_are_written_in_process(sandbox):
    prepare_netns_dir()
    fd, sock = create_netns(sandbox.name("one"), defaults=False)
    sock.close()
    try:
        write_ipv6_defaults([(fd, False)])
    finally:
        os.close(fd)
    assert sysctl(sandbox.name("one"), "default/disable_ipv6") == "1"


def test_thousands_of_link_lookups_in_one_call_are_answered(sandbox):
    """One GETLINK per name, 5000 at once (a floor or a writer looking up every host veth
    at 5000 containers): sent in batches, not in one send the kernel refuses (EMSGSIZE)."""
    sh(f"ip netns add {sandbox.host}")
    sh(f"ip -n {sandbox.host} link add probe0 type bridge")
    fd = os.open(f"/run/netns/{sandbox.host}", os.O_RDONLY)
    try:
        sock = NetlinkSocket.open_in(fd)
        try:
            found = sock.link_indexes([f"absent{number}" for number in range(5000)] + ["probe0"])
        finally:
            sock.close()
    finally:
        os.close(fd)
    assert list(found) == ["probe0"]
