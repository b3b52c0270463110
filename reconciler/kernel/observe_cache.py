"""The observed state kept between the passes of watch mode, by scope, and read again
only where events say something changed.

What is read again, and when:
- a container's netlink part (its links, addresses and routes: three dumps of its
  namespace) with the host ends of its veths (one request each, by index): for an event
  from its namespace, or a host link event naming one of its veths' host ends (the index
  in the event, reconciler.run.triggers);
- a container's files (its /etc/netns directory): for a file event there;
- the firewall (`nft list`): for an nftables event;
- the host's links, addresses and routes, all of them (observe, with every container
  part from what is kept): for any other host event (an address, a route, a bridge, a
  link not known), a host object the plan touched, or a lost event;
- everything, which namespaces are netreconcile's too: `read_everything()` (the first
  pass, a resync, a changed spec, after a failure).

`CachingReaders` are observe's readers (reconciler.kernel.observe.Readers). A pass that
read only containers updates the kept live state by scope (reconciler.state.scopes) and
plans over those containers and the host's few objects (`plan_in_scopes`): its cost is
that of the containers named, not of the thousand. Before an apply is verified, what
its actions touched is read again (`reading_back`), so what is kept after a pass is what
the kernel holds; a periodic full observation checks it (reconciler.run.incremental).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from reconciler.kernel import netlink as nl
from reconciler.kernel.container_files import observe_files, observe_other_container_dirs
from reconciler.kernel.observe import Readers, recognised
from reconciler.kernel.observe_containers import observe_container_netns, read_containers
from reconciler.kernel.observe_host import observe_firewall
from reconciler.kernel.session import KernelSession
from reconciler.state.model import HOST_NS, MISSING, KernelObject, State
from reconciler.state.plan import Plan
from reconciler.state.scopes import HOST_SCOPE, ScopedState, container_scope, plan_in_scopes

FILE_KINDS = frozenset({"file", "leftover"})
# the share of the containers kept that one pass's events must name for a full observation
# rather than reading those again. Measured with the threaded reader (files on a second
# thread beside the dumps; benchmarks/bench_read_again.py, busy machine, load 6-7): reading
# K containers again costs about K/N of a full observation of N (N=1000: 200 again 0.22 of
# it, 500 0.64, all 1000 1.08; N=5000: 500 0.11, 2000 0.28, all 5000 0.98, CPU time alike),
# so the two meet only near all of them, where the full read, which also looks again at
# which namespaces are netreconcile's, is worth its last 10 %. (It was 200 containers,
# sized for a forked reader that made a full read cheaper and is gone.)
READ_ALL_SHARE = 0.9
# the share of the host's links named by one pass's events from which reading them all
# costs less than asking for each one by index: a request per link costs about what its
# part of a dump does, and a read of the host's links also builds the whole live state
# again (at 1000 containers, busy machine: a pass reading the host for 544 of 1002 links
# took 0.8 s, one reading a burst of host ends by index 0.12 s; bench_watch's slow passes)
HOST_SHARE_READ_ALL = 0.9
# kinds whose change alters which namespaces are netreconcile's: read those again in full
NAMESPACE_KINDS = frozenset({"netns", "alias"})


@dataclass(frozen=True)
class Scopes:
    """What to read again: the netlink part of these container namespaces (with their
    veths' host ends), the files of these containers, the firewall, the host's links,
    addresses and routes (`host`), the host ends of these containers' veths alone
    (`veths`); `everything`: all of it, and which namespaces are netreconcile's."""

    netns: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()
    firewall: bool = False
    everything: bool = False
    host: bool = False
    veths: frozenset[str] = frozenset()  # containers whose veths' host ends alone changed

    def __or__(self, other: Scopes) -> Scopes:
        return Scopes(self.netns | other.netns, self.files | other.files, self.firewall or other.firewall,
                      self.everything or other.everything, self.host or other.host, self.veths | other.veths)


EVERYTHING = Scopes(everything=True)


def touched_by(applied: Plan) -> Scopes:
    """The scopes whose kernel state the actions of `applied` changed."""
    netns, files, firewall, host = set(), set(), False, False
    for action in applied.actions:
        obj = action.obj
        if obj.kind in NAMESPACE_KINDS:
            return EVERYTHING
        if obj.kind == "firewall":
            firewall = True
        elif obj.kind in FILE_KINDS:
            files.add(obj.netns)
        elif obj.kind == "veth":
            netns.add(obj.container)  # its host end is read with its container
        elif getattr(obj, "netns", HOST_NS) != HOST_NS:
            netns.add(obj.netns)  # a container's address, route or link
        else:
            host = True
    return Scopes(frozenset(netns), frozenset(files), firewall, host=host)


class _VethContainers(dict):
    """A veth's host end (index) -> its container, with each container's indexes beside
    it (`indexes_of`): a pass finds its containers' veths without walking every veth
    (0.9 ms a call at 5000 containers, twice a pass). Changed by `[index] = name` and
    `pop` only."""

    def __init__(self, pairs=()):
        super().__init__(pairs)
        self._by_container: dict[str, set[int]] = {}
        for index, name in self.items():
            self._by_container.setdefault(name, set()).add(index)

    def __setitem__(self, index: int, name: str) -> None:
        self.pop(index, None)
        super().__setitem__(index, name)
        self._by_container.setdefault(name, set()).add(index)

    def pop(self, index: int, *default):
        if index in self:
            self._by_container[self[index]].discard(index)
        return super().pop(index, *default)

    def indexes_of(self, name: str) -> set[int]:
        return self._by_container.get(name, set())


@dataclass
class _Kept:
    namespaces: tuple[set[str], dict[str, int], dict[str, int]]
    netns: dict[str, tuple[list[KernelObject], dict]] = field(default_factory=dict)  # name -> (objects, peers)
    files: dict[str, tuple[list[KernelObject], list]] = field(default_factory=dict)  # name -> (objects, in the way)
    other_dirs: list = field(default_factory=list)  # in the way in directories of names not owned
    host_names: dict[int, str] = field(default_factory=dict)  # the host's interfaces when the parts were read
    veth_containers: dict[int, str] = field(default_factory=dict)  # a veth's host end (index) -> its container
    firewall: list[KernelObject] | None = None

    def __post_init__(self) -> None:
        self.veth_containers = _VethContainers(self.veth_containers)


def _part_of(obj: KernelObject) -> str:
    """Which read of its container finds `obj`: "veths" (the host ends), "files" or "netns"."""
    return "files" if obj.kind in FILE_KINDS else "veths" if obj.kind == "veth" else "netns"


class NeedsHostRead(Exception):
    """The host's links changed in a way only reading them all sorts out (a link that is
    not a known veth's host end, a veth that names another container)."""


class CachingReaders(Readers):
    """observe's readers (see the module docstring), and the live state they last read,
    by scope (reconciler.state.scopes), which a pass of `read_again` plans over."""

    def __init__(self) -> None:
        self._kept: _Kept | None = None
        self._next = EVERYTHING
        self.read: Scopes = EVERYTHING  # what the current observation reads again
        self.live: ScopedState | None = None  # the state last observed
        self._desired: ScopedState | None = None
        self._planned: set | None = None  # the scopes a pass plans over; None: every scope
        self.also_planned: set = set()  # scopes planned though not read (held objects' ones)
        # container namespaces whose netlink part was read since the pass began (read_everything
        # or read_again): by the observation it plans from and by the one verifying its apply
        self.namespaces_read = 0
        self.reads_all = True  # whether the pass's first observation reads everything
        self.host_read = ""  # why the pass read the host's links, addresses and routes ("": it did not)

    @property
    def filled(self) -> bool:
        return self._kept is not None and self.live is not None

    def read_everything(self) -> None:
        """A pass begins: its first observation reads everything."""
        self._next, self.namespaces_read, self._planned, self.reads_all = EVERYTHING, 0, None, True
        self.host_read = ""

    def read_again(self, scopes: Scopes, host_links: dict[int, int] | None = None, host_changed: str = "") -> None:
        """A pass begins: its first observation reads `scopes` again (everything while
        nothing is kept), and for the host links events named (`host_links`: index -> the
        last event's type) their containers; `host_changed`: how the host changed otherwise
        (its links, addresses and routes are read)."""
        if not self.filled:
            self.read_everything()
            return
        self.namespaces_read, self.reads_all, self.host_read = 0, False, ""
        if host_changed:
            scopes = scopes | Scopes(host=True)
            self.host_read = host_changed
        else:
            host_links = host_links or {}
            scopes = scopes | self._named_by(host_links)
        if len(scopes.netns | scopes.files) >= READ_ALL_SHARE * len(self._kept.files):
            self.read_everything()
            return
        self._next = scopes
        self._planned = set()

    uses_file_record = False  # the files are kept here, read again when an event names them

    def _named_by(self, host_links: dict[int, int]) -> Scopes:
        """What the host link events read again: the host ends of the known veths they
        name, batched by index, the whole container for a host end gone (its peer went
        with it); the host's links when one is no known veth's host end, or when more than
        a share of the host's links changed (reading them all then costs less)."""
        kept = self._kept
        named = {index: kept.veth_containers.get(index) for index in host_links}
        # a link made and gone again since the host was read (a veth's peer, made in the
        # host namespace and moved into its container's): nothing kept changed
        unknown = sorted(index for index, name in named.items() if name is None and not (
            host_links[index] == nl.RTM_DELLINK and index not in kept.host_names))
        gone = frozenset(name for index, name in named.items() if name and host_links[index] == nl.RTM_DELLINK)
        changed = frozenset(named.values()) - gone - {None}
        named_scopes = Scopes(netns=gone, veths=changed)
        if unknown:
            self.host_read = f"host links {unknown[:5]} are no known veth's host end"
        elif len(named) > len(kept.host_names) * HOST_SHARE_READ_ALL:
            self.host_read = f"{len(named)} of the host's {len(kept.host_names)} links changed"
        else:
            return named_scopes
        return named_scopes | Scopes(host=True)

    def forget(self) -> None:
        """Keep nothing: after a failure the kernel may be anything."""
        self._kept = self.live = self._desired = None
        self._next, self._planned, self.also_planned = EVERYTHING, None, set()

    def reading_back(self, applied: Plan) -> None:
        # the host ends a burst of link events named are not read twice: those the apply
        # touched are read back with their containers (a thousand by index cost 0.17 s)
        self._next = (touched_by(applied) | dataclasses.replace(self._next, veths=frozenset())
                      if self._kept is not None else EVERYTHING)

    def way_back(self, observed: State) -> Callable[[], State]:
        """The kept state is updated in place by the read-back: it notes what it replaces."""
        if self.live is not None and observed.objects is self.live.state.objects:
            return self.live.way_back()
        return super().way_back(observed)

    # --- observing ---------------------------------------------------------------------

    def observe(self, session: KernelSession, **options) -> State:
        """The live state: by reading only what changed (the containers named, and the host
        ends of their veths) when the host's links need no reading, else through
        observe with these readers; kept, by scope."""
        self.read = self._next
        if not (self.read.everything or self.read.host) and self.filled:
            try:
                return self._observe_containers(session)
            except NeedsHostRead as reason:
                self.read = self._next = self._next | Scopes(host=True)
                self.host_read = self.host_read or f"{reason} is not as kept"
        state = super().observe(session, **options)
        self.live = ScopedState.of(state)
        self._remember_veths(state)
        if self._planned is not None:
            self._planned = None  # the host was read: plan over everything
        return state

    def plan_over(self, desired: State, live: State) -> Plan:
        """Over the scopes this pass read and the host's when only containers were read,
        else over everything."""
        if self._planned is None or live is not self.live.state:
            return super().plan_over(desired, live)
        if self._desired is None or self._desired.state is not desired:
            self._desired = ScopedState.of(desired)  # once per desired state, not per pass
        return plan_in_scopes(self._desired, self.live, self._planned | self.also_planned)

    def _remember_veths(self, state: State) -> None:
        index_of = {name: index for index, name in self._kept.host_names.items()}
        self._kept.veth_containers = _VethContainers(
            (index_of[obj.host_ifname], obj.container) for obj in state.objects.values()
            if obj.kind == "veth" and obj.host_ifname in index_of)

    def _observe_containers(self, session: KernelSession) -> State:
        """The kept state with the containers of self.read read again (their namespace
        and the host ends of their veths, or these alone, their files) and the firewall
        if named."""
        kept, read = self._kept, self.read
        live = self.live
        replaced: dict[str, dict[str, list[KernelObject]]] = {}
        foreign_files = set(live.state.foreign_files)
        pending = session.state.pending_links() if read.netns or read.veths else {}
        etc_fd = session.open_etc_netns() if read.files else None
        try:
            for name in sorted(read.netns | read.veths):
                if name not in kept.netns:
                    raise NeedsHostRead(name)
            for name in sorted(read.netns):
                peers: dict = {}
                inside = observe_container_netns(session.socket(name), name, peers, kept.host_names)
                kept.netns[name] = (inside, peers)
                self.namespaces_read += 1
                replaced.setdefault(name, {})["netns"] = inside
            veths = self._veths_of(session, {name: kept.netns[name][1] for name in read.netns | read.veths}, pending)
            for name, found in veths.items():
                replaced.setdefault(name, {})["veths"] = found
            for name in sorted(read.files):
                found, in_the_way = _files_again(etc_fd, session, name, kept.files) if etc_fd is not None else ([], [])
                kept.files[name] = (found, in_the_way)
                foreign_files = {entry for entry in foreign_files if entry[0] != name} | set(in_the_way)
                replaced.setdefault(name, {})["files"] = found
        finally:
            if etc_fd is not None:
                os.close(etc_fd)
        removed: list[KernelObject] = []
        added: list[KernelObject] = []
        for name, parts in replaced.items():
            was = [obj for obj in live.parts.get(container_scope(name), {}).values()
                   if _part_of(obj) in parts and obj.kind != "alias"]
            now = [obj for found in parts.values() for obj in found]
            # a scope read again but found as kept (a carrier came up: no field observed
            # changed) is as the last converged pass left it: nothing to plan there
            if {obj.key: obj for obj in was} != {obj.key: obj for obj in now}:
                removed += was
                added += now
                self._planned.add(container_scope(name))
        if read.firewall:
            kept.firewall = observe_firewall(session)
            removed += [obj for obj in live.parts.get(HOST_SCOPE, {}).values() if obj.kind == "firewall"]
            added += kept.firewall
        live.update(removed, added, foreign_files=frozenset(foreign_files))
        return live.state

    def _veths_of(self, session: KernelSession, peers_of: dict[str, dict],
                  pending: dict[str, str]) -> dict[str, list[KernelObject]]:
        """The veths of the containers of `peers_of` (name -> the peers inside): their host
        ends, asked for by index in one batch (those their namespaces lead to, and those
        they had), matched with their peers."""
        kept = self._kept
        container_of = {index: name for name in peers_of for index in kept.veth_containers.indexes_of(name)}
        container_of.update((index, name) for name, peers in peers_of.items() for index in peers)
        host = session.host
        requests = {index: nl.get_link(host.next_seq(), index=index) for index in sorted(container_of)}
        answers = host.query(list(requests.values()))
        found: dict[str, list[KernelObject]] = {name: [] for name in peers_of}
        for index, request in requests.items():
            answer = answers.get(int.from_bytes(request[8:12], "little"))
            if not isinstance(answer, bytes):  # gone (ENODEV)
                kept.host_names.pop(index, None)
                kept.veth_containers.pop(index, None)
                continue
            name = container_of[index]
            link = nl.decode_link(answer)
            ours = recognised(link, pending)
            master = kept.host_names.get(link.master, "") if link.master else ""
            if ours is None or ours[0].attachment_link_kind != link.kind or (link.master and not master):
                raise NeedsHostRead(link.ifname)
            driver, (_, *identity) = ours
            netns, peer = peers_of[name].get(link.index, (MISSING, None))
            obj = driver.observed_attachment(link, tuple(identity), netns, peer, master)
            if getattr(obj, "container", None) != name:
                raise NeedsHostRead(link.ifname)
            kept.host_names[index] = link.ifname
            kept.veth_containers[index] = name
            found[name].append(obj)
        return found

    # --- observe's readers -------------------------------------------------------------

    def namespaces(self, session: KernelSession) -> tuple[set[str], dict[str, int], dict[str, int]]:
        if self.read.everything or self._kept is None:
            self.read = EVERYTHING
            self._kept = _Kept(super().namespaces(session))
        return self._kept.namespaces

    def containers(self, session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
                   owned: set[str], expected: Mapping[tuple, KernelObject] | None = None,
                   record: None = None) -> tuple[list[KernelObject], dict, list]:
        kept = self._kept
        if self.read.everything:
            objects, peers, in_the_way = read_containers(session, names, aliases, host_names, expected)
            self._keep_everything(names, aliases, objects, peers, in_the_way)
            kept.other_dirs = observe_other_container_dirs(session, owned)
            self.namespaces_read += len(names) - len(aliases)
        else:
            self._read_again(session, names, aliases, host_names, self._stale(host_names))
        kept.host_names = host_names
        objects, peers, in_the_way = [], {}, list(kept.other_dirs)
        for name in names:
            inside, found = kept.netns.get(name, ([], {}))
            files, foreign = kept.files.get(name, ([], []))
            objects += inside
            objects += files
            peers.update(found)
            in_the_way += foreign
        return objects, peers, in_the_way

    def firewall(self, session: KernelSession) -> list[KernelObject]:
        if self.read.everything or self.read.firewall or self._kept.firewall is None:
            self._kept.firewall = super().firewall(session)
        return self._kept.firewall

    # --- keeping -------------------------------------------------------------------------

    def _keep_everything(self, names: list[str], aliases: set[str], objects: list[KernelObject], peers: dict,
                         in_the_way: list) -> None:
        """Sort a full read of the containers into their scopes."""
        netns = {name: ([], {}) for name in names if name not in aliases}
        files = {name: ([], []) for name in names}
        for obj in objects:
            (files if obj.kind in FILE_KINDS else netns).setdefault(obj.netns, ([], []))[0].append(obj)
        for index, (name, link) in peers.items():
            netns.setdefault(name, ([], {}))[1][index] = (name, link)
        for name, what in in_the_way:
            files.setdefault(name, ([], []))[1].append((name, what))
        self._kept.netns, self._kept.files = netns, files

    def _stale(self, host_names: dict[int, str]) -> set[str]:
        """The container namespaces whose kept part names a host interface that is gone or
        renamed since: the peer of a veth whose host end was deleted (gone with it, whether
        or not the container's own event has come yet), a macvlan whose parent went."""
        kept = self._kept
        changed = {index: name for index, name in kept.host_names.items() if host_names.get(index) != name}
        if not changed:
            return set()
        names = set(changed.values())
        return {netns for netns, (objects, peers) in kept.netns.items()
                if peers.keys() & changed.keys() or any(getattr(obj, "parent", None) in names for obj in objects)}

    def _read_again(self, session: KernelSession, names: list[str], aliases: set[str],
                    host_names: dict[int, str], stale: set[str]) -> None:
        kept = self._kept
        etc_fd = None
        try:
            for name in names:
                if name not in aliases and (name in self.read.netns or name in stale or name not in kept.netns):
                    peers: dict = {}
                    kept.netns[name] = (observe_container_netns(session.socket(name), name, peers, host_names), peers)
                    self.namespaces_read += 1
                if name in self.read.files or name not in kept.files:
                    if etc_fd is None:
                        etc_fd = session.open_etc_netns()
                    kept.files[name] = _files_again(etc_fd, session, name, kept.files) if etc_fd is not None else ([], [])
        finally:
            if etc_fd is not None:
                os.close(etc_fd)


def _files_again(etc_fd: int, session: KernelSession, name: str, kept_files: dict) -> tuple[list, list]:
    """Container `name`'s files read again; one whose text is unchanged keeps the kept
    Text (its discovery section shared with the other containers' files, not a copy)."""
    before = {obj.key: obj for obj in kept_files.get(name, ([], []))[0]}
    return observe_files(etc_fd, session.etc_dir(name), name, expected=before)
