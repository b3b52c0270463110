"""A "LAN" for kernel tests of containers on the LAN: a namespace standing for the LAN
(its router address on it), joined to the sandbox's host namespace by an unmanaged veth
pair whose host end is the interface netreconcile is given (a macvlan parent)."""

from __future__ import annotations

from tests.conftest import sh


def make_lan(sandbox, parent: str, router: str | None = None, short: str = "lan") -> str:
    """The LAN namespace's name (cleaned up with the sandbox); `router`: its address (CIDR)."""
    lan = sandbox.name(short)
    if not sh(f"ip netns list | grep -w {sandbox.host} || true").strip():
        sh(f"ip netns add {sandbox.host}")
    sh(f"ip netns add {lan}")
    sh(f"ip -n {lan} link set lo up")
    plug_in(sandbox, parent, lan, router)
    return lan


def plug_in(sandbox, parent: str, lan: str, router: str | None = None) -> None:
    """(Again) the veth pair between the host's `parent` and the LAN's `wire0`, up, with
    the router's address (CIDR) on `wire0` if given."""
    sh(f"ip -n {sandbox.host} link add {parent} type veth peer name wire0 netns {lan}")
    sh(f"ip -n {sandbox.host} link set {parent} up")
    sh(f"ip -n {lan} link set wire0 up")
    if router is not None:
        sh(f"ip -n {lan} addr add {router} dev wire0")


UNDERLAY = {"a": "198.51.100.1", "b": "198.51.100.2"}


def join_by_underlay(host_a: str, host_b: str) -> None:
    """An unmanaged veth pair `under` between two throwaway host namespaces (made here),
    198.51.100.1/24 on the first and .2/24 on the second: the underlay of an overlay test."""
    for name in (host_a, host_b):
        sh(f"ip netns add {name}")
    sh(f"ip -n {host_a} link add under type veth peer name under netns {host_b}")
    for name, address in ((host_a, UNDERLAY["a"]), (host_b, UNDERLAY["b"])):
        sh(f"ip -n {name} addr add {address}/24 dev under")
        sh(f"ip -n {name} link set under up")
