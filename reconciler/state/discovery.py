"""Which names each container can resolve: the one source of name discovery.

Pure: no I/O. Both mechanisms answer from `names_in_scope`: the hosts-file section
(reconciler.render.hostsfile) and the embedded DNS resolver, so that they give the same
answers. The scope follows Docker's service discovery (moby/moby at v28.0.0):

- every network takes part except the one named `bridge`, Docker's default bridge, where
  containers find each other only through links (`daemon/container_operations.go` gives
  an endpoint DNS names only on a network whose mode `IsUserDefined()`, which `bridge` is
  not; Docker's docs, "Bridge network driver": "Containers on the default bridge network
  can only access each other by IP addresses, unless you use the --link option"), and
  except a network with `discovery: false`;
- on such a network every container with a namespace of its own is known by its name, its
  network aliases and its hostname, in that order, each once (`daemon/container_operations.go`
  `buildEndpointDNSNames`, which also adds the short container ID, a name netreconcile's
  containers do not have), at its address(es) on that network. A network's
  records hold every endpoint on it, the asking container's own included, so a container
  resolves its own name too (`libnetwork/network.go` `addSvcRecords` is called for every
  endpoint joining, `ResolveName` looks a name up in them, with no exception for the
  asker); an alias several containers share has all their addresses;
- a container asks its networks in endpoint order, and the first network that has an
  address of the asked IP version for the name answers (`libnetwork/sandbox.go`
  `ResolveName` / `resolveName`: the loop over `sb.Endpoints()` returns the first
  answer, and goes on to the next network on an IPv6 miss). Docker orders the endpoints
  by gw_priority (highest first); netreconcile then keeps spec order where Docker compares
  further (gateway, internal, network name);
- a container that joins another's namespace (network_mode container:X) sees what X sees
  and is known by no name of its own, having no endpoint; host and none mode containers
  see no names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv6Address

from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec

DEFAULT_BRIDGE = "bridge"  # the network name standing for Docker's default bridge: links only

IPAddress = IPv4Address | IPv6Address
NameRecord = tuple[str, tuple[IPAddress, ...]]  # a name and its addresses: IPv4 ones, then IPv6 ones
Scope = tuple[NameRecord, ...]  # the names a container can resolve, each once, in hosts-section order


def discovers(network: NetworkSpec) -> bool:
    """Whether containers on `network` find each other by name."""
    return network.discovery and network.name != DEFAULT_BRIDGE


def names_in_scope(
    spec: Spec, addresses: Mapping[tuple[str, str], IPv4Address], addresses6: Mapping[tuple[str, str], IPv6Address],
) -> dict[str, Scope]:
    """Per container of the spec (every one, by name), the names it can resolve.

    Each value is a tuple of `(name, addresses)` pairs, a name at most once, where
    `addresses` is a tuple of IPv4Address (from the first of the container's networks,
    in endpoint order, that knows the name) followed by IPv6Address (from the first that
    knows the name with an IPv6 address: only IPv6 networks give one). Names come in the
    order of the container's networks, and per network in spec order of the containers
    that carry them: name, aliases, hostname. A resolver answers A queries with the
    IPv4Address entries and AAAA queries with the IPv6Address ones; a name that is not
    listed is not in scope. Host, none and address-less containers map to ().

    `addresses` and `addresses6` are the desired state's: IPv4 per (container, network),
    IPv6 per (container, network) for networks with IPv6. Containers seeing the same
    networks in the same order share one value (the same tuple object), so the cost is
    O(attachments + distinct views' output): 1000 containers on one network cost one
    scope of 1000 names, not a million.
    """
    records = _network_records(spec, addresses, addresses6)
    by_view: dict[tuple[str, ...], Scope] = {}
    scope: dict[str, Scope] = {}
    for container in spec.containers:
        origin = spec.joined(container)
        if origin.mode not in ("bridge", "none"):  # host mode: the host's names, none of the networks'
            scope[container.name] = ()
            continue
        view = tuple(a.network for a in endpoint_order(origin) if a.network in records)
        if view not in by_view:
            by_view[view] = _merge(records[network] for network in view)
        scope[container.name] = by_view[view]
    return scope


def endpoint_order(container: ContainerSpec) -> list[Attachment]:
    """The container's networks in the order it asks them: gw_priority highest first,
    spec order among equals."""
    return sorted(container.networks, key=lambda attachment: -attachment.gw_priority)


def names_of(container: ContainerSpec, attachment: Attachment) -> tuple[str, ...]:
    """The names a container is known by on one network: name, aliases, hostname, each once."""
    return tuple(dict.fromkeys((container.name, *attachment.aliases, container.hostname or container.name)))


# per discovering network: name -> (IPv4 addresses, IPv6 addresses) on it, in spec order
_Records = dict[str, tuple[list[IPv4Address], list[IPv6Address]]]


def _network_records(
    spec: Spec, addresses: Mapping[tuple[str, str], IPv4Address], addresses6: Mapping[tuple[str, str], IPv6Address],
) -> dict[str, _Records]:
    records: dict[str, _Records] = {network.name: {} for network in spec.networks if discovers(network)}
    for container in spec.containers:
        if container.mode != "bridge":  # only a container with endpoints of its own is known by name
            continue
        for attachment in container.networks:
            table = records.get(attachment.network)
            if table is None:
                continue
            key = (container.name, attachment.network)
            address6 = addresses6.get(key)
            for name in names_of(container, attachment):
                four, six = table.setdefault(name, ([], []))
                four.append(addresses[key])
                if address6 is not None:
                    six.append(address6)
    return records


def _merge(tables: Iterable[_Records]) -> Scope:
    """One container's scope from its networks' records in endpoint order: per name and
    IP version, the first network that has an address of that version for it."""
    merged: dict[str, list[tuple[IPAddress, ...]]] = {}
    for table in tables:
        for name, (four, six) in table.items():
            found = merged.get(name)
            if found is None:
                merged[name] = [tuple(four), tuple(six)]
            elif not found[1] and six:
                found[1] = tuple(six)
    return tuple((name, four + six) for name, (four, six) in merged.items())
