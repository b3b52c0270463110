"""What wakes watch mode: kernel and file events, each reported as a reason string.

- rtnetlink multicast (links, IPv4 and IPv6 addresses and routes) from the host namespace and
  every managed container namespace, on sockets kept open ("netlink:<namespace>");
- nftables changes in the host namespace, from the nfnetlink NFTABLES group
  ("nftables"): a firewall reload that wipes netreconcile's tables wakes it at once;
- file changes seen by watchdog (inotify): the spec ("spec"), the host's resolv.conf
  ("resolv.conf"), and container files under the etc-netns directory ("files:<name>").
  Directories are watched rather than files, because editors and resolvers replace
  files by renaming over them.

A reason names where something changed, not what: the pass reads that scope again
(reconciler.run.incremental). Of the host namespace's events, those about links also
say which ones (their index, `take_host_links`): a veth's host end names its container. Events lost to an overflowing socket (ENOBUFS) are
reported as "overflow:<reason>", which asks for a full observation. Reading state
generates no events, so a pass that changes nothing is followed by silence.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
from typing import Callable

from watchdog.events import (
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileClosedEvent, FileCreatedEvent, FileDeletedEvent,
    FileModifiedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler,
)
from watchdog.observers import Observer

from reconciler.kernel import netlink as nl
from reconciler.kernel.nlsocket import entered

HOST_EVENTS = "netlink:host"
LINK_EVENTS = frozenset({nl.RTM_NEWLINK, nl.RTM_DELLINK})
ADDRESS_EVENTS = frozenset({nl.RTM_NEWADDR, nl.RTM_DELADDR})
ROUTE_EVENTS = frozenset({nl.RTM_NEWROUTE, nl.RTM_DELROUTE})
EVENT_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})

RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
ROUTE_EVENT_GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1
RECEIVE_BUFFER = 1 << 20
# watchdog also reports files being opened and closed unwritten; reading them is not a change
CHANGES = frozenset({"created", "deleted", "modified", "moved", "closed"})
# ...and asked of inotify only for those: a pass that reads 3000 container files would
# otherwise queue three events per file (open, access, close), overflow the kernel's
# queue and lose the hand edits that come after
CHANGE_EVENTS = [FileCreatedEvent, DirCreatedEvent, FileDeletedEvent, DirDeletedEvent, FileModifiedEvent,
                 FileMovedEvent, DirMovedEvent, FileClosedEvent]
OVERFLOW = "overflow:"


def route_events_socket(netns_fd: int) -> socket.socket:
    """A socket in the namespace of `netns_fd` that receives link, address and route events."""
    with entered(netns_fd):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                             socket.NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind((0, ROUTE_EVENT_GROUPS))
    return sock


def nftables_events_socket(netns_fd: int) -> socket.socket:
    """A socket in the namespace of `netns_fd` that receives every nftables change."""
    with entered(netns_fd):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                             NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind((0, 0))
    sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)
    return sock


def _never_observed(kind: int, payload: bytes) -> bool:
    """Whether an address or route event is about what observe never reads (see
    reconciler.kernel.dumps): the kernel's own IPv6 link-local addresses, and routes
    outside the main table, not unicast or the kernel's (a new interface's fe80::/64 and
    ff00::/8, gone again when its IPv6 is turned off)."""
    if kind in ADDRESS_EVENTS:
        addr = nl.decode_addr(payload, EVENT_FAMILIES)
        return addr is None or addr.kernel_made
    if kind in ROUTE_EVENTS:
        route = nl.decode_route(payload, EVENT_FAMILIES)
        return route is None or (route.table != nl.RT_TABLE_MAIN or route.type != nl.RTN_UNICAST
                                 or route.protocol == nl.RTPROT_KERNEL)
    return False


class _FileChanges(FileSystemEventHandler):
    def __init__(self, matches: Callable[[str], str | None], on_event: Callable[[str], None]):
        self.matches = matches
        self.on_event = on_event

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGES:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            reason = self.matches(os.fsdecode(path)) if path else None
            if reason:
                self.on_event(reason)
                return


class EventSources:
    """Netlink sockets read by one thread, and a watchdog observer; both call
    `on_event(reason)` from their own threads."""

    def __init__(self, on_event: Callable[[str], None]):
        self.on_event = on_event
        self._sockets: dict[str, socket.socket] = {}
        self._by_fd: dict[int, tuple[str, socket.socket]] = {}
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # epoll, not select: select cannot wait on descriptors past 1023, and a socket per
        # container namespace takes a thousand of them (it failed at once, forever, past that)
        self._poll = select.epoll()
        self._poll.register(self._wake_read, select.EPOLLIN)
        self._stopping = False
        self._thread = threading.Thread(target=self._read_sockets, name="netlink-events", daemon=True)
        self._observer = Observer()
        self._observer.daemon = True
        self._watches: dict[str, object] = {}
        self._files: dict[str, str] = {}  # watched file path -> reason
        self._trees: dict[str, dict[str, str]] = {}  # watched directory (recursive) -> {its child: reason}
        # the host links events told of since the last take_host_links (index -> the last
        # event's type); None: something else changed there too (an address, a route, lost events)
        self._host_links: dict[int, int] | None = {}
        self.host_change = ""  # what made the last None: the first event not about a link

    def start(self) -> None:
        self._thread.start()
        self._observer.start()

    # netlink

    def watch_sockets(self, wanted: dict[str, Callable[[], socket.socket]]) -> None:
        """Keep exactly the sockets named in `wanted` (reason -> opener); open new ones."""
        with self._lock:
            for reason in [r for r in self._sockets if r not in wanted]:
                self._forget_socket(reason)
            for reason, opener in wanted.items():
                if reason not in self._sockets:
                    with contextlib.suppress(OSError):  # a namespace that vanished meanwhile
                        sock = opener()
                        self._sockets[reason] = sock
                        self._by_fd[sock.fileno()] = (reason, sock)
                        self._poll.register(sock.fileno(), select.EPOLLIN)

    def socket_count(self) -> int:
        """How many event sockets are open."""
        with self._lock:
            return len(self._sockets)

    def _forget_socket(self, reason: str) -> None:
        sock = self._sockets.pop(reason)
        self._by_fd.pop(sock.fileno(), None)
        with contextlib.suppress(OSError):
            self._poll.unregister(sock.fileno())
        sock.close()

    def _read_sockets(self) -> None:
        while not self._stopping:
            try:
                ready = self._poll.poll()
            except InterruptedError:
                continue
            for fd, _ in ready:
                if fd == self._wake_read:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_read, 4096)
                    continue
                with self._lock:
                    found = self._by_fd.get(fd)
                if found is not None:
                    reason, sock = found
                    received, overflowed = self._drain(sock)
                    if reason == HOST_EVENTS and (received or overflowed):
                        self._note_host_links(received, overflowed)
                    if received or overflowed:
                        self.on_event(f"{OVERFLOW}{reason}" if overflowed else reason)

    @staticmethod
    def _drain(sock: socket.socket) -> tuple[list[bytes], bool]:
        """Read everything queued: what was there, and whether events were lost."""
        received: list[bytes] = []
        overflowed = False
        while True:
            try:
                data = sock.recv(65536)
                if not data:
                    return received, overflowed
                received.append(data)
            except BlockingIOError:
                return received, overflowed
            except OSError as error:
                if error.errno == errno.ENOBUFS:  # events were lost: something did change, where is unknown
                    overflowed = True
                    continue
                return received, overflowed

    def _note_host_links(self, received: list[bytes], overflowed: bool) -> None:
        with self._lock:
            for data in received:
                for kind, _, _, payload in nl.messages(data):
                    if self._host_links is None:
                        return
                    if kind in LINK_EVENTS and len(payload) >= nl.IFINFO_SIZE:
                        self._host_links[nl.ifinfo_index(payload)] = kind
                    elif not _never_observed(kind, payload):
                        self._host_links, self.host_change = None, f"a host event of type {kind}"
            if overflowed:
                self._host_links, self.host_change = None, "lost host events"

    def take_host_links(self) -> dict[int, int] | None:
        """The host links events told of since the last call, each with the type of the
        last (RTM_NEWLINK or RTM_DELLINK); None: something else changed in the host
        namespace too. Forgets them. However many they are: whether reading them one by one
        costs more than reading the host's links is the reader's to say (it knows how many
        the host has: reconciler.kernel.observe_cache)."""
        with self._lock:
            found, self._host_links = self._host_links, {}
        return found

    # files

    def watch_files(self, files: dict[str, str], trees: dict[str, dict[str, str]]) -> None:
        """Watch the files in `files` (path -> reason) through their directories, and
        everything below the children named in `trees` (directory -> {child: reason}) of
        its directories. One recursive watch per tree, not one per child: watchdog runs a
        thread per watch, and a thousand containers' directories would be a thousand."""
        self._files = {os.path.abspath(path): reason for path, reason in files.items()}
        self._trees = {os.path.abspath(path): dict(children) for path, children in trees.items()}
        wanted = {os.path.dirname(path): False for path in self._files}
        wanted.update({path: True for path in self._trees})
        for directory in [d for d in self._watches if d not in wanted]:
            self._observer.unschedule(self._watches.pop(directory))
        for directory, recursive in wanted.items():
            # a container's directory that is a link is a conflict, never followed
            if directory not in self._watches and os.path.isdir(directory) and not (
                    recursive and os.path.islink(directory)):
                handler = _FileChanges(self._match, self.on_event)
                self._watches[directory] = self._observer.schedule(handler, directory, recursive=recursive,
                                                                   event_filter=CHANGE_EVENTS)

    def _match(self, path: str) -> str | None:
        reason = self._files.get(path)
        if reason:
            return reason
        for tree, children in self._trees.items():
            if path.startswith(tree + os.sep):
                return children.get(path[len(tree) + 1:].split(os.sep, 1)[0])
        return None

    def stop(self) -> None:
        self._stopping = True
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=2)
        self._observer.stop()
        self._observer.join(timeout=2)
        with self._lock:
            for reason in list(self._sockets):
                self._forget_socket(reason)
        self._poll.close()
