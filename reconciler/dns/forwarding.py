"""Forwarding a query to a container's upstream servers, from the right namespace.

As Docker's resolver (`libnetwork/resolver.go` `forwardExtDNS`): the servers are asked in
order, at most MAX_UPSTREAMS of them, each with a timeout; a SERVFAIL or REFUSED answer
moves on to the next; a query that came over TCP goes over TCP. A server of the host's
resolv.conf is asked from the host's namespace (127.0.0.53 answers there), one of the
container's `dns` from the container's namespace: the socket is opened in that
namespace (this worker thread enters it for the socket() call only). Forwards run on a
small pool of threads, never on the serving loop, and at most MAX_IN_FLIGHT at once.
"""

from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import dns.exception
import dns.message
import dns.query
import dns.rcode

from reconciler.kernel.nlsocket import entered
from reconciler.render.resolvconf import ExtServer

TIMEOUT = 4.0  # seconds per server, Docker's extIOTimeout
MAX_IN_FLIGHT = 1024  # Docker's maxConcurrent: beyond it the reply is REFUSED
WORKERS = 16
_MOVE_ON = (dns.rcode.SERVFAIL, dns.rcode.REFUSED)


class Forwarder:
    """Runs forwards in the background; `host_netns_fd` stays the caller's to close."""

    def __init__(self, host_netns_fd: int, netns_dir: str, timeout: float = TIMEOUT) -> None:
        self.host_netns_fd = host_netns_fd
        self.netns_dir = netns_dir
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="dns-forward")
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    def submit(self, namespace: str, upstreams: tuple[ExtServer, ...], query: dns.message.Message, tcp: bool,
               done: Callable[[dns.message.Message | None], None]) -> bool:
        """Forward `query` in the background, then call done(reply or None when no server
        answered) on a worker thread. False, and nothing done, when MAX_IN_FLIGHT are
        already on their way."""
        if not self._slots.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                reply = self.ask(namespace, upstreams, query, tcp)
            finally:
                self._slots.release()
            done(reply)

        self._pool.submit(run)
        return True

    def ask(self, namespace: str, upstreams: tuple[ExtServer, ...], query: dns.message.Message,
            tcp: bool) -> dns.message.Message | None:
        """The first useful reply of `upstreams` to `query`, None when none gave one."""
        for server in upstreams:
            try:
                reply = self._ask_one(namespace, server, query, tcp)
            except (OSError, dns.exception.DNSException):
                continue  # timeout, unreachable, malformed: the next server
            if reply.rcode() not in _MOVE_ON:
                return reply
        return None

    def _ask_one(self, namespace: str, server: ExtServer, query: dns.message.Message,
                 tcp: bool) -> dns.message.Message:
        address = server.address
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = self._socket_in(None if server.host_loopback else namespace, family,
                               socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        with sock:
            if tcp:
                sock.settimeout(self.timeout)
                sock.connect((address, 53))
                sock.setblocking(False)
                return dns.query.tcp(query, address, self.timeout, sock=sock)
            sock.setblocking(False)
            return dns.query.udp(query, address, self.timeout, sock=sock)

    def _socket_in(self, namespace: str | None, family: int, kind: int) -> socket.socket:
        """A socket in the host's namespace (None) or in the container namespace's."""
        if namespace is None:
            with entered(self.host_netns_fd):
                return socket.socket(family, kind | socket.SOCK_CLOEXEC)
        fd = os.open(os.path.join(self.netns_dir, namespace), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            with entered(fd):
                return socket.socket(family, kind | socket.SOCK_CLOEXEC)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
