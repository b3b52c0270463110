"""Sysctl writes of one namespace look their files up from a directory opened once (the
kernel's lookup of /proc/sys/net/ipv6 from /proc walks one dentry per namespace: with
thousands of containers each write from the top cost about a millisecond). Pure: a
directory tree stands for /proc/sys."""

from __future__ import annotations

import os

from reconciler.kernel import batch


def test_the_writes_of_many_interfaces_open_their_shared_directory_once(tmp_path, monkeypatch):
    conf = tmp_path / "net" / "ipv6" / "conf"
    names = [f"veth{number}" for number in range(50)]
    for name in names:
        (conf / name).mkdir(parents=True)
        (conf / name / "disable_ipv6").write_text("0")
    absolute = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is None:
            absolute.append(str(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(batch.os, "open", recording_open)
    with batch.ProcFiles() as files:
        for name in names:
            files.write(str(conf / name / "disable_ipv6"), "1")
    assert absolute == [str(conf)]
    assert all((conf / name / "disable_ipv6").read_text() == "1" for name in names)
