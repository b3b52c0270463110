"""Netlink transport and namespace entry: sockets kept open, batched requests, dumps.

Entering a namespace is per thread (setns) and always undone; a socket keeps the
namespace it was opened in, so each namespace costs one setns pair, not a process.
Nothing here decides anything: callers pass encoded requests from reconciler.kernel.netlink.
"""

from __future__ import annotations

import ctypes
import errno as errno_module
import os
import socket
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from reconciler.errors import KernelError, PrerequisiteError
from reconciler.kernel import netlink as nl

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
SO_NETNS_COOKIE = 71
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_GET_STRICT_CHK = 12
_RECV_SIZE = 1 << 20
_BATCH_BYTES = 48 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
_local = threading.local()


def _receive_buffer() -> bytearray:
    buffer = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = bytearray(_RECV_SIZE)
    return buffer


def check_call(result: int, what: str) -> None:
    """Raise a KernelError with the errno of a failed libc call (result not 0) made through ctypes."""
    if result != 0:
        code = ctypes.get_errno()
        raise KernelError(f"{what}: {os.strerror(code)}", code)


def setns(fd: int) -> None:
    check_call(_libc.setns(fd, CLONE_NEWNET), "setns")


def current_netns_fd() -> int:
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@contextmanager
def entered(netns_fd: int) -> Iterator[None]:
    """Run the block with this thread inside another network namespace."""
    home = current_netns_fd()
    try:
        setns(netns_fd)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)


class NetlinkSocket:
    """An rtnetlink socket bound in the namespace that was current when it was made."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        except OSError as error:
            raise PrerequisiteError(f"cannot open a netlink socket: {error.strerror}") from error
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self._seq = 0

    @classmethod
    def open_in(cls, netns_fd: int, home_fd: int | None = None) -> NetlinkSocket:
        """A socket in another namespace; `home_fd` (this thread's namespace, kept open
        by the caller) saves opening /proc/thread-self/ns/net for each namespace."""
        if home_fd is None:
            with entered(netns_fd):
                return cls()
        setns(netns_fd)
        try:
            return cls()
        finally:
            setns(home_fd)

    def close(self) -> None:
        self.sock.close()

    def netns_cookie(self) -> int:
        """The cookie of the socket's namespace: unique per namespace, never reused."""
        return int.from_bytes(self.sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), sys.byteorder)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _receive(self) -> bytes:
        # recv(1 MiB) would allocate and shrink a fresh 1 MiB object per call, which
        # costs more than the kernel's dump itself; receive into one reused buffer
        buffer = _receive_buffer()
        size = self.sock.recv_into(buffer)
        return bytes(memoryview(buffer)[:size])

    def dump(self, build) -> list[tuple[int, bytes]]:
        """(type, payload) of every message a dump request answers; build(seq) -> request."""
        seq = self.next_seq()
        self.sock.send(build(seq))
        replies: list[tuple[int, bytes]] = []
        while True:
            for kind, _, reply_seq, payload in nl.messages(self._receive()):
                if reply_seq != seq:
                    continue
                if kind == nl.NLMSG_DONE:
                    return replies
                if kind == nl.NLMSG_ERROR:
                    code = -nl.error_code(payload)
                    raise KernelError(f"netlink dump failed: {os.strerror(code)}", code)
                replies.append((kind, payload))

    def execute(self, requests: list[bytes]) -> dict[int, int]:
        """Send requests (each with NLM_F_ACK and its own seq) in batches.

        Returns {seq: errno} for the requests that failed; the kernel processes each
        request of a batch independently, so one failure does not stop the others.
        """
        failures: dict[int, int] = {}
        for batch in _batches(requests):
            failures.update(self._send_batch(batch))
        return failures

    def _send_batch(self, batch: list[bytes]) -> dict[int, int]:
        pending = {int.from_bytes(r[8:12], "little") for r in batch}
        self.sock.send(b"".join(batch))
        failures: dict[int, int] = {}
        while pending:
            for kind, _, seq, payload in nl.messages(self._receive()):
                if kind == nl.NLMSG_ERROR and seq in pending:
                    pending.discard(seq)
                    code = -nl.error_code(payload)
                    if code:
                        failures[seq] = code
        return failures

    def query(self, requests: list[bytes]) -> dict[int, bytes | int]:
        """Requests that each answer one message (e.g. GETLINK by name): {seq: payload or errno}.
        Sent in batches of at most _BATCH_BYTES, as `execute` sends (one send of thousands
        is refused: EMSGSIZE)."""
        answers: dict[int, bytes | int] = {}
        for batch in _batches(requests):
            answers.update(self._query_batch(batch))
        return answers

    def _query_batch(self, requests: list[bytes]) -> dict[int, bytes | int]:
        pending = {int.from_bytes(r[8:12], "little") for r in requests}
        answers: dict[int, bytes | int] = {}
        self.sock.send(b"".join(requests))
        while pending:
            for kind, _, seq, payload in nl.messages(self._receive()):
                if seq not in pending:
                    continue
                pending.discard(seq)
                answers[seq] = -nl.error_code(payload) if kind == nl.NLMSG_ERROR else payload
        return answers

    def link_indexes(self, ifnames: list[str]) -> dict[str, int]:
        """ifindex per interface name; names that do not exist are left out."""
        requests = {}
        for ifname in ifnames:
            seq = self.next_seq()
            requests[seq] = (ifname, nl.get_link(seq, ifname))
        answers = self.query([request for _, request in requests.values()])
        found = {}
        for seq, (ifname, _) in requests.items():
            answer = answers.get(seq)
            if isinstance(answer, bytes):
                found[ifname] = nl.decode_link(answer).index
            elif answer not in (errno_module.ENODEV, None):
                raise KernelError(f"looking up {ifname}: {os.strerror(answer)}", answer)
        return found


def _batches(requests: list[bytes]) -> Iterator[list[bytes]]:
    """The requests in order, in batches of at most _BATCH_BYTES (a single larger one alone)."""
    batch: list[bytes] = []
    size = 0
    for request in requests:
        if batch and size + len(request) > _BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(request)
        size += len(request)
    if batch:
        yield batch
