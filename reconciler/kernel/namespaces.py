"""Network namespaces: created in-process (unshare + bind mount under /run/netns), second names
(aliases) for them, their loopback and IPv6 switch, and their removal, recorded in the state
directory before they exist so that a crash never leaves one of ours unrecorded.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import time
from typing import Callable, Iterator

from reconciler import drivers
from reconciler.errors import KernelError
from reconciler.kernel import netlink as nl
from reconciler.kernel.batch import KindWriter, Operation, ProcFiles, apply_error, changed
from reconciler.kernel.files import for_each, remove_files_of
from reconciler.kernel.nlsocket import CLONE_NEWNET, NetlinkSocket, check_call, current_netns_fd, entered, setns
from reconciler.kernel.observe_namespaces import list_netns, owned_netns
from reconciler.kernel.session import NETNS_DIR, netns_path
from reconciler.state.model import QUIET_IPV6, Netns, NetnsAlias
from reconciler.state.plan import Action

MS_BIND, MS_REC, MS_SHARED, MS_PRIVATE = 0x1000, 0x4000, 1 << 20, 1 << 18
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
CLONE_NEWNS = 0x00020000
FRESH_PROC_FROM = 32  # new namespaces; fewer are written in-process, through /proc
FRESH_PROC_EVERY = 256  # namespaces written through one proc instance
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8  # never unmount what a symbolic link at a /run/netns name points to
LOOPBACK_IFINDEX = 1
NETNS_CLEANUP_TIMEOUT = 60.0
NETNS_STALL_GRACE = 1.0  # seconds without progress before veths of a held namespace are cut

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]


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
    check_call(_libc.mount(path, path, b"none", MS_BIND | MS_REC, None), f"bind-mounting {NETNS_DIR}")
    check_call(_libc.mount(b"", path, b"none", MS_SHARED | MS_REC, None), f"making {NETNS_DIR} shared")


def create_netns(name: str, ipv6: bool = True, defaults: bool = True) -> tuple[int, NetlinkSocket]:
    """Create /run/netns/NAME in-process; returns its fd and a socket inside it. Without
    `defaults` its IPv6 defaults are left to the caller (`write_ipv6_defaults`)."""
    path = netns_path(name)
    if os.path.isfile(path) and not _is_mount_point(path):
        os.unlink(path)  # left by a creation cut short (the planner only creates names that are ours)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    home = current_netns_fd()
    try:
        check_call(_libc.unshare(CLONE_NEWNET), "unshare")
        try:
            check_call(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None),
                  f"bind-mounting namespace {name}")
            sock = NetlinkSocket()
            if defaults:
                _write_ipv6_defaults(ipv6)
        finally:
            setns(home)
    except BaseException:
        _libc.umount2(path.encode(), MNT_DETACH | UMOUNT_NOFOLLOW)
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
    if _libc.umount2(path.encode(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
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
        check_call(_libc.unshare(CLONE_NEWNET), "unshare")
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
    firewall check, a spec error found while planning), or after changes that were all
    rolled back (the error says `restored`), remove it again, so that the failure leaves
    the machine as it was."""
    created = bool(name) and ensure_host_netns(name)
    try:
        yield
    except BaseException as error:
        if created and (not changing() or getattr(error, "restored", False)):
            delete_netns(name)
        raise


def _write_ipv6_defaults(ipv6: bool) -> None:
    """In the current namespace: with `ipv6` the quiet defaults for new interfaces, else
    IPv6 off on every interface and by default."""
    with ProcFiles() as files:
        if ipv6:
            for setting, value in QUIET_IPV6:
                files.write(f"/proc/sys/net/ipv6/conf/default/{setting}", value)
        else:
            for scope in ("all", "default"):
                files.write(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", "1")


def write_ipv6_defaults(created: list[tuple[int, bool]]) -> None:
    """The IPv6 defaults (`_write_ipv6_defaults`) of new namespaces, given as (fd, ipv6).

    The kernel keeps one dentry of /proc/sys/net/ipv6 per namespace in one hash chain per
    proc instance, and the first lookup in a new namespace walks all of them: through
    the host's /proc, 5000 namespaces cost 2 ms each at the end (a quadratic 40 s). So
    many are written by a forked child that mounts a proc instance of its own, in a mount
    namespace of its own (the host's mounts are never touched), and mounts a fresh one every
    FRESH_PROC_EVERY namespaces, which drops the dentries. Where it cannot mount, it writes
    through /proc as it is."""
    if len(created) < FRESH_PROC_FROM:
        for fd, ipv6 in created:
            with entered(fd):
                _write_ipv6_defaults(ipv6)
        return
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child; its result is checked by the parent
        os.close(reader)
        message = b"ok"
        try:
            fresh = _private_proc()
            for number, (fd, ipv6) in enumerate(created):
                if fresh and number and number % FRESH_PROC_EVERY == 0:
                    _libc.umount2(b"/proc", MNT_DETACH)
                    fresh = _private_proc(unshare=False)
                setns(fd)
                _write_ipv6_defaults(ipv6)
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
            message = f"{getattr(error, 'errno', 0) or 0} {error}".encode()
        os.write(writer, message)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        message = pipe.read()
    os.waitpid(child, 0)
    if message != b"ok":
        code, _, text = message.decode(errors="replace").partition(" ")
        raise KernelError(f"writing the IPv6 defaults of new namespaces: {text or 'the writing process died'}",
                          int(code) if code.isdigit() and code != "0" else None)


def _private_proc(unshare: bool = True) -> bool:
    """In a forked child: a mount namespace of its own (its mounts private, so nothing
    propagates to the host's) with a fresh proc instance on /proc; False if not possible."""
    if unshare and (_libc.unshare(CLONE_NEWNS) != 0
                    or _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0):
        return False
    return _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) == 0


class NamespaceWriter(KindWriter):
    """Namespaces (kind netns) and their second names (kind alias)."""

    def operations(self) -> dict[tuple[str, str], Operation]:
        return {
            ("create", "netns"): self._create_netns,
            ("update", "netns"): self._update_netns,
            ("delete", "netns"): self._delete_netns,
            ("create", "alias"): self._create_alias,
            ("delete", "alias"): self._delete_alias,
        }

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
                    fd, sock = create_netns(action.obj.netns, ipv6=action.obj.ipv6, defaults=False)
                except (KernelError, OSError) as error:
                    raise apply_error(action, getattr(error, "errno", None), str(error)) from error
                self.session.adopt(action.obj.netns, fd, sock)
                record[action.obj.netns] = sock.netns_cookie()
        try:  # before anything is made in them: their interfaces take these defaults
            write_ipv6_defaults([(self.session.netns_fd(a.obj.netns), a.obj.ipv6) for a in actions])
        except (KernelError, OSError) as error:
            raise apply_error(actions[0], getattr(error, "errno", None), str(error)) from error
        for action in actions:
            sock = self.session.socket(action.obj.netns)
            if action.obj.lo_up:
                self._send(sock, [(action, nl.set_link(sock.next_seq(), index=LOOPBACK_IFINDEX, up=True))])

    def _create_alias(self, actions: list[Action]) -> None:
        with self._recorded_first(actions, {a.obj.netns: a.obj.target for a in actions}) as record:
            for action in actions:
                obj: NetnsAlias = action.obj
                try:
                    bind_netns(obj.netns, self._fd(obj.target))
                except (KernelError, OSError) as error:
                    raise apply_error(action, getattr(error, "errno", None), str(error)) from error
                record[obj.netns] = self.session.socket(obj.netns).netns_cookie()

    def _delete_alias(self, actions: list[Action]) -> None:
        self._remove_names(actions)  # the name only: the namespace lives on in its owner

    def _update_netns(self, actions: list[Action]) -> None:
        for action in actions:
            obj: Netns = action.obj
            if changed(action, "ipv6"):
                # off: `all` turns every interface off, and the default for new ones; on: only
                # the default and lo (::1), since `all` would turn on the interfaces of
                # IPv4-only networks too (their driver switches each one)
                scopes = ("default", "lo") if obj.ipv6 else ("all", "default")
                value = "0" if obj.ipv6 else "1"
                quiet = QUIET_IPV6 if obj.ipv6 else ()
                self._sysctl(obj.netns, [
                    *((action, f"/proc/sys/net/ipv6/conf/default/{setting}", v) for setting, v in quiet),
                    *((action, f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", value) for scope in scopes),
                ])
            if changed(action, "lo_up"):
                sock = self.session.socket(obj.netns)
                self._send(sock, [(action, nl.set_link(sock.next_seq(), index=LOOPBACK_IFINDEX, up=obj.lo_up))])

    def _delete_netns(self, actions: list[Action]) -> None:
        self._await_peers_gone(actions[0], self._remove_names(actions))

    def _remove_names(self, actions: list[Action]) -> set[str]:
        """Unmount and forget the /run/netns names of `actions` (with their files); the
        names removed."""
        names = {a.obj.netns for a in actions}
        for name in names:
            self.session.forget(name)
        for action in actions:
            try:
                delete_netns(action.obj.netns)
            except KernelError as error:
                raise apply_error(action, error.errno, str(error)) from error
        # while the kernel tears the namespaces down, their directories are emptied, on
        # threads when there are many: each unlink waits on the filesystem
        for_each(functools.partial(remove_files_of, self.session), [(name,) for name in sorted(names)])
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
                raise apply_error(action, None, f"the kernel has not removed {len(remaining)} veth(s) "
                                   f"({', '.join(remaining[:3])}...) {NETNS_CLEANUP_TIMEOUT:.0f} s after "
                                   "their namespaces were deleted")
            time.sleep(delay)
            delay = min(delay * 2, 0.025)

    def _marked_veths(self, containers: set[str]) -> list[str]:
        """Host links of attachments (veths) marked as belonging to one of `containers`."""
        return [
            link.ifname for kind, payload in self.session.host.dump(nl.dump_links)
            if kind == nl.RTM_NEWLINK
            for link in [nl.decode_link(payload)]
            if (found := drivers.parse_mark(link.alias)) and found[1][0] == found[0].attachment_link_kind
            and found[1][1] in containers
        ]
