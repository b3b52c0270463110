"""Reading a container's files: whatever is put where a file should be, the read neither
blocks nor follows it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from reconciler.kernel.container_files import observe_files, read_small_file
from reconciler.kernel.observe_containers import PARALLEL_FROM, read_containers
from reconciler.state.model import File


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


# --- a verification's read shares the texts it expects --------------------------------------

class FilesOnlySession:
    """What read_containers uses of a session to read the files of alias names only."""

    def __init__(self, etc: Path):
        self.etc = etc

    def open_etc_netns(self) -> int:
        return os.open(self.etc, os.O_RDONLY | os.O_DIRECTORY)

    def etc_dir(self, name: str) -> str:
        return str(self.etc / name)


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
    assert by_name["hosts"].content is expected[("file", "c0", "hosts")].content
    assert by_name["hostname"].content == "changed by hand\n"


def test_files_read_by_the_second_process_as_expected_come_back_as_the_expected_texts(tmp_path):
    names = [f"c{number}" for number in range(PARALLEL_FROM + 10)]
    expected = {}
    for number, name in enumerate(names):
        (tmp_path / name).mkdir()
        text = f"10.88.{number // 250}.{number % 250}\t{name}\n"
        (tmp_path / name / "hosts").write_text(text if number % 7 else "edited\n")
        expected[("file", name, "hosts")] = File(name, "hosts", "".join(text))
    objects, _, _ = read_containers(FilesOnlySession(tmp_path), names, set(names), {}, expected)
    files = {obj.key: obj for obj in objects if isinstance(obj, File)}
    assert files.keys() == expected.keys()
    for number, name in enumerate(names):
        key = ("file", name, "hosts")
        if number % 7:
            assert files[key].content is expected[key].content, name
        else:
            assert files[key].content == "edited\n"
