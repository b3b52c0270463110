"""Reading the owned container namespaces: their links, addresses and routes (three dumps
each, two with IPv4 only) and their files; the veth peers found there, by host-side
index, for the host ends to be matched with. Many namespaces are read by two processes.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

from reconciler import drivers
from reconciler.errors import KernelError
from reconciler.kernel import netlink as nl
from reconciler.kernel.container_files import observe_files
from reconciler.kernel.dumps import decoded_routes, families_of, read_addrs, read_links, routes
from reconciler.kernel.nlsocket import NetlinkSocket
from reconciler.kernel.session import KernelSession
from reconciler.state.model import MISSING, Address, File, KernelObject, Netns

PARALLEL_FROM = 200  # container namespaces; below this a second process costs more than it saves


def read_containers(
    session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
    expected: Mapping[tuple, KernelObject] | None = None,
) -> tuple[list[KernelObject], dict, list]:
    """Objects inside the container namespaces and the files of `names` (of `aliases`:
    only the files, their namespace is another's), their veth peers by host-side
    index, and what is in the way of their files. `host_names`: the host interfaces'
    names by index, which macvlan parents are found by. A file as `expected` has it
    shares its text (container_files.observe_files).

    Reading is Python-bound (decoding), so threads do not help; with many namespaces
    a forked child reads half of them on the other CPU and sends the result back (of
    the files as expected only their keys: the parent has their texts)."""
    if len(names) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        return _read_containers_here(session, names, aliases, host_names, expected)
    half = len(names) // 2
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child; its result is checked by the parent
        os.close(reader)
        try:
            objects, peers, in_the_way = _read_containers_here(session, names[half:], aliases, host_names, expected)
            as_expected = [obj.key for obj in objects if _is_expected(obj, expected)]
            objects = [obj for obj in objects if not _is_expected(obj, expected)]
            message = ("ok", (objects, peers, in_the_way, as_expected))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
            message = ("error", repr(error))
        with os.fdopen(writer, "wb") as pipe:  # streamed: no pickled copy of the texts is held
            pickle.dump(message, pipe)
        os._exit(0)
    os.close(writer)
    try:
        objects, peers, in_the_way = _read_containers_here(session, names[:half], aliases, host_names, expected)
    finally:
        with os.fdopen(reader, "rb") as pipe:
            status, result = _received(pipe)
        os.waitpid(child, 0)
    if status != "ok":
        raise KernelError(f"reading container namespaces failed: {result}")
    other_objects, other_peers, other_in_the_way, as_expected = result
    peers.update(other_peers)
    objects += other_objects
    objects += [expected[key] for key in as_expected]
    return objects, peers, in_the_way + other_in_the_way


def _received(pipe) -> tuple[str, object]:
    """The child's message, unpickled as it arrives (the texts are held once, not also as bytes)."""
    try:
        return pickle.load(pipe)
    except (EOFError, pickle.UnpicklingError):
        return "error", "the reading process died"


def _is_expected(obj: KernelObject, expected: Mapping[tuple, KernelObject] | None) -> bool:
    """Whether `obj` is a File read with the text of the expected File of its key (shared)."""
    wanted = expected.get(obj.key) if expected and isinstance(obj, File) else None
    return wanted is not None and wanted.content is obj.content


def _read_containers_here(
    session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
    expected: Mapping[tuple, KernelObject] | None = None,
) -> tuple[list[KernelObject], dict, list]:
    objects: list[KernelObject] = []
    peers: dict[int, tuple[str, nl.Link]] = {}
    in_the_way: list[tuple[str, str]] = []
    etc_fd = session.open_etc_netns()
    try:
        for name in names:
            if name not in aliases:
                objects += observe_container_netns(session.socket(name), name, peers, host_names)
            if etc_fd is not None:
                found, foreign = observe_files(etc_fd, session.etc_dir(name), name, expected=expected)
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
