"""Reading a container's files: whatever is put where a file should be, the read neither
blocks nor follows it."""

from __future__ import annotations

import os
import threading

import pytest

from reconciler.kernel import container_files, observe_containers
from reconciler.kernel.container_files import observe_files, read_small_file
from reconciler.kernel.files import FileWriter
from reconciler.state.model import File
from reconciler.state.plan import Action


def read_in_thread(filename: str, dir_fd: int) -> list:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(read_small_file(filename, dir_fd)), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"reading {filename} blocked"
    return result


def test_a_fifo_where_a_file_should_be_reads_as_absent_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "hosts")
    (tmp_path / "hostname").write_text("web\n")
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_in_thread("hosts", dir_fd) == [None]
        assert read_in_thread("hostname", dir_fd) == ["web\n"]
    finally:
        os.close(dir_fd)


def test_a_link_where_a_file_should_be_reads_as_absent(tmp_path):
    (tmp_path / "secret").write_text("not for containers\n")
    (tmp_path / "resolv.conf").symlink_to(tmp_path / "secret")
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_in_thread("resolv.conf", dir_fd) == [None]
    finally:
        os.close(dir_fd)


class FilesOnlySession:
    """The part of a KernelSession reading the files of namespaces that are aliases (their
    files only: no netlink) needs: the etc-netns directory in `tmp_path`."""

    def __init__(self, etc_netns):
        self.etc_netns = etc_netns
        self.etc_netns_dir = str(etc_netns)
        self.opened: list[int] = []
        self.written_files: dict = {}

    def open_etc_netns(self) -> int:
        self.opened.append(os.open(self.etc_netns, os.O_RDONLY | os.O_DIRECTORY))
        return self.opened[-1]

    def etc_dir(self, name: str) -> str:
        return os.path.join(self.etc_netns, name)


def test_files_read_beside_the_namespaces_come_back_per_container_in_order(tmp_path):
    for name in ("b", "a", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "hostname").write_text(f"{name}\n")
        (tmp_path / name / "hosts").write_text(f"127.0.0.1\tlocalhost {name}\n")
    (tmp_path / "c" / ".hosts.netreconcile-0123456789abcdef").write_text("cut short\n")
    session = FilesOnlySession(tmp_path)
    objects, peers, in_the_way = observe_containers.read_containers(session, ["b", "a", "c"], {"a", "b", "c"}, {})
    assert [(obj.netns, obj.kind) for obj in objects if obj.kind == "leftover"] == [("c", "leftover")]
    files = [(obj.netns, obj.filename, obj.content) for obj in objects if obj.kind == "file"]
    assert [netns for netns, _, _ in files] == ["b", "b", "a", "a", "c", "c"]  # each container's together, in order
    assert set(files) == {(name, filename, text) for name in "abc" for filename, text in
                          (("hostname", f"{name}\n"), ("hosts", f"127.0.0.1\tlocalhost {name}\n"))}
    assert peers == {} and in_the_way == []
    with pytest.raises(OSError):
        os.fstat(session.opened[0])  # closed once read


def test_a_failure_reading_the_files_reaches_the_caller_and_the_directory_is_closed(tmp_path, monkeypatch):
    def denied(etc_fd, directory, netns, expected=None, shared=None, record=None, written=None):
        raise PermissionError(13, "Permission denied", directory)

    monkeypatch.setattr(observe_containers, "observe_files", denied)
    session = FilesOnlySession(tmp_path)
    with pytest.raises(PermissionError):
        observe_containers.read_containers(session, ["web"], {"web"}, {})
    with pytest.raises(OSError):
        os.fstat(session.opened[0])


# --- a verification's read shares the texts it expects --------------------------------------

def test_a_file_read_as_expected_shares_the_expected_text_and_one_that_differs_is_read(tmp_path):
    (tmp_path / "c0").mkdir()
    (tmp_path / "c0" / "hosts").write_text("10.88.0.2\tc0\n")
    (tmp_path / "c0" / "hostname").write_text("changed by hand\n")
    expected = {obj.key: obj for obj in (File("c0", "hosts", "".join(["10.88.0.2\tc0", "\n"])),
                                         File("c0", "hostname", "c0\n"))}
    etc_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        found, _ = observe_files(etc_fd, str(tmp_path / "c0"), "c0", expected=expected)
    finally:
        os.close(etc_fd)
    by_name = {obj.filename: obj for obj in found}
    assert by_name["hosts"].text is expected[("file", "c0", "hosts")].text
    assert by_name["hostname"].content == "changed by hand\n"


def test_files_read_as_expected_beside_the_namespaces_come_back_as_the_expected_texts(tmp_path):
    names = [f"c{number}" for number in range(30)]
    expected = {}
    for number, name in enumerate(names):
        (tmp_path / name).mkdir()
        text = f"10.88.{number // 250}.{number % 250}\t{name}\n"
        (tmp_path / name / "hosts").write_text(text if number % 7 else "edited\n")
        expected[("file", name, "hosts")] = File(name, "hosts", "".join(text))
    objects, _, _ = observe_containers.read_containers(FilesOnlySession(tmp_path), names, set(names), {}, expected)
    files = {obj.key: obj for obj in objects if isinstance(obj, File)}
    assert files.keys() == expected.keys()
    for number, name in enumerate(names):
        key = ("file", name, "hosts")
        if number % 7:
            assert files[key].text is expected[key].text, name
        else:
            assert files[key].content == "edited\n"


# --- a verification takes the files this run wrote, unchanged since, as written --------------


def written_by_this_run(tmp_path, names: list[str]) -> tuple[FilesOnlySession, dict]:
    """The files of `names` written by the file writer; the desired state's Files by key."""
    session = FilesOnlySession(tmp_path)
    desired = [File(name, filename, f"{filename} of {name}\n") for name in names for filename in ("hosts", "hostname")]
    FileWriter(session)._create_file([Action("create", obj, "missing") for obj in desired])
    return session, {obj.key: obj for obj in desired}


def test_files_this_run_wrote_and_nobody_changed_since_are_not_read_again(tmp_path, monkeypatch):
    names = [f"c{number}" for number in range(5)]
    session, expected = written_by_this_run(tmp_path, names)
    reads = []
    monkeypatch.setattr(container_files, "read_small_file", lambda *args: reads.append(args))
    objects, _, _ = observe_containers.read_containers(session, names, set(names), {}, expected)
    files = {obj.key: obj for obj in objects if isinstance(obj, File)}
    assert files.keys() == expected.keys()
    assert all(files[key].text is expected[key].text for key in expected)
    assert reads == []


def overwritten_in_place(path) -> None:
    with open(path, "r+") as handle:  # the same size, the same inode
        handle.write(handle.read().upper())


def replaced_as_an_editor_does(path) -> None:
    (path.parent / "saved").write_text("127.0.0.1 edited\n")
    os.replace(path.parent / "saved", path)


@pytest.mark.parametrize("change", [overwritten_in_place, replaced_as_an_editor_does])
def test_a_file_this_run_wrote_that_changed_since_is_read_and_found_changed(tmp_path, change):
    session, expected = written_by_this_run(tmp_path, ["c0"])
    change(tmp_path / "c0" / "hosts")
    objects, _, _ = observe_containers.read_containers(session, ["c0"], {"c0"}, {}, expected)
    files = {obj.key: obj for obj in objects if isinstance(obj, File)}
    assert files[("file", "c0", "hosts")].content == (tmp_path / "c0" / "hosts").read_text() != "hosts of c0\n"
    assert files[("file", "c0", "hostname")].text is expected[("file", "c0", "hostname")].text


def test_a_file_this_run_wrote_is_read_when_the_verification_expects_another_text(tmp_path):
    session, expected = written_by_this_run(tmp_path, ["c0"])
    expected[("file", "c0", "hosts")] = File("c0", "hosts", "another text\n")
    objects, _, _ = observe_containers.read_containers(session, ["c0"], {"c0"}, {}, expected)
    assert {obj.key: obj.content for obj in objects if isinstance(obj, File)}[("file", "c0", "hosts")] == "hosts of c0\n"
