"""Reading the owned container namespaces: their links, addresses and routes (three dumps
each, two with IPv4 only) and their files; the veth peers found there, by host-side
index, for the host ends to be matched with.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from reconciler import drivers
from reconciler.kernel import netlink as nl
from reconciler.kernel.container_files import observe_files
from reconciler.kernel.dumps import decoded_routes, families_of, read_addrs, read_links, routes
from reconciler.kernel.nlsocket import NetlinkSocket
from reconciler.kernel.session import KernelSession
from reconciler.state.model import MISSING, Address, KernelObject, Netns, SharedParts

if TYPE_CHECKING:
    from reconciler.kernel.file_record import FileRecord


def read_containers(
    session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
    expected: Mapping[tuple, KernelObject] | None = None, record: FileRecord | None = None,
) -> tuple[list[KernelObject], dict, list]:
    """Objects inside the container namespaces and the files of `names` (of `aliases`:
    only the files, their namespace is another's), their veth peers by host-side
    index, and what is in the way of their files. `host_names`: the host interfaces'
    names by index, which macvlan parents are found by. A file as `expected` has it
    shares its text; one as `record` has it is left out, and one this session wrote so,
    unchanged since, is not read again (container_files.observe_files).

    The files are read on a second thread while this one reads the namespaces: both
    spend much of their time in the kernel (netlink dumps; open and read), where the
    other thread runs, so they overlap. A forked child reading half of the namespaces
    cost more than it saved (copy-on-write faults of the parent's heap, the objects and
    file contents pickled back, the two readers' dumps slowing each other;
    benchmarks/README.md)."""
    inside: dict[str, list[KernelObject]] = {}
    peers: dict[int, tuple[str, nl.Link]] = {}
    etc_fd = session.open_etc_netns()
    files: dict[str, tuple[list[KernelObject], list]] = {}
    failures: list[BaseException] = []

    def read_files() -> None:
        shared = SharedParts()
        try:
            for name in names:
                files[name] = observe_files(etc_fd, session.etc_dir(name), name, expected=expected, shared=shared,
                                            record=record, written=session.written_files.get(name))
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            failures.append(error)

    reader = threading.Thread(target=read_files, name="netreconcile-read-files") if etc_fd is not None else None
    try:
        if reader is not None:
            reader.start()
        for name in names:
            if name not in aliases:
                inside[name] = observe_container_netns(session.socket(name), name, peers, host_names)
    finally:
        if reader is not None:
            reader.join()  # before the directory's descriptor is closed under it
            os.close(etc_fd)
    if failures:
        raise failures[0]
    objects: list[KernelObject] = []
    in_the_way: list[tuple[str, str]] = []
    for name in names:  # each namespace's objects, then its files: as when read in turn
        found, foreign = files.get(name, ([], []))
        objects += inside.get(name, []) + found
        in_the_way += foreign
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
