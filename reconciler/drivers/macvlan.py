"""The macvlan driver (Docker's `macvlan`): containers on the LAN of an existing host
interface, the network's `parent`. Per attachment one macvlan interface on the parent,
made directly in the container's namespace (never moved), with the container's address
and MAC; the network has nothing of its own in the host namespace, and its traffic never
crosses the host's IP stack (no firewall, NAT or published ports: `through_host` is off).

It owns the `parent:` and `macvlan_mode:` options and their checks (Docker's parent rules:
an interface name, or NAME.VID for an 802.1Q subinterface; not the loopback), the check
that the parent exists in the host namespace and is not netreconcile's own (`live_problems`),
the Macvlan kernel object, its mark (interface alias `netreconcile:macvlan:<container>:<network>`,
set in the container's namespace) and the netlink requests that create, change and delete
it. The parent is only ever used: netreconcile never changes (promiscuity, state, MTU) or
deletes it.

A parent NAME.VID the host lacks is made: the network's one host object is then a Vlan
link on NAME (marked `netreconcile:vlan:<NAME.VID>`), shared by every network on that
parent and deleted with the last of them; one the host has is used and never deleted.
The kernel must support 802.1Q (module 8021q: reconciler.kernel.support).

The host cannot reach the containers through the parent (a macvlan property). With
`host_shim: true` the network has a macvlan of the host's on the parent, the Shim
(`shim` + 7 hex characters, marked `netreconcile:shim:<network>`), with the subnet's
last host address (/32) and a host route to each container's address through it. Pure
(see reconciler.drivers.base).
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address
from typing import Any, Mapping

from reconciler.drivers.base import Changed, NextSeq
from reconciler.drivers.bridge import mac_for
from reconciler.drivers.interfaces import container_ipv6_settings
from reconciler.errors import Problem
from reconciler.kernel import netlink as nl
from reconciler.spec.document import PathKey, SectionReader
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec
from reconciler.spec.values import ifname_issue
from reconciler.state.model import HOST_NS, MISSING, Address, KernelObject, Macvlan, Route, Shim, State, Vlan

OWNER = "netreconcile"
MODES = tuple(nl.MACVLAN_MODES)  # Docker's: bridge, private, vepa, passthru
DEFAULT_MODE = "bridge"
VLAN_IDS = range(1, 4095)  # 802.1Q: 0 means untagged, 4095 is reserved
# options of other drivers that mean nothing here: the traffic does not go through the host
NOT_THROUGH_HOST = {
    "icc": "traffic between its containers does not go through the host, which cannot filter it",
    "masquerade": "its traffic does not go through the host, which cannot masquerade it",
    "masquerade6": "its traffic does not go through the host, which cannot masquerade it",
    "internal": ("its containers are on the parent's LAN (Docker's internal macvlan has no parent, a dummy "
                 "link, which this kernel lacks)"),
}


def macvlan_alias(container: str, network: str) -> str:
    return f"{OWNER}:macvlan:{container}:{network}"


def vlan_alias(ifname: str) -> str:
    return f"{OWNER}:vlan:{ifname}"


def shim_alias(network: str) -> str:
    return f"{OWNER}:shim:{network}"


def shim_name(network: str) -> str:
    """The host shim's interface name: 'shim' + 7 hex characters, stable per network."""
    return "shim" + hashlib.sha256(network.encode()).hexdigest()[:7]


def split_vlan(parent: str) -> tuple[str, int] | None:
    """(NAME, VID) of a valid 802.1Q parent NAME.VID, else None."""
    base, dot, vid = parent.partition(".")
    return (base, int(vid)) if dot and vid.isdigit() else None


def parent_issue(name: str) -> str | None:
    """What makes `name` no usable parent (Docker's TestValidateSubLink rules), if anything:
    an interface name, or NAME.VID (exactly one dot, an integer VLAN id 1-4094); never the
    loopback, which the kernel refuses as a macvlan's lower link."""
    issue = ifname_issue(name)
    if issue:
        return issue
    if name == "lo":
        return "the loopback interface cannot carry macvlan interfaces (the kernel refuses it)"
    if "." not in name:
        return None
    base, *vids = name.split(".")
    if len(vids) != 1:
        return "an 802.1Q parent is NAME.VID, with exactly one dot"
    if not vids[0].isdigit() or int(vids[0]) not in VLAN_IDS:
        return f"the VLAN id {vids[0]!r} of an 802.1Q parent NAME.VID is not an integer from 1 to 4094"
    return ifname_issue(base)


class MacvlanDriver:
    """`driver: macvlan` (see the module docstring)."""

    name = "macvlan"
    # in the host namespace: the VLAN links it makes as parents, and host shims
    link_kinds = ("vlan", "macvlan")
    attachment_link_kind = ""
    routed_link_kinds = ("macvlan",)  # the routes to the containers through a host shim
    options = ("parent", "macvlan_mode", "host_shim")
    container_link_kind = "macvlan"
    through_host = False
    chooses_subnet = False  # the LAN's subnet: never guessed
    default_mtu = NetworkSpec.mtu  # the LAN's Ethernet 1500; a parent's larger one is not assumed
    always_internal = False  # the LAN's router is the way out

    # --- the spec -------------------------------------------------------------------------------
    def read_options(self, reader: SectionReader, path: PathKey) -> dict[str, Any]:
        for key, why in NOT_THROUGH_HOST.items():
            if reader.doc.get((*path, key)) is not None:
                reader.doc.problem((*path, key), f"'{key}' does not apply to a macvlan network: {why}", at_key=True)
        parent = reader._string((*path, "parent"))
        if parent is None:
            if reader.doc.get((*path, "parent")) is None:
                reader.doc.problem(path, "a macvlan network needs 'parent': the existing host interface its "
                                         "containers' interfaces are made on", at_key=True)
        else:
            issue = parent_issue(parent)
            if issue:
                reader.doc.problem((*path, "parent"), f"{parent!r} is not a valid macvlan parent: {issue}")
        mode = reader._string((*path, "macvlan_mode"))
        mode = mode if mode in MODES else DEFAULT_MODE  # another value is the schema's to report
        host_shim = reader._bool((*path, "host_shim"), False)
        if host_shim and mode != DEFAULT_MODE:
            reader.doc.problem((*path, "host_shim"), f"a host shim reaches the containers only in macvlan_mode "
                               f"bridge, not {mode}", at_key=True)
        return {
            "bridge": "",
            "parent": parent or "",
            "macvlan_mode": mode,
            "host_shim": host_shim,
            "parent_location": reader._location_if_set((*path, "parent")),
        }

    def host_name(self, network: NetworkSpec) -> str | None:
        return None  # the parent is shared, not claimed

    def max_attachments(self, network: NetworkSpec) -> tuple[int, str] | None:
        return None  # a parent takes thousands of macvlans

    def used_interfaces(self, network: NetworkSpec) -> dict[str, str]:
        """The parent; of an 802.1Q parent NAME.VID the link NAME, which netreconcile never
        owns (NAME.VID it makes when the host lacks it, and then owns)."""
        vlan = split_vlan(network.parent)
        if vlan is not None:
            return {vlan[0]: f"link of the 802.1Q parent {network.parent} of macvlan network {network.name}"}
        return {network.parent: f"parent of macvlan network {network.name}"}

    def check_unique(self, reader: SectionReader, path: PathKey, network: NetworkSpec,
                     earlier: Mapping[str, NetworkSpec]) -> None:
        bridge_network = earlier.get(network.parent)
        if bridge_network is not None:
            reader.doc.problem((*path, "parent"), f"parent {network.parent} is the bridge of network "
                               f"{bridge_network.name!r}, which netreconcile makes; a parent is a host interface")
        role = "passthru parent" if network.macvlan_mode == "passthru" else "parent"
        user = reader.interface_users.setdefault(network.parent, (network.name, role))
        # macvlan networks may share a parent, as on Docker, but not in passthru mode (the
        # one macvlan takes the parent over) and not with a bridge that has it as its uplink
        if user[0] != network.name and "passthru" in user[1] + role or user[1] == "uplink":
            reader.doc.problem((*path, "parent"), f"parent {network.parent} is already the {user[1]} of network "
                               f"{user[0]!r}: " + ("a bridge port cannot be a macvlan parent" if user[1] == "uplink"
                                                    else "in passthru mode a parent serves one network only"))
        if network.host_shim and network.shim_address == network.gateway:
            reader.doc.problem((*path, "host_shim"), f"the host shim's address {network.shim_address} (the last of "
                               "the subnet) is the gateway; give the gateway another address", at_key=True)

    # --- the desired state ----------------------------------------------------------------------
    def live_problems(self, network: NetworkSpec, desired: State, live: State) -> list[Problem]:
        """The parent must be a host interface that is there and not netreconcile's own (a
        VLAN link it made as a parent aside), with an MTU no smaller than the network's. A
        parent NAME.VID the host lacks is made on NAME: NAME must be there and not
        netreconcile's, and the kernel must make VLAN links."""
        issue = _parent_issue_on(network, desired, live)
        if issue is None:
            return []
        where = network.parent_location or network.location
        return [Problem(where, "", f"network {network.name}: {issue}; nothing was changed")]

    def kinds(self) -> tuple[type[KernelObject], ...]:
        return (Macvlan, Vlan, Shim)

    def network_objects(self, network: NetworkSpec) -> list[KernelObject]:
        source = str(network.parent_location or network.location)
        objects: list[KernelObject] = []
        vlan = split_vlan(network.parent)
        if vlan is not None:
            base, vlan_id = vlan
            objects.append(Vlan(network.parent, base, vlan_id, marked_as=network.parent, source=source))
        if network.shim_address is not None:
            shim = shim_name(network.name)
            objects += [
                Shim(shim, network.name, network.parent, DEFAULT_MODE, mac_for(network.shim_address), network.mtu,
                     source=source),
                Address(HOST_NS, shim, f"{network.shim_address}/32", source=source),
            ]
        return objects

    def attachment_objects(self, container: ContainerSpec, network: NetworkSpec, attachment: Attachment,
                           mac: str, ifname: str, hairpin: bool, netns_ipv6: bool = False,
                           address: IPv4Address | None = None) -> list[KernelObject]:
        to_container = []
        if network.host_shim and address is not None:  # the host reaches it through the shim
            to_container.append(Route(HOST_NS, f"{address}/32", "", shim_name(network.name),
                                      source=str(attachment.location)))
        return to_container + [Macvlan(
            container=container.name,
            network=network.name,
            netns=container.name,
            ifname=ifname,
            parent=network.parent,
            mode=network.macvlan_mode,
            mac=mac,
            mtu=network.mtu,
            ipv6=network.ipv6,
            netns_ipv6=netns_ipv6,
            source=str(attachment.location),
        )]

    # --- the live state -------------------------------------------------------------------------
    def parse_mark(self, alias: str) -> tuple[str, ...] | None:
        parts = alias.split(":")
        if len(parts) == 4 and parts[0] == OWNER and parts[1] == "macvlan":
            return ("macvlan", parts[2], parts[3])
        if len(parts) == 3 and parts[0] == OWNER and parts[1] == "vlan":
            return ("vlan", parts[2])
        if len(parts) == 3 and parts[0] == OWNER and parts[1] == "shim":
            return ("macvlan", parts[2])  # a host shim is a link of kind macvlan
        return None

    def unmarked(self, link_kind: str) -> tuple[str, ...]:
        """The identity of a link that a run stopped before marking (a macvlan in an owned
        namespace, a journaled VLAN link): ours, and replaced."""
        return ("vlan", MISSING) if link_kind == "vlan" else ("macvlan", MISSING, MISSING)

    def observed_network(self, link: nl.Link, identity: tuple[str, ...], lower: str) -> KernelObject:
        if link.kind == "macvlan":  # a host shim; a container's mark on it (or none) makes it one to replace
            network = identity[0] if len(identity) == 1 else MISSING
            return Shim(link.ifname, network, lower, link.macvlan_mode or MISSING, link.mac, link.mtu, link.up)
        return Vlan(link.ifname, lower, link.vlan_id, identity[0], link.up)

    def observed_attachment(self, link: nl.Link, identity: tuple[str, ...], netns: str, peer: nl.Link | None,
                            master: str) -> KernelObject:
        raise TypeError("the macvlan driver has no host links")

    def observed_container_link(self, link: nl.Link, identity: tuple[str, ...], netns: str,
                                parent: str) -> KernelObject:
        container, network = identity if len(identity) == 2 else (MISSING, MISSING)  # a shim's mark: not ours here
        return Macvlan(container, network, netns, link.ifname, parent, link.macvlan_mode or MISSING, link.mac,
                       link.mtu, link.up, ipv6=link.ipv6)

    # --- requests -------------------------------------------------------------------------------
    def host_link(self, obj: KernelObject) -> tuple[str, str] | None:
        # a macvlan is made in the container's namespace: nothing to journal in the host's
        if isinstance(obj, Vlan):
            return (obj.ifname, "vlan")
        return (obj.ifname, "macvlan") if isinstance(obj, Shim) else None

    def link_netns(self, obj: KernelObject) -> str:
        return HOST_NS if isinstance(obj, (Vlan, Shim)) else obj.netns

    def master_of(self, obj: KernelObject, changed: Changed) -> str | None:
        # a new parent (or a VLAN link's new link) replaces it: only on create
        if isinstance(obj, Vlan):
            return obj.link if changed("link") else None
        return obj.parent if changed("parent") else None

    def peer_netns(self, obj: KernelObject) -> str | None:
        return None if isinstance(obj, (Vlan, Shim)) else obj.netns

    def create_requests(self, obj: KernelObject, next_seq: NextSeq, master: int, netns_fd: int) -> list[bytes]:
        if isinstance(obj, Vlan):
            return [nl.new_vlan(next_seq(), obj.ifname, master, obj.vlan_id)]
        return [nl.new_macvlan(next_seq(), obj.ifname, master, obj.mode, obj.mac, obj.mtu, netns_fd)]

    def mark_requests(self, obj: KernelObject, next_seq: NextSeq) -> list[bytes]:
        if isinstance(obj, Vlan):
            return [nl.set_link(next_seq(), ifname=obj.ifname, alias=vlan_alias(obj.ifname), up=obj.up)]
        if isinstance(obj, Shim):
            return [nl.set_link(next_seq(), ifname=obj.ifname, alias=shim_alias(obj.network), up=obj.up)]
        return [nl.set_link(next_seq(), ifname=obj.ifname, alias=macvlan_alias(obj.container, obj.network),
                            up=obj.up)]

    def update_requests(self, obj: KernelObject, next_seq: NextSeq, changed: Changed, master: int) -> list[bytes]:
        if isinstance(obj, Vlan):
            return [nl.set_link(next_seq(), ifname=obj.ifname, up=obj.up)] if changed("up") else []
        if not changed("mtu", "mac", "up"):
            return []
        return [nl.set_link(
            next_seq(), ifname=obj.ifname,
            mtu=obj.mtu if changed("mtu") else None,
            mac=obj.mac if changed("mac") else None,
            up=obj.up if changed("up") else None,
        )]

    def peer_requests(self, obj: KernelObject, next_seq: NextSeq, changed: Changed, creating: bool) -> list[bytes]:
        return []  # the macvlan is the container's side itself

    def delete_requests(self, obj: KernelObject, next_seq: NextSeq) -> list[bytes]:
        return [nl.del_link(next_seq(), ifname=obj.ifname)]

    def settings(self, obj: KernelObject, changed: Changed, creating: bool) -> list[tuple[str, str, str]]:
        """IPv6 on a macvlan as its network wants (as on a veth's peer); a VLAN link or a
        host shim is left as the kernel makes it."""
        if not isinstance(obj, Macvlan):
            return []
        return container_ipv6_settings(obj.netns, obj.ifname, obj.ipv6, obj.netns_ipv6, changed, creating)


def _parent_issue_on(network: NetworkSpec, desired: State, live: State) -> str | None:
    parent = network.parent
    if parent in live.host_link_mtus:
        ours = parent not in live.foreign_links and ("vlan", parent) not in live.objects
        return _owned_or_mtu_issue(network, parent, ours or _made_by_the_spec(parent, desired),
                                   live.host_link_mtus[parent])
    vlan = split_vlan(parent)
    if vlan is None:
        return f"parent {parent} does not exist in the host namespace"
    base = vlan[0]
    if base not in live.host_link_mtus:
        return f"parent {parent}: {base} does not exist in the host namespace"
    if "vlan" in live.unsupported_link_kinds:
        return f"parent {parent}: the kernel has no 802.1Q VLAN support (module 8021q)"
    ours = base not in live.foreign_links or _made_by_the_spec(base, desired)
    issue = _owned_or_mtu_issue(network, base, ours, live.host_link_mtus[base])
    return f"parent {parent}: {issue}" if issue else None


def _owned_or_mtu_issue(network: NetworkSpec, name: str, ours: bool, mtu: int) -> str | None:
    if ours:
        return f"parent {name} is an interface netreconcile manages; a parent must be one it does not own"
    if network.mtu > mtu:
        return f"mtu {network.mtu} is larger than the MTU {mtu} of parent {name}: set the network's mtu to {mtu} or less"
    return None


def _made_by_the_spec(name: str, desired: State) -> bool:
    """Whether the desired state makes host interface `name` (a bridge), other than as a VLAN parent."""
    return any(("link", HOST_NS, name) in obj.holds() for obj in desired.objects.values() if not isinstance(obj, Vlan))


MACVLAN = MacvlanDriver()
