"""The bridge driver (Docker's default): a Linux bridge per network in the host namespace,
with the gateway address on it, and per attachment a veth pair whose host end is a port
of the bridge and whose peer is the container's interface.

It owns the `bridge:` option (the kernel name, the network's name by default) and its
checks, the Bridge and Veth kernel objects, their marks (interface aliases
`netreconcile:bridge:<network>` and `netreconcile:veth:<container>:<network>`) and the
netlink requests that create, change and delete them. Pure (see reconciler.drivers.base).

It also owns the LAN options: `uplink:` (an existing host interface made a port of the
bridge: the Uplink object, never marked, created or deleted; only enslaved and released)
with the checks that refuse an interface that cannot be taken safely (`uplink_refusals`),
and `gateway_on_host: false` (the gateway is the LAN's router: the bridge gets no address).
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address
from typing import Any, Mapping

from reconciler.drivers.base import Changed, NextSeq
from reconciler.drivers.interfaces import container_ipv6_settings, ipv6_switch
from reconciler.errors import Problem
from reconciler.kernel import netlink as nl
from reconciler.spec.document import PathKey, SectionReader
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec
from reconciler.spec.values import ifname_issue, interface_name_issue, name_issue
from reconciler.state.model import (
    HOST_NS, MISSING, Address, Bridge, KernelObject, State, Uplink, UsedInterface, Veth,
)

OWNER = "netreconcile"
# ports a Linux bridge holds: BR_MAX_PORTS (net/bridge/br_private.h) is 1024 port numbers, and 0 is none
BRIDGE_MAX_PORTS = 1023


def bridge_port_limit(other_port: str = "") -> tuple[int, str]:
    """How many containers a Linux bridge holds with `other_port` (a port that is no
    container's, "" for none) on it, and why: `max_attachments` of a bridge's driver."""
    why = (f"a Linux bridge holds at most {BRIDGE_MAX_PORTS} ports (the kernel's BR_MAX_PORTS: 1024 port "
           "numbers, 0 reserved)" + (f", and {other_port} takes one" if other_port else ""))
    return BRIDGE_MAX_PORTS - bool(other_port), why


def bridge_alias(network: str) -> str:
    return f"{OWNER}:bridge:{network}"


def veth_alias(container: str, network: str) -> str:
    return f"{OWNER}:veth:{container}:{network}"


def veth_name(container: str, network: str, salt: int = 0) -> str:
    """Host-side veth name: 'veth' + 7 hex characters, stable per container and network.
    28 bits collide among thousands of attachments: a later one takes a salted name
    (`salt` 1, 2, ...; reconciler.state.ipam.assign_host_ends)."""
    text = f"{container}\0{network}" + (f"\0{salt}" if salt else "")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return "veth" + digest[:7]


def mac_for(address: IPv4Address) -> str:
    """Docker's (<=27) scheme: 02:42 followed by the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)


class BridgeDriver:
    """`driver: bridge` (see the module docstring)."""

    name = "bridge"
    link_kinds = ("bridge", "veth")
    attachment_link_kind = "veth"
    routed_link_kinds: tuple[str, ...] = ()
    options = ("bridge",)
    container_link_kind = ""  # an attachment is the peer of a host link
    through_host = True
    chooses_subnet = True  # without `subnet:` one is chosen at plan time (reconciler.state.subnets)
    default_mtu = NetworkSpec.mtu  # Ethernet's 1500, as Docker's bridge networks
    always_internal = False

    # --- the spec -------------------------------------------------------------------------------
    def read_options(self, reader: SectionReader, path: PathKey) -> dict[str, Any]:
        explicit = reader._string((*path, "bridge"))
        name = str(path[-1]) if explicit is None else explicit
        issue = interface_name_issue(name)
        if issue and explicit is not None:
            reader.doc.problem((*path, "bridge"), f"{name!r} is not a valid bridge name: {issue}")
        elif issue and name_issue(name) is None:  # an invalid network name is reported as such
            message = (
                f"the network name {name!r} cannot be the bridge name ({issue}); "
                "set 'bridge:' to a valid interface name"
            )
            reader.doc.problem(path, message, at_key=True)
        return {"bridge": name, **_lan_options(reader, path)}

    def host_name(self, network: NetworkSpec) -> str:
        return network.bridge

    def max_attachments(self, network: NetworkSpec) -> tuple[int, str] | None:
        return bridge_port_limit("its uplink" if network.uplink is not None else "")

    def used_interfaces(self, network: NetworkSpec) -> dict[str, str]:
        return {network.uplink: f"uplink of network {network.name}"} if network.uplink is not None else {}

    def check_unique(self, reader: SectionReader, path: PathKey, network: NetworkSpec,
                     earlier: Mapping[str, NetworkSpec]) -> None:
        other = earlier.get(network.bridge)
        if other is not None:
            defaulted_bridge = reader._string((*path, "bridge")) is None
            message = f"bridge name {network.bridge!r} is already used by network {other.name!r}"
            reader.doc.problem(path if defaulted_bridge else (*path, "bridge"), message, at_key=defaulted_bridge)
        user = reader.interface_users.get(network.bridge)
        if user is not None:
            defaulted_bridge = reader._string((*path, "bridge")) is None
            message = f"bridge name {network.bridge!r} is the {user[1]} of network {user[0]!r}"
            reader.doc.problem(path if defaulted_bridge else (*path, "bridge"), message, at_key=defaulted_bridge)
        if network.uplink is not None:
            _check_uplink_unique(reader, (*path, "uplink"), network, earlier)

    # --- the desired state ----------------------------------------------------------------------
    def live_problems(self, network: NetworkSpec, desired: State, live: State) -> list[Problem]:
        return []  # it makes everything it uses

    def kinds(self) -> tuple[type[KernelObject], ...]:
        return (Bridge, Veth, Uplink)

    def network_objects(self, network: NetworkSpec) -> list[KernelObject]:
        source = str(network.location)
        # with gateway_on_host false the gateways are the LAN's router's: the bridge has no
        # address, and no IPv6 (its link-local address and MLD would be the host's on the LAN)
        objects: list[KernelObject] = [
            Bridge(network.bridge, network.name, mac_for(network.gateway), network.mtu,
                   ipv6=network.ipv6 and network.gateway_on_host, source=source),
        ]
        for family in network.families if network.gateway_on_host else ():  # each family's gateway is on the bridge
            gateway, subnet = network.gateway_of(family), network.subnet_of(family)
            chosen = f"; subnet {subnet} chosen: none in the spec" if family == 4 and network.subnet_chosen else ""
            objects.append(Address(HOST_NS, network.bridge, f"{gateway}/{subnet.prefixlen}", source=source + chosen))
        if network.uplink is not None:
            objects.append(Uplink(network.uplink, network.bridge, source=str(network.uplink_location or source)))
        return objects

    def attachment_objects(self, container: ContainerSpec, network: NetworkSpec, attachment: Attachment,
                           mac: str, ifname: str, hairpin: bool, netns_ipv6: bool = False,
                           address: IPv4Address | None = None) -> list[KernelObject]:
        return [Veth(
            host_ifname=veth_name(container.name, network.name),
            container=container.name,
            network=network.name,
            netns=container.name,
            peer_ifname=ifname,
            bridge=network.bridge,
            mac=mac,
            mtu=network.mtu,
            peer_mtu=network.mtu,
            ipv6=network.ipv6,
            hairpin=hairpin,
            netns_ipv6=netns_ipv6,
            source=str(attachment.location),
        )]

    # --- the live state -------------------------------------------------------------------------
    def parse_mark(self, alias: str) -> tuple[str, ...] | None:
        parts = alias.split(":")
        if len(parts) >= 3 and parts[0] == OWNER:
            if parts[1] == "bridge" and len(parts) == 3:
                return ("bridge", parts[2])
            if parts[1] == "veth" and len(parts) == 4:
                return ("veth", parts[2], parts[3])
        return None

    def unmarked(self, link_kind: str) -> tuple[str, ...]:
        """The mark of a link of `link_kind` created by a run that stopped before marking it:
        ours, with an identity that makes the planner replace it."""
        return ("bridge", MISSING) if link_kind == "bridge" else ("veth", MISSING, MISSING)

    def observed_network(self, link: nl.Link, identity: tuple[str, ...], lower: str) -> KernelObject:
        return Bridge(link.ifname, identity[0], link.mac, link.mtu, link.up, ipv6=link.ipv6)

    def observed_attachment(self, link: nl.Link, identity: tuple[str, ...], netns: str, peer: nl.Link | None,
                            master: str) -> KernelObject:
        container, network = identity
        return Veth(
            host_ifname=link.ifname,
            container=container,
            network=network,
            netns=netns,
            peer_ifname=peer.ifname if peer else MISSING,
            bridge=master,
            mac=peer.mac if peer else "",
            mtu=link.mtu,
            peer_mtu=peer.mtu if peer else 0,
            host_up=link.up,
            peer_up=peer.up if peer else False,
            ipv6=peer.ipv6 if peer else False,
            host_ipv6=link.ipv6,
            hairpin=link.hairpin,
        )

    def observed_container_link(self, link: nl.Link, identity: tuple[str, ...], netns: str,
                                parent: str) -> KernelObject:
        raise TypeError("the bridge driver has no links of its own inside containers")

    # --- requests -------------------------------------------------------------------------------
    def host_link(self, obj: KernelObject) -> tuple[str, str] | None:
        if isinstance(obj, Uplink):
            return None  # not created: the host's own interface
        return (obj.ifname, "bridge") if isinstance(obj, Bridge) else (obj.host_ifname, "veth")

    def link_netns(self, obj: KernelObject) -> str:
        return HOST_NS  # a veth is marked, changed and deleted by its host end

    def master_of(self, obj: KernelObject, changed: Changed) -> str | None:
        # an uplink given back to no bridge gets master 0: released
        return (obj.bridge or None) if isinstance(obj, (Veth, Uplink)) and changed("bridge") else None

    def peer_netns(self, obj: KernelObject) -> str | None:
        return obj.netns if isinstance(obj, Veth) else None

    def create_requests(self, obj: KernelObject, next_seq: NextSeq, master: int, netns_fd: int) -> list[bytes]:
        if isinstance(obj, Bridge):
            return [nl.new_bridge(next_seq(), obj.ifname, obj.mac, obj.mtu)]
        if isinstance(obj, Uplink):  # enslaved, never created
            return [nl.set_link(next_seq(), ifname=obj.ifname, master=master, up=obj.up)]
        return [nl.new_veth(next_seq(), obj.host_ifname, master, obj.mtu, obj.peer_ifname, obj.mac, obj.peer_mtu,
                            netns_fd)]

    def mark_requests(self, obj: KernelObject, next_seq: NextSeq) -> list[bytes]:
        if isinstance(obj, Bridge):
            return [nl.set_link(next_seq(), ifname=obj.ifname, alias=bridge_alias(obj.network), up=obj.up)]
        if isinstance(obj, Uplink):
            return []  # never marked: it is not netreconcile's
        return [nl.set_link(next_seq(), ifname=obj.host_ifname, alias=veth_alias(obj.container, obj.network),
                            up=obj.host_up, hairpin=True if obj.hairpin else None)]

    def update_requests(self, obj: KernelObject, next_seq: NextSeq, changed: Changed, master: int) -> list[bytes]:
        if isinstance(obj, Bridge):
            return [nl.set_link(
                next_seq(), ifname=obj.ifname,
                mtu=obj.mtu if changed("mtu") else None,
                mac=obj.mac if changed("mac") else None,
                up=obj.up if changed("up") else None,
            )]
        if isinstance(obj, Uplink):
            return [nl.set_link(next_seq(), ifname=obj.ifname, master=master if changed("bridge") else None,
                                up=obj.up if changed("up") else None)]
        requests = []
        if changed("bridge", "mtu", "host_up"):
            requests.append(nl.set_link(
                next_seq(), ifname=obj.host_ifname,
                master=master if changed("bridge") else None,
                mtu=obj.mtu if changed("mtu") else None,
                up=obj.host_up if changed("host_up") else None,
            ))
        if changed("hairpin", "bridge"):  # after any change of bridge: the flag belongs to the port on the new one
            requests.append(nl.set_link(next_seq(), ifname=obj.host_ifname, hairpin=obj.hairpin))
        return requests

    def peer_requests(self, obj: KernelObject, next_seq: NextSeq, changed: Changed, creating: bool) -> list[bytes]:
        if not isinstance(obj, Veth) or not changed("peer_mtu", "mac", "peer_up"):
            return []
        if creating:  # made with its MTU and MAC
            return [nl.set_link(next_seq(), ifname=obj.peer_ifname, up=obj.peer_up)]
        return [nl.set_link(
            next_seq(), ifname=obj.peer_ifname,
            mtu=obj.peer_mtu if changed("peer_mtu") else None,
            mac=obj.mac if changed("mac") else None,
            up=obj.peer_up if changed("peer_up") else None,
        )]

    def delete_requests(self, obj: KernelObject, next_seq: NextSeq) -> list[bytes]:
        if isinstance(obj, Uplink):  # released: no master (index 0), left up, never deleted
            return [nl.set_link(next_seq(), ifname=obj.ifname, master=0)]
        return [nl.del_link(next_seq(), ifname=obj.ifname if isinstance(obj, Bridge) else obj.host_ifname)]

    def settings(self, obj: KernelObject, changed: Changed, creating: bool) -> list[tuple[str, str, str]]:
        """IPv6 on or off: on the bridge as its network wants; on a veth's host end always
        off: a bridge port needs no address, and with IPv6 each new port's link-local
        address, DAD and MLD would be flooded to every other port: O(N²) over N containers,
        see benchmarks/README.md); on its peer as the network wants. A made interface takes
        its namespace's default, so creating writes only what differs from it: the host
        namespace's is taken to be on (the kernel's default), the peer's is `netns_ipv6`."""
        if isinstance(obj, Bridge):
            return [ipv6_switch(HOST_NS, obj.ifname, obj.ipv6)] if changed("ipv6") else []
        if not isinstance(obj, Veth):
            return []
        writes = []
        if changed("host_ipv6"):
            writes.append(ipv6_switch(HOST_NS, obj.host_ifname, obj.host_ipv6))
        return writes + container_ipv6_settings(obj.netns, obj.peer_ifname, obj.ipv6, obj.netns_ipv6, changed,
                                                creating)


def _lan_options(reader: SectionReader, path: PathKey) -> dict[str, Any]:
    """`uplink` and `gateway_on_host` as NetworkSpec fields, checked, with where the uplink is written."""
    uplink = reader._string((*path, "uplink"))
    issue = ifname_issue(uplink) if uplink is not None else None
    if uplink == "lo":
        issue = "the loopback interface cannot be a port of a bridge"
    if issue:
        reader.doc.problem((*path, "uplink"), f"{uplink!r} is not a valid interface name: {issue}")
        uplink = None
    if uplink is not None and reader.doc.get((*path, "internal")) is True:
        reader.doc.problem((*path, "internal"), f"internal: true cannot keep the network off the LAN of uplink "
                           f"{uplink}: that traffic is bridged, never routed by the host", at_key=True)
    on_host = reader._bool((*path, "gateway_on_host"), NetworkSpec.gateway_on_host)
    if not on_host:
        _check_gateway_off_host(reader, path)
    return {"uplink": uplink, "gateway_on_host": on_host,
            "uplink_location": reader._location_if_set((*path, "uplink")) if uplink is not None else None}


def _check_gateway_off_host(reader: SectionReader, path: PathKey) -> None:
    """gateway_on_host: false: the gateways are the LAN router's, so they are given (no
    default could guess them), and the host routes none of the traffic, so it masquerades none."""
    needed = [("gateway", "IPv4")] + ([("gateway6", "IPv6")] if reader.doc.get((*path, "enable_ipv6")) is True else [])
    for key, version in needed:
        if reader.doc.get((*path, key)) is None:
            reader.doc.problem((*path, "gateway_on_host"), f"gateway_on_host: false needs '{key}': the {version} "
                               "address of the LAN's router, where the containers' default route goes",
                               at_key=True)
    for key in ("masquerade", "masquerade6"):
        if reader.doc.get((*path, key)) is True:
            reader.doc.problem((*path, key), f"{key}: true needs the host to route the network's traffic; with "
                               "gateway_on_host: false it goes to the LAN's router directly, never masqueraded",
                               at_key=True)


def _check_uplink_unique(reader: SectionReader, path: PathKey, network: NetworkSpec,
                         earlier: Mapping[str, NetworkSpec]) -> None:
    """An uplink is a port of one bridge: of no other network, and no bridge itself."""
    uplink = network.uplink
    if uplink == network.bridge:
        reader.doc.problem(path, f"uplink {uplink!r} is the network's own bridge")
        return
    other = earlier.get(uplink)
    if other is not None:
        reader.doc.problem(path, f"uplink {uplink!r} is the bridge of network {other.name!r}")
    user = reader.interface_users.setdefault(uplink, (network.name, "uplink"))
    if user[0] != network.name:
        reader.doc.problem(path, f"uplink {uplink} is already the {user[1]} of network {user[0]!r}: an uplink "
                                 "serves one network only")


def uplink_refusals(network: NetworkSpec, facts: UsedInterface | None) -> list[str]:
    """Why the uplink of `network` cannot be taken as observed (`facts`; None: not looked
    at), each as 'LOCATION: why': missing, netreconcile's own, a port of a bridge not ours,
    carrying the host's addresses or default route, or of another MTU than the network's."""
    if facts is None or network.uplink is None:
        return []
    where, name = str(network.uplink_location or network.location), network.uplink
    if not facts.exists:
        return [f"{where}: uplink {name} does not exist in the host namespace (netreconcile never creates "
                "an uplink): name an existing interface"]
    if facts.owned:
        return [f"{where}: uplink {name} is one of netreconcile's own interfaces, not a host interface it may "
                "take as a port"]
    found = []
    if facts.kind == "bridge":
        found.append(f"{where}: uplink {name} is a bridge, and a bridge cannot be a port of another bridge: name "
                     "the interface that leads to the LAN")
    if facts.master and not facts.master_owned:
        found.append(f"{where}: uplink {name} is a port of {facts.master}, which netreconcile does not manage; "
                     f"if it is free to move, release it first: `ip link set {name} nomaster`")
    if facts.addresses or facts.default_routes:
        found.append(f"{where}: {_carries_the_host(network, facts)}")
    if facts.mtu != network.mtu:
        found.append(f"{where}: uplink {name} has MTU {facts.mtu} but network {network.name!r} has mtu "
                     f"{network.mtu}: set `mtu: {facts.mtu}` on the network, or change the interface's: "
                     f"`ip link set {name} mtu {network.mtu}`")
    return found


def _carries_the_host(network: NetworkSpec, facts: UsedInterface) -> str:
    """Why an uplink carrying the host's addresses or default route is refused, and the
    commands that move them safely, in their order."""
    name, bridge = facts.ifname, network.bridge
    carried = ([f"the address{'es' if len(facts.addresses) > 1 else ''} {', '.join(facts.addresses)}"]
               if facts.addresses else []) + (["the host's default route"] if facts.default_routes else [])
    commands = [_default_route_command("del", version, gateway, name) for version, gateway in facts.default_routes]
    commands += [f"ip addr del {cidr} dev {name}" for cidr in facts.addresses]
    text = (f"uplink {name} carries {' and '.join(carried)}: a bridge port cannot keep them, and moving them to "
            f"the bridge {bridge} in the same change would cut the host's connectivity through {name} mid-change, "
            "so netreconcile moves none of them. Move them yourself, from a console or over another "
            "interface, in this order: " + "; ".join(f"`{command}`" for command in commands))
    if network.gateway_on_host:
        after = [_default_route_command("add", version, gateway, bridge) for version, gateway in facts.default_routes]
        text += (f"; `netreconcile apply {network.location.file}`, with the host's address as the network's "
                 f"`gateway` if the host stays on this LAN (netreconcile puts it on {bridge})")
        text += "".join(f"; then `{command}`" for command in after)
    else:
        text += (f"; `netreconcile apply {network.location.file}`. With gateway_on_host: false the host has no "
                 f"address on {bridge} (one added by hand is drift and is removed): it keeps its own connectivity "
                 "on another interface")
    return text + " (README: \"Containers on the LAN\")"


def _default_route_command(verb: str, version: int, gateway: str, ifname: str) -> str:
    family = "-6 " if version == 6 else ""
    via = f" via {gateway}" if gateway else ""
    return f"ip {family}route {verb} default{via} dev {ifname}"


BRIDGE = BridgeDriver()
