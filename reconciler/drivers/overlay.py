"""The overlay driver (Docker's `overlay`, without its key-value store): one network across
the nodes of a multi-host spec, whose only coordination is the spec itself. Per network on
each node a bridge and a VXLAN device (`vni`, UDP port 4789, the node's address as its local
VTEP, no learning) as its port; the forwarding to the other nodes' containers is static,
computed from the spec (issue 17).

This module owns the spec side: the `vni` option (given, or derived stably from the network
name: `derived_vni`), the default MTU of 1450 (the underlay's 1500 minus VXLAN's 50), what
an overlay network cannot have (a gateway on the host and what needs one: `masquerade`,
`masquerade6`, `uplink`, `gateway_on_host`, `internal`; `icc`) and the uniqueness of
bridge names and VNIs. And the objects a node wants of an overlay network, computed from
the spec alone (`overlay_objects`): the bridge (the bridge driver's kind), the Vxlan device
(marked `netreconcile:vxlan:<network>`, its requests here) and the FdbEntry and NeighEntry
objects of the remote members (written by reconciler.kernel.entries: entries cannot be
marked, and are ours by being on our device). A container's attachment is the bridge
driver's veth on the overlay's bridge.

The bridge has no address of either family (`gateway` and `gateway6` are only kept free):
the overlay is a layer-2 segment between containers, and its containers reach the outside
through another network they are on (as Docker's overlay containers use docker_gwbridge),
so its traffic never crosses the host's IP stack (`through_host` is off: no firewall
rules, no published ports). With IPv6 (`enable_ipv6`, `subnet6`) a remote member has a
neighbour entry per family; the VXLAN device then has IPv6 on (the kernel keeps IPv6
neighbour entries only there) but quiet: no address of its own, no DAD, no solicitation.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Mapping

from reconciler.drivers.base import Changed, NextSeq
from reconciler.drivers.bridge import BRIDGE, bridge_port_limit, mac_for
from reconciler.drivers.interfaces import switched_ipv6
from reconciler.kernel import netlink as nl
from reconciler.errors import Problem
from reconciler.spec.document import PathKey, SectionReader
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.spec.values import interface_name_issue
from reconciler.state.model import HOST_NS, MISSING, Bridge, FdbEntry, KernelObject, NeighEntry, State, Vxlan

OWNER = "netreconcile"
VNIS = range(1, 1 << 24)  # 24 bits; 0 is left out, as Docker does
DEFAULT_MTU = 1450
# options of other drivers, or of all, that an overlay network cannot have, and why
REFUSED = {
    "masquerade": "the bridge has no address, so nothing leaves through the host: attach the container to a "
                  "bridge network too for a way out",
    "masquerade6": "the bridge has no address, so nothing leaves through the host",
    "uplink": "the overlay's only port beyond its containers is its VXLAN device",
    "gateway_on_host": "the bridge of an overlay network has no address",
    "internal": "an overlay network is internal already: nothing leaves it but to its containers on other nodes",
    "icc": "traffic between its containers does not go through the host's firewall",
}


def derived_vni(network: str) -> int:
    """The VNI of an overlay network without `vni`: a stable hash of its name (the same on
    every node and every run), in 1 .. 2^24-1."""
    digest = hashlib.sha256(f"netreconcile-overlay\0{network}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (len(VNIS)) + VNIS.start


def vxlan_alias(network: str) -> str:
    return f"{OWNER}:vxlan:{network}"


def vxlan_name(network: NetworkSpec) -> str:
    """The VXLAN device's interface name: 'vxlan' and the VNI (at most 13 characters)."""
    return f"vxlan{network.vni}"


def vxlan_mac(network: NetworkSpec) -> str:
    """A stable, locally administered unicast MAC of the VXLAN device, the same on every
    node (the device's own MAC never leaves the node: frames carry the containers')."""
    digest = hashlib.sha256(f"netreconcile-vxlan\0{network.name}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def overlay_objects(spec: Spec, network: NetworkSpec, addresses: Mapping[tuple[str, str], IPv4Address],
                    addresses6: Mapping[tuple[str, str], IPv6Address]) -> list[KernelObject]:
    """What node `spec.node` has of overlay `network`, from the spec alone: nothing when
    it hosts no member; else the bridge, the VXLAN device on it, and per remote member an
    FDB entry (its MAC -> its node's VTEP) and a neighbour entry per address (its IPv4
    and, on a network with IPv6, its IPv6 address -> its MAC), and per other node with
    members an all-zero FDB entry (head-end replication of broadcast and unknown unicast).
    Linear in the network's members."""
    nodes = {node.name: node for node in spec.nodes}
    members = [(container, attachment) for container in spec.containers for attachment in container.networks
               if attachment.network == network.name]
    if spec.node not in nodes or not any(container.node == spec.node for container, _ in members):
        return []
    source = str(network.location)
    device = vxlan_name(network)
    objects: list[KernelObject] = [
        Bridge(network.bridge, network.name, mac_for(network.gateway), network.mtu, source=source),
        Vxlan(device, network.name, network.vni, str(nodes[spec.node].address), network.bridge, vxlan_mac(network),
              network.mtu, ipv6=network.ipv6, source=source),
    ]
    remote_nodes: dict[str, None] = {}
    for container, attachment in members:
        if container.node == spec.node:
            continue
        address = addresses[(container.name, network.name)]
        mac = attachment.mac_address or mac_for(address)
        vtep = str(nodes[container.node].address)
        where = str(attachment.location)
        objects += [FdbEntry(device, mac, vtep, source=where), NeighEntry(device, str(address), mac, source=where)]
        if network.ipv6:
            objects.append(NeighEntry(device, str(addresses6[(container.name, network.name)]), mac, source=where))
        remote_nodes.setdefault(container.node)
    objects += [FdbEntry(device, nl.ZERO_MAC, str(nodes[node].address), source=source) for node in remote_nodes]
    return objects


class OverlayDriver:
    """`driver: overlay` (see the module docstring)."""

    name = "overlay"
    link_kinds = ("vxlan",)
    attachment_link_kind = ""
    routed_link_kinds: tuple[str, ...] = ()
    container_link_kind = ""
    options = ("vni",)
    through_host = False
    default_mtu = DEFAULT_MTU
    always_internal = True  # no gateway on the host: nothing leaves, no default route through it
    # one subnet across the nodes, written: a choice from one host's routes could differ on another
    chooses_subnet = False

    # --- the spec -------------------------------------------------------------------------------
    def read_options(self, reader: SectionReader, path: PathKey) -> dict[str, Any]:
        if not reader.doc.get(("nodes",)):
            reader.doc.problem((*path, "driver"), "an overlay network spans the hosts of a multi-host spec: it "
                               "needs the top-level 'nodes:' (each host's underlay address, its VXLAN endpoint)")
        for key, why in REFUSED.items():
            if reader.doc.get((*path, key)) is not None:
                reader.doc.problem((*path, key), f"'{key}' does not apply to an overlay network: {why}", at_key=True)
        name = str(path[-1])
        vni = reader._int((*path, "vni"), 0) or derived_vni(name)
        issue = interface_name_issue(name)
        if issue:
            reader.doc.problem(path, f"the network name {name!r} cannot be the overlay's bridge name ({issue})",
                               at_key=True)
        return {"bridge": name, "vni": vni}

    def host_name(self, network: NetworkSpec) -> str:
        return network.bridge

    def max_attachments(self, network: NetworkSpec) -> tuple[int, str] | None:
        return bridge_port_limit("on each node its VXLAN device")

    def used_interfaces(self, network: NetworkSpec) -> dict[str, str]:
        return {}

    def check_unique(self, reader: SectionReader, path: PathKey, network: NetworkSpec,
                     earlier: Mapping[str, NetworkSpec]) -> None:
        other = earlier.get(network.bridge)
        if other is not None:
            reader.doc.problem(path, f"bridge name {network.bridge!r} is already used by network {other.name!r}",
                               at_key=True)
        same_vni = next((o for o in earlier.values() if o.driver == self.name and o.vni == network.vni), None)
        if same_vni is not None:
            given = reader.doc.get((*path, "vni")) is not None
            reader.doc.problem((*path, "vni") if given else path,
                               f"VNI {network.vni} is already the one of overlay network {same_vni.name!r}"
                               + ("" if given else " (both derived from the names: set 'vni' on one)"),
                               at_key=not given)

    # --- the desired state ----------------------------------------------------------------------
    def live_problems(self, network: NetworkSpec, desired: State, live: State) -> list[Problem]:
        return []  # it makes everything it uses; an unreachable node is not a problem (no delivery)

    def kinds(self) -> tuple[type[KernelObject], ...]:
        return (Vxlan, FdbEntry, NeighEntry)

    def network_objects(self, network: NetworkSpec) -> list[KernelObject]:
        return []  # they depend on the whole spec: `overlay_objects`, asked by the desired state

    def attachment_objects(self, container: ContainerSpec, network: NetworkSpec, attachment: Attachment,
                           mac: str, ifname: str, hairpin: bool, netns_ipv6: bool = False,
                           address: IPv4Address | None = None) -> list[KernelObject]:
        # a container is on the overlay's bridge as on any bridge: by a veth pair
        return BRIDGE.attachment_objects(container, network, attachment, mac, ifname, hairpin, netns_ipv6, address)

    # --- the live state -------------------------------------------------------------------------
    def parse_mark(self, alias: str) -> tuple[str, ...] | None:
        owner, _, rest = alias.partition(":")
        kind, _, network = rest.partition(":")
        if owner == OWNER and kind == "vxlan" and network and ":" not in network:
            return ("vxlan", network)
        return None

    def unmarked(self, link_kind: str) -> tuple[str, ...]:
        return ("vxlan", MISSING)

    def observed_network(self, link: Any, identity: tuple[str, ...], lower: str) -> KernelObject:
        return Vxlan(link.ifname, identity[0], link.vni, link.local, lower, link.mac, link.mtu, link.up, link.ipv6)

    def observed_attachment(self, link: Any, identity: tuple[str, ...], netns: str, peer: Any,
                            master: str) -> KernelObject:
        raise TypeError("the overlay driver's attachments are the bridge driver's veths")

    def observed_container_link(self, link: Any, identity: tuple[str, ...], netns: str, parent: str) -> KernelObject:
        raise TypeError("the overlay driver has no links of its own inside containers")

    # --- requests (links: the Vxlan; FDB and neighbour entries: reconciler.kernel.entries) ---------
    def host_link(self, obj: KernelObject) -> tuple[str, str] | None:
        return (obj.ifname, "vxlan")

    def link_netns(self, obj: KernelObject) -> str:
        return HOST_NS

    def master_of(self, obj: KernelObject, changed: Changed) -> str | None:
        return obj.bridge if changed("bridge") else None

    def peer_netns(self, obj: KernelObject) -> str | None:
        return None

    def create_requests(self, obj: KernelObject, next_seq: NextSeq, master: int, netns_fd: int) -> list[bytes]:
        return [nl.new_vxlan(next_seq(), obj.ifname, obj.vni, obj.local, obj.mac, obj.mtu, master)]

    def mark_requests(self, obj: KernelObject, next_seq: NextSeq) -> list[bytes]:
        return [nl.set_link(next_seq(), ifname=obj.ifname, alias=vxlan_alias(obj.network), up=obj.up)]

    def update_requests(self, obj: KernelObject, next_seq: NextSeq, changed: Changed, master: int) -> list[bytes]:
        return [nl.set_link(
            next_seq(), ifname=obj.ifname,
            master=master if changed("bridge") else None,
            mtu=obj.mtu if changed("mtu") else None,
            mac=obj.mac if changed("mac") else None,
            up=obj.up if changed("up") else None,
        )]

    def peer_requests(self, obj: KernelObject, next_seq: NextSeq, changed: Changed, creating: bool) -> list[bytes]:
        return []

    def delete_requests(self, obj: KernelObject, next_seq: NextSeq) -> list[bytes]:
        return [nl.del_link(next_seq(), ifname=obj.ifname)]  # its FDB and neighbour entries go with it

    def settings(self, obj: KernelObject, changed: Changed, creating: bool) -> list[tuple[str, str, str]]:
        # a bridge port needs no IPv6 of its own (its link-local address, DAD and MLD would
        # cross the underlay); but the kernel refuses IPv6 neighbour entries on a device
        # without IPv6, so with the network's IPv6 it is on, quietly
        return switched_ipv6(HOST_NS, obj.ifname, obj.ipv6) if changed("ipv6") else []


OVERLAY = OverlayDriver()
