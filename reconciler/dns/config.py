"""What the embedded DNS server serves, per container namespace: pure values, no I/O.

The scope (which names a container resolves) is not decided here: the caller passes it,
per container, as (name, addresses) pairs, the shape of
reconciler.state.discovery.names_in_scope, so that both discovery mechanisms give the same
answers. This module turns it into lookup tables, and adds what Docker's resolver takes
from the container's resolv.conf: the upstream servers and whether ndots was set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from reconciler.render import resolvconf
from reconciler.spec.types import Spec
from reconciler.state.desired import uses_resolver

IPAddress = IPv4Address | IPv6Address
NameRecord = tuple[str, Iterable[IPAddress]]
# Docker's resolver asks at most this many upstream servers (libnetwork/resolver.go maxExtDNS)
MAX_UPSTREAMS = 3


def name_key(name: str) -> str:
    """How a name is looked up: DNS names compare case-insensitively; a trailing dot
    (fully qualified) changes nothing."""
    return name.rstrip(".").lower()


@dataclass(frozen=True)
class NameTable:
    """A namespace's names: name -> addresses (IPv4 first), and address -> names."""

    forward: Mapping[str, tuple[IPAddress, ...]]
    reverse: Mapping[IPAddress, tuple[str, ...]]

    @classmethod
    def of(cls, records: Iterable[NameRecord]) -> NameTable:
        """A name listed more than once (an alias several containers share) has all the
        addresses of its records, each once; names keep their spelling for PTR answers."""
        forward: dict[str, dict[IPAddress, None]] = {}
        reverse: dict[IPAddress, dict[str, None]] = {}
        for name, addresses in records:
            mine = forward.setdefault(name_key(name), {})
            for address in addresses:
                mine[address] = None
                reverse.setdefault(address, {})[name.rstrip(".")] = None
        return cls(
            {name: tuple(sorted(found, key=lambda a: a.version)) for name, found in forward.items()},
            {address: tuple(names) for address, names in reverse.items()},
        )


EMPTY_TABLE = NameTable({}, {})


@dataclass(frozen=True)
class NamespaceConfig:
    """What the server needs to answer queries from one container namespace."""

    table: NameTable = EMPTY_TABLE
    upstreams: tuple[resolvconf.ExtServer, ...] = ()
    # Docker: when the container's resolv.conf set ndots (host file or dns_opt), a
    # single-label A/AAAA name not found locally gets an empty answer, not forwarded, so
    # that the client goes on with its search domains
    ndots_set: bool = False


@dataclass(frozen=True)
class ResolverConfig:
    """Per served namespace (by name) its config, and every name any of them knows."""

    namespaces: Mapping[str, NamespaceConfig] = field(default_factory=dict)
    known: frozenset[str] = frozenset()  # name keys: never forwarded where out of scope

    @classmethod
    def of(cls, namespaces: Mapping[str, NamespaceConfig]) -> ResolverConfig:
        tables = {id(config.table): config.table for config in namespaces.values()}
        return cls(dict(namespaces), frozenset(name for table in tables.values() for name in table.forward))


def upstreams(
    host: resolvconf.HostResolvConf, dns: tuple[str, ...] = (), external_access: bool = True,
) -> tuple[resolvconf.ExtServer, ...]:
    """The servers a container's queries are forwarded to: its file's ExtServers, but
    never the embedded server itself asked from inside the container (Docker 26.1.3+
    drops a `--dns 127.0.0.11`), at most MAX_UPSTREAMS. Without `external_access` (all
    its networks are internal) none asked from the host's namespace: the resolver must
    not be a way out of an internal network (Docker 26.0.0+, CVE-2024-29018)."""
    servers = [
        server for server in resolvconf.external_servers(host, dns=dns)
        if (external_access if server.host_loopback else server.address != resolvconf.INTERNAL_NAMESERVER)
    ]
    return tuple(servers[:MAX_UPSTREAMS])


def ndots_set(host: resolvconf.HostResolvConf, dns_opt: tuple[str, ...] = ()) -> bool:
    """Whether the container's resolv.conf has an ndots of its own (the override's
    options replace the host's), before the resolver's required ndots:0 is added."""
    options = resolvconf.parse("options " + " ".join(dns_opt)) if dns_opt else host
    return options.option("ndots") not in (None, "")


def resolver_config(
    spec: Spec, host: resolvconf.HostResolvConf, scope: Mapping[str, Iterable[NameRecord]],
) -> ResolverConfig:
    """The config of every namespace that asks the embedded server: per container that
    has a namespace of its own and uses the resolver, its table from `scope` (per
    container name, the records it can resolve) and its upstreams. Containers given the
    same scope object share one table."""
    tables: dict[int, NameTable] = {}
    namespaces: dict[str, NamespaceConfig] = {}
    for container in spec.local_containers:
        if container.mode not in ("bridge", "none") or not uses_resolver(spec, container):
            continue
        records = scope.get(container.name, ())
        table = tables.get(id(records))
        if table is None:
            table = tables[id(records)] = NameTable.of(records)
        external_access = any(not spec.network(a.network).internal for a in container.networks)
        namespaces[container.name] = NamespaceConfig(
            table, upstreams(host, container.dns, external_access), ndots_set(host, container.dns_opt))
    return ResolverConfig.of(namespaces)
