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
