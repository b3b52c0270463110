"""The netlink reads of one namespace, decoded: its links, addresses, main-table routes
and net sysctls. Each is one dump (per family, or one of every family when both are
wanted) on a socket kept open; the observers of the host and of the containers pick
from them what is netreconcile's.
"""

from __future__ import annotations

import socket

from reconciler.kernel import netlink as nl
from reconciler.kernel.container_files import read_small_file
from reconciler.kernel.nlsocket import NetlinkSocket, entered
from reconciler.state.model import ADDRESS_FAMILIES, MISSING, KernelObject, Route

# the address families read: those the desired state can have
OBSERVED_FAMILIES = frozenset(nl.FAMILY_OF_VERSION[version] for version in ADDRESS_FAMILIES)


def read_links(sock: NetlinkSocket) -> list[nl.Link]:
    return [nl.decode_link(payload) for kind, payload in sock.dump(nl.dump_links) if kind == nl.RTM_NEWLINK]


def families_of(links: list[nl.Link]) -> frozenset[int]:
    """The observed families a namespace with `links` can have addresses and routes of:
    without an interface that has IPv6 on (a namespace of IPv4-only networks) there is
    no IPv6 address or route to read, and two dumps per namespace are saved."""
    if any(link.ipv6 for link in links):
        return OBSERVED_FAMILIES
    return OBSERVED_FAMILIES - {socket.AF_INET6}


def dump_per_family(sock: NetlinkSocket, build, kind: int, families: frozenset[int]) -> list[bytes]:
    """The payloads of messages of `kind` of `families`: one dump of that family, or of
    every family (AF_UNSPEC) when both are wanted: a round trip per namespace saved (the
    decoders skip other families)."""
    family = next(iter(families)) if len(families) == 1 else socket.AF_UNSPEC
    return [payload for reply, payload in sock.dump(lambda seq: build(seq, family)) if reply == kind]


def read_addrs(sock: NetlinkSocket, families: frozenset[int] = OBSERVED_FAMILIES) -> list[nl.Addr]:
    found = []
    for payload in dump_per_family(sock, nl.dump_addrs, nl.RTM_NEWADDR, families):
        addr = nl.decode_addr(payload, families)
        if addr is not None and not addr.kernel_made:  # fe80::/64 and ::1 are the kernel's, not drift
            found.append(addr)
    return found



def decoded_routes(sock: NetlinkSocket, families: frozenset[int]) -> list[nl.RouteEntry]:
    """Every route of `families` in every table: one dump, decoded once, that all who need
    the namespace's routes share."""
    found = []
    for payload in dump_per_family(sock, nl.dump_routes, nl.RTM_NEWROUTE, families):
        route = nl.decode_route(payload, families)
        if route is not None:
            found.append(route)
    return found


def routes(decoded: list[nl.RouteEntry], netns: str, links: dict[int, nl.Link], every_link: bool = False,
           ) -> list[KernelObject]:
    """Of the `decoded` routes of `netns`, the main-table unicast ones that are not the
    kernel's, through `links` (`every_link`: through any interface, one not found named
    MISSING)."""
    objects: list[KernelObject] = []
    for route in decoded:
        if (
            route.table != nl.RT_TABLE_MAIN
            or route.protocol == nl.RTPROT_KERNEL
            or route.type != nl.RTN_UNICAST
            or not (every_link or route.oif in links)
        ):
            continue
        link = links.get(route.oif)
        objects.append(Route(netns, route.dst, route.gateway, link.ifname if link else MISSING,
                             family=nl.VERSION_OF_FAMILY[route.family]))
    return objects


def sysctl_path(setting: str) -> str:
    """/proc/sys path of a dotted (net.ipv4.ip_forward) or slashed setting."""
    return "/proc/sys/" + (setting if "/" in setting else setting.replace(".", "/"))


def read_sysctls(netns_fd: int, settings: list[str]) -> dict[str, str]:
    """Net sysctls belong to the namespace of the thread that opens the file; an
    absent setting reads as ''."""
    values = {}
    with entered(netns_fd):
        for setting in settings:
            values[setting] = (read_small_file(sysctl_path(setting)) or "").strip()
    return values
