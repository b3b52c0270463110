"""IP address management: which interface name and which IPv4 address each container attachment gets.

Static addresses first, then each dynamic container keeps the address the kernel shows it
already has, then the rest get the lowest free address; interface names likewise: the one
given, else the one the kernel shows, else the lowest free ethN. Pure: the live state is
passed in.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from reconciler.errors import Problem, SpecError
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.state.model import HOST_NS, Address, State, Veth


def container_ifname(index: int) -> str:
    return f"eth{index}"


def assign_interfaces(spec: Spec, live: State) -> dict[tuple[str, str], str]:
    """The container-side interface name per (container, network): `interface_name`
    when given, else the name the kernel shows it already has, else the lowest free
    ethN, so that joining or leaving a network never renames the other interfaces."""
    existing = {
        (veth.container, veth.network): veth.peer_ifname
        for veth in live.of_kind(Veth) if veth.netns == veth.container and veth.peer_ifname != "?"
    }
    result: dict[tuple[str, str], str] = {}
    for container in spec.containers:
        taken = {a.interface_name for a in container.networks if a.interface_name}
        waiting = []
        for attachment in container.networks:
            key = (container.name, attachment.network)
            kept = existing.get(key)
            if attachment.interface_name:
                result[key] = attachment.interface_name
            elif kept and kept not in taken:
                result[key] = kept
                taken.add(kept)
            else:
                waiting.append(key)
        index = 0
        for key in waiting:
            while container_ifname(index) in taken:
                index += 1
            result[key] = container_ifname(index)
            taken.add(result[key])
    return result


def assign_addresses(
    spec: Spec, live: State, interfaces: dict[tuple[str, str], str] | None = None,
) -> dict[tuple[str, str], IPv4Address]:
    """IPv4 address per (container, network)."""
    interfaces = assign_interfaces(spec, live) if interfaces is None else interfaces
    live_addresses = _live_addresses(live)
    result: dict[tuple[str, str], IPv4Address] = {}
    problems: list[Problem] = []
    members_of: dict[str, list[tuple[ContainerSpec, Attachment]]] = {}
    for container in spec.containers:
        for attachment in container.networks:
            members_of.setdefault(attachment.network, []).append((container, attachment))
    for network in spec.networks:
        members = members_of.get(network.name, [])
        try:
            result.update(_assign_in_network(network, members, live_addresses, interfaces))
        except _PoolExhausted as exhausted:
            problems.append(
                Problem(exhausted.attachment.location, f"containers.{exhausted.container}.networks",
                        f"no free address left in {network.subnet} of network '{network.name}'")
            )
    if problems:
        raise SpecError(problems)
    return result


class _PoolExhausted(Exception):
    def __init__(self, container: str, attachment: Attachment):
        self.container = container
        self.attachment = attachment


def _live_addresses(live: State) -> dict[tuple[str, str], list[tuple[IPv4Address, int]]]:
    """(address, prefix length) the kernel shows per (container namespace, interface name)."""
    found: dict[tuple[str, str], list[tuple[IPv4Address, int]]] = {}
    for obj in live.objects.values():
        if isinstance(obj, Address) and obj.netns != HOST_NS:
            address, prefix = obj.cidr.split("/")
            found.setdefault((obj.netns, obj.ifname), []).append((IPv4Address(address), int(prefix)))
    return found


def _assign_in_network(
    network: NetworkSpec,
    members: list[tuple[ContainerSpec, Attachment]],
    live_addresses: dict[tuple[str, str], list[tuple[IPv4Address, int]]],
    interfaces: dict[tuple[str, str], str],
) -> dict[tuple[str, str], IPv4Address]:
    subnet: IPv4Network = network.subnet
    taken = {subnet.network_address, subnet.broadcast_address, network.gateway, *network.aux_addresses}
    assigned: dict[tuple[str, str], IPv4Address] = {}
    dynamic: list[tuple[ContainerSpec, Attachment]] = []
    for container, attachment in members:
        if attachment.ipv4_address is not None:
            assigned[(container.name, network.name)] = attachment.ipv4_address
            taken.add(attachment.ipv4_address)
        else:
            dynamic.append((container, attachment))
    waiting: list[tuple[ContainerSpec, Attachment]] = []
    for container, attachment in dynamic:
        ifname = interfaces[(container.name, network.name)]
        kept = _sticky_address(container.name, ifname, subnet, taken, live_addresses)
        if kept is None:
            waiting.append((container, attachment))
        else:
            assigned[(container.name, network.name)] = kept
            taken.add(kept)
    candidate = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address)
    for container, attachment in waiting:
        while candidate < last and IPv4Address(candidate) in taken:
            candidate += 1
        if candidate >= last:
            raise _PoolExhausted(container.name, attachment)
        address = IPv4Address(candidate)
        assigned[(container.name, network.name)] = address
        taken.add(address)
    return assigned


def _sticky_address(container: str, ifname: str, subnet, taken, live_addresses) -> IPv4Address | None:
    for address, prefix in live_addresses.get((container, ifname), ()):
        if prefix == subnet.prefixlen and address in subnet and address not in taken:
            return address
    return None
