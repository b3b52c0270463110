"""Writing a spec file that a command produced (`netreconcile import -o SPEC`).

Not a plan action, so not the writer's: the file is the user's output, written whole or
not at all (a temporary file beside it, renamed over it), mode 0644 whatever the umask,
and never through a symbolic link: a link at SPEC is refused, not replaced or followed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

from reconciler.errors import SourceError

SPEC_FILE_MODE = 0o644


def write_spec_file(path: str, text: str) -> None:
    """Write `text` to `path` atomically; SourceError naming the path when it cannot be."""
    directory, filename = os.path.split(os.path.abspath(path))
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise SourceError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        _refuse_link_or_special(dir_fd, filename, path)
        temporary = f".{filename}.netreconcile-{secrets.token_hex(8)}"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         SPEC_FILE_MODE, dir_fd=dir_fd)
            try:
                with os.fdopen(fd, "wb") as handle:
                    os.fchmod(handle.fileno(), SPEC_FILE_MODE)
                    handle.write(text.encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary, dir_fd=dir_fd)
                raise
        except OSError as error:
            raise SourceError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        os.close(dir_fd)


def _refuse_link_or_special(dir_fd: int, filename: str, path: str) -> None:
    try:
        found = os.stat(filename, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode):
        raise SourceError(f"{path} is a symbolic link: netreconcile does not write through links; "
                          "remove it or name another file")
    if not stat.S_ISREG(found.st_mode):
        raise SourceError(f"{path} exists and is not a regular file")
