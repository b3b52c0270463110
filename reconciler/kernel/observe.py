"""Read the live state: the host namespace and every owned container namespace.

Per namespace this costs three netlink dumps (its links, its addresses, its main-table
routes: of IPv4, or of every family where an interface has IPv6) on a socket kept open,
decoded by reconciler.kernel.netlink's minimal decoder, a listing of its directory
/etc/netns/<name>/ and three small file reads (hostname, hosts, resolv.conf). Container files are read relative to directory descriptors and
never through a symbolic link.
Only objects netreconcile owns become model objects (host links: those a network driver
recognises by its mark, or journaled as pending, reconciler.drivers; inside owned container
namespaces also a driver's own container links, marked or not: a macvlan, whose parent is
named by the host link its IFLA_LINK leads to), and the ports of its bridges that are not
its own (uplinks: used, not owned); other host interfaces and
namespaces, and links or other entries where a container's files should be, are
reported by name so the planner can refuse to take them over; a namespace in the way
that netreconcile manages for another host namespace is named with that host. Of the host
interfaces the spec uses without owning them (`uplinks`), and only of those, the master,
MTU, addresses and default routes are kept (`UsedInterface`), for the planner to judge
whether taking them is safe: from the host's link and address dumps read anyway, plus one
route dump when the spec names one.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import pickle
import socket
import stat
from ipaddress import ip_interface, ip_network

from reconciler import drivers
from reconciler.errors import KernelError
from reconciler.kernel import netlink as nl
from reconciler.kernel import nft
from reconciler.kernel.nlsocket import NetlinkSocket, entered
from reconciler.kernel.session import DIRECTORY_FLAGS, NETNS_DIR, KernelSession, open_container_dir
from reconciler.kernel.support import unsupported_link_kinds
from reconciler.render import firewall
from reconciler.state.desired import route_localnet
from reconciler.state.model import (
    ADDRESS_FAMILIES, FORWARDING, HOST_NS, MISSING, Address, FdbEntry, File, Firewall, KernelObject, Leftover,
    NeighEntry, Netns, NetnsAlias, Route, State, Sysctl, Uplink, UsedInterface,
)

# the address families read: those the desired state can have
OBSERVED_FAMILIES = frozenset(nl.FAMILY_OF_VERSION[version] for version in ADDRESS_FAMILIES)

def recognised(link: nl.Link, pending: dict[str, str]) -> tuple[drivers.NetworkDriver, tuple[str, ...]] | None:
    """The driver that owns host link `link`, with its mark (link kind, identity...):
    marked by the driver, or journaled as pending (created by a run that stopped before
    marking it: ours, with an identity to replace). None: not ours."""
    found = drivers.parse_mark(link.alias)
    if found is None and pending.get(link.ifname) == link.kind:
        driver = drivers.driver_of_link_kind(link.kind)
        found = (driver, driver.unmarked(link.kind)) if driver is not None else None
    if found is None or found[1][0] != link.kind or link.kind not in found[0].link_kinds:
        return None  # a driver's container link kind in the host namespace is not one it made
    return found


def list_netns() -> set[str]:
    try:
        return {name for name in os.listdir(NETNS_DIR) if not name.startswith(".")}
    except FileNotFoundError:
        return set()


def owned_netns(session: KernelSession, record: dict[str, int], present: set[str]) -> dict[str, int]:
    """The part of the record whose namespaces are `present` and still the ones we made,
    with their cookies (a recorded cookie of 0 means: being created by us)."""
    owned = {}
    for name, cookie in record.items():
        if name not in present:
            continue
        try:
            current = session.socket(name).netns_cookie()
        except (KernelError, OSError) as error:
            # a creation cut short: the name's file exists but holds no namespace; a link put
            # in its place (never followed) is no namespace of ours either
            if cookie == 0 or getattr(error, "errno", None) == errno.ELOOP:
                session.forget(name)
                continue
            raise
        if cookie in (0, current):
            owned[name] = current
        else:
            session.forget(name)
    return owned


def netns_managed_elsewhere(session: KernelSession, names: set[str]) -> dict[str, str]:
    """Of the namespaces `names`, not ours, those netreconcile manages for another host
    namespace by that host's record: {name: host namespace, "" for the root one}."""
    found: dict[str, str] = {}
    for host, record in session.state.other_hosts_netns().items():
        for name in sorted((names & record.keys()) - found.keys()):
            if _is_recorded_namespace(session, name, record[name]):
                found[name] = host
    return found


def _is_recorded_namespace(session: KernelSession, name: str, cookie: int) -> bool:
    """Whether /run/netns/NAME is still the namespace recorded with `cookie` (0: being created)."""
    try:
        current = session.socket(name).netns_cookie()
    except (KernelError, OSError):
        return False
    finally:
        session.forget(name)  # not ours: keep no handle on it
    return cookie in (0, current)


def observe(session: KernelSession, inside_containers: bool = True, uplinks: frozenset[str] = frozenset(),
            host_networks: bool = False) -> State:
    """The live state. Without `inside_containers` the container namespaces are only
    listed, not read: enough to plan their deletion, which takes everything inside.
    `uplinks`: host interfaces the spec uses without owning them, observed closely
    (`State.used_interfaces`). `host_networks`: also the host's own IPv4 networks, which a
    chosen subnet avoids (`State.host_networks`; one more route dump)."""
    objects: list[KernelObject] = []
    host_links = _links(session.host)
    by_index = {link.index: link for link in host_links}
    owned_networks, owned_attachments, routed, foreign = {}, {}, {}, set()
    pending = session.state.pending_links()
    for link in host_links:
        found = recognised(link, pending)
        if found is None:
            foreign.add(link.ifname)
            continue
        driver, (link_kind, *identity) = found
        if link_kind != driver.attachment_link_kind:
            owned_networks[link.index] = link
            if link.kind in driver.routed_link_kinds:
                routed[link.index] = link
            # without IFLA_LINK (a vxlan), the link it is a port of
            lower = by_index.get(link.peer_index or link.master) if link.link_netnsid < 0 else None
            objects.append(driver.observed_network(link, tuple(identity), lower.ifname if lower else MISSING))
        else:
            owned_attachments[link.index] = (driver, link, tuple(identity))
    for link in host_links:  # a port of one of our bridges that is not ours: an uplink
        if link.ifname in foreign and link.master in owned_networks:
            objects.append(Uplink(link.ifname, owned_networks[link.master].ifname, link.up))
    used = {link.index: link for link in host_links if link.ifname in uplinks}
    for link in used.values():  # a named uplink that is a port of nothing, as it is (up or down)
        if link.ifname in foreign and not link.master:
            objects.append(Uplink(link.ifname, "", link.up))
    used_addresses: dict[int, list[str]] = {}
    foreign_addresses: list[str] = []
    for addr in _addrs(session.host):
        if addr.index in owned_networks:
            objects.append(Address(HOST_NS, by_index[addr.index].ifname, addr.cidr))
        else:
            foreign_addresses.append(addr.cidr)
            if addr.index in used:
                used_addresses.setdefault(addr.index, []).append(addr.cidr)
    used_interfaces = _used_interfaces(session, uplinks, used, used_addresses, by_index, foreign, owned_networks)
    if routed:  # one more dump, only on a host with such links
        objects += _routes(session.host, HOST_NS, routed, nl.IPV4_ONLY)
    # two more dumps, only on a host with overlay networks
    objects += _entries(session.host, {i: link.ifname for i, link in owned_networks.items() if link.kind == "vxlan"})

    present = list_netns()
    record = session.state.recorded_netns()
    owned = owned_netns(session, record, present)
    # names we were creating when interrupted: ours to make again, not a stranger's
    half_made = {name for name, cookie in record.items() if cookie == 0 and name in present and name not in owned}
    aliases = {name: target for name, target in session.state.recorded_aliases().items() if name in owned}
    owned_set = set(owned) - set(aliases)  # namespaces of their own
    peers: dict[int, tuple[str, nl.Link]] = {}
    in_the_way: list[tuple[str, str]] = []
    if inside_containers:
        host_names = {index: link.ifname for index, link in by_index.items()}
        inside, peers, in_the_way = _read_containers(session, sorted(owned_set) + sorted(aliases), set(aliases),
                                                     host_names)
        objects += inside
        in_the_way += _observe_other_container_dirs(session, set(owned))
    else:
        objects += [Netns(name) for name in sorted(owned_set)]
    objects += _observe_aliases(session, owned, aliases)
    for driver, link, identity in owned_attachments.values():
        netns, peer = peers.get(link.index, (MISSING, None))
        if not inside_containers and identity[0] in owned_set:
            netns = identity[0]  # not read; the marked link leads into its container's namespace
        master = by_index.get(link.master)
        objects.append(driver.observed_attachment(link, identity, netns, peer, master.ifname if master else ""))
    settings = [*FORWARDING.values()] + [route_localnet(link.ifname) for link in owned_networks.values()]
    objects += [Sysctl(HOST_NS, name, value) for name, value in read_sysctls(session.host_fd, settings).items()]
    objects += observe_firewall(session)
    state = State.of(objects, foreign_links=foreign, foreign_netns=present - set(owned) - half_made,
                     foreign_files=in_the_way, host_link_mtus={link.ifname: link.mtu for link in host_links},
                     unsupported_link_kinds=unsupported_link_kinds())
    if host_networks:
        owned_indexes = set(owned_networks) | set(owned_attachments)
        state = dataclasses.replace(state, host_networks=_host_networks(session, foreign_addresses, owned_indexes))
    return dataclasses.replace(state, used_interfaces=used_interfaces) if used_interfaces else state


def _host_networks(session: KernelSession, foreign_addresses: list[str], owned_indexes: set[int]) -> tuple[str, ...]:
    """The host namespace's IPv4 networks that are not netreconcile's: the subnets of the
    addresses of interfaces it does not own, and the destinations of the main table's
    routes through them (or through none: blackhole, unreachable) but the default route,
    which overlaps everything (Docker skips it too)."""
    found = dict.fromkeys(str(ip_interface(cidr).network) for cidr in foreign_addresses
                          if ip_interface(cidr).version == 4)
    for payload in _dump_per_family(session.host, nl.dump_routes, nl.RTM_NEWROUTE, nl.IPV4_ONLY):
        route = nl.decode_route(payload, nl.IPV4_ONLY)
        if (route is not None and route.table == nl.RT_TABLE_MAIN and route.dst != "default"
                and route.oif not in owned_indexes):
            found.setdefault(str(ip_network(route.dst, strict=False)))
    return tuple(found)


def _used_interfaces(
    session: KernelSession, names: frozenset[str], used: dict[int, nl.Link], addresses: dict[int, list[str]],
    by_index: dict[int, nl.Link], foreign: set[str], owned_networks: dict[int, nl.Link],
) -> dict[str, UsedInterface]:
    """What decides whether the named host interfaces may be taken as ports (see
    UsedInterface); a named interface that is absent is observed as such."""
    found = {name: UsedInterface(name, exists=False) for name in names}
    routes = _default_routes(session.host, set(used)) if used else {}
    for index, link in used.items():
        master = by_index.get(link.master)
        found[link.ifname] = UsedInterface(
            link.ifname, owned=link.ifname not in foreign, kind=link.kind, master=master.ifname if master else "",
            master_owned=link.master in owned_networks, mtu=link.mtu, addresses=tuple(addresses.get(index, ())),
            default_routes=tuple(routes.get(index, ())),
        )
    return found


def _default_routes(sock: NetlinkSocket, indexes: set[int]) -> dict[int, list[tuple[int, str]]]:
    """(IP version, gateway) of the main table's default routes through each of `indexes`."""
    found: dict[int, list[tuple[int, str]]] = {}
    for payload in _dump_per_family(sock, nl.dump_routes, nl.RTM_NEWROUTE, OBSERVED_FAMILIES):
        route = nl.decode_route(payload, OBSERVED_FAMILIES)
        if route is not None and route.dst == "default" and route.table == nl.RT_TABLE_MAIN and route.oif in indexes:
            found.setdefault(route.oif, []).append((nl.VERSION_OF_FAMILY[route.family], route.gateway))
    return found


def _observe_aliases(session: KernelSession, owned: dict[str, int], aliases: dict[str, str]) -> list[KernelObject]:
    """Each alias with the container it still names (by namespace cookie), or MISSING."""
    objects: list[KernelObject] = []
    host_cookie = session.host.netns_cookie() if aliases else 0
    for name, target in sorted(aliases.items()):
        expected = host_cookie if target == HOST_NS else owned.get(target)
        objects.append(NetnsAlias(name, target if owned[name] == expected else MISSING))
    return objects


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


PARALLEL_FROM = 200  # container namespaces; below this a second process costs more than it saves


def _read_containers(
    session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
) -> tuple[list[KernelObject], dict, list]:
    """Objects inside the container namespaces and the files of `names` (of `aliases`:
    only the files, their namespace is another's), their veth peers by host-side
    index, and what is in the way of their files. `host_names`: the host interfaces'
    names by index, which macvlan parents are found by.

    Reading is Python-bound (decoding), so threads do not help; with many namespaces
    a forked child reads half of them on the other CPU and sends the result back."""
    if len(names) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        return _read_containers_here(session, names, aliases, host_names)
    half = len(names) // 2
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child; its result is checked by the parent
        os.close(reader)
        try:
            payload = pickle.dumps(("ok", _read_containers_here(session, names[half:], aliases, host_names)))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
            payload = pickle.dumps(("error", repr(error)))
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(writer)
    try:
        objects, peers, in_the_way = _read_containers_here(session, names[:half], aliases, host_names)
    finally:
        with os.fdopen(reader, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(child, 0)
    status, result = pickle.loads(payload) if payload else ("error", "the reading process died")
    if status != "ok":
        raise KernelError(f"reading container namespaces failed: {result}")
    other_objects, other_peers, other_in_the_way = result
    peers.update(other_peers)
    return objects + other_objects, peers, in_the_way + other_in_the_way


def _read_containers_here(
    session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
) -> tuple[list[KernelObject], dict, list]:
    objects: list[KernelObject] = []
    peers: dict[int, tuple[str, nl.Link]] = {}
    in_the_way: list[tuple[str, str]] = []
    etc_fd = session.open_etc_netns()
    try:
        for name in names:
            if name not in aliases:
                objects += _observe_container_netns(session.socket(name), name, peers, host_names)
            if etc_fd is not None:
                found, foreign = _observe_files(etc_fd, session.etc_dir(name), name)
                objects += found
                in_the_way += foreign
    finally:
        if etc_fd is not None:
            os.close(etc_fd)
    return objects, peers, in_the_way


def _observe_container_netns(sock: NetlinkSocket, name: str, peers: dict,
                             host_names: dict[int, str]) -> list[KernelObject]:
    links = _links(sock)
    by_index = {link.index: link for link in links}
    loopback = next((link for link in links if link.ifname == "lo"), None)
    objects: list[KernelObject] = [
        Netns(name, lo_up=bool(loopback and loopback.up), ipv6=bool(loopback and loopback.ipv6))
    ]
    for link in links:
        if link.kind == "veth" and link.peer_index:
            peers[link.peer_index] = (name, link)
        elif link.kind and (driver := drivers.driver_of_container_link_kind(link.kind)) is not None:
            objects.append(_container_link(driver, link, name, host_names))
    families = _families_of(links)
    for addr in _addrs(sock, families):
        link = by_index.get(addr.index)
        if link is not None and link.ifname != "lo":
            objects.append(Address(name, link.ifname, addr.cidr))
    return objects + _routes(sock, name, by_index, families, every_link=True)


def _routes(sock: NetlinkSocket, netns: str, links: dict[int, nl.Link], families: frozenset[int],
            every_link: bool = False) -> list[KernelObject]:
    """The main-table unicast routes of `netns` that are not the kernel's, through `links`
    (`every_link`: through any interface, one not found named MISSING)."""
    objects: list[KernelObject] = []
    for payload in _dump_per_family(sock, nl.dump_routes, nl.RTM_NEWROUTE, families):
        route = nl.decode_route(payload, families)
        if (
            route is None
            or route.table != nl.RT_TABLE_MAIN
            or route.protocol == nl.RTPROT_KERNEL
            or route.type != nl.RTN_UNICAST
            or not (every_link or route.oif in links)
        ):
            continue
        link = links.get(route.oif)
        objects.append(Route(netns, route.dst, route.gateway, link.ifname if link else MISSING,
                             family=nl.VERSION_OF_FAMILY[route.family]))
    return objects


def _container_link(driver: drivers.NetworkDriver, link: nl.Link, netns: str,
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


CONTAINER_FILES = ("hostname", "hosts", "resolv.conf")
TEMPORARY_MARK = ".netreconcile-"  # in the names of files being written: .hosts.netreconcile-<random>


def is_temporary(filename: str) -> bool:
    """Whether `filename` is one of netreconcile's temporary files."""
    return filename.startswith(".") and TEMPORARY_MARK in filename


def _observe_files(etc_fd: int, directory: str, netns: str, read: bool = True) -> tuple[list[KernelObject], list]:
    """The files (with `read`) and leftover temporary files of container `netns` in its
    `directory`, and what is in the way of them: a link or other non-regular entry
    where the directory or one of its files should be. Nothing is followed."""
    try:
        dir_fd = open_container_dir(etc_fd, netns)
        if dir_fd is None:
            return [], []
    except NotADirectoryError:
        try:
            mode = os.lstat(netns, dir_fd=etc_fd).st_mode
        except FileNotFoundError:  # gone since
            return [], []
        return [], [(netns, _in_the_way(directory, mode, "a directory"))]
    found: list[KernelObject] = []
    in_the_way = []
    try:
        for entry in os.scandir(dir_fd):
            regular = entry.is_file(follow_symlinks=False)
            if entry.name in CONTAINER_FILES and not regular:
                mode = entry.stat(follow_symlinks=False).st_mode
                in_the_way.append((netns, _in_the_way(os.path.join(directory, entry.name), mode, "a regular file")))
            elif entry.name in CONTAINER_FILES and read:
                content = read_small_file(entry.name, dir_fd)
                if content is not None:
                    found.append(File(netns, entry.name, content))
            elif regular and is_temporary(entry.name):
                found.append(Leftover(netns, entry.name))
    finally:
        os.close(dir_fd)
    return found, in_the_way


def _in_the_way(path: str, mode: int, wanted: str) -> str:
    if stat.S_ISLNK(mode):
        return f"{path} is a symbolic link; netreconcile never writes, reads or deletes through one"
    return f"{path} is not {wanted}"


def _observe_other_container_dirs(session: KernelSession, owned: set[str]) -> list[tuple[str, str]]:
    """What is in the way in the directories of names netreconcile does not own (yet):
    the spec may want them."""
    etc_fd = session.open_etc_netns()
    if etc_fd is None:
        return []
    in_the_way = []
    try:
        for name in os.listdir(etc_fd):
            if name not in owned:
                in_the_way += _observe_files(etc_fd, session.etc_dir(name), name, read=False)[1]
    finally:
        os.close(etc_fd)
    return in_the_way


def read_container_file(path: str) -> str | None:
    """The text of container file ETC_NETNS/NAME/FILE `path`, never through a link at NAME
    or FILE (the etc-netns directory is the operator's choice): None when absent, or when
    a link or anything but a regular file is there."""
    directory, filename = os.path.split(path)
    etc_netns, netns = os.path.split(directory)
    try:
        etc_fd = os.open(etc_netns, DIRECTORY_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        dir_fd = open_container_dir(etc_fd, netns)
    except NotADirectoryError:
        return None
    finally:
        os.close(etc_fd)
    if dir_fd is None:
        return None
    try:
        return read_small_file(filename, dir_fd)
    finally:
        os.close(dir_fd)


def read_small_file(path: str, dir_fd: int | None = None) -> str | None:
    """The file's text, or None when absent. os-level I/O: a third of the cost of open()
    with its buffered text layer, which matters for 3000 files per full read. Relative
    to `dir_fd` a link is never followed (ELOOP: read as absent), and anything but a
    regular file put there since the directory was listed (a FIFO would block the read)
    reads as absent."""
    contained = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    flags = os.O_RDONLY | os.O_CLOEXEC | (contained if dir_fd is not None else 0)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # became a link since the directory was listed
            return None
        raise
    try:
        if dir_fd is not None and not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", errors="surrogateescape")


def _entries(sock: NetlinkSocket, devices: dict[int, str]) -> list[KernelObject]:
    """The permanent FDB entries with a remote and the permanent neighbour entries of the
    devices `devices` (index -> name): netreconcile's VXLAN devices, whose every such
    entry is its own (the kernel adds none without learning)."""
    if not devices:
        return []
    found: list[KernelObject] = []
    for family in (socket.AF_BRIDGE, socket.AF_INET):
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


def _links(sock: NetlinkSocket) -> list[nl.Link]:
    return [nl.decode_link(payload) for kind, payload in sock.dump(nl.dump_links) if kind == nl.RTM_NEWLINK]


def _families_of(links: list[nl.Link]) -> frozenset[int]:
    """The observed families a namespace with `links` can have addresses and routes of:
    without an interface that has IPv6 on (a namespace of IPv4-only networks) there is
    no IPv6 address or route to read, and two dumps per namespace are saved."""
    if any(link.ipv6 for link in links):
        return OBSERVED_FAMILIES
    return OBSERVED_FAMILIES - {socket.AF_INET6}


def _dump_per_family(sock: NetlinkSocket, build, kind: int, families: frozenset[int]) -> list[bytes]:
    """The payloads of messages of `kind` of `families`: one dump of that family, or of
    every family (AF_UNSPEC) when both are wanted: a round trip per namespace saved (the
    decoders skip other families)."""
    family = next(iter(families)) if len(families) == 1 else socket.AF_UNSPEC
    return [payload for reply, payload in sock.dump(lambda seq: build(seq, family)) if reply == kind]


def _addrs(sock: NetlinkSocket, families: frozenset[int] = OBSERVED_FAMILIES) -> list[nl.Addr]:
    found = []
    for payload in _dump_per_family(sock, nl.dump_addrs, nl.RTM_NEWADDR, families):
        addr = nl.decode_addr(payload, families)
        if addr is not None and not addr.kernel_made:  # fe80::/64 and ::1 are the kernel's, not drift
            found.append(addr)
    return found


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
