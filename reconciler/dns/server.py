"""The embedded DNS server's sockets: 127.0.0.11:53, UDP and TCP, in every served namespace.

One process serves every container namespace that uses the resolver: per namespace a UDP
socket and a listening TCP socket, each opened inside that namespace (the thread enters
it for the socket() and bind() calls, then returns), all driven by one selector loop on
one thread. Queries are answered on the loop (reconciler.dns.answering); those that go
upstream run on the forwarder's threads, whose replies come back to the loop through a
queue and a wake-up pipe, so that only the loop writes to client sockets.

Memory is bounded: two sockets and one small record per namespace; per TCP connection
at most one message being read and MAX_UNSENT bytes of replies not yet sent; at most MAX_CONNECTIONS
TCP connections (a new one closes the oldest); at most forwarding.MAX_IN_FLIGHT forwards
(one more gets REFUSED, as Docker).
"""

from __future__ import annotations

import os
import queue
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

import dns.exception
import dns.message
import dns.rcode

from reconciler.dns.answering import FAILED, FORWARDED, decide, encode, failure
from reconciler.dns.config import NamespaceConfig, ResolverConfig
from reconciler.dns.forwarding import Forwarder
from reconciler.dns.metrics import ResolverMetrics
from reconciler.kernel.nlsocket import entered
from reconciler.render.resolvconf import INTERNAL_NAMESERVER
from reconciler.run import logs

log = logs.get_logger()

LISTEN_ADDRESS = (INTERNAL_NAMESERVER, 53)
MAX_CONNECTIONS = 1024
MAX_MESSAGE = 65535  # a TCP message's length field is 16 bits
MAX_UNSENT = 4 * (MAX_MESSAGE + 2)  # a TCP client that does not read its replies is dropped beyond this
UDP_BURST = 64  # datagrams read from one socket before the loop looks at the others
LISTEN_BACKLOG = 64
# Replies the server answered itself, by namespace config and query bytes after the id:
# the same query from the same namespace gets the same reply, so it is encoded once.
MAX_CACHED_REPLIES = 8192


@dataclass(eq=False)
class _Served:
    """The open sockets of one namespace and the config they answer with."""

    name: str
    identity: tuple[int, int]  # (st_dev, st_ino) of the namespace: a new one by the same name differs
    config: NamespaceConfig
    udp: socket.socket
    tcp: socket.socket


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    served: _Served
    incoming: bytearray = field(default_factory=bytearray)
    outgoing: bytearray = field(default_factory=bytearray)
    closed: bool = False


@dataclass(frozen=True)
class _Pending:
    """A forwarded query, and where its reply goes."""

    query: dns.message.Message
    started: float
    connection: _Connection | None = None  # TCP
    udp: socket.socket | None = None
    client: tuple | None = None


class Server:
    """Serve `configure`d namespaces until `stop()`; `host_netns_fd` (kept open by the
    caller) is where upstream servers of the host's resolv.conf are asked from."""

    def __init__(self, host_netns_fd: int, netns_dir: str, metrics: ResolverMetrics | None = None,
                 forwarder: Forwarder | None = None) -> None:
        self.netns_dir = netns_dir
        self.metrics = metrics or ResolverMetrics()
        self.forwarder = forwarder or Forwarder(host_netns_fd, netns_dir)
        self.selector = selectors.DefaultSelector()
        self.served: dict[str, _Served] = {}
        self.known: frozenset[str] = frozenset()
        self._connections: dict[_Connection, None] = {}  # oldest first
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(self._wake_read, selectors.EVENT_READ, ("wake", None))
        self._stopping = False
        self._reload_requested = False
        self._cached: dict[tuple[int, bool, bytes], tuple[str, bytes]] = {}

    # --- what is served -----------------------------------------------------------------

    def configure(self, config: ResolverConfig) -> dict[str, str]:
        """Serve exactly the namespaces of `config`, with its tables; sockets of
        namespaces still served (and not replaced by a new namespace of the same name)
        are kept. Returns, per namespace that could not be served, why."""
        problems: dict[str, str] = {}
        for name in list(self.served):
            if name not in config.namespaces or self._identity(name) != self.served[name].identity:
                self._close_served(self.served.pop(name))
        for name, namespace_config in config.namespaces.items():
            served = self.served.get(name)
            if served is not None:
                served.config = namespace_config
                continue
            try:
                self.served[name] = self._open(name, namespace_config)
            except OSError as error:
                problems[name] = error.strerror or str(error)
        self.known = config.known
        self._cached.clear()  # the tables changed
        return problems

    def _identity(self, name: str) -> tuple[int, int] | None:
        try:
            status = os.stat(os.path.join(self.netns_dir, name))
        except OSError:
            return None
        return status.st_dev, status.st_ino

    def _open(self, name: str, config: NamespaceConfig) -> _Served:
        fd = os.open(os.path.join(self.netns_dir, name), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            status = os.fstat(fd)
            with entered(fd):
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
                tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        finally:
            os.close(fd)
        try:
            # a socket keeps its namespace: binding needs no entering
            udp.bind(LISTEN_ADDRESS)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(LISTEN_ADDRESS)
            tcp.listen(LISTEN_BACKLOG)
        except OSError:
            udp.close()
            tcp.close()
            raise
        served = _Served(name, (status.st_dev, status.st_ino), config, udp, tcp)
        self.selector.register(udp, selectors.EVENT_READ, ("udp", served))
        self.selector.register(tcp, selectors.EVENT_READ, ("accept", served))
        return served

    def _close_served(self, served: _Served) -> None:
        for connection in [c for c in self._connections if c.served is served]:
            self._close_connection(connection)
        for sock in (served.udp, served.tcp):
            self.selector.unregister(sock)
            sock.close()

    # --- the loop -----------------------------------------------------------------------

    def stop(self) -> None:
        """End serve() soon; safe to call from a signal handler or another thread."""
        self._stopping = True
        self._wake()

    def request_reload(self) -> None:
        """Have serve() call its `reload` on the loop; safe from a signal handler."""
        self._reload_requested = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the loop wakes anyway

    def serve(self, reload: Callable[[], None] = lambda: None) -> None:
        while not self._stopping:
            for key, events in self.selector.select():
                kind, owner = key.data
                if kind == "udp":
                    self._read_udp(owner)
                elif kind == "accept":
                    self._accept(owner)
                elif kind == "tcp":
                    self._on_connection(owner, events)
                else:
                    self._drain_wake()
            self._send_forwarded()
            if self._reload_requested:
                self._reload_requested = False
                reload()

    def close(self) -> None:
        self.forwarder.close()
        for served in list(self.served.values()):
            self._close_served(served)
        self.served.clear()
        self.selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass

    # --- queries ------------------------------------------------------------------------

    def _read_udp(self, served: _Served) -> None:
        for _ in range(UDP_BURST):
            try:
                data, client = served.udp.recvfrom(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error of an earlier reply's client: nothing to do
            reply = self._handle(served, data, _Pending(None, time.perf_counter(), udp=served.udp, client=client))
            if reply is not None:
                self._send_udp(served.udp, client, reply)

    def _handle(self, served: _Served, data: bytes, pending: _Pending) -> bytes | None:
        """The reply to send at once, or None (nothing to send, or forwarded)."""
        udp = pending.connection is None
        key = (id(served.config), udp, data[2:])
        cached = self._cached.get(key)
        if cached is not None:
            result, wire = cached
            self.metrics.observe(result, time.perf_counter() - pending.started)
            return data[:2] + wire[2:]  # the query's id, then the reply as it was encoded
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            self.metrics.observe(FAILED, time.perf_counter() - pending.started)
            return None  # not a DNS message: no id to answer to (Docker drops it too)
        try:
            decision = decide(query, served.config, self.known)
        except Exception:  # noqa: BLE001 - one odd query must not stop the loop that serves every namespace
            log.exception("dns: a query could not be answered", netns=served.name)
            self.metrics.observe(FAILED, time.perf_counter() - pending.started)
            return encode(failure(query), query, udp)
        if decision.reply is not None:
            wire = encode(decision.reply, query, udp)
            # encoding shuffles several records (as Docker does): such an answer is encoded anew each time
            if all(len(records) == 1 for records in decision.reply.answer):
                if len(self._cached) >= MAX_CACHED_REPLIES:
                    self._cached.clear()
                self._cached[key] = (decision.result, wire)
            self.metrics.observe(decision.result, time.perf_counter() - pending.started)
            return wire
        pending = _Pending(query, pending.started, pending.connection, pending.udp, pending.client)
        upstreams = served.config.upstreams
        if upstreams and self.forwarder.submit(served.name, upstreams, query, pending.connection is not None,
                                               lambda reply: self._forwarded(pending, reply)):
            return None
        # no upstream (Docker 28: no fallback servers): SERVFAIL; too many in flight: REFUSED
        self.metrics.observe(FAILED, time.perf_counter() - pending.started)
        return encode(failure(query, dns.rcode.REFUSED if upstreams else dns.rcode.SERVFAIL), query, udp)

    def _forwarded(self, pending: _Pending, reply: dns.message.Message | None) -> None:
        self._replies.put((pending, reply))  # on a forwarder thread: the loop sends it
        self._wake()

    def _send_forwarded(self) -> None:
        while True:
            try:
                pending, reply = self._replies.get_nowait()
            except queue.Empty:
                return
            result = FORWARDED if reply is not None else FAILED
            wire = encode(reply if reply is not None else failure(pending.query), pending.query,
                          pending.connection is None)
            self.metrics.observe(result, time.perf_counter() - pending.started)
            if pending.connection is not None:
                self._send_tcp(pending.connection, wire)
            else:
                self._send_udp(pending.udp, pending.client, wire)

    @staticmethod
    def _send_udp(sock: socket.socket, client: tuple, wire: bytes) -> None:
        try:
            sock.sendto(wire, client)
        except OSError:
            pass  # the socket's buffer is full or the namespace is gone: the client asks again

    # --- TCP ----------------------------------------------------------------------------

    def _accept(self, served: _Served) -> None:
        try:
            sock, _ = served.tcp.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        if len(self._connections) >= MAX_CONNECTIONS:
            # the oldest goes: clients that open connections and keep them cannot lock others out
            self._close_connection(next(iter(self._connections)))
        sock.setblocking(False)
        connection = _Connection(sock, served)
        self._connections[connection] = None
        self.selector.register(sock, selectors.EVENT_READ, ("tcp", connection))

    def _on_connection(self, connection: _Connection, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self._flush(connection)
        if events & selectors.EVENT_READ and not connection.closed:
            self._read_tcp(connection)

    def _read_tcp(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(MAX_MESSAGE + 2)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_connection(connection)
            return
        connection.incoming += data
        while len(connection.incoming) >= 2:
            size = int.from_bytes(connection.incoming[:2], "big")
            if len(connection.incoming) < 2 + size:
                break
            message = bytes(connection.incoming[2:2 + size])
            del connection.incoming[:2 + size]
            reply = self._handle(connection.served, message,
                                 _Pending(None, time.perf_counter(), connection=connection))
            if reply is not None:
                self._send_tcp(connection, reply)

    def _send_tcp(self, connection: _Connection, wire: bytes) -> None:
        if connection.closed:
            return  # the client left before its forwarded reply came
        connection.outgoing += len(wire).to_bytes(2, "big") + wire
        if len(connection.outgoing) > MAX_UNSENT:
            self._close_connection(connection)
            return
        self._flush(connection)

    def _flush(self, connection: _Connection) -> None:
        try:
            sent = connection.sock.send(connection.outgoing)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close_connection(connection)
            return
        del connection.outgoing[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if connection.outgoing else 0)
        self.selector.modify(connection.sock, events, ("tcp", connection))

    def _close_connection(self, connection: _Connection) -> None:
        if connection.closed:
            return
        connection.closed = True
        self._connections.pop(connection, None)
        self.selector.unregister(connection.sock)
        connection.sock.close()
