"""The validated spec as frozen dataclasses: what the user asked for.

`reconciler.spec.loader` builds these from YAML after validation; nothing here does I/O.
Every object carries the `Location` it came from so that plans and errors can
point back at the spec line that requires them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from reconciler.spec.ports import PortMapping


@dataclass(frozen=True, order=True)
class Location:
    """A place in a spec file; line and column are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN_LOCATION = Location("<unknown>", 0, 0)


@dataclass(frozen=True)
class HostSpec:
    ip_forward: bool | None = None  # None: set it when a network needs forwarding
    resolv_conf: str = "/etc/resolv.conf"
    dns_resolver: bool = False  # containers on discovery networks ask the embedded DNS server
    location: Location = field(default=UNKNOWN_LOCATION, compare=False)
    resolv_conf_location: Location | None = field(default=None, compare=False)  # None: not in the spec


@dataclass(frozen=True)
class NodeSpec:
    """One host of a multi-host spec (`nodes:`): its name and underlay address, its VTEP."""

    name: str
    address: IPv4Address
    location: Location = field(default=UNKNOWN_LOCATION, compare=False)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    bridge: str
    # None in a spec without `subnet:` (bridge driver): chosen at plan time from the live host
    # (reconciler.state.subnets), which also sets `subnet_chosen`; set in every planned spec
    subnet: IPv4Network | None
    gateway: IPv4Address | None
    mtu: int = 1500
    icc: bool = True
    masquerade: bool = True
    internal: bool = False
    aux_addresses: tuple[IPv4Address | IPv6Address, ...] = ()  # each in the subnet of its IP version
    driver: str = "bridge"
    enable_ipv6: bool = False
    subnet6: IPv6Network | None = None  # set exactly when enable_ipv6
    gateway6: IPv6Address | None = None  # the first address of subnet6 unless given
    masquerade6: bool = True  # False: the IPv6 prefix is routed, not NATed (Docker's gateway_mode_ipv6=routed)
    discovery: bool = True  # containers on it find each other by name (never on a network named `bridge`)
    uplink: str | None = None  # a host interface made a port of the bridge (bridge driver); never created or deleted
    gateway_on_host: bool = True  # False: `gateway` is the LAN's router, the bridge has no address, the host routes nothing
    parent: str = ""  # driver macvlan: the host interface its containers' interfaces are made on
    macvlan_mode: str = "bridge"  # driver macvlan: bridge, private, vepa or passthru
    host_shim: bool = False  # driver macvlan: the host gets a macvlan of its own on the parent (`shim_address`)
    subnet_chosen: bool = False  # `subnet` (and `gateway`) chosen by reconciler.state.subnets, not written
    vni: int = 0  # driver overlay: the VXLAN network identifier (given, or derived from the name)
    location: Location = field(default=UNKNOWN_LOCATION, compare=False)
    uplink_location: Location | None = field(default=None, compare=False)  # where `uplink` is written
    parent_location: Location | None = field(default=None, compare=False)  # None: not in the spec

    @property
    def ipv6(self) -> bool:
        """Whether the network is dual stack: IPv6 on, with its subnet6 and gateway6."""
        return self.enable_ipv6 and self.subnet6 is not None and self.gateway6 is not None

    def subnet_of(self, family: int) -> IPv4Network | IPv6Network | None:
        """The subnet of IP version `family` (4 or 6), None when the network has none."""
        return self.subnet if family == 4 else self.subnet6 if self.ipv6 else None

    def gateway_of(self, family: int) -> IPv4Address | IPv6Address | None:
        """The gateway of IP version `family` (4 or 6), None when the network has none."""
        return self.gateway if family == 4 else self.gateway6 if self.ipv6 else None

    @property
    def shim_address(self) -> IPv4Address | None:
        """The host shim's address (`host_shim`): the subnet's last host address, reserved."""
        return self.subnet.broadcast_address - 1 if self.host_shim and self.subnet is not None else None

    @property
    def families(self) -> tuple[int, ...]:
        """The IP versions the network carries: (4,) or (4, 6)."""
        return (4, 6) if self.ipv6 else (4,)


@dataclass(frozen=True)
class Attachment:
    """One container's membership of one network."""

    network: str
    ipv4_address: IPv4Address | None = None
    ipv6_address: IPv6Address | None = None  # only on a network with enable_ipv6
    mac_address: str | None = None  # lower-case, colon separated
    aliases: tuple[str, ...] = ()
    interface_name: str | None = None  # None: the lowest free ethN, sticky once given
    gw_priority: int = 0
    location: Location = field(default=UNKNOWN_LOCATION, compare=False)

    def address_of(self, family: int) -> IPv4Address | IPv6Address | None:
        """The static address of IP version `family` (4 or 6), None when none is given."""
        return self.ipv4_address if family == 4 else self.ipv6_address


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    networks: tuple[Attachment, ...] = ()
    network_mode: str = "bridge"
    hostname: str | None = None
    domainname: str | None = None
    links: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    node: str | None = None  # the node that builds it; None in a single-host spec
    location: Location = field(default=UNKNOWN_LOCATION, compare=False)

    @property
    def mode(self) -> str:
        """bridge, none, host or container (network_mode without the target)."""
        return self.network_mode.partition(":")[0]

    @property
    def shares(self) -> str | None:
        """For network_mode container:<name>, the container whose namespace this one joins."""
        mode, _, target = self.network_mode.partition(":")
        return target if mode == "container" else None


@dataclass(frozen=True)
class Spec:
    path: str
    version: int = 1
    host: HostSpec = HostSpec()
    networks: tuple[NetworkSpec, ...] = ()  # in spec order
    containers: tuple[ContainerSpec, ...] = ()  # in spec order
    nodes: tuple[NodeSpec, ...] = ()  # in spec order; () for a single-host spec
    # The node this host is (--node): it builds that node's containers, the others are
    # remote. None: it builds every container (a single-host spec, or `validate` without --node).
    node: str | None = None

    def builds(self, container: ContainerSpec) -> bool:
        """Whether this host builds `container` (else it is remote: on another node)."""
        return self.node is None or container.node == self.node

    @cached_property
    def local_containers(self) -> tuple[ContainerSpec, ...]:
        """The containers this host builds, in spec order."""
        return tuple(container for container in self.containers if self.builds(container))

    def network(self, name: str) -> NetworkSpec:
        return self._networks_by_name[name]

    def container(self, name: str) -> ContainerSpec:
        return self._containers_by_name[name]

    def joined(self, container: ContainerSpec) -> ContainerSpec:
        """The end of `container`'s chain of network_mode container:<name> (itself
        without one): a container with a namespace of its own, or one in host mode."""
        seen = set()
        while container.shares is not None and container.name not in seen:
            seen.add(container.name)
            container = self.container(container.shares)
        return container

    @cached_property
    def _networks_by_name(self) -> dict[str, NetworkSpec]:
        return {network.name: network for network in self.networks}

    @cached_property
    def _containers_by_name(self) -> dict[str, ContainerSpec]:
        return {container.name: container for container in self.containers}
