"""What `netreconcile check` probes, per container, and what each probe should find; pure.

From the spec and the live state (for the sticky addresses, as apply reads them back),
`plan_probes` lists the probes; reconciler.kernel.probing runs them. IPv4 only. Per
container with a namespace of its own (bridge mode):

- gateway: its default route goes through its gateway network's gateway, which answers
  a ping (none for a container on internal networks only: it has no way out);
- names: every name its /etc/hosts should carry (extra_hosts, links, the discovery
  names in scope) resolves to the address the spec gives it, the first line naming it
  winning as for glibc's files source; with the embedded resolver, its own name is also
  asked of 127.0.0.11;
- ports: each published TCP entry (its first port) accepts a connection from the host
  namespace, on the entry's host address or 127.0.0.1;
- reach: per network of a driver whose traffic crosses the host (bridge), the next
  container of that network (in spec order, wrapping) answers a ping unless the network
  has `icc: false` (then the ping must go unanswered), and the first container of the
  next bridge network it is not on must not answer (networks are kept apart; not
  probed from a container whose way out is a LAN router, `gateway_on_host: false`). One
  neighbour per network keeps the probes O(containers), not O(containers squared).

A container joining another's namespace shares its routes and interfaces: only its own
names are probed. Host and none mode containers are not probed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from reconciler import drivers
from reconciler.spec.types import ContainerSpec, Spec
# the builders of the hosts file's extra_hosts and link lines: a name is expected where the file puts it
from reconciler.state.desired import _extra_hosts, _link_entries, gateway_attachment, publications, uses_resolver
from reconciler.state.discovery import names_in_scope
from reconciler.state.ipam import assign_addresses, assign_host_ends, assign_interfaces
from reconciler.state.model import State
from reconciler.state.subnets import with_chosen_subnets

LOOPBACK = IPv4Address("127.0.0.1")


@dataclass(frozen=True)
class GatewayProbe:
    container: str  # the namespace the probe runs in
    gateway: IPv4Address
    network: str

    @property
    def label(self) -> str:
        return f"gateway {self.gateway}"


@dataclass(frozen=True)
class NameProbe:
    container: str  # whose /etc/hosts is read
    name: str
    expected: tuple[IPv4Address, ...]  # any of them is right (an alias several containers share)
    source: str  # where the spec gives the name: extra_hosts, link, discovery

    @property
    def label(self) -> str:
        return f"name {self.name}"


@dataclass(frozen=True)
class DnsProbe:
    container: str  # the namespace the query is sent from
    name: str
    expected: tuple[IPv4Address, ...]

    @property
    def label(self) -> str:
        return f"dns {self.name}"


@dataclass(frozen=True)
class PortProbe:
    container: str
    host_address: IPv4Address  # connected to from the host namespace
    host_port: int
    address: IPv4Address  # the container's, to tell "no listener" from a broken path
    port: int

    @property
    def label(self) -> str:
        return f"port {self.host_address}:{self.host_port}->{self.port}/tcp"


@dataclass(frozen=True)
class ReachProbe:
    container: str  # the namespace the ping is sent from
    target: str
    network: str
    address: IPv4Address
    should_answer: bool
    why: str  # why it should (not) answer

    @property
    def label(self) -> str:
        return f"reach {self.target} on {self.network}"


Probe = GatewayProbe | NameProbe | DnsProbe | PortProbe | ReachProbe


def plan_probes(spec: Spec, live: State) -> list[Probe]:
    """Every probe of the spec's containers, per container in spec order. A network
    without a subnet in the spec is probed with the one its bridge has (as plan keeps it)."""
    spec = with_chosen_subnets(spec, live)
    interfaces = assign_interfaces(spec, live)
    addresses = assign_addresses(spec, live, interfaces)
    addresses6 = assign_addresses(spec, live, interfaces, family=6)
    scopes = names_in_scope(spec, addresses, addresses6)
    ports = _port_probes(spec, addresses, addresses6)
    neighbours = _Neighbours(spec)
    probes: list[Probe] = []
    for container in spec.local_containers:  # of a multi-host spec, this node's
        origin = spec.joined(container)
        if origin.mode != "bridge":
            continue
        if container.mode == "bridge":
            probes += _gateway_probes(spec, container)
        expected = _expected_names(spec, origin, scopes[container.name], addresses, addresses6)
        probes += [NameProbe(container.name, name, found, source) for name, (found, source) in expected.items()]
        if container.mode == "bridge":
            own = dict(scopes[container.name]).get(container.name, ())
            if uses_resolver(spec, container) and any(address.version == 4 for address in own):
                probes.append(DnsProbe(container.name, container.name,
                                       tuple(address for address in own if address.version == 4)))
            probes += ports.get(container.name, [])
            probes += _reach_probes(spec, container, addresses, neighbours)
    return probes


def _gateway_probes(spec: Spec, container: ContainerSpec) -> list[Probe]:
    attachment = gateway_attachment(spec, container)
    if attachment is None:
        return []
    network = spec.network(attachment.network)
    return [GatewayProbe(container.name, network.gateway_of(4), network.name)]


def _expected_names(
    spec: Spec, origin: ContainerSpec, scope, addresses: Mapping, addresses6: Mapping,
) -> dict[str, tuple[tuple[IPv4Address, ...], str]]:
    """Name -> (IPv4 addresses, source), in the order /etc/hosts carries them: extra
    hosts, links, then the discovery section; a name the first source gives is that one's."""
    found: dict[str, tuple[tuple[IPv4Address, ...], str]] = {}

    def add(entries, source: str) -> None:
        for entry in entries:
            address = _ipv4(entry.address)
            if address is None:
                continue
            for name in entry.names:
                found.setdefault(name, ((address,), source))

    add((e for item in origin.extra_hosts for e in _extra_hosts(spec, origin, item)), "extra_hosts")
    add((e for link in origin.links for e in _link_entries(spec, origin, link, addresses, addresses6)), "link")
    for name, records in scope:
        four = tuple(address for address in records if address.version == 4)
        if four:
            found.setdefault(name, (four, "discovery"))
    return found


def _ipv4(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def _port_probes(spec: Spec, addresses: Mapping, addresses6: Mapping) -> dict[str, list[Probe]]:
    """Per container, a probe of the first port of each published IPv4 TCP entry (UDP
    has no handshake to tell a listener by)."""
    host_ends = assign_host_ends(spec, State())
    owners = {host_end: container for (container, _), host_end in host_ends.items()}
    by_container: dict[str, list[Probe]] = {}
    for publication in publications(spec, addresses, addresses6, host_ends):
        if publication.family != 4:
            continue
        container = owners[publication.port]
        for mapping in publication.mappings:
            if mapping.protocol == "tcp":
                by_container.setdefault(container, []).append(PortProbe(
                    container, mapping.host_address or LOOPBACK, mapping.host_first, publication.address,
                    mapping.container_first))
    return by_container


class _Neighbours:
    """Who each container pings: per bridge network its members with a namespace of
    their own, in spec order, and each member's place there."""

    def __init__(self, spec: Spec):
        self.networks = [n for n in spec.networks if drivers.through_host(n.driver) and 4 in n.families]
        self.members: dict[str, list[ContainerSpec]] = {n.name: [] for n in self.networks}
        self.place: dict[tuple[str, str], int] = {}
        for container in spec.local_containers:
            if container.mode != "bridge":
                continue
            for attachment in container.networks:
                peers = self.members.get(attachment.network)
                if peers is not None:
                    self.place[(container.name, attachment.network)] = len(peers)
                    peers.append(container)

    def next_on(self, container: ContainerSpec, network: str) -> ContainerSpec | None:
        peers = self.members[network]
        return peers[(self.place[(container.name, network)] + 1) % len(peers)] if len(peers) > 1 else None


def _reach_probes(spec: Spec, container: ContainerSpec, addresses: Mapping, neighbours: _Neighbours) -> list[Probe]:
    mine = {a.network for a in container.networks}
    probes: list[Probe] = []
    for network in neighbours.networks:
        target = neighbours.next_on(container, network.name) if network.name in mine else None
        if target is not None:
            probes.append(ReachProbe(container.name, target.name, network.name, addresses[(target.name, network.name)],
                                     network.icc, "same network" if network.icc else "icc: false"))
    gateway = gateway_attachment(spec, container)
    # no way out, or one through the LAN's router (gateway_on_host: false), which the spec does not rule
    if gateway is None or not spec.network(gateway.network).gateway_on_host:
        return probes
    for network in neighbours.networks:
        if network.name in mine:
            continue
        # the first member sharing no network with the container (a shared one would be a path)
        target = next((t for t in neighbours.members[network.name][:8]
                       if not mine & {a.network for a in t.networks}), None)
        if target is not None:
            probes.append(ReachProbe(container.name, target.name, network.name,
                                     addresses[(target.name, network.name)], False, "networks are kept apart"))
            break
    return probes
