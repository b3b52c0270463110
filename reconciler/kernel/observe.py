"""Read the live state: the host namespace and every owned container namespace; the
orchestration of the readers (reconciler.kernel.dumps for one namespace's netlink
dumps, observe_containers, container_files, observe_host, observe_namespaces).

Only objects netreconcile owns become model objects (host links: those a network driver
recognises by its mark, or journaled as pending, reconciler.drivers; inside owned container
namespaces also a driver's own container links, marked or not: a macvlan, whose parent is
named by the host link its IFLA_LINK leads to), and the ports of its bridges that are not
its own (uplinks: used, not owned); other host interfaces and namespaces, and links or
other entries where a container's files should be, are reported by name so the planner
can refuse to take them over; a namespace in the way that netreconcile manages for
another host namespace is named with that host. Of the host interfaces the spec uses
without owning them (`uplinks`), and only of those, the master, MTU, addresses and
default routes are kept (`UsedInterface`), for the planner to judge whether taking them
is safe. The host's routes are dumped at most once per pass, and only when an uplink, a
routed link (a host shim) or a subnet to choose needs them.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Mapping

from reconciler import drivers
from reconciler.kernel import netlink as nl
from reconciler.kernel.container_files import observe_other_container_dirs
from reconciler.kernel.dumps import OBSERVED_FAMILIES, decoded_routes, read_addrs, read_links, read_sysctls, routes
from reconciler.kernel.file_record import FileRecord
from reconciler.kernel.observe_containers import read_containers
from reconciler.kernel.observe_host import host_networks as found_networks
from reconciler.kernel.observe_host import observe_firewall, overlay_entries, used_interfaces
from reconciler.kernel.observe_namespaces import list_netns, observe_aliases, owned_netns
from reconciler.kernel.session import KernelSession
from reconciler.kernel.support import unsupported_link_kinds
from reconciler.state.desired import route_localnet
from reconciler.state.model import (
    FORWARDING, HOST_NS, MISSING, Address, KernelObject, Netns, State, Sysctl, Uplink,
)
from reconciler.state.plan import Plan
from reconciler.state.planner import plan


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


class Readers:
    """The readers of the parts of the live state besides the host's links, addresses,
    routes and sysctls, which are read on every call: which namespaces are netreconcile's,
    what is inside them and their files, the firewall. These read everything;
    reconciler.kernel.observe_cache keeps them between the passes of watch mode and reads
    again only what events named (and, keeping the files itself, takes no file record:
    `uses_file_record`)."""

    uses_file_record = True

    def namespaces(self, session: KernelSession) -> tuple[set[str], dict[str, int], dict[str, int]]:
        """The namespaces present, the record's and the owned ones (name -> cookie)."""
        present = list_netns()
        record = session.state.recorded_netns()
        return present, record, owned_netns(session, record, present)

    def containers(self, session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
                   owned: set[str], expected: Mapping[tuple, KernelObject] | None = None,
                   record: FileRecord | None = None) -> tuple[list[KernelObject], dict, list]:
        """See read_containers; also what is in the way in the directories of names not `owned`."""
        objects, peers, in_the_way = read_containers(session, names, aliases, host_names, expected, record)
        return objects, peers, in_the_way + observe_other_container_dirs(session, owned)

    def firewall(self, session: KernelSession) -> list[KernelObject]:
        return observe_firewall(session)

    def reading_back(self, applied: Plan) -> None:
        """Called before the state is read again to verify the apply of `applied`."""

    def way_back(self, observed: State) -> Callable[[], State]:
        """Called before an apply: a function giving `observed` as it is now (a rollback's
        target) after the apply and its read-back; these readers never change it."""
        return lambda: observed

    def observe(self, session: KernelSession, **options) -> State:
        """The live state (see observe)."""
        return observe(session, readers=self, **options)

    def plan_over(self, desired: State, live: State) -> Plan:
        """The plan from `live`, as this observed it, to `desired`."""
        return plan(desired, live)


READ_EVERYTHING = Readers()


def observe(session: KernelSession, inside_containers: bool = True, uplinks: frozenset[str] = frozenset(),
            host_networks: bool = False, expected: State | None = None,
            readers: Readers = READ_EVERYTHING, file_record: FileRecord | None = None) -> State:
    """The live state. Without `inside_containers` the container namespaces are only
    listed, not read: enough to plan their deletion, which takes everything inside.
    `uplinks`: host interfaces the spec uses without owning them, observed closely
    (`State.used_interfaces`). `host_networks`: also the host's own IPv4 networks, which a
    chosen subnet avoids (`State.host_networks`). `expected`: the state the caller
    compares with (a verification's), whose file texts a file read the same shares
    instead of holding a copy (compared in full all the same). `readers`: where the parts
    other than the host's netlink state come from. `file_record`: container files as it
    has them are left out of the state and noted in it (reconciler.kernel.file_record)."""
    objects: list[KernelObject] = []
    host_links = read_links(session.host)
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
    for addr in read_addrs(session.host):
        if addr.index in owned_networks:
            objects.append(Address(HOST_NS, by_index[addr.index].ifname, addr.cidr))
        else:
            foreign_addresses.append(addr.cidr)
            if addr.index in used:
                used_addresses.setdefault(addr.index, []).append(addr.cidr)
    # one route dump serves the uplinks' default routes (both families), the routes through
    # routed links and the host's networks (IPv4); none when nothing needs it
    route_families = (OBSERVED_FAMILIES if used else frozenset()) | (
        nl.IPV4_ONLY if routed or host_networks else frozenset())
    host_routes = decoded_routes(session.host, route_families) if route_families else []
    used_facts = used_interfaces(host_routes, uplinks, used, used_addresses, by_index, foreign, owned_networks)
    objects += routes([route for route in host_routes if route.family == socket.AF_INET], HOST_NS, routed)
    # three more dumps (FDB, IPv4 and IPv6 neighbours), only on a host with overlay networks
    objects += overlay_entries(session.host, {i: link.ifname for i, link in owned_networks.items() if link.kind == "vxlan"})

    present, record, owned = readers.namespaces(session)
    # names we were creating when interrupted: ours to make again, not a stranger's
    half_made = {name for name, cookie in record.items() if cookie == 0 and name in present and name not in owned}
    aliases = {name: target for name, target in session.state.recorded_aliases().items() if name in owned}
    owned_set = set(owned) - set(aliases)  # namespaces of their own
    peers: dict[int, tuple[str, nl.Link]] = {}
    in_the_way: list[tuple[str, str]] = []
    if inside_containers:
        host_names = {index: link.ifname for index, link in by_index.items()}
        inside, peers, in_the_way = readers.containers(session, sorted(owned_set) + sorted(aliases), set(aliases),
                                                       host_names, set(owned), expected.objects if expected else None,
                                                       file_record)
        objects += inside
    else:
        objects += [Netns(name) for name in sorted(owned_set)]
    objects += observe_aliases(session, owned, aliases)
    for driver, link, identity in owned_attachments.values():
        netns, peer = peers.get(link.index, (MISSING, None))
        if not inside_containers and identity[0] in owned_set:
            netns = identity[0]  # not read; the marked link leads into its container's namespace
        master = by_index.get(link.master)
        objects.append(driver.observed_attachment(link, identity, netns, peer, master.ifname if master else ""))
    settings = [*FORWARDING.values()] + [route_localnet(link.ifname) for link in owned_networks.values()]
    objects += [Sysctl(HOST_NS, name, value) for name, value in read_sysctls(session.host_fd, settings).items()]
    objects += readers.firewall(session)
    state = State.of(objects, foreign_links=foreign, foreign_netns=present - set(owned) - half_made,
                     foreign_files=in_the_way, host_link_mtus={link.ifname: link.mtu for link in host_links},
                     unsupported_link_kinds=unsupported_link_kinds())
    if host_networks:
        owned_indexes = set(owned_networks) | set(owned_attachments)
        found = found_networks(host_routes, foreign_addresses, owned_indexes)
        state = dataclasses.replace(state, host_networks=found)
    return dataclasses.replace(state, used_interfaces=used_facts) if used_facts else state
