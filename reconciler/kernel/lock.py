"""Who may work on a host namespace: two flock files in its state directory.

- `lock`, exclusive: one writer at a time. `apply`, `destroy`, `sync` and each pass
  of `watch` hold it from their first observation to their verification, so two
  processes never interleave their changes (the second waits, saying so, and gives
  up after --lock-timeout).
- `keeper`, shared: held by `watch` and `sync` for their whole life, because they
  keep the host converged. `destroy` takes it exclusively without waiting, so it
  refuses to run while a keeper would undo it at once, and no keeper starts while a
  destroy runs.
- `dns`, shared: held by every process serving the embedded DNS server of this host
  (`dns`, and `watch` and `sync` with host.dns_resolver) for as long as it serves.
  `apply` and `status` probe it to warn when containers' DNS points at a server that
  nobody runs.

flock(2) locks go away with the process, so a killed holder never leaves a lock
taken. Holders are named from /proc/locks, which the kernel keeps true, never from
something written into the file (that outlives its writer).

`destroy` retires both files with the state directory once nothing there is managed.
A waiter may then hold a lock on a file no longer at the path: whoever acquires a lock
checks that its file is still the one at the path, and starts over on the new file if
not, so two processes never both hold "the" lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from reconciler.errors import LockError
from reconciler.kernel.statedir import StateDir

POLL = 0.05
PROC_LOCKS = "/proc/locks"


def host_lock(state: StateDir, timeout: float, on_wait: Callable[[str], None] | None = None):
    """The one-writer lock, waited for up to `timeout` seconds."""
    return _waited(state, "lock", fcntl.LOCK_EX, timeout, on_wait, "another netreconcile")


def keeper_lock(state: StateDir, timeout: float, on_wait: Callable[[str], None] | None = None):
    """Held by watch and sync for their whole life; waits for a destroy in progress."""
    return _waited(state, "keeper", fcntl.LOCK_SH, timeout, on_wait, "netreconcile destroy")


def dns_serving(state: StateDir):
    """Held while this process serves DNS for the host (waits only for a probe's instant)."""
    return _waited(state, "dns", fcntl.LOCK_SH, float("inf"), None, "a probe")


def dns_served(state: StateDir) -> bool:
    """Whether some process serves DNS for the host now: its shared lock keeps this
    probe's exclusive one from being taken. Creates nothing."""
    try:
        fd = os.open(state.path / "dns", os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False  # never served here
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock at once
    return False


LOCK_FILES = ("lock", "keeper", "dns")


class HeldLock:
    """A lock held on a file of a host namespace's state directory."""

    def __init__(self, state: StateDir, path: Path):
        self.state = state
        self.path = path

    def retire(self) -> bool:
        """Remove the lock files and the state directory if nothing else is left there
        (destroy, at its end); True when they are gone."""
        if set(os.listdir(self.state.path)) - set(LOCK_FILES) or dns_served(self.state):
            return False  # a DNS server still running keeps its lock where apply and status look
        for name in LOCK_FILES:
            with contextlib.suppress(FileNotFoundError):
                (self.state.path / name).unlink()
        with contextlib.suppress(OSError):  # something appeared meanwhile: it stays
            self.state.path.rmdir()
        return True


@contextlib.contextmanager
def no_keeper(state: StateDir) -> Iterator[None]:
    """For destroy: refuses at once while a watch or sync keeps this host converged
    (it would undo the destroy), and keeps new ones from starting until it is done."""
    path = state.path / "keeper"
    if not state.path.is_dir():  # nothing ever ran here: no keeper, and nothing left behind
        yield
        return
    with _locked(path) as fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pids = holder_pids(path)
            stop = f"kill -TERM {' '.join(map(str, pids))}" if pids else "stop it"
            raise LockError(f"refusing to destroy: netreconcile watch or sync ({_describe(pids)}) keeps this host "
                            f"namespace converged and would undo it at once. Stop it first ({stop}, or stop its "
                            f"service), then run destroy again (lock {path})") from None
        yield


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """An open descriptor of the lock file `path`; closing it releases the lock."""
    fd = _open_lock_file(path)
    try:
        yield fd
    finally:
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except FileNotFoundError:
            continue  # the directory was retired between the two calls


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path`."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino)


@contextlib.contextmanager
def _waited(
    state: StateDir, name: str, mode: int, timeout: float, on_wait: Callable[[str], None] | None, holder: str,
) -> Iterator[HeldLock]:
    """Hold the flock `mode` on the file `name` of `state`, polling for it until `timeout`;
    messages name the processes holding it (`holder` says what they are)."""
    path = state.path / name
    deadline = time.monotonic() + timeout
    told = False
    while True:
        with _locked(path) as fd:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holders = _describe(holder_pids(path))
                    if not told and on_wait is not None:
                        on_wait(f"waiting for {holder} ({holders}) working on this host namespace")
                        told = True
                    if time.monotonic() >= deadline:
                        raise LockError(f"{holder} ({holders}) has been working on this host namespace for over "
                                        f"{timeout:g} s (lock {path}); try again later or raise --lock-timeout"
                                        ) from None
                    time.sleep(POLL)
            if _is_at(fd, path):
                yield HeldLock(state, path)
                return
        # retired by the destroy we waited for: lock the file now at the path


def holder_pids(path: Path) -> list[int]:
    """The processes holding a flock on `path` now, as the kernel lists them."""
    try:
        stat = os.stat(path)
        with open(PROC_LOCKS, encoding="ascii", errors="replace") as handle:
            table = handle.read()
    except OSError:
        return []
    return parse_proc_locks(table, os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino)


def parse_proc_locks(table: str, major: int, minor: int, inode: int) -> list[int]:
    """Pids holding (not waiting for) a flock on the file with this device and inode.
    A line reads `1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234 0 EOF`; waiters have `->`."""
    exact, same_inode = [], []
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->" or fields[1] != "FLOCK":
            continue
        try:
            pid = int(fields[4])
            device_major, device_minor, number = fields[5].split(":")
            if int(number) != inode or pid <= 0:
                continue
            same = (int(device_major, 16), int(device_minor, 16)) == (major, minor)
        except ValueError:
            continue
        (exact if same else same_inode).append(pid)
    # some file systems (btrfs subvolumes) show stat() a device other than the one /proc/locks names
    return sorted(set(exact or same_inode))


def _describe(pids: list[int]) -> str:
    if not pids:
        return "pid unknown"
    return ("pid " if len(pids) == 1 else "pids ") + ", ".join(map(str, pids))
