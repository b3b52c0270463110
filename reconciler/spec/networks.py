"""The `host:` and `networks:` sections, checked and built into `HostSpec` and `NetworkSpec`s."""

from __future__ import annotations

import bisect
from collections import Counter
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from reconciler import drivers
from reconciler.spec.document import PathKey, SectionReader
from reconciler.spec.ports import IPAddress
from reconciler.spec.types import ContainerSpec, HostSpec, NetworkSpec
from reconciler.spec.values import (
    absolute_path_issue,
    free_addresses,
    host_address_issue,
    name_issue,
    parse_address,
    parse_subnet,
)

IPV6_KEYS = ("subnet6", "gateway6", "masquerade6")  # the keys that need enable_ipv6: true


class _SubnetIndex:
    """The subnets of one IP version seen so far, indexed so that checking a new one
    costs O(log n), not O(n): a spec with thousands of networks must not take minutes
    to validate.

    CIDR blocks are either disjoint or nested, so the earlier blocks overlapping a new
    one are the (at most 33, or 129 for IPv6) blocks that contain it, found by their
    exact key, plus the blocks that start inside it, found by bisection."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self._by_block: dict[tuple[int, int], list[NetworkSpec]] = {}
        self._starts: list[int] = []  # sorted first addresses of the subnets
        self._inside: list[tuple[int, NetworkSpec]] = []  # (prefix length, network) by start

    def add(self, subnet: IPv4Network | IPv6Network, network: NetworkSpec) -> None:
        start, prefix = int(subnet.network_address), subnet.prefixlen
        self._by_block.setdefault((start, prefix), []).append(network)
        index = bisect.bisect_right(self._starts, start)
        self._starts.insert(index, start)
        self._inside.insert(index, (prefix, network))

    def overlapping(self, subnet: IPv4Network | IPv6Network) -> list[NetworkSpec]:
        """Earlier networks whose subnet overlaps `subnet`, in no particular order."""
        start, prefix = int(subnet.network_address), subnet.prefixlen
        every_bit = (1 << self.bits) - 1
        found: dict[int, NetworkSpec] = {}
        for length in range(prefix + 1):  # blocks containing (or equal to) this one
            mask = every_bit ^ (every_bit >> length)
            for network in self._by_block.get((start & mask, length), ()):
                found[id(network)] = network
        low = bisect.bisect_left(self._starts, start)
        high = bisect.bisect_right(self._starts, int(subnet.network_address) + subnet.num_addresses - 1)
        for other_prefix, network in self._inside[low:high]:  # blocks strictly inside it
            if other_prefix > prefix:
                found[id(network)] = network
        return list(found.values())


class _EarlierNetworks:
    """Networks seen so far: by the host-wide name their driver gives them, and by
    subnet, one index per IP version."""

    def __init__(self) -> None:
        self.by_host_name: dict[str, NetworkSpec] = {}  # by the host-wide name its driver gives it (the bridge)
        self._subnets = {4: _SubnetIndex(32), 6: _SubnetIndex(128)}
        self._order: dict[int, int] = {}  # id(network) -> its place in the spec

    def add(self, network: NetworkSpec) -> None:
        host_name = drivers.driver_for(network.driver).host_name(network)
        if host_name is not None:
            self.by_host_name.setdefault(host_name, network)
        self._order[id(network)] = len(self._order)
        for version in network.families:
            if network.subnet_of(version) is not None:  # a subnet chosen later avoids the others itself
                self._subnets[version].add(network.subnet_of(version), network)

    def overlapping(self, subnet: IPv4Network | IPv6Network) -> list[NetworkSpec]:
        """Earlier networks whose subnet of `subnet`'s IP version overlaps it, in spec order."""
        found = self._subnets[subnet.version].overlapping(subnet)
        return sorted(found, key=lambda network: self._order[id(network)])


class NetworkSection(SectionReader):
    """Reads `host:` and `networks:`; `_address` serves the container section too."""

    def _host(self) -> HostSpec:
        path = ("host",)
        return HostSpec(
            ip_forward=self._bool((*path, "ip_forward"), HostSpec.ip_forward),
            resolv_conf=self._resolv_conf((*path, "resolv_conf")),
            dns_resolver=self._bool((*path, "dns_resolver"), HostSpec.dns_resolver),
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
        self._check_other_drivers_options(path, driver)
        options = driver.read_options(self, path)
        subnet = self._subnet((*path, "subnet"), 4)
        if subnet is None and (self.doc.get((*path, "subnet")) is not None or not self._subnet_choosable(
                path, driver, options)):
            return None
        ipv6 = self._ipv6_settings(path)
        return NetworkSpec(
            name=str(path[-1]),
            subnet=subnet,
            gateway=self._gateway((*path, "gateway"), subnet) if subnet is not None else None,
            mtu=self._int((*path, "mtu"), driver.default_mtu),
            icc=self._bool((*path, "icc"), NetworkSpec.icc),
            masquerade=self._bool((*path, "masquerade"), NetworkSpec.masquerade),
            internal=driver.always_internal or self._bool((*path, "internal"), NetworkSpec.internal),
            discovery=self._bool((*path, "discovery"), NetworkSpec.discovery),
            aux_addresses=self._aux_addresses((*path, "aux_addresses"), subnet, ipv6["subnet6"]) if subnet else (),
            driver=driver.name,
            location=self.doc.key_location(path),
            **ipv6,
            **options,
        )

    def _subnet_choosable(self, path: PathKey, driver: drivers.NetworkDriver, options: dict[str, Any]) -> bool:
        """Whether the network at `path`, written without `subnet`, may have one chosen at
        plan time (reconciler.state.subnets); if not, or if it has keys that need a written
        subnet to be checked, the problem is reported."""
        why_needed = (
            f"driver {driver.name} puts the network on a LAN, whose subnet cannot be guessed"
            if not driver.chooses_subnet
            else "with uplink the network is on a LAN, whose subnet cannot be guessed"
            if options.get("uplink") is not None
            else "with gateway_on_host: false the gateway is the LAN's router, on a subnet that cannot be guessed"
            if options.get("gateway_on_host") is False
            else None
        )
        if why_needed is not None:
            self.doc.problem(path, f"'subnet' is required: {why_needed}", at_key=True)
            return False
        for key in ("gateway", "aux_addresses"):
            if self.doc.get((*path, key)) is not None:
                self.doc.problem((*path, key), f"'{key}' needs 'subnet': without one the subnet is chosen at "
                                 "plan time, and there is nothing to check it against", at_key=True)
        return True

    def _check_other_drivers_options(self, path: PathKey, driver: drivers.NetworkDriver) -> None:
        for other in drivers.DRIVERS.values():
            for key in other.options:
                if key not in driver.options and self.doc.get((*path, key)) is not None:
                    self.doc.problem((*path, key), f"'{key}' is an option of driver {other.name}, and this network's "
                                     f"driver is {driver.name}", at_key=True)

    def _ipv6_settings(self, path: PathKey) -> dict[str, Any]:
        """enable_ipv6, subnet6, gateway6 and masquerade6 as NetworkSpec fields: the last
        three only with enable_ipv6: true, which needs subnet6."""
        enabled = self._bool((*path, "enable_ipv6"), NetworkSpec.enable_ipv6)
        if not enabled:
            for key in IPV6_KEYS:
                if self.doc.get((*path, key)) is not None:
                    self.doc.problem((*path, key), f"'{key}' needs enable_ipv6: true", at_key=True)
            return {"subnet6": None}
        subnet6 = self._subnet((*path, "subnet6"), 6)
        if subnet6 is None and self.doc.get((*path, "subnet6")) is None:
            self.doc.problem((*path, "enable_ipv6"), "enable_ipv6: true needs subnet6 (an IPv6 network such as "
                             "fd42:db8:10::/64)")
        return {
            "enable_ipv6": True,
            "subnet6": subnet6,
            "gateway6": None if subnet6 is None else self._gateway((*path, "gateway6"), subnet6),
            "masquerade6": self._bool((*path, "masquerade6"), NetworkSpec.masquerade6),
        }

    def _subnet(self, path: PathKey, version: int) -> IPv4Network | IPv6Network | None:
        text = self._string(path)
        if text is None:
            return None
        subnet, issue = parse_subnet(text, version)
        if issue:
            self.doc.problem(path, issue)
        return subnet

    def _gateway(self, path: PathKey, subnet: IPv4Network | IPv6Network) -> IPAddress:
        default = subnet.network_address + 1
        gateway = self._address(path, subnet, subnet.version)
        return default if gateway is None else gateway

    def _address(
        self, path: PathKey, subnet: IPv4Network | IPv6Network | None, version: int = 4
    ) -> IPAddress | None:
        """The address of IP version `version` at `path`, if valid and (given a subnet) a
        host address in it."""
        text = self._string(path)
        if text is None:
            return None
        address = parse_address(text, version)
        issue = f"{text!r} is not an IPv{version} address" if address is None else None
        if address is not None and subnet is not None:
            issue = host_address_issue(address, subnet)
        if issue:
            self.doc.problem(path, issue)
            return None
        return address

    def _aux_addresses(
        self, path: PathKey, subnet: IPv4Network, subnet6: IPv6Network | None
    ) -> tuple[IPAddress, ...]:
        """The reserved addresses, each in the subnet of its IP version."""
        raw = self.doc.get(path)
        keys = list(raw) if isinstance(raw, dict) else range(len(raw)) if isinstance(raw, list) else []
        addresses = (self._aux_address((*path, key), subnet, subnet6) for key in keys)
        return tuple(dict.fromkeys(address for address in addresses if address is not None))

    def _aux_address(self, path: PathKey, subnet: IPv4Network, subnet6: IPv6Network | None) -> IPAddress | None:
        text = self._string(path)
        if text is None or ":" not in text:
            return self._address(path, subnet)
        if subnet6 is None and parse_address(text, 6) is not None:
            network = f"network {path[1]!r}"
            self.doc.problem(path, f"{text} is an IPv6 address but {network} has no IPv6: "
                             "set enable_ipv6: true and subnet6")
            return None
        return self._address(path, subnet6, 6)

    def _check_against_earlier(self, path: PathKey, network: NetworkSpec, earlier: _EarlierNetworks) -> None:
        for version in network.families:
            subnet = network.subnet_of(version)
            key = "subnet" if version == 4 else "subnet6"
            for other in earlier.overlapping(subnet) if subnet is not None else ():
                message = f"{subnet} overlaps {other.subnet_of(version)} of network {other.name!r}"
                self.doc.problem((*path, key), message)
        drivers.driver_for(network.driver).check_unique(self, path, network, earlier.by_host_name)

    def _check_capacity(self, networks: list[NetworkSpec], containers: list[ContainerSpec]) -> None:
        attached = Counter(a.network for container in containers for a in container.networks)
        # a driver's limit is of one node's containers: each node has its own bridge of a network
        on_node = Counter((a.network, container.node) for container in containers for a in container.networks)
        by_name = {network.name: network for network in networks}
        for (name, node), count in on_node.items():
            limit = drivers.driver_for(by_name[name].driver).max_attachments(by_name[name]) if name in by_name else None
            if limit is not None and count > limit[0]:
                of_node, fix = ("", "") if node is None else (f" of node {node!r}", " or nodes")
                self.doc.problem(("networks", name), f"{count} containers{of_node} are attached but {limit[1]}: "
                                 f"spread the containers over several networks{fix}", at_key=True)
        for network in networks:
            count = attached[network.name]
            for version in network.families:  # every attached container gets an address of each
                if network.subnet_of(version) is None:
                    continue  # chosen at plan time, as large as they need
                free = free_addresses(network, version)
                if count > free:
                    message = (
                        f"{count} containers are attached but the subnet {network.subnet_of(version)} "
                        f"has only {free} free addresses"
                    )
                    self.doc.problem(("networks", network.name), message, at_key=True)
