"""IP address management: which interface names and which address each container attachment gets.

Static addresses first, then each dynamic container keeps the address the kernel shows it
already has, then the rest get the lowest free address; interface names likewise: the one
given, else the one the kernel shows, else the lowest free ethN. Pure: the live state is
passed in. Each IP version is allocated on its own: IPv4 in every network's `subnet`,
IPv6 in the `subnet6` of networks with IPv6.

A multi-host spec (`nodes:`) is addressed from the spec alone, so that every node computes
the same address for every container whatever it observes and whatever order the nodes
apply in: a host sees only its own containers, so stickiness to observed addresses would
make nodes disagree. Static addresses first; then each dynamic container, in name order,
takes the first free address from its home slot, a hash of (network, container) in the
subnet, onwards (wrapping). Re-adding a removed container gives it its old address back if
no other container took it meanwhile; adding or removing one moves only the containers
whose search crossed its slot (rare while the subnet is sparse; `ipv4_address` pins one).
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Iterator, Union

IPAddress = Union[IPv4Address, IPv6Address]
IPNetwork = Union[IPv4Network, IPv6Network]

from reconciler.drivers.bridge import veth_name
from reconciler.errors import Problem, SpecError
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.state.model import HOST_NS, Address, State, Veth


def container_ifname(index: int) -> str:
    return f"eth{index}"


def assign_interfaces(spec: Spec, live: State) -> dict[tuple[str, str], str]:
    """The container-side interface name per (container, network): `interface_name`
    when given, else the name the kernel shows it already has, else the lowest free
    ethN, so that joining or leaving a network never renames the other interfaces."""
    interfaces = (obj.container_interface() for obj in live.objects.values())
    existing = {(container, network): ifname for container, network, ifname in filter(None, interfaces)}
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


SALTED_NAMES = 16  # salted host-side veth names an attachment may have (16 collisions in a row: never)


def assign_host_ends(spec: Spec, live: State) -> dict[tuple[str, str], str]:
    """The host-side veth name per (container, network): its hash name (`veth_name`), but
    where two attachments' names collide (28 bits: likely among thousands) each still gets
    one of its own. An attachment whose veth the kernel shows under one of its salted names
    keeps it (renaming would make the veth again under the container's processes); the
    others, in spec order, take the first of their names no earlier one took."""
    kept = {(obj.container, obj.network): obj.host_ifname for obj in live.of_kind(Veth)}
    result: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    attachments = [(container.name, a.network) for container in spec.containers for a in container.networks]
    for key in attachments:  # usual names of live veths, then salted ones: usually the first loop is all there is
        name = kept.get(key)
        if name is not None and name == veth_name(*key) and name not in taken:
            result[key] = name
            taken.add(name)
    for key in attachments:
        name = kept.get(key)
        if key not in result and name is not None and name not in taken and name in _salted_names(*key):
            result[key] = name
            taken.add(name)
    for key in attachments:
        if key not in result:
            result[key] = next((name for name in _salted_names(*key) if name not in taken), veth_name(*key))
            taken.add(result[key])
    return result


def _salted_names(container: str, network: str) -> Iterator[str]:
    return (veth_name(container, network, salt) for salt in range(SALTED_NAMES))


def reserved_addresses(subnet: IPNetwork) -> set[IPAddress]:
    """The addresses of a subnet no container gets: its network address (in IPv6 the
    subnet-router anycast address, RFC 4291 2.6.1) and, in IPv4, its broadcast address."""
    if subnet.version == 4:
        return {subnet.network_address, subnet.broadcast_address}
    return {subnet.network_address}


def free_addresses(subnet: IPNetwork, taken: set[IPAddress]) -> Iterator[IPAddress]:
    """The addresses of `subnet` that are neither reserved nor in `taken`, lowest first;
    `taken` is read as the caller adds to it."""
    make = type(subnet.network_address)
    reserved = reserved_addresses(subnet)
    for candidate in range(int(subnet.network_address), int(subnet.broadcast_address) + 1):
        address = make(candidate)
        if address not in taken and address not in reserved:
            yield address


def sticky_address(
    subnet: IPNetwork, taken: set[IPAddress], shown: list[tuple[IPAddress, int]],
) -> IPAddress | None:
    """The first address the kernel shows (with its prefix length) that fits `subnet`
    exactly and is not `taken`: the one a dynamic container keeps."""
    for address, prefix in shown:
        if prefix == subnet.prefixlen and address in subnet and address not in taken:
            return address
    return None


def assign_addresses(
    spec: Spec, live: State, interfaces: dict[tuple[str, str], str] | None = None, family: int = 4,
) -> dict[tuple[str, str], IPAddress]:
    """The address of IP version `family` per (container, network), in the network's
    subnet of that version; networks without one are left out."""
    interfaces = assign_interfaces(spec, live) if interfaces is None else interfaces
    live_addresses = _live_addresses(live, family)
    result: dict[tuple[str, str], IPAddress] = {}
    problems: list[Problem] = []
    members_of: dict[str, list[tuple[ContainerSpec, Attachment]]] = {}
    for container in spec.containers:
        for attachment in container.networks:
            members_of.setdefault(attachment.network, []).append((container, attachment))
    for network in spec.networks:
        if family not in network.families:
            continue
        members = members_of.get(network.name, [])
        try:
            result.update(_assign_in_network(network, family, members, live_addresses, interfaces,
                                             from_spec_alone=bool(spec.nodes)))
        except _PoolExhausted as exhausted:
            problems.append(
                Problem(exhausted.attachment.location, f"containers.{exhausted.container}.networks",
                        f"no free address left in {network.subnet_of(family)} of network '{network.name}'")
            )
    if problems:
        raise SpecError(problems)
    return result


class _PoolExhausted(Exception):
    def __init__(self, container: str, attachment: Attachment):
        self.container = container
        self.attachment = attachment


def _live_addresses(live: State, family: int) -> dict[tuple[str, str], list[tuple[IPAddress, int]]]:
    """(address, prefix length) of IP version `family` the kernel shows per (container
    namespace, interface name). Only that version's are parsed: the other's are not needed."""
    found: dict[tuple[str, str], list[tuple[IPAddress, int]]] = {}
    ipv6 = family == 6
    for obj in live.objects.values():
        if isinstance(obj, Address) and obj.netns != HOST_NS and (":" in obj.cidr) == ipv6:
            address, prefix = obj.cidr.split("/")
            found.setdefault((obj.netns, obj.ifname), []).append((ip_address(address), int(prefix)))
    return found


def _assign_in_network(
    network: NetworkSpec,
    family: int,
    members: list[tuple[ContainerSpec, Attachment]],
    live_addresses: dict[tuple[str, str], list[tuple[IPAddress, int]]],
    interfaces: dict[tuple[str, str], str],
    from_spec_alone: bool = False,
) -> dict[tuple[str, str], IPAddress]:
    subnet: IPNetwork = network.subnet_of(family)
    aux = [address for address in network.aux_addresses if address.version == family]
    taken: set[IPAddress] = {*reserved_addresses(subnet), network.gateway_of(family), *aux}
    if family == 4 and network.shim_address is not None:
        taken.add(network.shim_address)
    assigned: dict[tuple[str, str], IPAddress] = {}
    dynamic: list[tuple[ContainerSpec, Attachment]] = []
    for container, attachment in members:
        static = attachment.address_of(family)
        if static is not None:
            assigned[(container.name, network.name)] = static
            taken.add(static)
        else:
            dynamic.append((container, attachment))
    if from_spec_alone:
        assigned.update(_hashed_addresses(network.name, subnet, taken, dynamic))
        return assigned
    waiting: list[tuple[ContainerSpec, Attachment]] = []
    for container, attachment in dynamic:
        ifname = interfaces[(container.name, network.name)]
        kept = sticky_address(subnet, taken, live_addresses.get((container.name, ifname), []))
        if kept is None:
            waiting.append((container, attachment))
        else:
            assigned[(container.name, network.name)] = kept
            taken.add(kept)
    free = free_addresses(subnet, taken)
    for container, attachment in waiting:
        address = next(free, None)
        if address is None:
            raise _PoolExhausted(container.name, attachment)
        assigned[(container.name, network.name)] = address
        taken.add(address)
    return assigned


def home_slot(network: str, container: str, size: int) -> int:
    """Where `container`'s search for a free address in `network` starts: a stable hash
    of both names (the same on every machine and Python run), modulo the subnet's `size`."""
    digest = hashlib.sha256(f"{network}\0{container}".encode()).digest()
    return int.from_bytes(digest[:16], "big") % size


def _hashed_addresses(
    network: str, subnet: IPNetwork, taken: set[IPAddress], dynamic: list[tuple[ContainerSpec, Attachment]],
) -> dict[tuple[str, str], IPAddress]:
    """The addresses of the dynamic containers of a multi-host spec (see the module
    docstring): in name order, the first free one from each home slot onwards."""
    make = type(subnet.network_address)
    first, size = int(subnet.network_address), subnet.num_addresses
    free = size - sum(1 for address in taken if address in subnet)
    assigned: dict[tuple[str, str], IPAddress] = {}
    for container, attachment in sorted(dynamic, key=lambda member: member[0].name):
        if free <= 0:
            raise _PoolExhausted(container.name, attachment)
        slot = home_slot(network, container.name, size)
        address = make(first + slot)
        while address in taken:
            slot = (slot + 1) % size
            address = make(first + slot)
        assigned[(container.name, network)] = address
        taken.add(address)
        free -= 1
    return assigned
