"""Reading container files (/etc/netns/NAME/{hostname,hosts,resolv.conf}) and what is in
their way: relative to directory descriptors, never through a symbolic link, with
os-level reads (3000 files per full observation at N=1000).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from reconciler.kernel.session import DIRECTORY_FLAGS, KernelSession, open_container_dir
from reconciler.state.model import File, KernelObject, Leftover, SharedParts, Text

if TYPE_CHECKING:
    from reconciler.kernel.file_record import FileRecord

CONTAINER_FILES = ("hostname", "hosts", "resolv.conf")
TEMPORARY_MARK = ".netreconcile-"  # in the names of files being written: .hosts.netreconcile-<random>


def is_temporary(filename: str) -> bool:
    """Whether `filename` is one of netreconcile's temporary files."""
    return filename.startswith(".") and TEMPORARY_MARK in filename


def file_identity(status: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is written, replaced, renamed or its mode changed: its
    inode and device, size, mode, and modification and change times (this kernel gives a
    change after a stat a finer time than the one stat saw, so a write right after still
    shows)."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mode, status.st_mtime_ns, status.st_ctime_ns)


def observe_files(etc_fd: int, directory: str, netns: str, read: bool = True,
                  expected: Mapping[tuple, KernelObject] | None = None,
                  shared: SharedParts | None = None,
                  record: FileRecord | None = None,
                  written: Mapping[str, tuple[tuple[int, ...], Text]] | None = None,
                  ) -> tuple[list[KernelObject], list]:
    """The files (with `read`) and leftover temporary files of container `netns` in its
    `directory`, and what is in the way of them: a link or other non-regular entry
    where the directory or one of its files should be. Nothing is followed.

    A file read with the content of the File of its key in `expected` (the verification's
    desired state) gets that File's text, the same object: what was read is dropped at
    once, so a verification holds each text once, not the desired and the read copy.
    Any other text read keeps its shared part (a hosts file's discovery section) once
    among the files read with the same `shared`.
    A file whose lstat is as `record` has it is left out and noted there (see
    reconciler.kernel.file_record); the stat of a file read is noted there too.
    A file this run wrote with that text (`written`: this container's part of
    KernelSession.written_files, by filename) whose inode is as the write left it
    (file_identity) is taken as read without reading it (and noted in `record` so)."""
    try:
        dir_fd = open_container_dir(etc_fd, netns)
        if dir_fd is None:
            return [], []
    except NotADirectoryError:
        try:
            mode = os.lstat(netns, dir_fd=etc_fd).st_mode
        except FileNotFoundError:  # gone since
            return [], []
        return [], [(netns, _in_the_way(directory, mode, "a directory"))]
    found: list[KernelObject] = []
    in_the_way = []
    try:
        for entry in os.scandir(dir_fd):
            regular = entry.is_file(follow_symlinks=False)
            if entry.name in CONTAINER_FILES and not regular:
                mode = entry.stat(follow_symlinks=False).st_mode
                in_the_way.append((netns, _in_the_way(os.path.join(directory, entry.name), mode, "a regular file")))
            elif entry.name in CONTAINER_FILES and read:
                key = ("file", netns, entry.name)
                if record is not None and record.matches(key, entry.stat(follow_symlinks=False)):
                    continue
                text = _as_written(entry, netns, expected, written)
                if text is not None:
                    if record is not None:
                        record.was_read(key, entry.stat(follow_symlinks=False))
                    found.append(File(netns, entry.name, text=text))
                    continue
                noted = (lambda found, key=key: record.was_read(key, found)) if record is not None else None
                content = read_small_file(entry.name, dir_fd, noted)
                if content is not None:
                    found.append(File(netns, entry.name, _shared(content, netns, entry.name, expected, shared)))
            elif regular and is_temporary(entry.name):
                found.append(Leftover(netns, entry.name))
    finally:
        os.close(dir_fd)
    return found, in_the_way


def _as_written(entry: os.DirEntry, netns: str, expected: Mapping[tuple, KernelObject] | None,
                written: Mapping[str, tuple[tuple[int, ...], Text]] | None) -> Text | None:
    """The expected text of file `entry` when this run wrote exactly that text to the
    inode that is there, unchanged since; else None (to be read)."""
    record = written.get(entry.name) if written and expected else None
    if record is None:
        return None
    wanted = expected.get(("file", netns, entry.name))
    identity, text = record
    if not isinstance(wanted, File) or wanted.text != text:
        return None
    try:
        return wanted.text if file_identity(entry.stat(follow_symlinks=False)) == identity else None
    except FileNotFoundError:
        return None


def _shared(content: str, netns: str, filename: str, expected: Mapping[tuple, KernelObject] | None,
            shared: SharedParts | None) -> Text:
    text = shared.text(content) if shared is not None else Text.of(content)
    wanted = expected.get(("file", netns, filename)) if expected else None
    return wanted.text if isinstance(wanted, File) and wanted.text == text else text


def _in_the_way(path: str, mode: int, wanted: str) -> str:
    if stat.S_ISLNK(mode):
        return f"{path} is a symbolic link; netreconcile never writes, reads or deletes through one"
    return f"{path} is not {wanted}"


def observe_other_container_dirs(session: KernelSession, owned: set[str]) -> list[tuple[str, str]]:
    """What is in the way in the directories of names netreconcile does not own (yet):
    the spec may want them."""
    etc_fd = session.open_etc_netns()
    if etc_fd is None:
        return []
    in_the_way = []
    try:
        for name in os.listdir(etc_fd):
            if name not in owned:
                in_the_way += observe_files(etc_fd, session.etc_dir(name), name, read=False)[1]
    finally:
        os.close(etc_fd)
    return in_the_way


def read_container_file(path: str) -> str | None:
    """The text of container file ETC_NETNS/NAME/FILE `path`, never through a link at NAME
    or FILE (the etc-netns directory is the operator's choice): None when absent, or when
    a link or anything but a regular file is there."""
    directory, filename = os.path.split(path)
    etc_netns, netns = os.path.split(directory)
    try:
        etc_fd = os.open(etc_netns, DIRECTORY_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        dir_fd = open_container_dir(etc_fd, netns)
    except NotADirectoryError:
        return None
    finally:
        os.close(etc_fd)
    if dir_fd is None:
        return None
    try:
        return read_small_file(filename, dir_fd)
    finally:
        os.close(dir_fd)


def read_small_file(path: str, dir_fd: int | None = None,
                    on_stat: Callable[[os.stat_result], None] | None = None) -> str | None:
    """The file's text, or None when absent. os-level I/O: a third of the cost of open()
    with its buffered text layer, which matters for 3000 files per full read. Relative
    to `dir_fd` a link is never followed (ELOOP: read as absent), and anything but a
    regular file put there since the directory was listed (a FIFO would block the read)
    reads as absent. `on_stat` (relative to `dir_fd` only) gets the file's stat, taken
    before the read: a change after it moves the stat on, so a stat never vouches for
    older text."""
    contained = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    flags = os.O_RDONLY | os.O_CLOEXEC | (contained if dir_fd is not None else 0)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # became a link since the directory was listed
            return None
        raise
    try:
        if dir_fd is not None:
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode):
                return None
            if on_stat is not None:
                on_stat(found)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", errors="surrogateescape")
