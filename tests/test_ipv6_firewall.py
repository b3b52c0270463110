"""The firewall's IPv6 side with real traffic between throwaway namespaces: NAT66 (and
routed IPv6 with `masquerade6: false`), published ports per family, isolation,
`internal`, `icc: false` and hairpin.

The world is tests/test_firewall.py's (a sandbox host namespace, an "outside" namespace
joined to it by an unmanaged veth pair, echo servers that answer with the client address
they see), with dual-stack networks and an IPv6 uplink: 2001:db8:100::1 on the host,
2001:db8:100::2 outside. The outside routes the containers' subnet6s through the host,
so that it is the firewall, not missing routes, that keeps traffic out where it must
stay out (and so that routed IPv6 has a way back).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import eventually, sh
from tests.test_firewall import HOST_UPLINK, OUTSIDE, World
from tests.test_firewall import SPEC as IPV4_SPEC

pytestmark = pytest.mark.kernel

HOST6, OUTSIDE6 = "2001:db8:100::1", "2001:db8:100::2"
SEALED_GATEWAY6 = "fd42:29:3::1"  # the default gateway6: the first address of subnet6
BRIDGE_NF6 = "net.bridge.bridge-nf-call-ip6tables"

IPV4_PORTS = 'ports: ["8080:8000", "127.0.0.1:8081:8000", "5353:5300/udp"]'
DUAL_STACK_PORTS = 'ports: ["8080:8000", "[2001:db8:100::1]:8081:8000", "0.0.0.0:8082:8000", "[::]:8083:8000", "5353:5300/udp"]'


def dual_stack(spec: str) -> str:
    """tests/test_firewall.py's spec with IPv6 on every network (subnet6 fd42:29:N::/64
    beside 172.29.N.0/24), masquerade6 on front and ports of both families."""
    for number in (1, 2, 3):
        subnet = f"subnet: 172.29.{number}.0/24\n"
        assert subnet in spec
        spec = spec.replace(subnet, f'{subnet}    enable_ipv6: true\n    subnet6: "fd42:29:{number}::/64"\n')
    assert "icc: {icc}\n" in spec and IPV4_PORTS in spec
    return spec.replace("icc: {icc}\n", "icc: {icc}\n    masquerade6: MASQUERADE6\n").replace(IPV4_PORTS, DUAL_STACK_PORTS)


SPEC = dual_stack(IPV4_SPEC)


class DualStackWorld(World):
    """World with dual-stack networks, an IPv6 uplink and IPv6 echo servers."""

    def build(self, icc: bool = True, text: str = SPEC, masquerade6: bool = True):
        spec = super().build(icc=icc, text=text.replace("MASQUERADE6", str(masquerade6).lower()))
        box, uplink = self.sandbox, self.sandbox.name("up")
        for netns, ifname, address in ((box.host, uplink, HOST6), (self.outside, "up0", OUTSIDE6)):
            sh(f"ip -n {netns} addr add {address}/64 dev {ifname} nodad")
        sh(f"ip -n {self.outside} -6 route add fd42:29::/32 via {HOST6}")
        self.serve(self.outside, "tcp", 8000, "::")
        for container in ("web", "client", "other", "vault"):
            self.serve(box.name(container), "tcp", 8000, "::")
        self.serve(box.name("web"), "udp", 5300, "::")
        return spec

    def address6(self, short: str) -> str:
        """The container's IPv6 address on eth0 (netreconcile's IPAM picked it)."""
        (link,) = json.loads(self.sandbox.in_ns(short, "ip -j -6 addr show dev eth0"))
        (address,) = [a["local"] for a in link["addr_info"] if a.get("scope") == "global"]
        return address

    def gateway6(self, short: str) -> str:
        (route,) = json.loads(self.sandbox.in_ns(short, "ip -j -6 route show default"))
        return route["gateway"]

    def ping6(self, short: str, address: str) -> bool:
        return "1 received" in self.sandbox.in_ns(short, f"ping -6 -c1 -W1 {address}", check=False)

    def set_bridge_nf(self, value: int) -> None:
        super().set_bridge_nf(value)  # skips where br_netfilter is not loaded
        self.sandbox.host_sh(f"sysctl -qw {BRIDGE_NF6}={value}")


@pytest.fixture
def world(sandbox):
    outside = DualStackWorld(sandbox)
    try:
        yield outside
    finally:
        outside.stop()


def test_containers_reach_the_ipv6_outside_from_the_hosts_address(world):
    """NAT66, as Docker's default."""
    world.build()
    assert world.ask_from("client", OUTSIDE6, 8000) == HOST6
    assert world.ask_from("client", OUTSIDE, 8000) == HOST_UPLINK  # and IPv4 as before
    assert world.sandbox.host_sh("sysctl -n net.ipv6.conf.all.forwarding").strip() == "1"


def test_masquerade6_false_routes_the_containers_own_ipv6_addresses(world):
    world.build(masquerade6=False)
    assert world.ask_from("client", OUTSIDE6, 8000) == world.address6("client")
    assert world.ask_from("client", OUTSIDE, 8000) == HOST_UPLINK  # IPv4 is still masqueraded
    # routed does not mean open: the outside still cannot reach an unpublished port
    assert world.ask(world.outside, world.address6("web"), 8000) is None


def test_ports_are_published_per_family_and_keep_the_ipv6_client_address(world):
    world.build()
    # no host IP: both families; the host's IPv6 address: IPv6 only
    assert world.ask(world.outside, HOST6, 8080) == OUTSIDE6  # no proxy: the real client address
    assert world.ask(world.outside, HOST_UPLINK, 8080) == OUTSIDE
    assert world.ask(world.outside, HOST6, 8081) == OUTSIDE6
    assert world.ask(world.outside, HOST6, 5353, "udp") == OUTSIDE6
    # 0.0.0.0 is IPv4 only, :: IPv6 only (Docker's rule)
    assert world.ask(world.outside, HOST_UPLINK, 8082) == OUTSIDE
    assert world.ask(world.outside, HOST6, 8082) is None
    assert world.ask(world.outside, HOST6, 8083) == OUTSIDE6
    assert world.ask(world.outside, HOST_UPLINK, 8083) is None
    # from the host itself, through its own IPv6 address
    assert world.ask(world.sandbox.host, HOST6, 8080) is not None
    # routable, but not published; and a port published on nothing
    assert world.ask(world.outside, world.address6("web"), 8000) is None
    assert world.ask(world.outside, HOST6, 8084) is None


def test_ipv6_networks_are_isolated_and_internal_ones_keep_in(world):
    world.build()
    web6, other6, vault6 = (world.address6(name) for name in ("web", "other", "vault"))
    assert world.ask_from("client", web6, 8000) == world.address6("client")  # same network, icc: true
    assert world.ask_from("other", web6, 8000) is None
    assert world.ask_from("client", other6, 8000) is None
    assert world.ask_from("client", vault6, 8000) is None
    assert world.ask_from("other", HOST6, 8080) is not None  # published: reachable through the host
    # an internal network has no IPv6 default route; with one added by hand the firewall still says no
    assert world.sandbox.in_ns("vault", "ip -6 route show default").strip() == ""
    world.sandbox.in_ns("vault", f"ip -6 route add 2001:db8:100::/64 via {SEALED_GATEWAY6}")
    assert world.ping6("vault", SEALED_GATEWAY6)
    assert not world.ping6("vault", OUTSIDE6)
    assert world.ask_from("vault", OUTSIDE6, 8000) is None
    assert world.ask(world.outside, vault6, 8000) is None


@pytest.mark.parametrize("bridge_nf", [0, 1], ids=["br_netfilter-off", "br_netfilter-on"])
def test_icc_false_keeps_containers_apart_over_ipv6(world, bridge_nf):
    world.build(icc=False)
    world.set_bridge_nf(bridge_nf)
    web6 = world.address6("web")
    assert not world.ping6("client", web6)
    assert world.ask_from("client", web6, 8000) is None
    assert world.ping6("client", world.gateway6("client"))
    assert world.ask_from("client", OUTSIDE6, 8000) == HOST6


@pytest.mark.parametrize("bridge_nf", [0, 1], ids=["br_netfilter-off", "br_netfilter-on"])
@pytest.mark.parametrize("icc", [True, False], ids=["icc", "no-icc"])
def test_hairpin_reaches_published_ports_over_ipv6(world, bridge_nf, icc):
    world.build(icc=icc)
    world.set_bridge_nf(bridge_nf)
    # a neighbour through the host's IPv6 address; the first answer is waited for: right
    # after the apply one try in about sixteen went unanswered (not explained; later tries answer)
    assert eventually(lambda: world.ask_from("client", HOST6, 8080), "client reaches web via the host's IPv6")
    assert world.ask_from("web", HOST6, 8080) is not None  # itself through the host's IPv6 address
    assert world.ask_from("client", HOST6, 5353, "udp") is not None


def test_a_second_apply_of_a_dual_stack_firewall_is_a_no_op(world):
    spec = world.build(icc=False)
    table = world.sandbox.host_sh("nft list table inet netreconcile")
    assert "meta nfproto ipv6 dnat ip6 to tcp dport map @published_ip6_tcp" in table
    assert f"8080 : {world.address6('web')} . 8000" in table
    assert 'ip6 saddr fd42:29:1::/64 oifname != "' in table
    again = world.sandbox.run("apply", "-o", "json", spec=spec)
    assert again.code == 0, again.stderr
    assert again.json()["actions"] == []
