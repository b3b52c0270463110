"""Subnets for the networks the spec writes without one (pure): chosen as Docker chooses,
avoiding the host's networks, and kept once made.

A bridge network without `subnet:` gets the first free block of Docker's default pools
(reconciler.compose.pools, which `netreconcile import` uses too): a /24, a /16 for a
network named `bridge` (Docker's default bridge, which exists before any other network
and so chooses first), larger when more containers are attached than it holds. Free
means: overlapping no other network of the spec and no network of the host namespace
(`State.host_networks`: its routes and the addresses of interfaces netreconcile does not
own, observed by the caller). A subnet shadowing a VPN or an office LAN is Docker's most
reported complaint.

The choice sticks as addresses do: once the network's bridge has its gateway address,
the subnet (and gateway) are read back from it, so a host route that appears later over
it changes nothing. It is chosen again only when the bridge has none, when its subnet now
overlaps a network the spec writes, or is too small for the containers attached; a spec
that writes a subnet has that one.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, ip_interface, ip_network

from reconciler.compose.pools import (
    DEFAULT_BRIDGE_SIZE, DEFAULT_POOLS, NETWORK_SIZE, PoolError, choose_subnet, size_for,
)
from reconciler.errors import Problem, SpecError
from reconciler.spec.types import NetworkSpec, Spec
from reconciler.state.model import HOST_NS, Address, Bridge, State

DEFAULT_BRIDGE_NAME = "bridge"  # the network Docker cuts a /16 for
RESERVED_PER_SUBNET = 3  # network, gateway and broadcast addresses


def needs_choice(spec: Spec | None) -> bool:
    """Whether some network of `spec` has its subnet chosen at plan time."""
    return spec is not None and any(network.subnet is None for network in spec.networks)


def chosen_size(network: NetworkSpec, attached: int) -> int:
    """The prefix length chosen for `network` with `attached` containers: Docker's size
    (a /24, a /16 for `bridge`), larger if they need more room."""
    largest = DEFAULT_BRIDGE_SIZE if network.name == DEFAULT_BRIDGE_NAME else NETWORK_SIZE
    return size_for(attached, largest)


def with_chosen_subnets(spec: Spec, live: State) -> Spec:
    """`spec` with a subnet and gateway for each network that writes none (`subnet_chosen`),
    kept from its bridge in `live` or chosen anew; `spec` itself when none lacks one.
    SpecError, at the network, when the pools have no room left."""
    if not needs_choice(spec):
        return spec
    attached = Counter(a.network for container in spec.containers for a in container.networks)
    taken: list[IPv4Network] = [network.subnet for network in spec.networks if network.subnet is not None]
    kept: dict[str, tuple[IPv4Network, IPv4Address]] = {}
    on_bridges = _bridge_addresses(live)
    for network in (network for network in spec.networks if network.subnet is None):
        found = _read_back(network, live, on_bridges.get(network.bridge, []), attached[network.name])
        if found is not None and not _overlaps(found[0], taken):
            kept[network.name] = found
            taken.append(found[0])
    host = [subnet for subnet in (ip_network(cidr, strict=False) for cidr in live.host_networks)
            if subnet.version == 4]
    chosen: dict[str, NetworkSpec] = {}
    problems = []
    # Docker's default bridge exists before any other network of a Docker host: it chooses first
    for network in sorted(spec.networks, key=lambda network: network.name != DEFAULT_BRIDGE_NAME):
        if network.subnet is not None:
            continue
        if network.name in kept:
            subnet, gateway = kept[network.name]
        else:
            try:
                subnet = choose_subnet(DEFAULT_POOLS, [*taken, *host], chosen_size(network, attached[network.name]))
            except PoolError as error:
                problems.append(Problem(network.location, f"networks.{network.name}",
                                        f"no subnet can be chosen ({error}): write one"))
                continue
            gateway = subnet.network_address + 1
            taken.append(subnet)
        chosen[network.name] = dataclasses.replace(network, subnet=subnet, gateway=gateway, subnet_chosen=True)
    if problems:
        raise SpecError(problems)
    return dataclasses.replace(spec, networks=tuple(chosen.get(network.name, network) for network in spec.networks))


def _bridge_addresses(live: State) -> dict[str, list[str]]:
    """The IPv4 addresses (CIDR) on each interface of the host namespace in `live`, sorted."""
    found: dict[str, list[str]] = {}
    for obj in live.objects.values():
        if isinstance(obj, Address) and obj.netns == HOST_NS and obj.family == 4:
            found.setdefault(obj.ifname, []).append(obj.cidr)
    return {ifname: sorted(cidrs) for ifname, cidrs in found.items()}


def _read_back(network: NetworkSpec, live: State, cidrs: list[str],
               attached: int) -> tuple[IPv4Network, IPv4Address] | None:
    """The subnet and gateway the network's bridge in `live` has: the first of its IPv4
    addresses that is a host address of a subnet with room for the `attached` containers;
    None when the bridge is not this network's or has no such address."""
    bridge = live.objects.get(("bridge", network.bridge))
    if not isinstance(bridge, Bridge) or bridge.network != network.name:
        return None
    for cidr in cidrs:
        interface = ip_interface(cidr)
        subnet = interface.network
        usable = subnet.num_addresses - RESERVED_PER_SUBNET
        if interface.ip not in (subnet.network_address, subnet.broadcast_address) and usable >= attached:
            return subnet, interface.ip
    return None


def _overlaps(subnet: IPv4Network, others: Iterable[IPv4Network]) -> bool:
    return any(subnet.overlaps(other) for other in others)
