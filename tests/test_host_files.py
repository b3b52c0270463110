"""reconciler.run.engine.read_host_files: which host files may be copied into container files.

Container files are readable by every user, so a host file that is not, or that the
spec names through a symlink, is refused. Only regular files in tmp_path are made here.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

from reconciler.errors import PrerequisiteError, SpecError
from reconciler.render import resolvconf
from reconciler.run import engine
from reconciler.spec.loader import load_spec_text
from reconciler.spec.types import HostSpec

RESOLV = "nameserver 198.51.100.53\nsortlist 198.51.100.0/255.255.255.0\n"


def spec_naming(path) -> object:
    return load_spec_text(f"version: 1\nhost:\n  resolv_conf: {path}\n", "spec.yaml")


def shared_file(tmp_path, name: str = "resolv.conf", mode: int = 0o644):
    path = tmp_path / name
    path.write_text(RESOLV)
    path.chmod(mode)
    return path


def test_a_world_readable_file_is_read(tmp_path):
    path = shared_file(tmp_path)
    assert engine.read_host_files(spec_naming(path)).resolv_conf == RESOLV


def test_a_missing_file_reads_as_empty(tmp_path):
    assert engine.read_host_files(spec_naming(tmp_path / "absent")).resolv_conf == ""


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o000, 0o603], ids=oct)
def test_a_file_not_every_user_may_read_is_refused_at_its_spec_location(tmp_path, mode):
    path = shared_file(tmp_path, mode=mode)
    with pytest.raises(SpecError) as caught:
        engine.read_host_files(spec_naming(path))
    assert str(caught.value) == (
        f"spec.yaml:3:16: host.resolv_conf: {path} is not readable by every user (mode {mode:04o}), "
        "and its lines would be copied into container files that every user can read"
    )


def test_a_symlink_named_by_the_spec_is_refused(tmp_path):
    link = tmp_path / "link.conf"
    link.symlink_to(shared_file(tmp_path))
    with pytest.raises(SpecError, match=f"3:16: host.resolv_conf: {link} is a symbolic link: name the file itself"):
        engine.read_host_files(spec_naming(link))


def test_a_dangling_symlink_is_refused_not_read_as_missing(tmp_path):
    link = tmp_path / "link.conf"
    link.symlink_to(tmp_path / "absent")
    with pytest.raises(SpecError, match="is a symbolic link"):
        engine.read_host_files(spec_naming(link))


def test_the_systems_own_resolv_conf_is_followed_through_its_symlink(tmp_path, monkeypatch):
    """systemd-resolved and resolvconf make /etc/resolv.conf a symlink."""
    link = tmp_path / "etc-resolv.conf"
    link.symlink_to(shared_file(tmp_path))
    monkeypatch.setattr(resolvconf, "DEFAULT_PATH", str(link))
    assert engine.read_host_files(spec_naming(link)).resolv_conf == RESOLV


def test_the_default_file_not_every_user_may_read_is_a_prerequisite_error(tmp_path, monkeypatch):
    """Not named in the spec, so there is no spec location to point at."""
    path = shared_file(tmp_path, mode=0o600)
    monkeypatch.setattr(resolvconf, "DEFAULT_PATH", str(path))
    spec = dataclasses.replace(load_spec_text("version: 1\n", "spec.yaml"), host=HostSpec(resolv_conf=str(path)))
    with pytest.raises(PrerequisiteError, match=f"the host's resolv.conf {path} is not readable by every user"):
        engine.read_host_files(spec)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(SpecError, match=f"host.resolv_conf: {tmp_path} is not a regular file"):
        engine.read_host_files(spec_naming(tmp_path))


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o644)
    with pytest.raises(SpecError, match="is not a regular file"):
        engine.read_host_files(spec_naming(fifo))
