"""What the kernel writers of every kind share: the session's sockets and namespace descriptors,
sending netlink batches and translating their failures into ApplyError naming the action, sysctl
writes, and the operation table each writer declares (op, kind) -> the function carrying it out.
"""

from __future__ import annotations

import errno
import os
from typing import Callable

from reconciler.errors import ApplyError
from reconciler.kernel.nlsocket import NetlinkSocket, entered
from reconciler.kernel.session import KernelSession
from reconciler.state.model import HOST_NS
from reconciler.state.plan import CREATE, Action

IPV6_SYSCTLS = "/proc/sys/net/ipv6"

Operation = Callable[[list[Action]], None]


class KindWriter:
    """Base of the writers of one concern; `operations` says which (op, kind) pairs it carries out."""

    def __init__(self, session: KernelSession):
        self.session = session

    def operations(self) -> dict[tuple[str, str], Operation]:
        raise NotImplementedError

    def _socket(self, netns: str) -> NetlinkSocket:
        return self.session.host if netns == HOST_NS else self.session.socket(netns)

    def _fd(self, netns: str) -> int:
        return self.session.host_fd if netns == HOST_NS else self.session.netns_fd(netns)

    def _send(self, sock: NetlinkSocket, pairs: list[tuple[Action, bytes]], ignore: tuple[int, ...] = ()) -> None:
        by_seq = {int.from_bytes(request[8:12], "little"): action for action, request in pairs}
        failures = sock.execute([request for _, request in pairs])
        for seq in sorted(failures):
            code = failures[seq]
            if code not in ignore:
                raise apply_error(by_seq[seq], code)

    def _per_netns(self, actions: list[Action]) -> dict[str, list[Action]]:
        grouped: dict[str, list[Action]] = {}
        for action in actions:
            grouped.setdefault(action.obj.netns, []).append(action)
        return grouped

    def _indexes(self, netns: str, ifnames: set[str], actions: list[Action]) -> dict[str, int]:
        found = self._socket(netns).link_indexes(sorted(ifnames))
        for action in actions:
            wanted = getattr(action.obj, "ifname", None) or getattr(action.obj, "bridge", None)
            if wanted in ifnames and wanted not in found:
                raise apply_error(action, errno.ENODEV, f"interface {wanted} not found")
        return found

    def _sysctl(self, netns: str, writes: list[tuple[Action, str, str]]) -> None:
        with entered(self._fd(netns)), ProcFiles() as files:
            for action, path, value in writes:
                try:
                    files.write(path, value)
                except OSError as error:
                    raise apply_error(action, error.errno, f"writing {path}") from error


class ProcFiles:
    """Writes /proc/sys files of the current network namespace, each looked up from its
    grandparent directory, opened once: the kernel keeps one dentry of /proc/sys/net/ipv6
    per namespace, all in one hash chain, so a path looked up from /proc costs a walk over
    every namespace's (about 1 ms per write with 5000 containers: quadratic over an apply)."""

    def __init__(self) -> None:
        self._dirs: dict[str, int] = {}

    def __enter__(self) -> "ProcFiles":
        return self

    def __exit__(self, *exc) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def write(self, path: str, value: str) -> None:
        parent, name = os.path.split(path)
        directory, leaf = os.path.split(parent)
        try:
            fd = self._dirs.get(directory)
            if fd is None:
                fd = self._dirs[directory] = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            handle = os.open(os.path.join(leaf, name), os.O_WRONLY | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            # a kernel booted with ipv6.disable=1 has no IPv6 sysctls: IPv6 is off already
            if path.startswith(IPV6_SYSCTLS) and not os.path.isdir(IPV6_SYSCTLS):
                return
            raise
        try:
            os.write(handle, value.encode())
        finally:
            os.close(handle)


def changed(action: Action, *names: str) -> bool:
    return action.op == CREATE or any(name in names for name, _, _ in action.changes)


def apply_error(action: Action, code: int | None, detail: str | None = None) -> ApplyError:
    reason = detail or (os.strerror(code) if code else "failed")
    if code and detail and os.strerror(code) not in detail:
        reason = f"{detail}: {os.strerror(code)}"
    where = f"{action.source}: " if action.source else ""
    return ApplyError(f"{where}cannot {action.op} {action.kind} {action.obj.name}: {reason}", code)
