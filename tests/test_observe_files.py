"""Reading a container's files: whatever is put where a file should be, the read neither
blocks nor follows it."""

from __future__ import annotations

import os
import threading

from reconciler.kernel.container_files import read_small_file


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
