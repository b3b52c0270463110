"""The observed state kept between the passes of watch mode, by scope, and read again
only where events say something changed.

Scopes: each container namespace's netlink part (its links, addresses and routes, and
the veth peers found there), each container's files (its /etc/netns directory), the
firewall (the host's nftables tables), and which namespaces are netreconcile's. The
host namespace's own links, addresses, routes, overlay entries and sysctls are not
kept: observe reads them on every call (a handful of dumps of one namespace), and with
them puts the kept parts together into a State, so that a host that changed never
forces the containers to be read again.

`CachingReaders` are observe's readers (reconciler.kernel.observe.Readers): told
`read_everything()`, the next observation reads every scope and keeps it (a full
observation: the first pass, a resync, a changed spec); told `read_again(scopes)`, only
the scopes named are read again and every other one comes from what was kept. Before
an apply is verified, the scopes its actions touched are read again
(`reading_back`), so what is kept after a pass is what the kernel holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from reconciler.kernel.container_files import observe_files, observe_other_container_dirs
from reconciler.kernel.observe import Readers
from reconciler.kernel.observe_containers import observe_container_netns, read_containers
from reconciler.kernel.session import KernelSession
from reconciler.state.model import HOST_NS, KernelObject
from reconciler.state.plan import Plan

FILE_KINDS = frozenset({"file", "leftover"})
# kinds whose change alters which namespaces are netreconcile's: read those again in full
NAMESPACE_KINDS = frozenset({"netns", "alias"})


@dataclass(frozen=True)
class Scopes:
    """What to read again: the netlink part of these container namespaces, the files of
    these containers, the firewall; `everything`: all of it, and the namespaces' ownership."""

    netns: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()
    firewall: bool = False
    everything: bool = False

    def __or__(self, other: Scopes) -> Scopes:
        return Scopes(self.netns | other.netns, self.files | other.files, self.firewall or other.firewall,
                      self.everything or other.everything)


EVERYTHING = Scopes(everything=True)


def touched_by(applied: Plan) -> Scopes:
    """The scopes whose kernel state the actions of `applied` changed."""
    netns, files, firewall = set(), set(), False
    for action in applied.actions:
        obj = action.obj
        if obj.kind in NAMESPACE_KINDS:
            return EVERYTHING
        if obj.kind == "firewall":
            firewall = True
        elif obj.kind in FILE_KINDS:
            files.add(obj.netns)
        elif getattr(obj, "netns", HOST_NS) != HOST_NS:
            netns.add(obj.netns)  # a veth's peer, a container's address, route or link
    return Scopes(frozenset(netns), frozenset(files), firewall)


@dataclass
class _Kept:
    namespaces: tuple[set[str], dict[str, int], dict[str, int]]
    netns: dict[str, tuple[list[KernelObject], dict]] = field(default_factory=dict)  # name -> (objects, peers)
    files: dict[str, tuple[list[KernelObject], list]] = field(default_factory=dict)  # name -> (objects, in the way)
    other_dirs: list = field(default_factory=list)  # in the way in directories of names not owned
    host_names: dict[int, str] = field(default_factory=dict)  # the host's interfaces when the parts were read
    firewall: list[KernelObject] | None = None


class CachingReaders(Readers):
    def __init__(self) -> None:
        self._kept: _Kept | None = None
        self._next = EVERYTHING
        self.read: Scopes = EVERYTHING  # what the last observation read again
        # container namespaces whose netlink part was read since the pass began (read_everything
        # or read_again): by the observation it plans from and by the one verifying its apply
        self.namespaces_read = 0

    @property
    def filled(self) -> bool:
        return self._kept is not None

    def read_everything(self) -> None:
        """A pass begins: its first observation reads everything."""
        self._next, self.namespaces_read = EVERYTHING, 0

    def read_again(self, scopes: Scopes) -> None:
        """A pass begins: its first observation reads `scopes` again (everything while
        nothing is kept)."""
        self._next = scopes if self._kept is not None else EVERYTHING
        self.namespaces_read = 0

    def forget(self) -> None:
        """Keep nothing: after a failure the kernel may be anything."""
        self._kept = None
        self._next = EVERYTHING

    def reading_back(self, applied: Plan) -> None:
        self._next = touched_by(applied) | self._next if self._kept is not None else EVERYTHING

    # --- observe's readers -------------------------------------------------------------

    def namespaces(self, session: KernelSession) -> tuple[set[str], dict[str, int], dict[str, int]]:
        self.read = self._next
        if self.read.everything or self._kept is None:
            self.read = EVERYTHING
            self._kept = _Kept(super().namespaces(session))
        return self._kept.namespaces

    def containers(self, session: KernelSession, names: list[str], aliases: set[str], host_names: dict[int, str],
                   owned: set[str]) -> tuple[list[KernelObject], dict, list]:
        kept = self._kept
        if self.read.everything:
            objects, peers, in_the_way = read_containers(session, names, aliases, host_names)
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
                    kept.files[name] = (observe_files(etc_fd, session.etc_dir(name), name)
                                        if etc_fd is not None else ([], []))
        finally:
            if etc_fd is not None:
                os.close(etc_fd)
