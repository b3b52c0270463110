"""One writer per host namespace: an exclusive lock file in its state directory.

`apply`, `destroy`, `sync` and each pass of `watch` hold it from their first
observation to their verification, so two processes never interleave their changes
(the second waits, saying so, and gives up after --lock-timeout). flock(2) locks go
away with the process, so a killed holder never leaves the lock taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Callable, Iterator

from reconciler.errors import LockError
from reconciler.statedir import StateDir

POLL = 0.05


@contextlib.contextmanager
def host_lock(state: StateDir, timeout: float, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    state.path.mkdir(parents=True, exist_ok=True)
    path = state.path / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        told = False
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
                    raise LockError(f"another netreconcile ({holder}) has been working on this host namespace for "
                                    f"over {timeout:g} s (lock {path}); try again later or raise --lock-timeout")
                time.sleep(POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 64, 0).decode(errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"
