"""Facts of the host namespace besides its owned links and addresses: the interfaces the
spec uses without owning them (uplinks), the host's own IPv4 networks (which a chosen
subnet avoids), the static entries of netreconcile's VXLAN devices, and its nftables
tables.
"""

from __future__ import annotations

import socket
from ipaddress import ip_interface, ip_network

from reconciler.kernel import netlink as nl
from reconciler.kernel import nft
from reconciler.kernel.nlsocket import NetlinkSocket
from reconciler.kernel.session import KernelSession
from reconciler.render import firewall
from reconciler.state.model import HOST_NS, FdbEntry, Firewall, KernelObject, NeighEntry, UsedInterface


def host_networks(host_routes: list[nl.RouteEntry], foreign_addresses: list[str],
                  owned_indexes: set[int]) -> tuple[str, ...]:
    """The host namespace's IPv4 networks that are not netreconcile's: the subnets of the
    addresses of interfaces it does not own, and the destinations of the main table's
    routes through them (or through none: blackhole, unreachable) but the default route,
    which overlaps everything (Docker skips it too)."""
    found = dict.fromkeys(str(ip_interface(cidr).network) for cidr in foreign_addresses
                          if ip_interface(cidr).version == 4)
    for route in host_routes:
        if (route.family == socket.AF_INET and route.table == nl.RT_TABLE_MAIN and route.dst != "default"
                and route.oif not in owned_indexes):
            found.setdefault(str(ip_network(route.dst, strict=False)))
    return tuple(found)


def used_interfaces(
    host_routes: list[nl.RouteEntry], names: frozenset[str], used: dict[int, nl.Link], addresses: dict[int, list[str]],
    by_index: dict[int, nl.Link], foreign: set[str], owned_networks: dict[int, nl.Link],
) -> dict[str, UsedInterface]:
    """What decides whether the named host interfaces may be taken as ports (see
    UsedInterface); a named interface that is absent is observed as such."""
    found = {name: UsedInterface(name, exists=False) for name in names}
    routes = _default_routes(host_routes, set(used))
    for index, link in used.items():
        master = by_index.get(link.master)
        found[link.ifname] = UsedInterface(
            link.ifname, owned=link.ifname not in foreign, kind=link.kind, master=master.ifname if master else "",
            master_owned=link.master in owned_networks, mtu=link.mtu, addresses=tuple(addresses.get(index, ())),
            default_routes=tuple(routes.get(index, ())),
        )
    return found


def _default_routes(host_routes: list[nl.RouteEntry], indexes: set[int]) -> dict[int, list[tuple[int, str]]]:
    """(IP version, gateway) of the main table's default routes through each of `indexes`."""
    found: dict[int, list[tuple[int, str]]] = {}
    for route in host_routes:
        if route.dst == "default" and route.table == nl.RT_TABLE_MAIN and route.oif in indexes:
            found.setdefault(route.oif, []).append((nl.VERSION_OF_FAMILY[route.family], route.gateway))
    return found


def overlay_entries(sock: NetlinkSocket, devices: dict[int, str]) -> list[KernelObject]:
    """The permanent FDB entries with a remote and the permanent neighbour entries of the
    devices `devices` (index -> name): netreconcile's VXLAN devices, whose every such
    entry is its own (the kernel adds none without learning)."""
    if not devices:
        return []
    found: list[KernelObject] = []
    for family in (socket.AF_BRIDGE, socket.AF_INET, socket.AF_INET6):
        for kind, payload in sock.dump(lambda seq: nl.dump_neighs(seq, family)):
            if kind != nl.RTM_NEWNEIGH:
                continue
            entry = nl.decode_neigh(payload)
            device = devices.get(entry.index)
            if device is None or not entry.state & nl.NUD_PERMANENT or not entry.address:
                continue
            if family == socket.AF_BRIDGE:
                found.append(FdbEntry(device, entry.mac, entry.address))
            else:
                found.append(NeighEntry(device, entry.address, entry.mac))
    return found


def observe_firewall(session: KernelSession) -> list[KernelObject]:
    """netreconcile's nftables tables in the host namespace, if any is there. Without
    the nft command they cannot have been made by netreconcile: nothing to read."""
    if nft.binary() is None:
        return []
    listings = [nft.list_table(session.host_fd, family, firewall.TABLE) for family in firewall.FAMILIES]
    if all(listing is None for listing in listings):
        return []
    ruleset, elements = firewall.split_elements(firewall.normalize("".join(listing or "" for listing in listings)))
    return [Firewall(HOST_NS, ruleset, elements)]
