"""Container files (/etc/netns/NAME/hosts, resolv.conf, hostname): written atomically (temporary
file + rename) relative to directory descriptors, never through a symbolic link, and removed
only when they are regular files.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import stat
from typing import Callable, Iterable

from reconciler.kernel.batch import KindWriter, Operation, apply_error
from reconciler.kernel.container_files import CONTAINER_FILES, TEMPORARY_MARK, file_identity, is_temporary
from reconciler.kernel.session import KernelSession, open_container_dir
from reconciler.state.model import File
from reconciler.state.plan import Action

FILE_MODE = 0o644  # container files are read by every process in the container
# A file write waits on the filesystem, not the CPU (on ext4 each rename over an old file
# allocates the new one's blocks and journals the old one's release), so many writes are
# overlapped: with name discovery one join rewrites every hosts file of its network
# (benchmarks/bench_discovery.py, 1000 hosts files of 21 KB).
WRITE_THREADS = 4
PARALLEL_FROM = 64  # directories; fewer are written in turn (threads cost more than they save)


def for_each(function: Callable[..., None], items: Iterable[tuple], threads: int = WRITE_THREADS) -> None:
    """`function(*item)` for every item, on `threads` threads when there are many;
    the first failure (in the order of `items`) is raised once all have run."""
    items = list(items)
    if len(items) < PARALLEL_FROM or threads <= 1:
        for item in items:
            function(*item)
        return
    from concurrent.futures import ThreadPoolExecutor  # not imported by a run that writes few files or none

    with ThreadPoolExecutor(threads, thread_name_prefix="netreconcile-files") as pool:
        futures = [pool.submit(function, *item) for item in items]
    for future in futures:
        future.result()


def write_atomically(dir_fd: int, filename: str, content: str) -> tuple[int, ...]:
    """Write `filename` in the directory `dir_fd` via a temporary file and rename, so
    readers never see a partial file. The temporary name is unpredictable and created
    exclusively (a link planted there fails the write instead of being followed); the
    rename replaces a directory entry and never writes through one. Returns the written
    inode's identity once renamed (container_files.file_identity)."""
    temporary = f".{filename}{TEMPORARY_MARK}{secrets.token_hex(8)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE,
                 dir_fd=dir_fd)
    try:
        # os-level writes: a buffered file object costs four more system calls per file
        # (fstat, isatty, lseek, fcntl), 12,000 for the files of 1000 containers
        os.fchmod(fd, FILE_MODE)  # whatever the umask took away
        data = memoryview(content.encode("utf-8", errors="surrogateescape"))
        while data:
            data = data[os.write(fd, data):]
        os.replace(temporary, filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return file_identity(os.fstat(fd))  # after the rename, which changes its ctime
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def etc_netns(session: KernelSession, create: bool = False):
    """The etc-netns directory as a descriptor (None when absent), made first with
    `create`. It is the operator's choice and may be a link."""
    if create:
        os.makedirs(session.etc_netns_dir, mode=0o755, exist_ok=True)
    etc_fd = session.open_etc_netns()
    if etc_fd is None and create:  # removed meanwhile; never fall back to a relative path
        raise OSError(errno.ENOENT, f"{session.etc_netns_dir} disappeared")
    try:
        yield etc_fd
    finally:
        if etc_fd is not None:
            os.close(etc_fd)


@contextlib.contextmanager
def container_dir(session: KernelSession, netns: str, create: bool = False, etc_fd: int | None = None):
    """The directory of container `netns` as a descriptor (None when absent or not a
    real directory: nothing there is ours), made first with `create`; in the etc-netns
    directory `etc_fd` (opened, and made with `create`, here when not given: a batch opens
    it once). The container's directory is never followed."""
    if etc_fd is None:
        with etc_netns(session, create) as opened:
            if opened is None:
                yield None
                return
            with container_dir(session, netns, create, opened) as dir_fd:
                yield dir_fd
        return
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


def unlink_regular(dir_fd: int, filename: str) -> None:
    """Unlink `filename` in `dir_fd` if it is a regular file: a link or anything else
    there is not netreconcile's."""
    try:
        if stat.S_ISREG(os.lstat(filename, dir_fd=dir_fd).st_mode):
            os.unlink(filename, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def remove_files_of(session: KernelSession, netns: str) -> None:
    """The container's files, temporary files of a write that was cut short, and
    its directory once empty; anything else (a link included) stays."""
    with contextlib.suppress(OSError), container_dir(session, netns) as dir_fd:
        if dir_fd is None:
            return
        for filename in os.listdir(dir_fd):
            if filename in CONTAINER_FILES or is_temporary(filename):
                unlink_regular(dir_fd, filename)
    etc_fd = session.open_etc_netns()
    if etc_fd is not None:
        try:
            os.rmdir(netns, dir_fd=etc_fd)
        except OSError:
            pass  # absent, a link, or holding files that are not ours
        finally:
            os.close(etc_fd)


class FileWriter(KindWriter):
    """Container files (kind file) and files left by earlier versions (kind leftover),
    written on `threads` threads (one: in turn; reconciler.kernel.writer runs them so
    beside its netlink batches, where more threads only fight over the interpreter lock
    with the thread sending those)."""

    def __init__(self, session: KernelSession, threads: int = WRITE_THREADS):
        super().__init__(session)
        self.threads = threads

    def operations(self) -> dict[tuple[str, str], Operation]:
        return {
            ("create", "file"): self._create_file,
            ("update", "file"): self._update_file,
            ("delete", "file"): self._delete_file,
            ("delete", "leftover"): self._delete_leftover,
        }

    def _create_file(self, actions: list[Action]) -> None:
        try:
            with etc_netns(self.session, create=True) as etc_fd:
                for_each(functools.partial(self._write_files_of, etc_fd), self._per_netns(actions).items(),
                         self.threads)
        except OSError as error:  # making or opening the etc-netns directory (each write raises ApplyError)
            raise apply_error(actions[0], error.errno, error.strerror) from error

    def _write_files_of(self, etc_fd: int, netns: str, group: list[Action]) -> None:
        try:
            with container_dir(self.session, netns, create=True, etc_fd=etc_fd) as dir_fd:
                for action in group:
                    obj: File = action.obj
                    try:
                        written = write_atomically(dir_fd, obj.filename, obj.content)
                        self.session.written_files.setdefault(netns, {})[obj.filename] = (written, obj.text)
                    except OSError as error:
                        raise apply_error(action, error.errno, f"writing {obj.name}") from error
        except OSError as error:
            raise apply_error(group[0], error.errno, error.strerror) from error

    _update_file = _create_file

    def _delete_file(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            with container_dir(self.session, netns) as dir_fd:
                for action in group:
                    self.session.written_files.get(netns, {}).pop(action.obj.filename, None)
                    try:
                        if dir_fd is not None:
                            unlink_regular(dir_fd, action.obj.filename)
                    except OSError as error:
                        raise apply_error(action, error.errno, f"deleting {action.obj.name}") from error

    _delete_leftover = _delete_file
