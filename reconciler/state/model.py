"""Kernel objects as frozen dataclasses: the one vocabulary of desired and live state.

The desired state (built from the spec) and the live state (observed over netlink)
are made of the same types, so planning is equality on values keyed by `key`.
Fields that only explain where an object comes from (`source`) do not take part in
comparisons.  Namespace "" is the host namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from ipaddress import ip_address, ip_interface
from typing import ClassVar

from reconciler.render.hostsfile import DISCOVERY_BEGIN

HOST_NS = ""
# The IP versions addresses and routes of the desired state can have; observing reads these
# families only.
ADDRESS_FAMILIES: tuple[int, ...] = (4, 6)


class Missing(str):
    """The one marker (`MISSING`) for a field of a live object that could not be found: a
    veth's peer, the container an alias still names, a route's interface. It reads "?"
    wherever it is shown (plan text, JSON) and is no name a spec can give; its repr says
    what it is, and it stays the one marker through copies and pickling."""

    _the_one: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._the_one is None:
            cls._the_one = super().__new__(cls, "?")
        return cls._the_one

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"  # pickled by reference to this module's MISSING


MISSING = Missing()
IP_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"
# the host's forwarding switch per IP version: set behind the firewall, never reset
FORWARDING = {4: IP_FORWARD, 6: IPV6_FORWARD}
# IPv6 settings of a container interface with IPv6 (the namespace's default for those it
# makes): no link-local address of the kernel's (addr_gen_mode 1), no duplicate address
# detection, no router solicitations (a bridge network has no router advertising, and the
# kernel would solicit for ever, backing off to an hour). The link-local address and what
# it brings (its DAD, its solicited-node group's MLD reports) is multicast the bridge floods
# to every port: N containers starting cost O(N²) deliveries, and dual-stack creation took
# 1.8x the IPv4-only time instead of 1.2x (benchmarks/README.md, dual stack). Neighbour
# discovery runs on the assigned addresses.
QUIET_IPV6 = (("addr_gen_mode", "1"), ("dad_transmits", "0"), ("router_solicitations", "0"))
# where a container file's text starts to be the same for many files (Text)
SHARED_FROM = DISCOVERY_BEGIN
Token = tuple  # a name for what an object needs, provides, holds or takes along: ("netns", "web"), ...


@dataclass(frozen=True)
class KernelObject:
    kind: ClassVar[str] = "object"
    # fields whose change cannot be made in place: the object is deleted and re-created
    replace_on: ClassVar[tuple[str, ...]] = ()
    # why a live object the desired state lacks is deleted
    stray_reason: ClassVar[str] = "not in the spec any more"
    # whether undoing an apply may make it again as it was observed
    restorable: ClassVar[bool] = True
    # what the planner reads (reconciler.state.planner): an object depends only on objects
    # of lower rank; deletions of `in_break` kinds come after the creates (processes may still
    # use them); an `irreversible` deletion is one undoing cannot give back
    rank: ClassVar[int] = 0
    in_break: ClassVar[bool] = False
    irreversible: ClassVar[bool] = False
    # whether a live one the desired state lacks is deleted (a sysctl is only ever set)
    deletable: ClassVar[bool] = True
    # whether it stands for a container (its `netns`) to the mass-deletion guard
    is_container: ClassVar[bool] = False
    # whether the spec wants it only where the host lacks a link of its name: one that is
    # there and not ours is used instead (never a conflict, never taken over)
    made_if_absent: ClassVar[bool] = False

    def needs(self) -> set[Token]:
        """What must exist first, in the terms of `provides`."""
        return set()

    def provides(self) -> set[Token]:
        """What other objects may need of it: its key, and what `needs` of others names."""
        return {self.key}

    def holds(self) -> set[Token]:
        """Names nothing else can have while it exists: ("netns", name), ("link", netns, ifname)."""
        return set()

    def claims(self) -> set[Token]:
        """Values two objects must never hold at the same time (an IP address)."""
        return set()

    def takes_along(self) -> set[Token]:
        """What the kernel removes with it, in the terms of `goes_with`."""
        return set()

    def goes_with(self) -> set[Token]:
        """Whose removal (see `takes_along`) removes it too."""
        return set()

    def dropped_with(self) -> set[Token]:
        """What, when deleted, makes the kernel drop it although it stays wanted (in the
        terms of `provides`): a route goes when its interface loses an address."""
        return set()

    def container_interface(self) -> tuple[str, str, str] | None:
        """(container, network, interface name) when it is a container's interface on a
        network, found where its mark says (what keeps interface names sticky)."""
        return None

    @property
    def key(self) -> tuple:
        raise NotImplementedError

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def own_name(self) -> str:
        """What the object is called, without the description `name` gives (JSON's "name")."""
        return self.name

    def differences(self, other: KernelObject) -> tuple[tuple[str, object, object], ...]:
        """(field, self's value, other's value) for every compared field that differs."""
        return tuple(
            (f.name, getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if f.compare and getattr(self, f.name) != getattr(other, f.name)
        )


@dataclass(frozen=True)
class Netns(KernelObject):
    """A container network namespace at /run/netns/<name>."""

    kind: ClassVar[str] = "netns"
    rank: ClassVar[int] = 1  # above bridges: deleted first, taking their veths off the bridges in one batch
    in_break: ClassVar[bool] = True
    irreversible: ClassVar[bool] = True  # made again, it is a new, empty one
    is_container: ClassVar[bool] = True
    netns: str
    lo_up: bool = True
    ipv6: bool = False
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("netns", self.netns)

    @property
    def name(self) -> str:
        return self.netns

    def holds(self) -> set[Token]:
        return {("netns", self.netns)}

    def takes_along(self) -> set[Token]:
        return {("netns", self.netns), ("files", self.netns)}


@dataclass(frozen=True)
class NetnsAlias(KernelObject):
    """A second name, /run/netns/<netns>, for the namespace of container `target`
    ("" for the host's): network_mode container:<target> and host."""

    kind: ClassVar[str] = "alias"
    rank: ClassVar[int] = 2
    in_break: ClassVar[bool] = True
    is_container: ClassVar[bool] = True
    replace_on: ClassVar[tuple[str, ...]] = ("target",)
    netns: str
    target: str  # MISSING when the name leads to some other namespace
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("alias", self.netns)

    @property
    def name(self) -> str:
        return f"{self.netns} -> {self.target or 'host'}"

    @property
    def own_name(self) -> str:
        return self.netns

    def needs(self) -> set[Token]:
        return {("netns", self.target)} if self.target != HOST_NS else set()

    def holds(self) -> set[Token]:
        return {("netns", self.netns)}

    def takes_along(self) -> set[Token]:
        return {("files", self.netns)}  # the namespace is another's; the files are the alias's


class _HostLink:
    """What an interface netreconcile makes in the host namespace (`ifname`) declares: it
    holds its name there, and what lives on it goes with it."""

    def provides(self) -> set[Token]:
        return {self.key, ("interface", HOST_NS, self.ifname)}

    def holds(self) -> set[Token]:
        return {("link", HOST_NS, self.ifname)}

    def takes_along(self) -> set[Token]:
        return {("interface", HOST_NS, self.ifname)}


@dataclass(frozen=True)
class Bridge(_HostLink, KernelObject):
    """A Linux bridge in the host namespace, owned by one network."""

    kind: ClassVar[str] = "bridge"
    rank: ClassVar[int] = 0
    in_break: ClassVar[bool] = True  # after its ports, which go with the veths before it
    replace_on: ClassVar[tuple[str, ...]] = ("network",)  # another network's bridge (or an unmarked one)
    ifname: str
    network: str
    mac: str
    mtu: int
    up: bool = True
    ipv6: bool = False  # IPv6 on the bridge: on exactly for a network with IPv6 (its gateway6 lives there)
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("bridge", self.ifname)

    @property
    def name(self) -> str:
        return self.ifname


@dataclass(frozen=True)
class Vlan(_HostLink, KernelObject):
    """An 802.1Q VLAN link NAME.VID in the host namespace, on host link NAME: made for
    the macvlan networks whose parent it is when the host lacks it (`made_if_absent`),
    deleted with the last of them. One the host has already is used, never taken over."""

    kind: ClassVar[str] = "vlan"
    rank: ClassVar[int] = 0  # before the macvlans on it; deleted after them
    in_break: ClassVar[bool] = True
    made_if_absent: ClassVar[bool] = True
    replace_on: ClassVar[tuple[str, ...]] = ("marked_as", "link", "vlan_id")
    ifname: str
    link: str  # the host link it tags frames on (MISSING when not found)
    vlan_id: int
    marked_as: str  # the name its mark gives (MISSING: unmarked, a run cut between create and mark)
    up: bool = True
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("vlan", self.ifname)

    @property
    def name(self) -> str:
        return f"{self.ifname} (VLAN {self.vlan_id} on {self.link})"

    @property
    def own_name(self) -> str:
        return self.ifname


@dataclass(frozen=True)
class Veth(KernelObject):
    """A veth pair: host end on a bridge, peer end inside a container namespace."""

    kind: ClassVar[str] = "veth"
    rank: ClassVar[int] = 3
    in_break: ClassVar[bool] = True
    irreversible: ClassVar[bool] = True  # made again, it is a new interface under the container's processes
    replace_on: ClassVar[tuple[str, ...]] = ("netns", "peer_ifname", "container", "network")
    host_ifname: str
    container: str
    network: str
    netns: str  # namespace holding the peer (MISSING when the peer is not found)
    peer_ifname: str
    bridge: str  # master of the host end ("" when none)
    mac: str  # MAC of the peer end
    mtu: int
    peer_mtu: int
    host_up: bool = True
    peer_up: bool = True
    ipv6: bool = False  # IPv6 on the peer: on exactly for a network with IPv6
    host_ipv6: bool = False  # IPv6 on the host end: always off (a bridge port needs none; see reconciler.drivers.bridge)
    hairpin: bool = False  # hairpin mode of the host end (a container reaching its own published port)
    # whether the peer's namespace makes new interfaces with IPv6 on (its `default`): what the peer has
    # when created, so that only a peer that must differ costs a sysctl write
    netns_ipv6: bool = field(default=False, compare=False)
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("veth", self.host_ifname)

    @property
    def name(self) -> str:
        return f"{self.host_ifname} ({self.container}:{self.peer_ifname} on {self.network})"

    @property
    def own_name(self) -> str:
        return self.host_ifname

    def needs(self) -> set[Token]:
        return {("bridge", self.bridge)} | ({("netns", self.netns)} if self.netns != HOST_NS else set())

    def provides(self) -> set[Token]:
        return {self.key, ("interface", self.netns, self.peer_ifname)}

    def container_interface(self) -> tuple[str, str, str] | None:
        if self.netns != self.container or self.peer_ifname == MISSING:
            return None
        return (self.container, self.network, self.peer_ifname)

    def holds(self) -> set[Token]:
        return {("link", HOST_NS, self.host_ifname), ("link", self.netns, self.peer_ifname)}

    def takes_along(self) -> set[Token]:
        return {("interface", self.netns, self.peer_ifname)}

    def goes_with(self) -> set[Token]:
        return {("netns", self.netns)}


@dataclass(frozen=True)
class Uplink(KernelObject):
    """A host interface netreconcile uses but does not own, as a port of a network's bridge
    (the bridge driver's `uplink`). Creating it enslaves the interface and brings it up;
    deleting it releases it: no master, left up, never deleted (so undoing gives it back).
    Any interface that is not netreconcile's but is a port of one of its bridges is one, and
    so is an uplink the spec names that is a port of nothing (`bridge` ""): then undoing an
    apply that took it gives it back as it was, up or down."""

    kind: ClassVar[str] = "uplink"
    rank: ClassVar[int] = 3  # needs its bridge
    stray_reason: ClassVar[str] = "not in the spec any more: released (no master, left up), never deleted"
    ifname: str
    bridge: str  # its master ("" when none)
    up: bool = True
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("uplink", self.ifname)

    @property
    def name(self) -> str:
        return f"{self.ifname} (used, not owned) on {self.bridge or 'no bridge'}"

    @property
    def own_name(self) -> str:
        return self.ifname

    def needs(self) -> set[Token]:
        return {("bridge", self.bridge)} if self.bridge else set()

    def goes_with(self) -> set[Token]:
        # a bridge deleted (or replaced) releases its ports: enslaved again when still wanted
        return {("interface", HOST_NS, self.bridge)} if self.bridge else set()


@dataclass(frozen=True)
class Macvlan(KernelObject):
    """A macvlan interface of a container: made directly in its namespace on the host
    link `parent` (which netreconcile uses but never owns, changes or deletes)."""

    kind: ClassVar[str] = "macvlan"
    rank: ClassVar[int] = 3
    in_break: ClassVar[bool] = True
    irreversible: ClassVar[bool] = True  # made again, it is a new interface under the container's processes
    replace_on: ClassVar[tuple[str, ...]] = ("container", "network", "parent", "mode")
    container: str  # MISSING for an unmarked one (a run cut between create and mark)
    network: str
    netns: str
    ifname: str
    parent: str  # the host link it is on (MISSING when not found)
    mode: str  # bridge, private, vepa or passthru (MISSING when unknown)
    mac: str
    mtu: int
    up: bool = True
    ipv6: bool = False  # IPv6 on the interface: on exactly for a network with IPv6
    # whether its namespace makes new interfaces with IPv6 on (as Veth.netns_ipv6)
    netns_ipv6: bool = field(default=False, compare=False)
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("macvlan", self.netns, self.ifname)

    @property
    def name(self) -> str:
        return f"{self.container}:{self.ifname} on {self.network} (parent {self.parent}, {self.mode})"

    @property
    def own_name(self) -> str:
        return f"{self.netns}:{self.ifname}"

    def needs(self) -> set[Token]:
        return {("netns", self.netns), ("vlan", self.parent)}  # the VLAN link netreconcile makes, if it does

    def provides(self) -> set[Token]:
        return {self.key, ("interface", self.netns, self.ifname)}

    def container_interface(self) -> tuple[str, str, str] | None:
        return (self.container, self.network, self.ifname) if self.netns == self.container else None

    def holds(self) -> set[Token]:
        return {("link", self.netns, self.ifname)}

    def takes_along(self) -> set[Token]:
        return {("interface", self.netns, self.ifname)}

    def goes_with(self) -> set[Token]:
        return {("netns", self.netns), ("interface", HOST_NS, self.parent)}  # the kernel deletes it with its parent


@dataclass(frozen=True)
class Shim(_HostLink, KernelObject):
    """A macvlan network's `host_shim`: a macvlan interface of the host's on the parent
    (bridge mode), through which the host reaches the network's containers, which the
    parent itself cannot."""

    kind: ClassVar[str] = "shim"
    rank: ClassVar[int] = 0
    in_break: ClassVar[bool] = True
    replace_on: ClassVar[tuple[str, ...]] = ("network", "parent", "mode")
    ifname: str
    network: str  # MISSING for an unmarked one
    parent: str  # MISSING when not found
    mode: str
    mac: str
    mtu: int
    up: bool = True
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("shim", self.ifname)

    @property
    def name(self) -> str:
        return f"{self.ifname} (host shim of {self.network} on {self.parent})"

    @property
    def own_name(self) -> str:
        return self.ifname

    def needs(self) -> set[Token]:
        return {("vlan", self.parent)}

    def goes_with(self) -> set[Token]:
        return {("interface", HOST_NS, self.parent)}


@dataclass(frozen=True)
class Vxlan(_HostLink, KernelObject):
    """The VXLAN device of an overlay network in the host namespace: a port of the network's
    bridge, tunnelling its frames to the other nodes over UDP 4789 from `local`, this node's
    underlay address; no learning (its forwarding entries are static), ARP and IPv6
    neighbour solicitations answered from its neighbour entries (proxy)."""

    kind: ClassVar[str] = "vxlan"
    rank: ClassVar[int] = 3  # needs its bridge
    replace_on: ClassVar[tuple[str, ...]] = ("network", "vni", "local")  # fixed at creation
    ifname: str
    network: str
    vni: int
    local: str
    bridge: str
    mac: str
    mtu: int
    up: bool = True
    ipv6: bool = False  # IPv6 on the device (quiet, no address): on exactly for a network with IPv6
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("vxlan", self.ifname)

    @property
    def name(self) -> str:
        return f"{self.ifname} (VNI {self.vni} from {self.local})"

    def needs(self) -> set[Token]:
        return {("interface", HOST_NS, self.bridge)}


class _EntryOfDevice:
    """What an entry of a host device's tables (`device`) declares: it needs the device,
    and goes with it."""

    def needs(self) -> set[Token]:
        return {("interface", HOST_NS, self.device)}

    def goes_with(self) -> set[Token]:
        return {("interface", HOST_NS, self.device)}


@dataclass(frozen=True)
class FdbEntry(_EntryOfDevice, KernelObject):
    """A static forwarding entry of a VXLAN device: frames to `mac` go to the VTEP `remote`.
    The all-zero MAC has one per remote node with members of the network: broadcast and
    unknown unicast go to each of them (head-end replication, no multicast)."""

    kind: ClassVar[str] = "fdb"
    rank: ClassVar[int] = 4
    device: str
    mac: str
    remote: str
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("fdb", self.device, self.mac, self.remote)

    @property
    def name(self) -> str:
        return f"{self.mac} via {self.remote} on {self.device}"


@dataclass(frozen=True)
class NeighEntry(_EntryOfDevice, KernelObject):
    """A permanent neighbour entry of a VXLAN device: a remote container's `address` is at `mac`."""

    kind: ClassVar[str] = "neigh"
    rank: ClassVar[int] = 4
    device: str
    address: str
    mac: str
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("neigh", self.device, self.address)

    @property
    def name(self) -> str:
        return f"{self.address} at {self.mac} on {self.device}"


@dataclass(frozen=True)
class Address(KernelObject):
    """An IP address (CIDR) on an interface."""

    kind: ClassVar[str] = "address"
    rank: ClassVar[int] = 4
    netns: str
    ifname: str
    cidr: str
    source: str = field(default="", compare=False)

    @property
    def family(self) -> int:
        """The IP version (4 or 6) of the address."""
        return ip_interface(self.cidr).version

    @property
    def key(self) -> tuple:
        return ("address", self.netns, self.ifname, self.cidr)

    @property
    def name(self) -> str:
        where = self.netns or "host"
        return f"{self.cidr} on {where}:{self.ifname}"

    @property
    def own_name(self) -> str:
        return self.cidr

    def needs(self) -> set[Token]:
        return _interface_needs(self.netns, self.ifname)

    def provides(self) -> set[Token]:
        return {self.key, ("addresses", self.netns, self.ifname, self.family)}

    def claims(self) -> set[Token]:
        return {("ip", self.cidr.split("/")[0])}

    def goes_with(self) -> set[Token]:
        return {("netns", self.netns), ("interface", self.netns, self.ifname)}


@dataclass(frozen=True)
class Route(KernelObject):
    """A route in a container namespace's main table; `dst` "default" or a CIDR. Each IP
    version has its own table, so its `family` (4 or 6) is part of the key."""

    kind: ClassVar[str] = "route"
    rank: ClassVar[int] = 5
    netns: str
    dst: str
    gateway: str
    ifname: str
    family: int = 0  # 0: the version of the gateway, else of `dst`; a gatewayless default route is IPv4
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.family:
            if self.gateway:
                family = ip_address(self.gateway).version
            else:
                family = 4 if self.dst == "default" else ip_interface(self.dst).version
            object.__setattr__(self, "family", family)

    @property
    def key(self) -> tuple:
        return ("route", self.netns, self.family, self.dst)

    @property
    def name(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""  # a route on the link (to a macvlan through a shim)
        return f"{self.dst}{via} dev {self.ifname} in {self.netns or 'host'}"

    @property
    def own_name(self) -> str:
        return self.dst

    def needs(self) -> set[Token]:
        return _interface_needs(self.netns, self.ifname) | {("addresses", self.netns, self.ifname, self.family)}

    def goes_with(self) -> set[Token]:
        return {("netns", self.netns), ("interface", self.netns, self.ifname)}

    def dropped_with(self) -> set[Token]:
        # the kernel flushes IPv4 routes through an interface that loses its last IPv4
        # address; IPv6 routes stay
        return {("addresses", self.netns, self.ifname, 4)} if self.family == 4 else set()


def _interface_needs(netns: str, ifname: str) -> set[Token]:
    """What an address or route on interface `ifname` of `netns` needs: the interface (a
    bridge or a macvlan shim in the host namespace), and the namespace it is in."""
    if netns == HOST_NS:
        return {("interface", HOST_NS, ifname)}
    return {("netns", netns), ("interface", netns, ifname)}


class Text(tuple):
    """A container file's text in parts, split where `SHARED_FROM` first occurs: from there
    on the text is the same for many files (the discovery section of a hosts file: 1000
    containers on a network all list its 1000 members), and that part is one object held
    once, not a copy per file (with 5000 containers, 130 MB of hosts files each held twice
    during an apply). The split depends on the joined text alone, so two Texts are equal
    exactly when their texts are, and comparing a shared part is an identity check."""

    __slots__ = ()

    @classmethod
    def of(cls, text: str) -> Text:
        at = text.find(SHARED_FROM)
        return cls((text,) if at < 0 else (text[:at], text[at:]))

    @classmethod
    def joined(cls, head: str, shared: str) -> Text:
        """The Text of head + shared, keeping `shared` itself as the part that is shared
        when the split falls there."""
        if shared.startswith(SHARED_FROM) and SHARED_FROM not in head + shared[:len(SHARED_FROM) - 1]:
            return cls((head, shared))
        return cls.of(head + shared)

    def __str__(self) -> str:
        return "".join(self)


class SharedParts:
    """The shared parts of the Texts read in one observation, each kept once: a text read
    whose shared part equals one met before gets that one (compared by length first, so
    the 26 KB parts are neither hashed nor held twice)."""

    CANDIDATES = 8  # distinct parts of one length compared against, at most

    def __init__(self) -> None:
        self._by_length: dict[int, list[str]] = {}

    def text(self, content: str) -> Text:
        text = Text.of(content)
        if len(text) < 2:
            return text
        met = self._by_length.setdefault(len(text[1]), [])
        for part in met:
            if part == text[1]:
                return Text((text[0], part))
        if len(met) < self.CANDIDATES:
            met.append(text[1])
        return text


@dataclass(frozen=True, init=False)
class File(KernelObject):
    """A file of a container in its /etc/netns/<netns>/ directory (hostname, hosts, resolv.conf).

    Its `text` is held in parts (Text); `content` is the whole text, made when asked for
    (writing the file, showing a difference)."""

    kind: ClassVar[str] = "file"
    rank: ClassVar[int] = 6
    netns: str
    filename: str
    text: Text
    source: str = field(default="", compare=False)

    def __init__(self, netns: str, filename: str, content: str | Text | None = None, source: str = "",
                 text: Text | None = None) -> None:
        # `content` (a str or a Text) wins over `text`: dataclasses.replace(file, content=...) passes both
        if content is not None:
            text = content if isinstance(content, Text) else Text.of(content)
        if text is None:
            raise TypeError("File needs its content")
        object.__setattr__(self, "netns", netns)
        object.__setattr__(self, "filename", filename)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "source", source)

    @property
    def content(self) -> str:
        return str(self.text)

    @property
    def key(self) -> tuple:
        return ("file", self.netns, self.filename)

    @property
    def name(self) -> str:
        return f"{self.netns}/{self.filename}"

    def needs(self) -> set[Token]:
        return {("netns", self.netns), ("alias", self.netns)}

    def goes_with(self) -> set[Token]:
        return {("netns", self.netns), ("files", self.netns)}

    def differences(self, other: KernelObject) -> tuple[tuple[str, object, object], ...]:
        """The text's difference is named "content" (what plans and JSON have always said);
        its values are the Texts, joined only where a difference is described."""
        return tuple(("content" if name == "text" else name, old, new) for name, old, new in super().differences(other))


@dataclass(frozen=True)
class Leftover(KernelObject):
    """A temporary file of netreconcile's in a container's directory, left by a write
    that was cut short (SIGKILL): the desired state never has one, so it is deleted."""

    kind: ClassVar[str] = "leftover"
    rank: ClassVar[int] = 7  # only ever deleted
    stray_reason: ClassVar[str] = "a temporary file left by a write that was cut short"
    restorable: ClassVar[bool] = False
    netns: str
    filename: str

    @property
    def key(self) -> tuple:
        return ("leftover", self.netns, self.filename)

    @property
    def name(self) -> str:
        return f"{self.netns}/{self.filename}"

    def goes_with(self) -> set[Token]:
        return {("netns", self.netns), ("files", self.netns)}


@dataclass(frozen=True)
class Sysctl(KernelObject):
    """A sysctl of a namespace, e.g. net.ipv4.ip_forward in the host namespace.

    Per-interface settings are written with slashes (net/ipv4/conf/br.1/route_localnet)
    because interface names may contain dots."""

    kind: ClassVar[str] = "sysctl"
    rank: ClassVar[int] = 9  # after the firewall: forwarding is switched on behind it
    deletable: ClassVar[bool] = False
    netns: str
    setting: str
    value: str
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("sysctl", self.netns, self.setting)

    @property
    def name(self) -> str:
        return f"{self.setting} in {self.netns or 'host'}"

    @property
    def own_name(self) -> str:
        return self.setting

    def needs(self) -> set[Token]:
        if self.setting.startswith("net/ipv4/conf/"):  # a setting of an interface: of a bridge
            return {("bridge", self.setting.split("/")[3])}
        if self.setting.replace("/", ".") in FORWARDING.values():
            return {("firewall", self.netns)}  # forwarding is switched on behind the firewall
        return set()


@dataclass(frozen=True)
class Firewall(KernelObject):
    """netreconcile's nftables tables in a namespace (inet, and bridge when needed);
    `ruleset` is their normalized listing without the elements of the published-port
    maps, replaced as a whole; `elements` are those ('MAP KEY : VALUE', sorted), updated
    one by one when nothing else changes (reconciler.render.firewall.load_script)."""

    kind: ClassVar[str] = "firewall"
    rank: ClassVar[int] = 8
    netns: str
    ruleset: str
    elements: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def key(self) -> tuple:
        return ("firewall", self.netns)

    @property
    def name(self) -> str:
        return f"netreconcile tables in {self.netns or 'host'}"

    @property
    def own_name(self) -> str:
        return "netreconcile"


@dataclass(frozen=True)
class UsedInterface:
    """What is observed of a host interface the spec names but netreconcile does not own
    (an uplink): what decides whether it may be taken. Only interfaces the spec names
    are looked at this closely."""

    ifname: str
    exists: bool = True
    owned: bool = False  # one of netreconcile's own links
    kind: str = ""  # the kernel's link kind ("" for a physical NIC)
    master: str = ""  # the interface it is a port of ("" when none)
    master_owned: bool = False  # that master is one of netreconcile's bridges
    mtu: int = 0
    addresses: tuple[str, ...] = ()  # its IPv4 and global IPv6 addresses (CIDR)
    default_routes: tuple[tuple[int, str], ...] = ()  # (IP version, gateway or "") of host default routes through it


@dataclass(frozen=True)
class State:
    """A set of kernel objects keyed by `key`, plus what is present but not ours.

    `foreign_links` are host-namespace interface names netreconcile does not own;
    `foreign_netns` are namespaces in /run/netns it does not own; `foreign_files` are
    (container, what is in the way) pairs for links or other non-regular entries where a
    container's directory or file should be ("/etc/netns/web is a symbolic link"). None
    is ever changed or followed; the planner reports a conflict when the spec wants one
    of the names. `foreign_netns_hosts` names, for foreign namespaces netreconcile manages
    for another host namespace, that host namespace ("" for the root one), so the
    conflict can say so. `host_link_mtus` has the MTU of every host-namespace interface,
    owned or not: what a macvlan parent is checked against. `unsupported_link_kinds` are
    the kinds of link the kernel cannot make ("vlan" without 802.1Q support).
    """

    objects: dict[tuple, KernelObject] = field(default_factory=dict)
    foreign_links: frozenset[str] = frozenset()
    foreign_netns: frozenset[str] = frozenset()
    foreign_netns_hosts: dict[str, str] = field(default_factory=dict)
    foreign_files: frozenset[tuple[str, str]] = frozenset()
    # observed: host interfaces the spec uses but netreconcile does not own, by name
    used_interfaces: dict[str, UsedInterface] = field(default_factory=dict)
    # desired: why the live state forbids building it ("LOCATION: why": an uplink that carries
    # the host's addresses, say); the planner reports them as conflicts
    refusals: tuple[str, ...] = ()
    host_link_mtus: dict[str, int] = field(default_factory=dict)
    unsupported_link_kinds: frozenset[str] = frozenset()
    # observed when asked: the host namespace's IPv4 networks that are not netreconcile's (the
    # main table's routes but the default, the addresses of interfaces it does not own), as
    # CIDRs: what a subnet chosen at plan time avoids (reconciler.state.subnets)
    host_networks: tuple[str, ...] = ()

    @classmethod
    def of(cls, objs, foreign_links=frozenset(), foreign_netns=frozenset(), foreign_files=frozenset(),
           host_link_mtus=None, unsupported_link_kinds=frozenset()) -> State:
        objects: dict[tuple, KernelObject] = {}
        for obj in objs:
            if obj.key in objects:
                raise ValueError(f"duplicate object {obj.key}")
            objects[obj.key] = obj
        return cls(objects, foreign_links=frozenset(foreign_links), foreign_netns=frozenset(foreign_netns),
                   foreign_files=frozenset(foreign_files), host_link_mtus=dict(host_link_mtus or {}),
                   unsupported_link_kinds=frozenset(unsupported_link_kinds))

    def of_kind(self, kind_type: type) -> list:
        return [o for o in self.objects.values() if isinstance(o, kind_type)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and self.objects == other.objects

    def __len__(self) -> int:
        return len(self.objects)
