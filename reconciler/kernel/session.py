"""Open kernel handles for one run: the host namespace and each container namespace.

Sockets and namespace file descriptors are opened once and kept for the whole
run (observe, apply, verify), which is what makes a full-state read cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from reconciler.errors import KernelError
from reconciler.kernel.nlsocket import NetlinkSocket, current_netns_fd
from reconciler.kernel.statedir import StateDir

if TYPE_CHECKING:
    from reconciler.state.model import Text

NETNS_DIR = "/run/netns"
ETC_NETNS_DIR = "/etc/netns"  # `ip netns exec` bind-mounts /etc/netns/<name>/* over /etc
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


class KernelSession:
    def __init__(self, host_netns: str | None, state: StateDir, etc_netns_dir: str = ETC_NETNS_DIR,
                 host_fd: int | None = None):
        """`host_fd`: a namespace standing in for `host_netns` (the session closes it)."""
        self.host_netns = host_netns
        self.state = state
        self.etc_netns_dir = etc_netns_dir
        if host_fd is not None:
            self.host_fd = host_fd
        elif host_netns:
            try:
                self.host_fd = os.open(netns_path(host_netns), os.O_RDONLY | os.O_CLOEXEC)
            except OSError as error:
                raise KernelError(f"cannot open host namespace {host_netns}: {error.strerror}", error.errno) from error
        else:
            self.host_fd = current_netns_fd()
        self.home_fd = current_netns_fd()
        self.host = NetlinkSocket.open_in(self.host_fd, self.home_fd)
        self._fds: dict[str, int] = {}
        self._sockets: dict[str, NetlinkSocket] = {}
        # the container files this run wrote: netns -> filename -> (the inode's identity right
        # after its rename, the text written: its parts, shared with the desired state); a
        # verification takes an unchanged one as read
        self.written_files: dict[str, dict[str, tuple[tuple[int, ...], Text]]] = {}

    def etc_dir(self, netns: str) -> str:
        """Where a container's hostname, hosts and resolv.conf live."""
        return os.path.join(self.etc_netns_dir, netns)

    def open_etc_netns(self) -> int | None:
        """The directory of the container directories, None when absent. It is the
        operator's choice, so a link there is followed; nothing below it ever is."""
        try:
            return os.open(self.etc_netns_dir, DIRECTORY_FLAGS)
        except FileNotFoundError:
            return None

    def netns_fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is None:
            fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)  # a spec name: no link
            self._fds[name] = fd
        return fd

    def socket(self, name: str) -> NetlinkSocket:
        sock = self._sockets.get(name)
        if sock is None:
            sock = NetlinkSocket.open_in(self.netns_fd(name), self.home_fd)
            self._sockets[name] = sock
        return sock

    def adopt(self, name: str, fd: int, sock: NetlinkSocket) -> None:
        """Keep the handles of a namespace just created."""
        self._fds[name] = fd
        self._sockets[name] = sock

    def forget(self, name: str) -> None:
        """Drop the handles of a namespace (they keep it alive while open) and the record of
        the files written for it."""
        self.written_files.pop(name, None)
        sock = self._sockets.pop(name, None)
        if sock is not None:
            sock.close()
        fd = self._fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for name in list(self._sockets) + list(self._fds):
            self.forget(name)
        self.host.close()
        os.close(self.host_fd)
        os.close(self.home_fd)

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_container_dir(etc_fd: int, name: str) -> int | None:
    """The directory `name` in the etc-netns directory `etc_fd`, never through a link:
    None when absent; NotADirectoryError when a link or anything else is there."""
    try:
        return os.open(name, DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=etc_fd)
    except FileNotFoundError:
        return None
