"""One writer per host namespace: an exclusive lock file in its state directory.

`apply`, `destroy`, `sync` and each pass of `watch` hold it from their first
observation to their verification, so two processes never interleave their changes
(the second waits, saying so, and gives up after --lock-timeout). flock(2) locks go
away with the process, so a killed holder never leaves the lock taken.

`destroy` retires the lock file with the state directory once nothing there is
managed. A waiter may then hold a lock on a file no longer at the path: whoever
acquires a lock checks that its file is still the one at the path, and starts over
on the new file if not, so two processes never both hold "the" lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from reconciler.errors import LockError
from reconciler.statedir import StateDir

POLL = 0.05


class HeldLock:
    def __init__(self, state: StateDir, path: Path):
        self.state = state
        self.path = path

    def retire(self) -> bool:
        """Remove the lock file and the state directory if nothing else is left there
        (destroy, at its end); True when they are gone."""
        if set(os.listdir(self.state.path)) - {self.path.name}:
            return False
        self.path.unlink()
        with contextlib.suppress(OSError):  # something appeared meanwhile: it stays
            self.state.path.rmdir()
        return True


@contextlib.contextmanager
def host_lock(state: StateDir, timeout: float, on_wait: Callable[[str], None] | None = None) -> Iterator[HeldLock]:
    path = state.path / "lock"
    deadline = time.monotonic() + timeout
    told = False
    while True:
        fd = _open_lock_file(state, path)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _holder(fd)
                    if not told and on_wait is not None:
                        on_wait(f"waiting for another netreconcile ({holder}) working on this host namespace")
                        told = True
                    if time.monotonic() >= deadline:
                        raise LockError(f"another netreconcile ({holder}) has been working on this host namespace "
                                        f"for over {timeout:g} s (lock {path}); try again later or raise "
                                        "--lock-timeout")
                    time.sleep(POLL)
        except BaseException:
            os.close(fd)
            raise
        if _is_at(fd, path):
            break
        os.close(fd)  # retired by the holder we waited for: lock the file at the path now
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        yield HeldLock(state, path)
    finally:
        os.close(fd)  # releases the lock


def _open_lock_file(state: StateDir, path: Path) -> int:
    while True:
        state.path.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 64, 0).decode(errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"
