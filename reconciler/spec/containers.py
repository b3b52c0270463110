"""The `containers:` section, checked and built into `ContainerSpec`s, and the checks across
containers: links, network modes and published ports.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from reconciler import drivers
from reconciler.render.hostsfile import ExtraHostError, extra_host_from_mapping, parse_extra_host, validate_hostname
from reconciler.render.resolvconf import validate_dns_search
from reconciler.spec.document import PathKey, dotted, show
from reconciler.spec.networks import NetworkSection
from reconciler.spec.ports import PortError, PortMapping, parse_port
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec
from reconciler.spec.values import (
    MAX_MOVED_RANGE_PORTS,
    container_ifname_issue,
    did_you_mean,
    dns_option_issue,
    mac_issue,
    nameserver_issue,
    port_claim,
    port_clashes,
    reserved_issue,
)

NETWORK_MODES = ("bridge", "none", "host", "container:<name>")
# settings that network modes without networks of their own cannot have, and why
_MODE_CONFLICTS: dict[str, tuple[frozenset[str], str]] = {
    "none": (frozenset({"networks", "ports", "links", "mac_address"}), "the container has no network"),
    "host": (frozenset({"networks", "ports", "links", "mac_address", "hostname", "domainname"}),
             "the container uses the host's network and hostname"),
    "container": (frozenset({"networks", "ports", "links", "mac_address", "hostname", "domainname", "dns",
                             "dns_search", "dns_opt", "extra_hosts"}),
                  "the container uses the network, hostname and files of the one it joins"),
}

IPV6_LOOPBACK = IPv6Address("::1")


class ContainerSection(NetworkSection):
    """Reads `containers:` once the networks are known, then checks the spec across containers."""

    def _containers(self, networks: dict[str, NetworkSpec]) -> list[ContainerSpec]:
        containers = []
        for name in self._mapping(("containers",)):
            path = ("containers", name)
            self._check_name(path, "container")
            if isinstance(self.doc.get(path), dict):
                containers.append(self._container(path, networks))
        return containers

    def _container(self, path: PathKey, networks: dict[str, NetworkSpec]) -> ContainerSpec:
        mode = self._network_mode((*path, "network_mode"))
        attachments = self._attachments(path, networks)
        networks_path = (*path, "networks")
        unattached = not self.doc.get(networks_path) and not self.doc.is_rejected(networks_path)
        if mode == "bridge" and unattached:
            self.doc.problem(path, "container has no networks", at_key=True)
        name = str(path[-1])
        settings = self._mapping(path)  # looked up once: most containers set few of these
        return ContainerSpec(
            name=name,
            networks=tuple(attachments),
            network_mode=mode,
            hostname=self._hostname((*path, "hostname"), settings.get("hostname")),
            domainname=self._domainname((*path, "domainname"), settings.get("domainname")),
            links=self._links((*path, "links"), settings.get("links")),
            dns=self._checked_strings((*path, "dns"), settings.get("dns"), nameserver_issue),
            dns_search=self._checked_strings((*path, "dns_search"), settings.get("dns_search"), validate_dns_search),
            dns_opt=self._checked_strings((*path, "dns_opt"), settings.get("dns_opt"), dns_option_issue),
            extra_hosts=self._extra_hosts((*path, "extra_hosts"), settings.get("extra_hosts")),
            ports=self._ports((*path, "ports"), settings.get("ports")),
            node=self._string((*path, "node")),
            location=self.doc.key_location(path),
        )

    def _network_mode(self, path: PathKey) -> str:
        mode = self._string(path)
        if mode is None:
            return ContainerSpec.network_mode
        kind, colon, target = mode.partition(":")
        if (kind in ("bridge", "none", "host") and not colon) or (kind == "container" and target):
            return mode
        self.doc.problem(path, f"{show(mode)} is not a network mode: use {', '.join(NETWORK_MODES)}")
        return ContainerSpec.network_mode

    def _hostname(self, path: PathKey, value: Any) -> str:
        """The hostname set, else the container name (not checked as a hostname: Docker
        resolves names such as 'my_db' too, and the name is checked as a container name)."""
        if type(value) is not str:
            return str(path[-2])
        issue = validate_hostname(value)
        if issue:
            self.doc.problem(path, issue)
        return value

    def _domainname(self, path: PathKey, value: Any) -> str | None:
        if type(value) is not str:
            return None
        issue = validate_hostname(value)
        if issue:
            self.doc.problem(path, issue)
        return value

    def _checked_strings(
        self, path: PathKey, value: Any, issue_of: Callable[[str], str | None]
    ) -> tuple[str, ...]:
        """The strings of the list `value` at `path`, each checked by `issue_of`."""
        if type(value) is not list:
            return ()
        for index, item in enumerate(value):
            if type(item) is str:
                issue = issue_of(item)
                if issue:
                    self.doc.problem((*path, index), issue)
        return tuple(item for item in value if type(item) is str)

    def _links(self, path: PathKey, value: Any) -> tuple[str, ...]:
        """Links as 'target:alias'; their targets are checked once all containers are read."""
        if type(value) is not list:
            return ()
        links: dict[str, str] = {}  # alias -> target
        for index, item in enumerate(value):
            if type(item) is not str:
                continue
            item_path = (*path, index)
            target, colon, alias = item.partition(":")
            alias = alias if colon else target
            if not target or not alias:
                self.doc.problem(item_path, f"{show(item)} is not a link: write 'name' or 'name:alias'")
                continue
            issue = validate_hostname(alias) if colon else None
            if issue:
                self.doc.problem(item_path, issue)
            elif alias in links:
                self.doc.problem(item_path, f"link alias {alias!r} is listed twice")
                continue
            links[alias] = target
            self.links.append((item_path, target))
        return tuple(f"{target}:{alias}" for alias, target in links.items())

    def _extra_hosts(self, path: PathKey, value: Any) -> tuple[str, ...]:
        """Extra /etc/hosts entries as 'name:address', the address canonical ('host-gateway' kept)."""
        if type(value) is list:
            items = [((*path, i), parse_extra_host, (item,)) for i, item in enumerate(value) if type(item) is str]
        elif type(value) is dict:
            items = [((*path, k), extra_host_from_mapping, (k, v)) for k, v in value.items() if type(v) is str]
        else:
            return ()
        entries: list[str] = []
        for item_path, parse, args in items:
            try:
                entry = parse(*args)
            except ExtraHostError as e:
                self.doc.problem(item_path, str(e))
                continue
            for name in entry.names:
                # Docker writes any name without whitespace into /etc/hosts, where '#' starts a comment
                issue = validate_hostname(name)
                if issue:
                    self.doc.problem(item_path, issue)
                else:
                    entries.append(f"{name}:{entry.address}")
        return tuple(entries)

    def _ports(self, path: PathKey, value: Any) -> tuple[PortMapping, ...]:
        if type(value) is not list:
            return ()
        mappings = []
        for index, item in enumerate(value):
            if type(item) not in (str, int):
                continue
            try:
                mapping = parse_port(item)
            except PortError as error:
                self.doc.problem((*path, index), str(error))
                continue
            mappings.append(mapping)
            self.published.append(((*path, index), mapping))
        return tuple(mappings)

    def _attachment_entries(self, path: PathKey) -> list[tuple[PathKey, str]]:
        """Each entry naming a network (list item or mapping key), with the network name."""
        networks_path = (*path, "networks")
        raw = self.doc.get(networks_path)
        if isinstance(raw, list):
            return [((*networks_path, i), item) for i, item in enumerate(raw) if isinstance(item, str)]
        if isinstance(raw, dict):
            return [((*networks_path, name), name) for name in raw]
        return []

    def _attachments(self, path: PathKey, networks: dict[str, NetworkSpec]) -> list[Attachment]:
        attachments: list[Attachment] = []
        for entry, name in self._attachment_entries(path):
            if any(attachment.network == name for attachment in attachments):
                self.doc.problem(entry, f"network {name!r} is listed twice", at_key=True)
                continue
            self._check_network_known(entry, name)
            # The container-level mac_address belongs to the first network (Compose).
            fallback_mac = None if attachments else (*path, "mac_address")
            attachment = self._attachment(entry, name, networks.get(name), fallback_mac)
            earlier = next((a for a in attachments if attachment.interface_name and
                            a.interface_name == attachment.interface_name), None)
            if earlier is not None:
                self.doc.problem((*entry, "interface_name"),
                                 f"interface {attachment.interface_name!r} is already the one on network "
                                 f"{earlier.network!r}")
            attachments.append(attachment)
        return attachments

    def _check_network_known(self, entry: PathKey, name: str) -> None:
        known = self._mapping(("networks",))
        if name not in known:
            self.doc.problem(entry, f"unknown network {name!r}{did_you_mean(name, known)}", at_key=True)

    def _attachment(
        self, entry: PathKey, name: str, network: NetworkSpec | None, fallback_mac: PathKey | None
    ) -> Attachment:
        container = f"container {entry[1]!r}"
        mac_path = (*entry, "mac_address")
        if self._string(mac_path) is None and fallback_mac is not None:
            mac_path = fallback_mac
        aliases_path = (*entry, "aliases")
        return Attachment(
            network=name,
            ipv4_address=self._static_address((*entry, "ipv4_address"), network, container, 4),
            ipv6_address=self._static_address((*entry, "ipv6_address"), network, container, 6),
            mac_address=self._mac(mac_path, container),
            aliases=self._checked_strings(aliases_path, self.doc.get(aliases_path), validate_hostname),
            interface_name=self._container_ifname((*entry, "interface_name")),
            gw_priority=self._int((*entry, "gw_priority"), Attachment.gw_priority),
            location=self.doc.key_location(entry),
        )

    def _container_ifname(self, path: PathKey) -> str | None:
        name = self._string(path)
        if name is None:
            return None
        issue = container_ifname_issue(name)
        if issue:
            self.doc.problem(path, f"{name!r} is not a valid interface name: {issue}")
        return name

    def _static_address(
        self, path: PathKey, network: NetworkSpec | None, owner: str, version: int
    ) -> IPv4Address | IPv6Address | None:
        if version == 6 and network is not None and not network.enable_ipv6 and self._string(path) is not None:
            self.doc.problem(path, f"network {network.name!r} has no IPv6: set enable_ipv6: true and subnet6")
            return None
        if version == 4 and network is not None and network.subnet is None and self._string(path) is not None:
            self.doc.problem(path, f"network {network.name!r} has no subnet (it is chosen at plan time): a static "
                             "address needs one written, to be checked against")
            return None
        address = self._address(path, network.subnet_of(version) if network else None, version)
        if address is None or network is None or network.subnet_of(version) is None:
            return address  # a network whose subnet6 is invalid: reported there
        issue = reserved_issue(address, network) or self._claim(self.address_owners, address, owner)
        if issue:
            self.doc.problem(path, issue)
        return address

    def _mac(self, path: PathKey, owner: str) -> str | None:
        text = self._string(path)
        if text is None:
            return None
        mac = text.lower()
        issue = mac_issue(mac) or self._claim(self.mac_owners, mac, owner)
        if issue:
            self.doc.problem(path, issue)
        return mac

    def _check_links(self, containers: list[ContainerSpec]) -> None:
        if not self.links:
            return
        known = self._mapping(("containers",))  # invalid containers too: reported as such
        networks_of = {c.name: {a.network for a in c.networks} for c in containers}
        modes = {c.name: c.network_mode for c in containers}
        for path, target in self.links:
            owner = str(path[1])
            if target == owner:
                self.doc.problem(path, "a container cannot link to itself")
            elif target not in known:
                message = f"link target {target!r} is not a container of this spec{did_you_mean(target, known)}"
                self.doc.problem(path, message)
            elif modes.get(target, "bridge") != "bridge":
                self.doc.problem(path, f"link target {target!r} has network_mode {modes[target]}: "
                                 "links need a network both containers are on")
            else:
                mine, theirs = networks_of.get(owner), networks_of.get(target)
                if mine and theirs and mine.isdisjoint(theirs):  # no networks: reported already
                    self.doc.problem(path, f"link target {target!r} does not share a network with {owner!r}")

    def _check_network_modes(self, containers: list[ContainerSpec]) -> None:
        """Settings a mode cannot have; container:<name> targets that exist and do not
        lead back to themselves."""
        by_name = {container.name: container for container in containers}
        known = self._mapping(("containers",))
        for container in containers:
            path = ("containers", container.name)
            conflicts = _MODE_CONFLICTS.get(container.mode)
            if conflicts is not None:
                fields, why = conflicts
                for key in self._mapping(path):
                    if key in fields:
                        self.doc.problem((*path, key), f"'{key}' cannot be used with network_mode "
                                         f"{container.network_mode}: {why}", at_key=True)
            if container.mode in ("none", "host") and any(e.endswith(":host-gateway") for e in container.extra_hosts):
                self.doc.problem((*path, "extra_hosts"), f"host-gateway needs a network; network_mode "
                                 f"{container.mode} has none", at_key=True)
            target = container.shares
            if target is None:
                continue
            mode_path = (*path, "network_mode")
            if target == container.name:
                self.doc.problem(mode_path, "a container cannot join its own network namespace")
            elif target not in known:
                self.doc.problem(mode_path, f"{target!r} is not a container of this spec"
                                 f"{did_you_mean(target, known)}")
            elif self._leads_back(container, by_name):
                self.doc.problem(mode_path, f"network_mode container:{target} leads back to {container.name!r} "
                                 "(a cycle): one of them needs a network namespace of its own")

    @staticmethod
    def _leads_back(container: ContainerSpec, by_name: dict[str, ContainerSpec]) -> bool:
        seen, current = {container.name}, container
        while current.shares is not None:
            current = by_name.get(current.shares)
            if current is None:
                return False
            if current.name in seen:
                return current.name == container.name
            seen.add(current.name)
        return False

    def _check_published_ports(self, networks: list[NetworkSpec], containers: list[ContainerSpec]) -> None:
        """No host port, protocol and address published twice (a wildcard address takes
        the port on every address of its IP version), every publisher has a network with a
        way out, and one of IPv6 if an entry publishes on IPv6 only."""
        internal = {network.name for network in networks if network.internal}
        beside_host = {network.name for network in networks if not drivers.through_host(network.driver)}
        ipv6_way_out = {network.name for network in networks
                        if network.ipv6 and not network.internal and network.name not in beside_host}
        only_internal, with_ipv6 = set(), set()
        networks_by_name = {network.name: network for network in networks}
        for container in containers:
            if container.ports and container.networks and all(a.network in beside_host for a in container.networks):
                kinds = " and ".join(sorted({networks_by_name[a.network].driver for a in container.networks}))
                message = (f"container {container.name!r} is only on {kinds} networks, whose traffic does not go "
                           "through the host: its ports cannot be published (" + (
                               "it is reachable on the LAN at its own address)" if kinds == "macvlan" else
                               "publish them through a bridge network it is also on)"))
                self.doc.problem(("containers", container.name, "ports"), message, at_key=True)
                only_internal.add(container.name)
            elif container.ports and container.networks and all(
                    a.network in internal | beside_host for a in container.networks):
                message = f"container {container.name!r} is only on internal networks: its ports cannot be published"
                self.doc.problem(("containers", container.name, "ports"), message, at_key=True)
                only_internal.add(container.name)
            if any(a.network in ipv6_way_out for a in container.networks):
                with_ipv6.add(container.name)
            if container.ports:
                self._check_published_through_host(container, networks_by_name)
        can_take_ipv6 = with_ipv6 | only_internal  # only_internal: reported above for all its entries
        for path, mapping in self.published:
            # an entry without host IP publishes on IPv4 alone there, as Docker without its userland proxy
            if mapping.families == (6,) and path[1] not in can_take_ipv6:
                self.doc.problem(path, f"{port_claim(mapping)} publishes on IPv6 but container {path[1]!r} has no "
                                 "IPv6 network to forward it to (enable_ipv6 on a network that is not internal)")
        for path, mapping, earlier_path in port_clashes(self.published):
            earlier = f"{dotted(earlier_path)} ({self.doc.location(earlier_path)})"
            self.doc.problem(path, f"host port {port_claim(mapping)} is already published by {earlier}")
        for path, mapping in self.published:
            if mapping.host_address == IPV6_LOOPBACK:
                self.doc.problem(path, "a port cannot be published on ::1: IPv6 has no route_localnet, so the kernel "
                                       "drops the container's replies addressed back to ::1 (netreconcile has no "
                                       "userland proxy); publish on 127.0.0.1 or on one of the host's IPv6 addresses")
        self._check_moved_range_budget()

    def _check_host_gateway(self, networks: list[NetworkSpec], containers: list[ContainerSpec]) -> None:
        """An extra_hosts `host-gateway` needs a network with a gateway (not only overlay ones)."""
        by_name = {network.name: network for network in networks}
        for container in containers:
            if not container.networks or not any(e.endswith(":host-gateway") for e in container.extra_hosts):
                continue  # without networks: reported by _check_network_modes
            if drivers.host_gateway_network(container, by_name) is None and all(
                    a.network in by_name for a in container.networks):
                kinds = " and ".join(sorted({by_name[a.network].driver for a in container.networks}))
                self.doc.problem(("containers", container.name, "extra_hosts"), "host-gateway needs a network with "
                                 f"a gateway on the host: container {container.name!r} is only on {kinds} networks, "
                                 "which have none (put it on a bridge network too)", at_key=True)

    def _check_published_through_host(self, container: ContainerSpec, networks: dict[str, NetworkSpec]) -> None:
        """Ports are DNATed to the container's address on its gateway network of each family
        (highest gw_priority, first on a tie, never internal); with gateway_on_host: false
        the host routes nothing into that network, so nothing can be published there."""
        for family in sorted({family for mapping in container.ports for family in mapping.families}):
            candidates = [a for a in container.networks if a.network in networks
                          and not networks[a.network].internal and family in networks[a.network].families]
            gateway = max(candidates, key=lambda a: a.gw_priority, default=None)
            if gateway is not None and not networks[gateway.network].gateway_on_host:
                message = (f"container {container.name!r} would publish its ports on network {gateway.network!r} "
                           f"(its IPv{family} default route), which has gateway_on_host: false: the host routes "
                           "nothing into it, so nothing can be published there; publish through another network "
                           "with a higher gw_priority")
                self.doc.problem(("containers", container.name, "ports"), message, at_key=True)
                return

    def _check_moved_range_budget(self) -> None:
        """A range moved to other container ports costs the firewall one map element per
        port (nft cannot express the kernel's port offset), so the spec gets a budget of
        such ports; a range on the same ports costs one rule whatever its size."""
        spent = 0
        for path, mapping in self.published:
            if mapping.offset == 0 or mapping.host_first == mapping.host_last:
                continue
            spent += mapping.host_last - mapping.host_first + 1
            if spent > MAX_MOVED_RANGE_PORTS:
                self.doc.problem(path, f"ranges moved to other container ports may publish at most "
                                       f"{MAX_MOVED_RANGE_PORTS} ports in one spec (each is one firewall map "
                                       f"element), and this entry brings them to {spent}; publish the range on "
                                       f"the same ports ('{mapping.host_ports}:{mapping.host_ports}'), which "
                                       "costs one rule whatever its size")
                return
