"""The one writer: carries out a Plan's actions on the kernel.

Consecutive actions of the same operation and kind are sent as netlink batches on
the sockets the session keeps open; namespaces are created in-process (unshare +
bind mount) and veth peers are created directly inside their namespace, never
moved. Container files are written atomically (temporary file + rename) relative to
directory descriptors, never through a symbolic link. Failures are translated into
ApplyError naming the action and its source. The writer keeps the deletions it
carried out that no undoing can give back, for the rollback message.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import secrets
import stat
import time
from typing import Callable, Iterator

from reconciler.render import firewall
from reconciler.kernel import nft
from reconciler.kernel import netlink as nl
from reconciler.errors import ApplyError, KernelError
from reconciler.state.model import HOST_NS, Bridge, File, Firewall, Netns, NetnsAlias, Veth
from reconciler.kernel.nlsocket import CLONE_NEWNET, NetlinkSocket, current_netns_fd, entered, setns
from reconciler.kernel.observe import (
    CONTAINER_FILES, TEMPORARY_MARK, bridge_alias, is_temporary, list_netns, owned_netns, parse_alias, sysctl_path,
    veth_alias,
)
from reconciler.state.planner import CREATE, Action, Plan
from reconciler.kernel.session import NETNS_DIR, KernelSession, netns_path, open_container_dir

MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 1 << 20
MNT_DETACH = 2
LOOPBACK_IFINDEX = 1
NETNS_CLEANUP_TIMEOUT = 60.0
NETNS_STALL_GRACE = 1.0  # seconds without progress before veths of a held namespace are cut
IPV6_SYSCTLS = "/proc/sys/net/ipv6"
FILE_MODE = 0o644  # container files are read by every process in the container

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]


def _call(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise KernelError(f"{what}: {os.strerror(code)}", code)


# --- namespaces -------------------------------------------------------------------

def _is_mount_point(path: str) -> bool:
    with open("/proc/self/mountinfo") as mounts:
        return any(line.split()[4] == path for line in mounts)


def prepare_netns_dir() -> None:
    """Make /run/netns a shared mount point, as `ip netns add` does, so that the
    namespace bind mounts are visible in every mount namespace (ip netns exec)."""
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    if _is_mount_point(NETNS_DIR):
        return
    path = NETNS_DIR.encode()
    _call(_libc.mount(path, path, b"none", MS_BIND | MS_REC, None), f"bind-mounting {NETNS_DIR}")
    _call(_libc.mount(b"", path, b"none", MS_SHARED | MS_REC, None), f"making {NETNS_DIR} shared")


def create_netns(name: str, ipv6: bool = True) -> tuple[int, NetlinkSocket]:
    """Create /run/netns/NAME in-process; returns its fd and a socket inside it."""
    path = netns_path(name)
    if os.path.isfile(path) and not _is_mount_point(path):
        os.unlink(path)  # left by a creation cut short (the planner only creates names that are ours)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    home = current_netns_fd()
    try:
        _call(_libc.unshare(CLONE_NEWNET), "unshare")
        try:
            _call(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None),
                  f"bind-mounting namespace {name}")
            sock = NetlinkSocket()
            if not ipv6:
                _write_ipv6_off_all()
        finally:
            setns(home)
    except BaseException:
        _libc.umount2(path.encode(), MNT_DETACH)
        os.unlink(path)
        raise
    finally:
        os.close(home)
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC), sock


def bind_netns(name: str, netns_fd: int) -> None:
    """Make /run/netns/NAME a second name of the namespace `netns_fd` refers to."""
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    source = f"/proc/self/fd/{netns_fd}".encode()
    if _libc.mount(source, path.encode(), b"none", MS_BIND, None) != 0:
        code = ctypes.get_errno()
        os.unlink(path)
        raise KernelError(f"bind-mounting namespace {name}: {os.strerror(code)}", code)


def delete_netns(name: str) -> None:
    path = netns_path(name)
    if _libc.umount2(path.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
        code = ctypes.get_errno()
        raise KernelError(f"unmounting namespace {name}: {os.strerror(code)}", code)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def ensure_host_netns(name: str) -> bool:
    """Create the --host-netns namespace if absent; True when it was created."""
    prepare_netns_dir()
    if os.path.exists(netns_path(name)):
        return False
    fd, sock = create_netns(name, ipv6=True)
    try:
        failures = sock.execute([nl.set_link(sock.next_seq(), index=LOOPBACK_IFINDEX, up=True)])
    finally:
        sock.close()
        os.close(fd)
    if failures:
        code = next(iter(failures.values()))
        raise KernelError(f"setting lo up in host namespace {name}: {os.strerror(code)}", code)
    return True


def empty_netns_fd() -> int:
    """A new namespace without a name, as apply finds a --host-netns it has just created:
    plan and status observe it in place of a host namespace that does not exist yet, so
    that they see what apply will see. It vanishes with its last file descriptor."""
    home = current_netns_fd()
    try:
        _call(_libc.unshare(CLONE_NEWNET), "unshare")
        try:
            return current_netns_fd()
        finally:
            setns(home)
    finally:
        os.close(home)


@contextlib.contextmanager
def host_netns_for_apply(name: str | None, changing: Callable[[], bool]) -> Iterator[None]:
    """Create the --host-netns namespace NAME for the block if it is absent. When the
    block fails before `changing()` (nothing changed yet: a conflict, the guard, the
    firewall check, a spec error found while planning), remove it again, so that the
    failure leaves the machine as it was."""
    created = bool(name) and ensure_host_netns(name)
    try:
        yield
    except BaseException:
        if created and not changing():
            delete_netns(name)
        raise


def write_atomically(dir_fd: int, filename: str, content: str) -> None:
    """Write `filename` in the directory `dir_fd` via a temporary file and rename, so
    readers never see a partial file. The temporary name is unpredictable and created
    exclusively (a link planted there fails the write instead of being followed); the
    rename replaces a directory entry and never writes through one."""
    temporary = f".{filename}{TEMPORARY_MARK}{secrets.token_hex(8)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE,
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # whatever the umask took away
            handle.write(content.encode("utf-8", errors="surrogateescape"))
        os.replace(temporary, filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


@contextlib.contextmanager
def _container_dir(session: KernelSession, netns: str, create: bool = False):
    """The directory of container `netns` as a descriptor (None when absent or not a
    real directory: nothing there is ours), made first with `create`. The etc-netns
    directory above it is the operator's choice and may be a link; the container's
    directory is never followed."""
    if create:
        os.makedirs(session.etc_netns_dir, mode=0o755, exist_ok=True)
    etc_fd = session.open_etc_netns()
    if etc_fd is None:
        if create:  # removed meanwhile; never fall back to a relative path
            raise OSError(errno.ENOENT, f"{session.etc_netns_dir} disappeared")
        yield None
        return
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(netns, 0o755, dir_fd=etc_fd)
        try:
            dir_fd = open_container_dir(etc_fd, netns)
        except NotADirectoryError:
            dir_fd = None
        if dir_fd is None and create:
            raise OSError(errno.ENOTDIR, f"{session.etc_dir(netns)} is a symbolic link or not a directory; "
                                         "netreconcile never writes through one")
        try:
            yield dir_fd
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
    finally:
        os.close(etc_fd)


def _unlink_regular(dir_fd: int, filename: str) -> None:
    """Unlink `filename` in `dir_fd` if it is a regular file: a link or anything else
    there is not netreconcile's."""
    try:
        if stat.S_ISREG(os.lstat(filename, dir_fd=dir_fd).st_mode):
            os.unlink(filename, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except FileNotFoundError:
        # a kernel booted with ipv6.disable=1 has no IPv6 sysctls: IPv6 is off already
        if path.startswith(IPV6_SYSCTLS) and not os.path.isdir(IPV6_SYSCTLS):
            return
        raise


def _write_ipv6_off_all() -> None:
    for scope in ("all", "default"):
        _write(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", "1")


# --- the writer ---------------------------------------------------------------------

class KernelWriter:
    def __init__(self, session: KernelSession, on_progress: Callable[[int], None] | None = None,
                 fail_after: int | None = None):
        self.session = session
        self.on_progress = on_progress or (lambda count: None)
        self.fail_after = fail_after  # fault injection: fail right after this many actions
        self.irreversible_done: list[Action] = []  # deletions undoing cannot give back (planner.IRREVERSIBLE_KINDS)

    def apply(self, plan: Plan) -> int:
        done = 0
        self.irreversible_done = []
        for (op, kind), group in itertools.groupby(plan.actions, key=lambda a: (a.op, a.kind)):
            actions = list(group)
            if self.fail_after is not None and done + len(actions) > self.fail_after:
                actions = actions[:self.fail_after - done]
                if actions:
                    self._carry_out(op, kind, actions)
                raise ApplyError(f"injected failure after action {self.fail_after} of {len(plan.actions)} "
                                 f"(NETRECONCILE_FAIL_AFTER={self.fail_after})")
            self._carry_out(op, kind, actions)
            done += len(actions)
            self.on_progress(len(actions))
        return done

    def _carry_out(self, op: str, kind: str, actions: list[Action]) -> None:
        # counted before they run: a batch that fails part-way may have done some of them
        self.irreversible_done += [a for a in actions if a.irreversible]
        getattr(self, f"_{op}_{kind}")(actions)

    # helpers
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
                raise _apply_error(by_seq[seq], code)

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
                raise _apply_error(action, errno.ENODEV, f"interface {wanted} not found")
        return found

    def _sysctl(self, netns: str, writes: list[tuple[Action, str, str]]) -> None:
        with entered(self._fd(netns)):
            for action, path, value in writes:
                try:
                    _write(path, value)
                except OSError as error:
                    raise _apply_error(action, error.errno, f"writing {path}") from error

    # namespaces
    @contextlib.contextmanager
    def _recorded_first(self, actions: list[Action], aliases: dict[str, str] | None = None):
        """Record the namespace names `actions` create (cookie 0) before they exist, so a
        crash never leaves one of ours unrecorded; the caller sets each cookie as it goes."""
        prepare_netns_dir()
        names = {a.obj.netns for a in actions}
        record = owned_netns(self.session, self.session.state.recorded_netns(), list_netns())
        record.update({name: 0 for name in names})
        recorded_aliases = {**self.session.state.recorded_aliases(), **(aliases or {})}
        self.session.state.write_netns_record(record, recorded_aliases)
        try:
            yield record
        finally:
            # a 0 left here belongs to a namespace this run did not make
            self.session.state.write_netns_record(
                {n: c for n, c in record.items() if c != 0 or n not in names}, recorded_aliases)

    def _create_netns(self, actions: list[Action]) -> None:
        with self._recorded_first(actions) as record:
            for action in actions:
                try:
                    fd, sock = create_netns(action.obj.netns, ipv6=action.obj.ipv6)
                except (KernelError, OSError) as error:
                    raise _apply_error(action, getattr(error, "errno", None), str(error)) from error
                self.session.adopt(action.obj.netns, fd, sock)
                record[action.obj.netns] = sock.netns_cookie()
        for action in actions:
            sock = self.session.socket(action.obj.netns)
            if action.obj.lo_up:
                self._send(sock, [(action, nl.set_link(sock.next_seq(), index=LOOPBACK_IFINDEX, up=True))])

    # aliases: a second name for a container's namespace or the host's
    def _create_alias(self, actions: list[Action]) -> None:
        with self._recorded_first(actions, {a.obj.netns: a.obj.target for a in actions}) as record:
            for action in actions:
                obj: NetnsAlias = action.obj
                try:
                    bind_netns(obj.netns, self._fd(obj.target))
                except (KernelError, OSError) as error:
                    raise _apply_error(action, getattr(error, "errno", None), str(error)) from error
                record[obj.netns] = self.session.socket(obj.netns).netns_cookie()

    def _delete_alias(self, actions: list[Action]) -> None:
        self._remove_names(actions)  # the name only: the namespace lives on in its owner

    def _update_netns(self, actions: list[Action]) -> None:
        for action in actions:
            obj: Netns = action.obj
            if _changed(action, "ipv6"):
                value = "0" if obj.ipv6 else "1"
                self._sysctl(obj.netns, [
                    (action, f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", value) for scope in ("all", "default")
                ])
            if _changed(action, "lo_up"):
                sock = self.session.socket(obj.netns)
                self._send(sock, [(action, nl.set_link(sock.next_seq(), index=LOOPBACK_IFINDEX, up=obj.lo_up))])

    def _delete_netns(self, actions: list[Action]) -> None:
        self._await_peers_gone(actions[0], self._remove_names(actions))

    def _remove_names(self, actions: list[Action]) -> set[str]:
        """Unmount and forget the /run/netns names of `actions` (with their files); the
        names removed."""
        names = {a.obj.netns for a in actions}
        for action in actions:
            self.session.forget(action.obj.netns)
            self._remove_files_of(action.obj.netns)
            try:
                delete_netns(action.obj.netns)
            except KernelError as error:
                raise _apply_error(action, error.errno, str(error)) from error
        record = owned_netns(self.session, self.session.state.recorded_netns(), list_netns())
        self.session.state.write_netns_record({n: c for n, c in record.items() if n not in names})
        return names

    def _await_peers_gone(self, action: Action, containers: set[str]) -> None:
        """The kernel destroys an unmounted namespace (and the veths into it) in a
        worker after we return; wait so that the next observation sees it gone. A
        namespace that a process still holds lives on: when the count of its veths
        stops falling for a while, they are deleted here instead."""
        deadline = time.monotonic() + NETNS_CLEANUP_TIMEOUT
        delay = 0.002
        fewest, falling_at = None, time.monotonic()
        while True:
            remaining = self._marked_veths(containers)
            if not remaining:
                return
            now = time.monotonic()
            if fewest is None or len(remaining) < fewest:
                fewest, falling_at = len(remaining), now
            elif now - falling_at > NETNS_STALL_GRACE:
                host = self.session.host
                self._send(host, [(action, nl.del_link(host.next_seq(), ifname=name)) for name in remaining],
                           ignore=(errno.ENODEV,))
                falling_at = now
            if now > deadline:
                raise _apply_error(action, None, f"the kernel has not removed {len(remaining)} veth(s) "
                                   f"({', '.join(remaining[:3])}...) {NETNS_CLEANUP_TIMEOUT:.0f} s after "
                                   "their namespaces were deleted")
            time.sleep(delay)
            delay = min(delay * 2, 0.025)

    def _marked_veths(self, containers: set[str]) -> list[str]:
        """Host veths marked as belonging to one of `containers`."""
        return [
            link.ifname for kind, payload in self.session.host.dump(nl.dump_links)
            if kind == nl.RTM_NEWLINK
            for link in [nl.decode_link(payload)]
            if (mark := parse_alias(link.alias)) and mark[0] == "veth" and mark[1] in containers
        ]

    # bridges
    @contextlib.contextmanager
    def _pending(self, names: dict[str, str]):
        """Journal host interfaces (name -> kind) for the time between their creation and
        their mark, so that a crash in between leaves no interface nobody owns."""
        pending = {**self.session.state.pending_links(), **names}
        self.session.state.write_pending_links(pending)
        yield
        self.session.state.write_pending_links({n: k for n, k in pending.items() if n not in names})

    def _create_bridge(self, actions: list[Action]) -> None:
        with self._pending({a.obj.ifname: "bridge" for a in actions}):
            self._create_marked_bridges(actions)

    def _create_marked_bridges(self, actions: list[Action]) -> None:
        host = self.session.host
        pairs = []
        for action in actions:
            obj: Bridge = action.obj
            pairs.append((action, nl.new_bridge(host.next_seq(), obj.ifname, obj.mac, obj.mtu)))
            pairs.append((action, nl.set_link(host.next_seq(), ifname=obj.ifname, alias=bridge_alias(obj.network),
                                              up=obj.up)))
        self._send(host, pairs)

    def _update_bridge(self, actions: list[Action]) -> None:
        host = self.session.host
        pairs = []
        for action in actions:
            obj: Bridge = action.obj
            pairs.append((action, nl.set_link(
                host.next_seq(), ifname=obj.ifname,
                mtu=obj.mtu if _changed(action, "mtu") else None,
                mac=obj.mac if _changed(action, "mac") else None,
                up=obj.up if _changed(action, "up") else None,
            )))
        self._send(host, pairs)

    def _delete_bridge(self, actions: list[Action]) -> None:
        host = self.session.host
        self._send(host, [(a, nl.del_link(host.next_seq(), ifname=a.obj.ifname)) for a in actions],
                   ignore=(errno.ENODEV,))

    # veths
    def _create_veth(self, actions: list[Action]) -> None:
        with self._pending({a.obj.host_ifname: "veth" for a in actions}):
            self._create_marked_veths(actions)

    def _create_marked_veths(self, actions: list[Action]) -> None:
        host = self.session.host
        masters = self._indexes(HOST_NS, {a.obj.bridge for a in actions}, actions)
        pairs = []
        for action in actions:
            obj: Veth = action.obj
            pairs.append((action, nl.new_veth(
                host.next_seq(), obj.host_ifname, masters[obj.bridge], obj.mtu,
                obj.peer_ifname, obj.mac, obj.peer_mtu, self.session.netns_fd(obj.netns),
            )))
        self._send(host, pairs)
        if not all(a.obj.ipv6 for a in actions):
            self._sysctl(HOST_NS, [
                (a, f"/proc/sys/net/ipv6/conf/{a.obj.host_ifname}/disable_ipv6", "1")
                for a in actions if not a.obj.ipv6
            ])
        self._send(host, [
            (a, nl.set_link(host.next_seq(), ifname=a.obj.host_ifname,
                            alias=veth_alias(a.obj.container, a.obj.network), up=a.obj.host_up,
                            hairpin=True if a.obj.hairpin else None))
            for a in actions
        ])
        for netns, group in self._per_netns(actions).items():
            sock = self.session.socket(netns)
            self._send(sock, [(a, nl.set_link(sock.next_seq(), ifname=a.obj.peer_ifname, up=a.obj.peer_up))
                              for a in group])

    def _update_veth(self, actions: list[Action]) -> None:
        host = self.session.host
        masters = self._indexes(HOST_NS, {a.obj.bridge for a in actions if _changed(a, "bridge")}, actions)
        host_pairs = []
        for action in actions:
            obj: Veth = action.obj
            if _changed(action, "bridge", "mtu", "host_up"):
                host_pairs.append((action, nl.set_link(
                    host.next_seq(), ifname=obj.host_ifname,
                    master=masters[obj.bridge] if _changed(action, "bridge") else None,
                    mtu=obj.mtu if _changed(action, "mtu") else None,
                    up=obj.host_up if _changed(action, "host_up") else None,
                )))
            if _changed(action, "ipv6"):
                value = "0" if obj.ipv6 else "1"
                self._sysctl(HOST_NS, [(action, f"/proc/sys/net/ipv6/conf/{obj.host_ifname}/disable_ipv6", value)])
                self._sysctl(obj.netns, [(action, f"/proc/sys/net/ipv6/conf/{obj.peer_ifname}/disable_ipv6", value)])
        self._send(host, host_pairs)
        # after any change of bridge: the flag belongs to the port on the new bridge
        self._send(host, [
            (a, nl.set_link(host.next_seq(), ifname=a.obj.host_ifname, hairpin=a.obj.hairpin))
            for a in actions if _changed(a, "hairpin", "bridge")
        ])
        for netns, group in self._per_netns(actions).items():
            sock = self.session.socket(netns)
            pairs = [
                (a, nl.set_link(
                    sock.next_seq(), ifname=a.obj.peer_ifname,
                    mtu=a.obj.peer_mtu if _changed(a, "peer_mtu") else None,
                    mac=a.obj.mac if _changed(a, "mac") else None,
                    up=a.obj.peer_up if _changed(a, "peer_up") else None,
                ))
                for a in group if _changed(a, "peer_mtu", "mac", "peer_up")
            ]
            self._send(sock, pairs)

    def _delete_veth(self, actions: list[Action]) -> None:
        host = self.session.host
        self._send(host, [(a, nl.del_link(host.next_seq(), ifname=a.obj.host_ifname)) for a in actions],
                   ignore=(errno.ENODEV,))

    # addresses
    def _create_address(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            sock = self._socket(netns)
            indexes = self._indexes(netns, {a.obj.ifname for a in group}, group)
            self._send(sock, [(a, nl.new_addr(sock.next_seq(), indexes[a.obj.ifname], a.obj.cidr)) for a in group],
                       ignore=(errno.EEXIST,))

    def _delete_address(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            sock = self._socket(netns)
            indexes = sock.link_indexes(sorted({a.obj.ifname for a in group}))
            self._send(sock, [
                (a, nl.del_addr(sock.next_seq(), indexes[a.obj.ifname], a.obj.cidr))
                for a in group if a.obj.ifname in indexes
            ], ignore=(errno.EADDRNOTAVAIL,))

    # routes
    def _create_route(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            sock = self._socket(netns)
            indexes = self._indexes(netns, {a.obj.ifname for a in group}, group)
            self._send(sock, [
                (a, nl.replace_route(sock.next_seq(), a.obj.dst, a.obj.gateway, indexes[a.obj.ifname]))
                for a in group
            ])

    _update_route = _create_route

    def _delete_route(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            sock = self._socket(netns)
            self._send(sock, [(a, nl.del_route(sock.next_seq(), a.obj.dst)) for a in group], ignore=(errno.ESRCH,))

    # files
    def _create_file(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            try:
                with _container_dir(self.session, netns, create=True) as dir_fd:
                    for action in group:
                        obj: File = action.obj
                        try:
                            write_atomically(dir_fd, obj.filename, obj.content)
                        except OSError as error:
                            raise _apply_error(action, error.errno, f"writing {obj.name}") from error
            except OSError as error:
                raise _apply_error(group[0], error.errno, error.strerror) from error

    _update_file = _create_file

    def _delete_file(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            with _container_dir(self.session, netns) as dir_fd:
                for action in group:
                    try:
                        if dir_fd is not None:
                            _unlink_regular(dir_fd, action.obj.filename)
                    except OSError as error:
                        raise _apply_error(action, error.errno, f"deleting {action.obj.name}") from error

    _delete_leftover = _delete_file

    def _remove_files_of(self, netns: str) -> None:
        """The container's files, temporary files of a write that was cut short, and
        its directory once empty; anything else (a link included) stays."""
        with contextlib.suppress(OSError), _container_dir(self.session, netns) as dir_fd:
            if dir_fd is None:
                return
            for filename in os.listdir(dir_fd):
                if filename in CONTAINER_FILES or is_temporary(filename):
                    _unlink_regular(dir_fd, filename)
        etc_fd = self.session.open_etc_netns()
        if etc_fd is not None:
            try:
                os.rmdir(netns, dir_fd=etc_fd)
            except OSError:
                pass  # absent, a link, or holding files that are not ours
            finally:
                os.close(etc_fd)

    # the firewall tables
    def _create_firewall(self, actions: list[Action]) -> None:
        for action in actions:
            obj: Firewall = action.obj
            self._nft(action, firewall.replace_script(obj.ruleset))

    _update_firewall = _create_firewall

    def _delete_firewall(self, actions: list[Action]) -> None:
        for action in actions:
            self._nft(action, firewall.delete_script())

    def _nft(self, action: Action, script: str) -> None:
        try:
            nft.load_ruleset(self._fd(action.obj.netns), script)
        except KernelError as error:
            raise _apply_error(action, None, str(error)) from error

    # sysctls
    def _create_sysctl(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            self._sysctl(netns, [(a, sysctl_path(a.obj.setting), a.obj.value) for a in group])

    _update_sysctl = _create_sysctl


def _changed(action: Action, *names: str) -> bool:
    return action.op == CREATE or any(name in names for name, _, _ in action.changes)


def _apply_error(action: Action, code: int | None, detail: str | None = None) -> ApplyError:
    reason = detail or (os.strerror(code) if code else "failed")
    if code and detail and os.strerror(code) not in detail:
        reason = f"{detail}: {os.strerror(code)}"
    where = f"{action.source}: " if action.source else ""
    return ApplyError(f"{where}cannot {action.op} {action.kind} {action.obj.name}: {reason}", code)
