"""Reading the owned container namespaces: their links, addresses and routes (three dumps
each, two with IPv4 only) and their files; the veth peers found there, by host-side
index, for the host ends to be matched with.
"""

from __future__ import annotations

import os

from reconciler import drivers
from reconciler.kernel import netlink as nl
from reconciler.kernel.container_files import observe_files
from reconciler.kernel.dumps import decoded_routes, families_of, read_addrs, read_links, routes
from reconciler.kernel.nlsocket import NetlinkSocket
from reconciler.kernel.session import KernelSession
from reconciler.state.model import MISSING, Address, KernelObject, Netns


def read_containers(
    session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
) -> tuple[list[KernelObject], dict, list]:
    """Objects inside the container namespaces and the files of `names` (of `aliases`:
    only the files, their namespace is another's), their veth peers by host-side
    index, and what is in the way of their files. `host_names`: the host interfaces'
    names by index, which macvlan parents are found by.

    All in this process: a forked child reading half of them cost more than it saved
    (copy-on-write faults of the parent's heap, the objects and file contents pickled
    back, and the two readers' dumps slowing each other; benchmarks/README.md)."""
    objects: list[KernelObject] = []
    peers: dict[int, tuple[str, nl.Link]] = {}
    in_the_way: list[tuple[str, str]] = []
    etc_fd = session.open_etc_netns()
    try:
        for name in names:
            if name not in aliases:
                objects += observe_container_netns(session.socket(name), name, peers, host_names)
            if etc_fd is not None:
                found, foreign = observe_files(etc_fd, session.etc_dir(name), name)
                objects += found
                in_the_way += foreign
    finally:
        if etc_fd is not None:
            os.close(etc_fd)
    return objects, peers, in_the_way


def observe_container_netns(sock: NetlinkSocket, name: str, peers: dict,
                             host_names: dict[int, str]) -> list[KernelObject]:
    links = read_links(sock)
    by_index = {link.index: link for link in links}
    loopback = next((link for link in links if link.ifname == "lo"), None)
    objects: list[KernelObject] = [
        Netns(name, lo_up=bool(loopback and loopback.up), ipv6=bool(loopback and loopback.ipv6))
    ]
    for link in links:
        if link.kind == "veth" and link.peer_index:
            peers[link.peer_index] = (name, link)
        elif link.kind and (driver := drivers.driver_of_container_link_kind(link.kind)) is not None:
            objects.append(container_link(driver, link, name, host_names))
    families = families_of(links)
    for addr in read_addrs(sock, families):
        link = by_index.get(addr.index)
        if link is not None and link.ifname != "lo":
            objects.append(Address(name, link.ifname, addr.cidr))
    return objects + routes(decoded_routes(sock, families), name, by_index, every_link=True)


def container_link(driver: drivers.NetworkDriver, link: nl.Link, netns: str,
                    host_names: dict[int, str]) -> KernelObject:
    """A driver's link in owned namespace `netns`: ours whether marked or not (a run cut
    between create and mark leaves it unmarked, with an identity the planner replaces).
    Its lower link is a host interface when it is in another namespace (netreconcile
    makes it from the host's); one in the container's own namespace is no parent of ours."""
    mark = driver.parse_mark(link.alias)
    if mark is None or mark[0] != link.kind:
        mark = driver.unmarked(link.kind)
    parent = host_names.get(link.peer_index, MISSING) if link.link_netnsid >= 0 else MISSING
    return driver.observed_container_link(link, tuple(mark[1:]), netns, parent)
