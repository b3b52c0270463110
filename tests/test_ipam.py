"""IPAM (reconciler/state/ipam.py) over subnets of either family, and the family of address
and route objects. Pure: no kernel. IPv6 is not reachable from the spec yet (issue 14), so
the IPv6 cases build the spec values directly."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest

from reconciler.errors import SpecError
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.state.ipam import assign_addresses, free_addresses, reserved_addresses, sticky_address
from reconciler.state.model import Address, Route, State


def first(count: int, subnet: str, taken: tuple[str, ...] = ()) -> list[str]:
    free = free_addresses(ip_network(subnet), {ip_address(a) for a in taken})
    return [str(next(free)) for _ in range(count)]


def test_ipv4_reserves_the_network_and_broadcast_addresses():
    assert reserved_addresses(ip_network("198.51.100.0/30")) == {IPv4Address("198.51.100.0"),
                                                                 IPv4Address("198.51.100.3")}
    assert list(map(str, free_addresses(ip_network("198.51.100.0/30"), set()))) == ["198.51.100.1", "198.51.100.2"]
    assert list(free_addresses(ip_network("198.51.100.0/31"), set())) == []


def test_ipv6_reserves_only_the_subnet_router_anycast_address():
    assert reserved_addresses(ip_network("2001:db8::/126")) == {IPv6Address("2001:db8::")}
    # no broadcast in IPv6: the last address of the subnet is a host's
    assert list(map(str, free_addresses(ip_network("2001:db8::/126"), set()))) == [
        "2001:db8::1", "2001:db8::2", "2001:db8::3"]


@pytest.mark.parametrize("subnet, taken, expected", [
    ("198.51.100.0/24", ("198.51.100.1", "198.51.100.3"), ["198.51.100.2", "198.51.100.4"]),
    ("2001:db8:5::/64", ("2001:db8:5::1", "2001:db8:5::3"), ["2001:db8:5::2", "2001:db8:5::4"]),
])
def test_the_lowest_free_addresses_skip_taken_ones(subnet, taken, expected):
    assert first(2, subnet, taken) == expected


def test_free_addresses_read_taken_as_it_grows():
    taken = {ip_address("fd42::1")}
    free = free_addresses(ip_network("fd42::/120"), taken)
    assert next(free) == ip_address("fd42::2")
    taken.add(ip_address("fd42::3"))
    assert next(free) == ip_address("fd42::4")


@pytest.mark.parametrize("subnet, shown, taken, kept", [
    ("198.51.100.0/24", [("198.51.100.9", 24)], (), "198.51.100.9"),
    ("198.51.100.0/24", [("198.51.100.9", 16), ("198.51.100.7", 24)], (), "198.51.100.7"),  # prefix must match
    ("198.51.100.0/24", [("198.51.100.9", 24)], ("198.51.100.9",), None),  # taken by a static address
    ("2001:db8::/64", [("2001:db8::9", 64)], (), "2001:db8::9"),
    ("2001:db8::/64", [("2001:db8:1::9", 64), ("198.51.100.9", 64)], (), None),  # outside, other family
])
def test_sticky_address(subnet, shown, taken, kept):
    found = sticky_address(ip_network(subnet), {ip_address(a) for a in taken},
                           [(ip_address(a), prefix) for a, prefix in shown])
    assert found == (ip_address(kept) if kept else None)


def spec_with(subnet: str, gateway: str, *attachments: tuple[str, str | None], aux: tuple[str, ...] = ()) -> Spec:
    """One network with `subnet` (an IPv6 one as the subnet6 of a dual-stack network) and
    containers with static addresses of its family where given."""
    aux_addresses = tuple(map(ip_address, aux))
    if ip_network(subnet).version == 4:
        network = NetworkSpec("net", "br-net", ip_network(subnet), ip_address(gateway), aux_addresses=aux_addresses)
        static_field = "ipv4_address"
    else:
        network = NetworkSpec("net", "br-net", ip_network("198.51.100.0/24"), ip_address("198.51.100.1"),
                              aux_addresses=aux_addresses, enable_ipv6=True, subnet6=ip_network(subnet),
                              gateway6=ip_address(gateway))
        static_field = "ipv6_address"
    containers = tuple(
        ContainerSpec(name, (Attachment("net", **{static_field: ip_address(static) if static else None}),))
        for name, static in attachments
    )
    return Spec("spec.yaml", networks=(network,), containers=containers)


@pytest.mark.parametrize("subnet, gateway, aux, static, expected", [
    ("198.51.100.0/29", "198.51.100.1", ("198.51.100.2",), "198.51.100.4",
     {"a": "198.51.100.3", "b": "198.51.100.4", "c": "198.51.100.5"}),
    ("2001:db8:7::/64", "2001:db8:7::1", ("2001:db8:7::2",), "2001:db8:7::4",
     {"a": "2001:db8:7::3", "b": "2001:db8:7::4", "c": "2001:db8:7::5"}),
])
def test_assign_addresses_in_a_subnet_of_either_family(subnet, gateway, aux, static, expected):
    spec = spec_with(subnet, gateway, ("a", None), ("b", static), ("c", None), aux=aux)
    assigned = assign_addresses(spec, State(), family=ip_network(subnet).version)
    assert {container: str(address) for (container, _), address in assigned.items()} == expected


def test_assign_addresses_keeps_the_ipv6_address_the_kernel_shows():
    spec = spec_with("2001:db8:7::/64", "2001:db8:7::1", ("a", None), ("b", None))
    live = State.of([Address("b", "eth0", "2001:db8:7::2/64"), Address("b", "eth0", "198.51.100.7/24")])
    assigned = assign_addresses(spec, live, family=6)
    assert (str(assigned[("a", "net")]), str(assigned[("b", "net")])) == ("2001:db8:7::3", "2001:db8:7::2")


def test_an_exhausted_ipv6_subnet_names_the_network():
    spec = spec_with("2001:db8:7::/127", "2001:db8:7::1", ("a", None))
    with pytest.raises(SpecError, match="no free address left in 2001:db8:7::/127 of network 'net'"):
        assign_addresses(spec, State(), family=6)


def test_each_family_is_assigned_on_its_own_and_only_in_networks_that_have_it():
    dual = spec_with("2001:db8:7::/64", "2001:db8:7::1", ("a", None), ("b", "2001:db8:7::9"))
    ipv4_only = NetworkSpec("v4", "br-v4", ip_network("203.0.113.0/24"), ip_address("203.0.113.1"))
    spec = Spec("spec.yaml", networks=(*dual.networks, ipv4_only), containers=(
        *dual.containers, ContainerSpec("c", (Attachment("v4"),)),
    ))
    assert {key: str(a) for key, a in assign_addresses(spec, State(), family=6).items()} == {
        ("a", "net"): "2001:db8:7::2", ("b", "net"): "2001:db8:7::9",
    }
    assert {key: str(a) for key, a in assign_addresses(spec, State(), family=4).items()} == {
        ("a", "net"): "198.51.100.2", ("b", "net"): "198.51.100.3", ("c", "v4"): "203.0.113.2",
    }


@pytest.mark.parametrize("obj, family", [
    (Address("", "br-x", "198.51.100.1/24"), 4),
    (Address("c", "eth0", "2001:db8::5/64"), 6),
    (Route("c", "default", "198.51.100.1", "eth0"), 4),
    (Route("c", "default", "fd42::1", "eth0"), 6),
    (Route("c", "2001:db8:1::/48", "", "eth0"), 6),
    (Route("c", "203.0.113.0/24", "", "eth0"), 4),
    (Route("c", "default", "", "eth0", family=6), 6),  # as observed: a gatewayless IPv6 default route
])
def test_the_family_follows_from_the_address(obj, family):
    assert obj.family == family
