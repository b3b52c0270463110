"""The record of the container files as netreconcile last found them as wanted: per file
its identity and change times (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) and a
digest of its text, so that a pass need not read again (3000 files, 21 MB at 1000
containers) a file nothing has changed since.

A file whose lstat equals its record holds the recorded text: every write to it, a
truncation, a chmod or chown, a rename over it (a new inode) moves its st_ctime, which
no user can set: `touch -d` sets st_mtime back, but the kernel stamps st_ctime with the
clock at the change. A file changed less than RACY_NS before the observation that looked
at it began is not recorded: a change in the same tick of the kernel's coarse file clock,
after the stat, could leave every field of it as it was; a change after a tick has passed
cannot. Whatever does not match (no record, another stat, a digest other than that of
the wanted text) is read as without a record.

Threat model: the record is trusted for a stat-identical file; it lives in the state
directory (root's), is written 0600, read only when it is a regular file owned by this
user that nobody else may write, and never through a symbolic link. Whoever can write it
can also write the namespace record beside it, and the files themselves.

The pass's first observation takes the record (FileRecord), leaving out the files that
match it; once the desired state is built, `settle` puts them back, with the wanted text
where its digest is the recorded one, else read. A converged pass writes the record
again when it changed (`write`): a no-op from what its observation found, an apply from
what its verification read back (a FileRecord without entries, noting every stat).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time

from reconciler.kernel.container_files import read_container_file
from reconciler.kernel.session import KernelSession
from reconciler.state.model import File, State, Text

RECORD_NAME = "container-files.json"
RECORD_VERSION = 1
RACY_NS = 50_000_000  # five times the kernel's coarsest file clock tick (a jiffy at HZ=100)

StatKey = tuple[int, int, int, int, int]


def stat_key(found: os.stat_result) -> StatKey:
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def digest(text: str | Text) -> str:
    """The text's SHA-256 (hardware-assisted: 16 ms for 21 MB), fed part by part: a Text's
    shared part is not copied into a joined string."""
    hashed = hashlib.sha256()
    for part in (text,) if isinstance(text, str) else text:
        hashed.update(part.encode("utf-8", errors="surrogateescape"))
    return hashed.hexdigest()


class FileRecord:
    """The record as loaded, and what one observation learnt from it (filled by the
    thread reading the files; read after it is joined)."""

    def __init__(self, entries: dict[tuple, tuple[StatKey, str]] | None = None) -> None:
        self.began_ns = time.time_ns()  # before any file is looked at
        self.entries = entries or {}  # ("file", netns, filename) -> (stat, digest)
        self.unread: dict[tuple, str] = {}  # files left out, stat as recorded: key -> recorded digest
        self.seen: dict[tuple, StatKey] = {}  # files read: their stat before the read

    def matches(self, key: tuple, found: os.stat_result) -> bool:
        """Whether the file of `key`, as `found`, is as recorded (then it is not read)."""
        entry = self.entries.get(key)
        if entry is None or entry[0] != stat_key(found):
            return False
        self.unread[key] = entry[1]
        return True

    def was_read(self, key: tuple, found: os.stat_result) -> None:
        self.seen[key] = stat_key(found)


def settle(live: State, desired: State, record: FileRecord, session: KernelSession) -> State:
    """`live` with the files its observation left out: the wanted text where its digest is
    the recorded one (the file holds it), else the file's text read now (absent: none)."""
    if not record.unread:
        return live
    settled = {}
    for key, recorded in record.unread.items():
        wanted = desired.objects.get(key)
        if isinstance(wanted, File) and digest(wanted.text) == recorded:
            settled[key] = File(key[1], key[2], text=wanted.text)  # the wanted parts, shared, not a copy
        else:
            text = read_container_file(os.path.join(session.etc_dir(key[1]), key[2]))
            if text is not None:
                settled[key] = File(key[1], key[2], text)
    return dataclasses.replace(live, objects={**live.objects, **settled})


def entries_after(record: FileRecord, desired: State, live: State) -> dict[tuple, tuple[StatKey, str]]:
    """The record after a converged pass from `live` (its files as `record` noted them):
    the files left as recorded keep their entry; a file read with the wanted text, not
    changed within RACY_NS before the observation began, gets one; the others (changed
    by this pass, or not as wanted) none."""
    entries = {}
    for key, wanted in desired.objects.items():
        if not isinstance(wanted, File):
            continue
        have = live.objects.get(key)
        if not isinstance(have, File) or have.text != wanted.text:
            continue
        if key in record.unread:
            entries[key] = record.entries[key]
        elif key in record.seen and record.seen[key][4] < record.began_ns - RACY_NS:
            entries[key] = (record.seen[key], digest(wanted.text))
    return entries


def forget(session: KernelSession) -> None:
    """No record (after a destroy: it leaves nothing behind)."""
    session.state.remove(RECORD_NAME)


def load(session: KernelSession) -> FileRecord:
    """The record, empty when absent, unreadable, damaged, a link, not a regular file, not
    this user's or writable by others (StateDir.read_own)."""
    try:
        text = session.state.read_own(RECORD_NAME)
        if text is None:
            return FileRecord()
        document = json.loads(text)
        if document.get("version") != RECORD_VERSION:
            return FileRecord()
        entries = {}
        for name, (dev, ino, size, mtime, ctime, text_digest) in document["files"].items():
            netns, filename = name.split("/")
            entries[("file", netns, filename)] = ((int(dev), int(ino), int(size), int(mtime), int(ctime)),
                                                  str(text_digest))
        return FileRecord(entries)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return FileRecord()


def write(session: KernelSession, record: FileRecord, desired: State, live: State,
          previous: FileRecord | None = None) -> None:
    """Write the record after a converged pass whose `live` state `record` noted, when it
    changed from `previous` (by default `record` as loaded); none left: no file, so that
    destroy leaves nothing behind. Atomically (a reader sees the old or the new one),
    0600, never through a link. A record that cannot be written is no error: the next
    pass reads the files, as without one."""
    entries = entries_after(record, desired, live)
    if entries == (previous or record).entries:
        return
    if not entries:
        forget(session)
        return
    document = {"version": RECORD_VERSION, "files": {
        f"{key[1]}/{key[2]}": [*found, text_digest] for key, (found, text_digest) in sorted(entries.items())}}
    with contextlib.suppress(OSError):  # no record: the next pass reads the files
        # json.dumps encodes in C; json.dump writes piece by piece in Python, 5x slower
        session.state.store_text(RECORD_NAME, json.dumps(document, separators=(",", ":")))
