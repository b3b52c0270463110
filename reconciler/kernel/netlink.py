"""A minimal rtnetlink codec: request builders and field extractors; pure, no I/O.

pyroute2's generic codec costs about 0.3 ms per message and dominates a full-state
read of many namespaces (measured in benchmarks/README.md), so the hot paths pack requests
with `struct` and decode only the fields netreconcile compares.

Addresses and routes are of either family (AF_INET, AF_INET6): builders take the family
from the address they are given (or an explicit `family` where there is none: a dump, a
default route), decoders read it from ifa_family/rtm_family and skip families not asked for.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Iterator

# message types
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30

# flags
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

# link attributes
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_AF_SPEC, IFLA_NET_NS_FD = 18, 20, 26, 28
IFLA_LINK_NETNSID = 37  # the namespace IFLA_LINK's index is in, when it is another one
IFLA_EXT_MASK = 29  # in a link request: what the kernel may leave out of its answer
# no per-device IPv6 and ICMPv6 statistics (a third of a link message, filled and sent for
# nothing); VF information is left out too, as it is unless RTEXT_FILTER_VF is asked for
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_DATA = 1, 2, 5
IFLA_MACVLAN_MODE = 1  # in a macvlan's info data (u32)
IFLA_VLAN_ID = 1  # in a vlan's info data (u16)
# the kernel's macvlan modes (include/uapi/linux/if_link.h, enum macvlan_mode)
MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8}
MACVLAN_MODE_NAMES = {value: name for name, value in MACVLAN_MODES.items()}
# in a vxlan's info data: VNI (u32), local address (4 bytes), learning and proxy (u8), UDP port (be16)
IFLA_VXLAN_ID, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING, IFLA_VXLAN_PROXY, IFLA_VXLAN_PORT = 1, 4, 7, 11, 15
VXLAN_PORT = 4789  # IANA's; the kernel's default is Linux's old 8472
IFLA_BRPORT_MODE = 4  # a bridge port's hairpin mode (u8), in its slave data
VETH_INFO_PEER = 1
IFLA_INET6_CONF = 2
DEVCONF_DISABLE_IPV6 = 26
IFF_UP = 0x1

# address and route attributes
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL = 1, 2, 3
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RT_TABLE_MAIN = 254
RTPROT_KERNEL, RTPROT_STATIC = 2, 4
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1

# neighbour (and, in family AF_BRIDGE, forwarding database) entries
NDA_DST, NDA_LLADDR = 1, 2
NUD_PERMANENT = 0x80
NTF_SELF = 0x02  # an FDB entry of the device itself (the vxlan's), not of a bridge it is a port of
ZERO_MAC = "00:00:00:00:00:00"  # the vxlan FDB entry of broadcast, unknown unicast and multicast

_HEADER = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
IFINFO_SIZE = _IFINFO.size
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_ATTR = struct.Struct("=HH")
_NDMSG = struct.Struct("=BxxxiHBB")


# --- encoding -------------------------------------------------------------------

def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def attr(kind: int, data: bytes) -> bytes:
    return _pad(_ATTR.pack(_ATTR.size + len(data), kind) + data)


def attr_str(kind: int, text: str) -> bytes:
    return attr(kind, text.encode() + b"\0")


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def message(kind: int, flags: int, seq: int, payload: bytes) -> bytes:
    return _HEADER.pack(_HEADER.size + len(payload), kind, flags, seq, 0) + payload


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0, family: int = socket.AF_UNSPEC) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def new_bridge(seq: int, ifname: str, mac: str, mtu: int) -> bytes:
    body = (
        ifinfomsg()
        + attr_str(IFLA_IFNAME, ifname)
        + attr(IFLA_ADDRESS, mac_bytes(mac))
        + attr_u32(IFLA_MTU, mtu)
        + nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"))
    )
    return message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def new_veth(
    seq: int, ifname: str, master: int, mtu: int,
    peer_ifname: str, peer_mac: str, peer_mtu: int, peer_netns_fd: int,
) -> bytes:
    """A veth whose peer is created directly inside another namespace (no move)."""
    peer = (
        ifinfomsg()
        + attr_str(IFLA_IFNAME, peer_ifname)
        + attr(IFLA_ADDRESS, mac_bytes(peer_mac))
        + attr_u32(IFLA_MTU, peer_mtu)
        + attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
    )
    info = nested(
        IFLA_LINKINFO,
        attr_str(IFLA_INFO_KIND, "veth"),
        nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer)),
    )
    body = ifinfomsg() + attr_str(IFLA_IFNAME, ifname) + attr_u32(IFLA_MTU, mtu) + attr_u32(IFLA_MASTER, master) + info
    return message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def new_macvlan(
    seq: int, ifname: str, parent: int, mode: str, mac: str, mtu: int, netns_fd: int,
) -> bytes:
    """A macvlan on the host link with index `parent`, created directly inside the
    namespace of `netns_fd` (sent on a host-namespace socket, where `parent` is); with
    `netns_fd` -1 in the namespace of the socket."""
    info = nested(
        IFLA_LINKINFO,
        attr_str(IFLA_INFO_KIND, "macvlan"),
        nested(IFLA_INFO_DATA, attr_u32(IFLA_MACVLAN_MODE, MACVLAN_MODES[mode])),
    )
    body = (
        ifinfomsg()
        + attr_str(IFLA_IFNAME, ifname)
        + attr_u32(IFLA_LINK, parent)
        + (attr_u32(IFLA_NET_NS_FD, netns_fd) if netns_fd >= 0 else b"")
        + attr(IFLA_ADDRESS, mac_bytes(mac))
        + attr_u32(IFLA_MTU, mtu)
        + info
    )
    return message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def new_vlan(seq: int, ifname: str, parent: int, vlan_id: int) -> bytes:
    """An 802.1Q VLAN link `ifname` tagging `vlan_id` on the link with index `parent`."""
    info = nested(
        IFLA_LINKINFO,
        attr_str(IFLA_INFO_KIND, "vlan"),
        nested(IFLA_INFO_DATA, attr(IFLA_VLAN_ID, struct.pack("=H", vlan_id))),
    )
    body = ifinfomsg() + attr_str(IFLA_IFNAME, ifname) + attr_u32(IFLA_LINK, parent) + info
    return message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def new_vxlan(seq: int, ifname: str, vni: int, local: str, mac: str, mtu: int, master: int) -> bytes:
    """A VXLAN link `ifname` of `vni` on UDP port 4789 with tunnel source `local` (an IPv4
    address), without learning (its forwarding entries are all static) and answering ARP
    from its neighbour entries (proxy: no ARP broadcast crosses the underlay for a
    container the spec places), a port of the bridge with index `master`."""
    info = nested(
        IFLA_LINKINFO,
        attr_str(IFLA_INFO_KIND, "vxlan"),
        nested(IFLA_INFO_DATA,
               attr_u32(IFLA_VXLAN_ID, vni),
               attr(IFLA_VXLAN_LOCAL, _packed(local)),
               attr(IFLA_VXLAN_LEARNING, b"\0"),
               attr(IFLA_VXLAN_PROXY, b"\1"),
               attr(IFLA_VXLAN_PORT, struct.pack("!H", VXLAN_PORT))),
    )
    body = (ifinfomsg() + attr_str(IFLA_IFNAME, ifname) + attr(IFLA_ADDRESS, mac_bytes(mac)) + attr_u32(IFLA_MTU, mtu)
            + attr_u32(IFLA_MASTER, master) + info)
    return message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def _ndmsg(family: int, index: int, state: int = NUD_PERMANENT, flags: int = 0) -> bytes:
    return _NDMSG.pack(family, index, state, flags, 0)


def _fdb(index: int, mac: str, remote: str) -> bytes:
    return _ndmsg(socket.AF_BRIDGE, index, flags=NTF_SELF) + attr(NDA_LLADDR, mac_bytes(mac)) + attr(
        NDA_DST, _packed(remote))


def new_fdb(seq: int, index: int, mac: str, remote: str) -> bytes:
    """A static forwarding entry of the vxlan with index `index`: frames to `mac` go to the
    VTEP `remote`. The all-zero MAC may have one entry per remote (head-end replication of
    broadcast and unknown traffic): those are appended, others replace any entry of their MAC."""
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (NLM_F_APPEND if mac == ZERO_MAC else NLM_F_REPLACE)
    return message(RTM_NEWNEIGH, flags, seq, _fdb(index, mac, remote))


def del_fdb(seq: int, index: int, mac: str, remote: str) -> bytes:
    """Delete the entry of `mac` to `remote` (for the all-zero MAC: that remote's only)."""
    return message(RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK, seq, _fdb(index, mac, remote))


def _neigh(index: int, address: str, mac: str | None) -> bytes:
    body = _ndmsg(family_of(address), index) + attr(NDA_DST, _packed(address))
    return body + attr(NDA_LLADDR, mac_bytes(mac)) if mac is not None else body


def new_neigh(seq: int, index: int, address: str, mac: str) -> bytes:
    """A permanent neighbour entry on the link with index `index`: `address` is at `mac`."""
    return message(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq,
                   _neigh(index, address, mac))


def del_neigh(seq: int, index: int, address: str) -> bytes:
    return message(RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK, seq, _neigh(index, address, None))


def dump_neighs(seq: int, family: int) -> bytes:
    """The neighbour entries of `family`; AF_BRIDGE: the forwarding database entries."""
    return message(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, _ndmsg(family, 0, state=0))


def set_link(
    seq: int, *, index: int = 0, ifname: str | None = None, up: bool | None = None,
    mtu: int | None = None, mac: str | None = None, master: int | None = None, alias: str | None = None,
    hairpin: bool | None = None,
) -> bytes:
    """RTM_NEWLINK on an existing link, found by index or (index 0) by name.
    `hairpin` sets the hairpin mode of a link that is already a bridge port."""
    flags = change = 0
    if up is not None:
        change = IFF_UP
        flags = IFF_UP if up else 0
    body = ifinfomsg(index, flags, change)
    if ifname is not None and index == 0:
        body += attr_str(IFLA_IFNAME, ifname)
    if mtu is not None:
        body += attr_u32(IFLA_MTU, mtu)
    if mac is not None:
        body += attr(IFLA_ADDRESS, mac_bytes(mac))
    if master is not None:
        body += attr_u32(IFLA_MASTER, master)
    if alias is not None:
        body += attr_str(IFLA_IFALIAS, alias)
    if hairpin is not None:
        body += nested(IFLA_LINKINFO, nested(IFLA_INFO_SLAVE_DATA, attr(IFLA_BRPORT_MODE, bytes([hairpin]))))
    return message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def del_link(seq: int, *, index: int = 0, ifname: str | None = None) -> bytes:
    body = ifinfomsg(index)
    if index == 0 and ifname is not None:
        body += attr_str(IFLA_IFNAME, ifname)
    return message(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def family_of(address: str) -> int:
    """AF_INET6 for an IPv6 address (text form, with or without /prefix), else AF_INET."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _packed(address: str) -> bytes:
    return socket.inet_pton(family_of(address), address)


def _ifaddr(index: int, cidr: str, flags: int = 0) -> bytes:
    address, prefix = cidr.split("/")
    packed = _packed(address)
    head = _IFADDR.pack(family_of(address), int(prefix), flags, RT_SCOPE_UNIVERSE, index)
    return head + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)


def new_addr(seq: int, index: int, cidr: str) -> bytes:
    """An address; an IPv6 one without duplicate address detection (`nodad`): the
    addresses are assigned from one plan, and DAD would hold each one back (tentative)
    for a second and add to the multicast on the bridge."""
    flags = IFA_F_NODAD if family_of(cidr) == socket.AF_INET6 else 0
    body = _ifaddr(index, cidr, flags)
    return message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def del_addr(seq: int, index: int, cidr: str) -> bytes:
    return message(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, seq, _ifaddr(index, cidr))


def _rtmsg(dst: str, family: int, scope: int = RT_SCOPE_UNIVERSE, protocol: int = RTPROT_STATIC) -> tuple[bytes, bytes]:
    """The rtmsg head and RTA_DST of `dst` ("default" or a CIDR, whose address decides the family)."""
    if dst == "default":
        prefix, dst_attr = 0, b""
    else:
        address, length = dst.split("/")
        family = family_of(address)
        prefix, dst_attr = int(length), attr(RTA_DST, _packed(address))
    head = _RTMSG.pack(family, prefix, 0, 0, RT_TABLE_MAIN, protocol, scope, RTN_UNICAST, 0)
    return head, dst_attr


def replace_route(seq: int, dst: str, gateway: str, oif: int) -> bytes:
    """A route via `gateway`, of the gateway's family; without one (""), a route to the
    CIDR `dst` directly on the link `oif` (scope link)."""
    if not gateway:
        head, dst_attr = _rtmsg(dst, family_of(dst), scope=RT_SCOPE_LINK)
        body = head + dst_attr + attr_u32(RTA_OIF, oif)
        return message(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq, body)
    head, dst_attr = _rtmsg(dst, family_of(gateway))
    body = head + dst_attr + attr(RTA_GATEWAY, _packed(gateway)) + attr_u32(RTA_OIF, oif)
    return message(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq, body)


def del_route(seq: int, dst: str, family: int = socket.AF_INET) -> bytes:
    """`family` tells which default route "default" is; a CIDR's own address decides otherwise."""
    head, dst_attr = _rtmsg(dst, family, protocol=0)
    return message(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq, head + dst_attr)


def get_link(seq: int, ifname: str = "", index: int = 0) -> bytes:
    """One link, by name or (`index`) by index."""
    if index:
        return message(RTM_GETLINK, NLM_F_REQUEST, seq, ifinfomsg(index))
    return message(RTM_GETLINK, NLM_F_REQUEST, seq, ifinfomsg() + attr_str(IFLA_IFNAME, ifname))


def ifinfo_index(payload: bytes) -> int:
    """The interface index of a link message (RTM_NEWLINK, RTM_DELLINK)."""
    return _IFINFO.unpack_from(payload)[2]


def dump_links(seq: int) -> bytes:
    """Every link, without the statistics no decoder reads (RTEXT_FILTER_SKIP_STATS)."""
    return message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq,
                   ifinfomsg() + attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))


def dump_addrs(seq: int, family: int = socket.AF_INET) -> bytes:
    """The addresses of one family (AF_UNSPEC: all)."""
    return message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, _IFADDR.pack(family, 0, 0, 0, 0))


def dump_routes(seq: int, family: int = socket.AF_INET) -> bytes:
    """The routes of one family in the main table (the table filter needs NETLINK_GET_STRICT_CHK)."""
    head = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, 0, 0, 0, 0)
    return message(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, head)


# --- decoding -------------------------------------------------------------------

def messages(buffer: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload) for each message in a received buffer."""
    offset, end = 0, len(buffer)
    while offset + _HEADER.size <= end:
        length, kind, flags, seq, _ = _HEADER.unpack_from(buffer, offset)
        if length < _HEADER.size:
            break
        yield kind, flags, seq, buffer[offset + _HEADER.size: offset + length]
        offset += (length + 3) & ~3


def attrs(data: bytes, offset: int = 0, wanted: frozenset[int] | None = None) -> dict[int, bytes]:
    """First value of each attribute type in `data[offset:]` (only `wanted` types if given)."""
    found: dict[int, bytes] = {}
    end = len(data)
    unpack = _ATTR.unpack_from
    remaining = len(wanted) if wanted is not None else -1  # stop once every wanted type is found
    while offset + 4 <= end:
        length, kind = unpack(data, offset)
        if length < 4:
            break
        kind &= NLA_TYPE_MASK
        if (wanted is None or kind in wanted) and kind not in found:
            found[kind] = data[offset + 4: offset + length]
            remaining -= 1
            if remaining == 0:
                break
        offset += (length + 3) & ~3
    return found


def error_code(payload: bytes) -> int:
    """The (negative) errno of an NLMSG_ERROR; 0 is an ack."""
    return struct.unpack_from("=i", payload)[0]


def _cstr(data: bytes | None) -> str:
    return data.split(b"\0", 1)[0].decode(errors="replace") if data else ""


def _u32(data: bytes | None) -> int:
    return struct.unpack("=I", data[:4])[0] if data else 0


def _mac(data: bytes | None) -> str:
    return data.hex(":") if data else ""  # one C call; a generator per byte cost 11 ms per 3000 links


_LINK_FIELDS = frozenset({IFLA_IFNAME, IFLA_MTU, IFLA_ADDRESS, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_LINK,
                          IFLA_AF_SPEC, IFLA_LINK_NETNSID})
_INFO_FIELDS = frozenset({IFLA_INFO_KIND, IFLA_INFO_SLAVE_DATA})
_INFO_DATA = frozenset({IFLA_INFO_DATA})
_BRPORT_FIELDS = frozenset({IFLA_BRPORT_MODE})
_AF_INET6 = frozenset({socket.AF_INET6})
_INET6_CONF = frozenset({IFLA_INET6_CONF})


@dataclass(slots=True)
class Link:
    index: int
    ifname: str
    up: bool
    mtu: int
    mac: str
    master: int
    kind: str
    alias: str
    peer_index: int  # IFLA_LINK: a veth's peer ifindex (in the peer's namespace), a macvlan's parent's
    ipv6: bool  # IPv6 enabled on the device (False when disabled or absent)
    hairpin: bool  # a bridge port in hairpin mode
    # IFLA_LINK_NETNSID: the id (in this namespace) of the namespace `peer_index` is in; -1: this one
    link_netnsid: int = -1
    macvlan_mode: str = ""  # a macvlan's mode (bridge, private, vepa, passthru); "" for other kinds or unknown
    vlan_id: int = 0  # an 802.1Q VLAN link's id; 0 for other kinds
    vni: int = 0  # a vxlan's VNI; 0 for other kinds
    local: str = ""  # a vxlan's local (source) address; "" for other kinds or none


def decode_link(payload: bytes) -> Link:
    _, _, index, flags, _ = _IFINFO.unpack_from(payload)
    found = attrs(payload, _IFINFO.size, _LINK_FIELDS)
    info = attrs(found.get(IFLA_LINKINFO, b""), 0, _INFO_FIELDS)
    kind = _cstr(info.get(IFLA_INFO_KIND))
    netnsid = found.get(IFLA_LINK_NETNSID)
    return Link(
        index=index,
        ifname=_cstr(found.get(IFLA_IFNAME)),
        up=bool(flags & IFF_UP),
        mtu=_u32(found.get(IFLA_MTU)),
        mac=_mac(found.get(IFLA_ADDRESS)),
        master=_u32(found.get(IFLA_MASTER)),
        kind=kind,
        alias=_cstr(found.get(IFLA_IFALIAS)),
        peer_index=_u32(found.get(IFLA_LINK)),
        ipv6=_ipv6_enabled(found.get(IFLA_AF_SPEC)),
        hairpin=_hairpin(info.get(IFLA_INFO_SLAVE_DATA)),
        link_netnsid=struct.unpack("=i", netnsid[:4])[0] if netnsid else -1,
        # only a macvlan's or vlan's info data is read: a veth-only namespace pays nothing for it
        macvlan_mode=_macvlan_mode(found[IFLA_LINKINFO]) if kind == "macvlan" else "",
        vlan_id=_vlan_id(found[IFLA_LINKINFO]) if kind == "vlan" else 0,
        **(_vxlan_fields(found[IFLA_LINKINFO]) if kind == "vxlan" else {}),
    )


def _vxlan_fields(linkinfo: bytes) -> dict:
    vni, local = _info_data(linkinfo, IFLA_VXLAN_ID), _info_data(linkinfo, IFLA_VXLAN_LOCAL)
    return {"vni": _u32(vni) if vni else 0, "local": _address(socket.AF_INET, local)}


def _info_data(linkinfo: bytes, attribute: int) -> bytes | None:
    """One attribute of the kind-specific data in IFLA_LINKINFO."""
    data = attrs(linkinfo, 0, _INFO_DATA).get(IFLA_INFO_DATA)
    return attrs(data, 0, frozenset({attribute})).get(attribute) if data else None


def _macvlan_mode(linkinfo: bytes) -> str:
    mode = _info_data(linkinfo, IFLA_MACVLAN_MODE)
    return MACVLAN_MODE_NAMES.get(_u32(mode), "") if mode else ""  # "": unknown (source mode), or unreadable


def _vlan_id(linkinfo: bytes) -> int:
    vlan_id = _info_data(linkinfo, IFLA_VLAN_ID)
    return struct.unpack("=H", vlan_id[:2])[0] if vlan_id else 0


def _hairpin(slave_data: bytes | None) -> bool:
    flag = attrs(slave_data, 0, _BRPORT_FIELDS).get(IFLA_BRPORT_MODE) if slave_data else None
    return bool(flag and flag[0])


def _ipv6_enabled(af_spec: bytes | None) -> bool:
    if not af_spec:
        return False
    inet6 = attrs(af_spec, 0, _AF_INET6).get(socket.AF_INET6)
    if inet6 is None:
        return False
    conf = attrs(inet6, 0, _INET6_CONF).get(IFLA_INET6_CONF)
    if conf is None or len(conf) < 4 * (DEVCONF_DISABLE_IPV6 + 1):
        return False
    return struct.unpack_from("=i", conf, 4 * DEVCONF_DISABLE_IPV6)[0] == 0


# the address family of an IP version (4 or 6, as `ipaddress` and the kernel objects name it)
FAMILY_OF_VERSION = {4: socket.AF_INET, 6: socket.AF_INET6}
VERSION_OF_FAMILY = {family: version for version, family in FAMILY_OF_VERSION.items()}
# address length per family: a decoder reads only these, and only the families it is asked for
ADDRESS_LENGTH = {socket.AF_INET: 4, socket.AF_INET6: 16}
IPV4_ONLY = frozenset({socket.AF_INET})
_UNSPECIFIED = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}


def _address(family: int, packed: bytes | None) -> str:
    """The text form of an address of `family`; "" when absent or of the wrong length.
    IPv6 in `ipaddress`'s form, which the desired state uses (inet_ntop writes IPv4-mapped
    addresses differently), so that equal addresses compare equal."""
    if not packed or len(packed) != ADDRESS_LENGTH[family]:
        return ""
    if family == socket.AF_INET6:
        return str(IPv6Address(packed))
    return socket.inet_ntoa(packed)


@dataclass(slots=True)
class Addr:
    index: int
    cidr: str
    kernel_made: bool = False  # an IPv6 link-local (or host-scope) address: the kernel's own, never ours


def decode_addr(payload: bytes, families: frozenset[int] = IPV4_ONLY) -> Addr | None:
    """None for an address of a family not in `families`, or without a usable address."""
    family, prefix, _, scope, index = _IFADDR.unpack_from(payload)
    if family not in families:
        return None
    found = attrs(payload, _IFADDR.size)
    address = _address(family, found.get(IFA_LOCAL) or found.get(IFA_ADDRESS))
    if not address:
        return None
    return Addr(index, f"{address}/{prefix}", kernel_made=family == socket.AF_INET6 and scope != RT_SCOPE_UNIVERSE)


@dataclass(slots=True)
class RouteEntry:
    dst: str
    gateway: str
    oif: int
    protocol: int
    table: int
    type: int
    family: int = socket.AF_INET


def decode_route(payload: bytes, families: frozenset[int] = IPV4_ONLY) -> RouteEntry | None:
    """None for a route of a family not in `families`."""
    family, dst_len, _, _, table, protocol, _, rtype, _ = _RTMSG.unpack_from(payload)
    if family not in families:
        return None
    found = attrs(payload, _RTMSG.size)
    table = _u32(found.get(RTA_TABLE)) or table
    dst = _address(family, found.get(RTA_DST)) or (None if dst_len == 0 else _UNSPECIFIED[family])
    return RouteEntry(
        dst=f"{dst}/{dst_len}" if dst else "default",
        gateway=_address(family, found.get(RTA_GATEWAY)),
        oif=_u32(found.get(RTA_OIF)),
        protocol=protocol,
        table=table,
        type=rtype,
        family=family,
    )


@dataclass(frozen=True)
class Neigh:
    """A neighbour entry (family AF_INET or AF_INET6) or a forwarding database entry
    (AF_BRIDGE; `address` its remote VTEP, "" for none)."""

    family: int
    index: int
    address: str
    mac: str
    state: int
    flags: int


def decode_neigh(payload: bytes) -> Neigh:
    family, index, state, flags, _ = _NDMSG.unpack_from(payload)
    found = attrs(payload, _NDMSG.size, frozenset({NDA_DST, NDA_LLADDR}))
    destination = found.get(NDA_DST)
    address = "" if destination is None else _address(family_of_packed(destination), destination)
    return Neigh(family, index, address, _mac(found.get(NDA_LLADDR)), state, flags)


def family_of_packed(packed: bytes) -> int:
    return socket.AF_INET6 if len(packed) == 16 else socket.AF_INET
