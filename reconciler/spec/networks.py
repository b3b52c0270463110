"""The `host:` and `networks:` sections, checked and built into `HostSpec` and `NetworkSpec`s."""

from __future__ import annotations

import bisect
from collections import Counter
from ipaddress import IPv4Address, IPv4Network

from reconciler import drivers
from reconciler.spec.document import PathKey, SectionReader
from reconciler.spec.types import ContainerSpec, HostSpec, NetworkSpec
from reconciler.spec.values import (
    absolute_path_issue,
    free_addresses,
    host_address_issue,
    name_issue,
    parse_address,
    parse_subnet,
)


class _EarlierNetworks:
    """Networks seen so far, indexed so that checking a new one costs O(log n), not
    O(n): a spec with thousands of networks must not take minutes to validate.

    CIDR blocks are either disjoint or nested, so the earlier blocks overlapping a new
    one are the (at most 33) blocks that contain it, found by their exact key, plus
    the blocks that start inside it, found by bisection."""

    def __init__(self) -> None:
        self.by_host_name: dict[str, NetworkSpec] = {}  # by the host-wide name its driver gives it (the bridge)
        self._by_block: dict[tuple[int, int], list[tuple[int, NetworkSpec]]] = {}
        self._starts: list[int] = []  # sorted first addresses of the subnets
        self._inside: list[tuple[int, NetworkSpec]] = []  # (prefix length, network) by start
        self._count = 0

    def add(self, network: NetworkSpec) -> None:
        self.by_host_name.setdefault(drivers.driver_for(network.driver).host_name(network), network)
        start, prefix = int(network.subnet.network_address), network.subnet.prefixlen
        self._by_block.setdefault((start, prefix), []).append((self._count, network))
        index = bisect.bisect_right(self._starts, start)
        self._starts.insert(index, start)
        self._inside.insert(index, (prefix, network))
        self._count += 1

    def overlapping(self, subnet: IPv4Network) -> list[NetworkSpec]:
        """Earlier networks whose subnet overlaps `subnet`, in spec order."""
        start, prefix = int(subnet.network_address), subnet.prefixlen
        found: dict[int, NetworkSpec] = {}
        for length in range(prefix + 1):  # blocks containing (or equal to) this one
            mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
            for _, network in self._by_block.get((start & mask, length), ()):
                found[id(network)] = network
        low = bisect.bisect_left(self._starts, start)
        high = bisect.bisect_right(self._starts, int(subnet.broadcast_address))
        for other_prefix, network in self._inside[low:high]:  # blocks strictly inside it
            if other_prefix > prefix:
                found[id(network)] = network
        return sorted(found.values(), key=self._order)

    def _order(self, network: NetworkSpec) -> int:
        key = (int(network.subnet.network_address), network.subnet.prefixlen)
        return next(order for order, other in self._by_block[key] if other is network)


class NetworkSection(SectionReader):
    """Reads `host:` and `networks:`; `_address` serves the container section too."""

    def _host(self) -> HostSpec:
        path = ("host",)
        return HostSpec(
            ip_forward=self._bool((*path, "ip_forward"), HostSpec.ip_forward),
            resolv_conf=self._resolv_conf((*path, "resolv_conf")),
            location=self.doc.key_location(path),
            resolv_conf_location=self._location_if_set((*path, "resolv_conf")),
        )

    def _resolv_conf(self, path: PathKey) -> str:
        text = self._string(path)
        if text is None:
            return HostSpec.resolv_conf
        issue = absolute_path_issue(text)
        if issue:
            self.doc.problem(path, issue)
        return text

    def _check_name(self, path: PathKey, kind: str) -> None:
        issue = name_issue(str(path[-1]))
        if issue:
            self.doc.problem(path, f"{path[-1]!r} is not a valid {kind} name: {issue}", at_key=True)

    def _networks(self) -> list[NetworkSpec]:
        networks: list[NetworkSpec] = []
        earlier = _EarlierNetworks()
        for name in self._mapping(("networks",)):
            path = ("networks", name)
            self._check_name(path, "network")
            network = self._network(path) if isinstance(self.doc.get(path), dict) else None
            if network is not None:
                self._check_against_earlier(path, network, earlier)
                earlier.add(network)
                networks.append(network)
        return networks

    def _driver(self, path: PathKey) -> drivers.NetworkDriver:
        """The network's driver; an unknown name (reported by the schema) reads as the default's."""
        name = self._string((*path, "driver")) or NetworkSpec.driver
        return drivers.DRIVERS.get(name) or drivers.driver_for(NetworkSpec.driver)

    def _network(self, path: PathKey) -> NetworkSpec | None:
        driver = self._driver(path)
        options = driver.read_options(self, path)
        subnet = self._subnet((*path, "subnet"))
        if subnet is None:
            return None
        return NetworkSpec(
            name=str(path[-1]),
            subnet=subnet,
            gateway=self._gateway((*path, "gateway"), subnet),
            mtu=self._int((*path, "mtu"), NetworkSpec.mtu),
            icc=self._bool((*path, "icc"), NetworkSpec.icc),
            masquerade=self._bool((*path, "masquerade"), NetworkSpec.masquerade),
            internal=self._bool((*path, "internal"), NetworkSpec.internal),
            aux_addresses=self._aux_addresses((*path, "aux_addresses"), subnet),
            driver=driver.name,
            location=self.doc.key_location(path),
            **options,
        )

    def _subnet(self, path: PathKey) -> IPv4Network | None:
        text = self._string(path)
        if text is None:
            return None
        subnet, issue = parse_subnet(text)
        if issue:
            self.doc.problem(path, issue)
        return subnet

    def _gateway(self, path: PathKey, subnet: IPv4Network) -> IPv4Address:
        default = subnet.network_address + 1
        gateway = self._address(path, subnet)
        return default if gateway is None else gateway

    def _address(self, path: PathKey, subnet: IPv4Network | None) -> IPv4Address | None:
        """The IPv4 address at `path`, if valid and (given a subnet) a host address in it."""
        text = self._string(path)
        if text is None:
            return None
        address = parse_address(text)
        issue = f"{text!r} is not an IPv4 address" if address is None else None
        if address is not None and subnet is not None:
            issue = host_address_issue(address, subnet)
        if issue:
            self.doc.problem(path, issue)
            return None
        return address

    def _aux_addresses(self, path: PathKey, subnet: IPv4Network) -> tuple[IPv4Address, ...]:
        raw = self.doc.get(path)
        keys = list(raw) if isinstance(raw, dict) else range(len(raw)) if isinstance(raw, list) else []
        addresses = (self._address((*path, key), subnet) for key in keys)
        return tuple(dict.fromkeys(address for address in addresses if address is not None))

    def _check_against_earlier(self, path: PathKey, network: NetworkSpec, earlier: _EarlierNetworks) -> None:
        for other in earlier.overlapping(network.subnet):
            message = f"{network.subnet} overlaps {other.subnet} of network {other.name!r}"
            self.doc.problem((*path, "subnet"), message)
        drivers.driver_for(network.driver).check_unique(self, path, network, earlier.by_host_name)

    def _check_capacity(self, networks: list[NetworkSpec], containers: list[ContainerSpec]) -> None:
        attached = Counter(a.network for container in containers for a in container.networks)
        for network in networks:
            count, free = attached[network.name], free_addresses(network)
            if count > free:
                message = (
                    f"{count} containers are attached but the subnet {network.subnet} "
                    f"has only {free} free addresses"
                )
                self.doc.problem(("networks", network.name), message, at_key=True)
