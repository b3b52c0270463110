"""Container files are never written, read or deleted through a symbolic link; debris of
a killed write is reported and removed; destroy leaves no state directory behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
host:
  resolv_conf: {resolv}
networks:
  front:
    bridge: "@br"
    subnet: 172.31.0.0/24
containers:
  "@web":
    networks: [front]
"""
WEB_LINE = 9  # of "@web:" in SPEC, column 3
VICTIMS = {"hosts": "victim hosts\n", "hostname": "victim hostname\n", "resolv.conf": "victim resolv.conf\n"}


@pytest.fixture
def box(sandbox):
    """The sandbox with a spec, an --etc-netns directory in tmp_path and a directory of
    victim files a link may point to."""
    resolv = sandbox.tmp / "host-resolv.conf"
    resolv.write_text("nameserver 198.51.100.53\n")
    sandbox.spec = sandbox.write_spec(SPEC.format(resolv=resolv))
    sandbox.etc = sandbox.tmp / "etc-netns"
    sandbox.etc.mkdir()
    sandbox.victim = sandbox.tmp / "victim"
    sandbox.victim.mkdir()
    for filename, content in VICTIMS.items():
        (sandbox.victim / filename).write_text(content)
    return sandbox


def run(box, *args: str):
    return box.run("--etc-netns", str(box.etc), *args, spec=box.spec)


def victims_untouched(box) -> None:
    assert {p.name: p.read_text() for p in box.victim.iterdir()} == VICTIMS


def web_dir(box) -> Path:
    return box.etc / box.name("web")


def test_symlinked_container_directory_is_a_conflict_and_never_followed(box):
    web_dir(box).symlink_to(box.victim)
    applied = run(box, "apply")
    assert applied.code == 1
    assert f"spec.yaml:{WEB_LINE}:3: {web_dir(box)} is a symbolic link" in applied.stderr
    assert "nothing was changed" in applied.stderr
    planned = run(box, "plan")
    assert planned.code == 1
    assert f"spec.yaml:{WEB_LINE}:3: {web_dir(box)} is a symbolic link" in planned.stdout
    assert box.name("web") not in os.listdir("/run/netns")
    victims_untouched(box)
    assert run(box, "destroy").code == 0
    assert web_dir(box).is_symlink()
    victims_untouched(box)


def test_symlinked_directory_of_a_managed_container_survives_destroy_with_its_target(box):
    assert run(box, "apply").code == 0
    for path in web_dir(box).iterdir():
        path.unlink()
    web_dir(box).rmdir()
    web_dir(box).symlink_to(box.victim)
    status = run(box, "status")
    assert status.code == 1
    assert f"{web_dir(box)} is a symbolic link" in status.stdout
    assert run(box, "apply").code == 1
    victims_untouched(box)
    destroyed = run(box, "destroy")
    assert destroyed.code == 0, destroyed.stderr
    assert web_dir(box).is_symlink()
    victims_untouched(box)


def test_symlinked_file_is_a_conflict_never_read_written_or_deleted_through(box):
    assert run(box, "apply").code == 0
    hosts = web_dir(box) / "hosts"
    hosts.unlink()
    hosts.symlink_to(box.victim / "hosts")
    planned = run(box, "plan", "-o", "json")
    assert planned.code == 1
    document = planned.json()
    assert document["conflicts"] == [f"{box.spec}:{WEB_LINE}:3: {hosts} is a symbolic link; netreconcile never "
                                     "writes, reads or deletes through one: remove it"]
    assert "victim" not in planned.stdout
    assert run(box, "apply").code == 1
    victims_untouched(box)
    assert hosts.is_symlink()
    assert run(box, "destroy").code == 0
    victims_untouched(box)
    assert hosts.is_symlink()  # not netreconcile's: left where it was


def test_symlinked_file_planted_before_the_first_apply_is_a_conflict(box):
    web_dir(box).mkdir()
    (web_dir(box) / "resolv.conf").symlink_to(box.victim / "resolv.conf")
    applied = run(box, "apply")
    assert applied.code == 1
    assert f"{web_dir(box) / 'resolv.conf'} is a symbolic link" in applied.stderr
    victims_untouched(box)
    assert (web_dir(box) / "resolv.conf").is_symlink()


def test_a_file_where_the_container_directory_goes_is_a_conflict(box):
    web_dir(box).write_text("not ours\n")
    applied = run(box, "apply")
    assert applied.code == 1
    assert f"spec.yaml:{WEB_LINE}:3: {web_dir(box)} is not a directory: remove it" in applied.stderr
    assert web_dir(box).read_text() == "not ours\n"


def test_files_are_written_with_mode_644_and_no_temporary_file_is_left(box):
    previous = os.umask(0o077)  # the child inherits it: the mode must not depend on it
    try:
        assert run(box, "apply").code == 0
    finally:
        os.umask(previous)
    assert sorted(os.listdir(web_dir(box))) == ["hostname", "hosts", "resolv.conf"]
    for path in web_dir(box).iterdir():
        assert path.stat().st_mode & 0o777 == 0o644


def test_temporary_file_of_a_killed_write_is_drift_until_apply_removes_it(box):
    assert run(box, "apply").code == 0
    debris = web_dir(box) / ".hosts.netreconcile-12345"
    debris.write_text("half a hosts file")
    status = run(box, "status", "--detailed-exitcode")
    assert status.code == 2, status.stdout + status.stderr
    assert ".hosts.netreconcile-12345" in status.stdout
    applied = run(box, "apply", "-o", "json")
    assert applied.code == 0, applied.stderr
    assert [(a["op"], a["kind"], a["name"]) for a in applied.json()["actions"]] == [
        ("delete", "leftover", f"{box.name('web')}/.hosts.netreconcile-12345")]
    assert not debris.exists()
    assert run(box, "status", "--detailed-exitcode").code == 0


def test_a_link_with_a_temporary_name_is_not_taken_for_debris(box):
    assert run(box, "apply").code == 0
    link = web_dir(box) / ".hosts.netreconcile-12345"
    link.symlink_to(box.victim / "hosts")
    assert run(box, "status", "--detailed-exitcode").code == 0
    assert run(box, "destroy").code == 0
    assert link.is_symlink()
    victims_untouched(box)


def test_destroy_removes_the_state_directory_of_the_host_namespace(box):
    assert run(box, "apply").code == 0
    state = box.state_dir / f"netns-{box.host}"
    assert (state / "namespaces.json").exists()
    destroyed = run(box, "destroy")
    assert destroyed.code == 0, destroyed.stderr
    assert not state.exists(), sorted(os.listdir(state))
    assert not web_dir(box).exists()
    assert run(box, "apply").code == 0  # and the next run starts afresh
    assert run(box, "destroy").code == 0
    assert not state.exists()


def test_write_atomically_never_follows_a_link_at_its_temporary_name(tmp_path, monkeypatch):
    from reconciler.kernel import files

    victim = tmp_path / "victim"
    victim.write_text("victim\n")
    directory = tmp_path / "web"
    directory.mkdir()
    monkeypatch.setattr(files.secrets, "token_hex", lambda size: "guessed")
    (directory / ".hosts.netreconcile-guessed").symlink_to(victim)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            files.write_atomically(dir_fd, "hosts", "ours\n")
    finally:
        os.close(dir_fd)
    assert victim.read_text() == "victim\n"
    assert not (directory / "hosts").exists()


def test_temporary_names_are_unpredictable_and_carry_the_mark(tmp_path, monkeypatch):
    from reconciler.kernel import files
    from reconciler.kernel.container_files import is_temporary

    names = []
    real_replace = os.replace
    monkeypatch.setattr(files.os, "replace", lambda src, dst, **fds: names.append(src) or real_replace(src, dst, **fds))
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        files.write_atomically(dir_fd, "hosts", "one\n")
        files.write_atomically(dir_fd, "hosts", "two\n")
    finally:
        os.close(dir_fd)
    assert names[0] != names[1] and all(is_temporary(name) for name in names)
    assert os.listdir(tmp_path) == ["hosts"] and (tmp_path / "hosts").read_text() == "two\n"


def test_a_link_put_where_a_container_namespace_was_is_never_followed(sandbox):
    """/run/netns/<name> comes from the spec: a symbolic link put there (here to the host
    namespace) is no namespace of ours, reported as in the way, and not entered."""
    spec = sandbox.write_spec("version: 1\nnetworks:\n  front: {subnet: 198.51.100.0/24}\n"
                              "containers:\n  '@web': {networks: [front]}\n")
    sandbox.apply(spec)
    web = f"/run/netns/{sandbox.name('web')}"
    subprocess.run(["umount", web], check=True)
    os.unlink(web)
    os.symlink(f"/run/netns/{sandbox.host}", web)
    try:
        result = sandbox.run("plan", spec=spec)
        assert result.code == 1 and "Traceback" not in result.stderr, result.stderr
        assert f"network namespace {sandbox.name('web')} exists and is not managed by netreconcile" in result.stdout
        assert os.path.islink(web)  # left alone
    finally:
        os.unlink(web)
