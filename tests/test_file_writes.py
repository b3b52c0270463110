"""Many container directories are written on several threads (reconciler.kernel.files):
every file is written, and a directory that cannot be written fails the batch naming its
action, while the others are still written. Real files in a temporary directory; no
namespace is needed, the writer only uses the session's etc-netns directory."""

from __future__ import annotations

import os
import threading

import pytest

from reconciler.errors import ApplyError
from reconciler.kernel import files
from reconciler.kernel.files import FileWriter
from reconciler.state.model import File
from reconciler.state.plan import Action

COUNT = files.PARALLEL_FROM + 6  # enough directories to be written on threads


class EtcNetnsOnly:
    """The part of a KernelSession the file writer uses."""

    def __init__(self, path):
        self.etc_netns_dir = str(path)
        self.written_files: dict = {}

    def open_etc_netns(self):
        return os.open(self.etc_netns_dir, os.O_RDONLY | os.O_DIRECTORY)

    def etc_dir(self, netns: str) -> str:
        return os.path.join(self.etc_netns_dir, netns)


def creations(count: int) -> list[Action]:
    return [Action("create", File(f"c{n}", filename, f"{filename} of c{n}\n", source=f"spec.yaml:{n + 1}:3"),
                   "missing")
            for n in range(count) for filename in ("hostname", "hosts")]


def test_many_directories_are_written_on_several_threads(tmp_path, monkeypatch):
    threads_seen = set()
    write = files.write_atomically

    def recording_write(dir_fd, filename, content):
        threads_seen.add(threading.current_thread().name)
        write(dir_fd, filename, content)

    monkeypatch.setattr(files, "write_atomically", recording_write)
    FileWriter(EtcNetnsOnly(tmp_path))._create_file(creations(COUNT))
    assert sorted(os.listdir(tmp_path)) == sorted(f"c{n}" for n in range(COUNT))
    for n in range(COUNT):
        for filename in ("hostname", "hosts"):
            assert (tmp_path / f"c{n}" / filename).read_text() == f"{filename} of c{n}\n"
    assert len(threads_seen) > 1 and all(name.startswith("netreconcile-files") for name in threads_seen)


def test_few_directories_are_written_in_turn(tmp_path, monkeypatch):
    threads_seen = set()
    write = files.write_atomically
    monkeypatch.setattr(files, "write_atomically",
                        lambda *args: (threads_seen.add(threading.current_thread().name), write(*args)))
    FileWriter(EtcNetnsOnly(tmp_path))._create_file(creations(3))
    assert threads_seen == {threading.current_thread().name}
    assert (tmp_path / "c2" / "hosts").read_text() == "hosts of c2\n"


def test_a_directory_that_cannot_be_written_fails_naming_its_action_and_the_others_are_written(tmp_path):
    victim = tmp_path.parent / f"{tmp_path.name}-victim"
    victim.mkdir()
    (tmp_path / "c7").symlink_to(victim)  # never written through
    with pytest.raises(ApplyError) as failure:
        FileWriter(EtcNetnsOnly(tmp_path))._create_file(creations(COUNT))
    assert str(failure.value).startswith("spec.yaml:8:3: cannot create file c7/hostname: ")
    assert "symbolic link" in str(failure.value)
    assert list(victim.iterdir()) == []
    assert (tmp_path / f"c{COUNT - 1}" / "hosts").read_text() == f"hosts of c{COUNT - 1}\n"


def test_the_directories_of_many_deleted_namespaces_are_emptied_on_threads(tmp_path, monkeypatch):
    """As destroy does (reconciler.kernel.namespaces): every container file and empty
    directory goes; a link among them is not ours and stays, with its directory."""
    session = EtcNetnsOnly(tmp_path)
    FileWriter(session)._create_file(creations(COUNT))
    (tmp_path / "c3" / "resolv.conf").symlink_to("/etc/resolv.conf")
    threads_seen = set()
    unlink = files.unlink_regular
    monkeypatch.setattr(files, "unlink_regular",
                        lambda *args: (threads_seen.add(threading.current_thread().name), unlink(*args)))
    files.for_each(lambda netns: files.remove_files_of(session, netns), [(f"c{n}",) for n in range(COUNT)])
    assert os.listdir(tmp_path) == ["c3"]
    assert os.listdir(tmp_path / "c3") == ["resolv.conf"] and (tmp_path / "c3" / "resolv.conf").is_symlink()
    assert len(threads_seen) > 1
