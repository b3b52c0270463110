"""The record of the container files (reconciler.kernel.file_record): a file whose stat is
as recorded is not read again; any change to it (even one that sets its mtime back) is
found, and so is a desired text other than the recorded one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from reconciler.kernel import file_record
from reconciler.kernel.container_files import observe_files
from reconciler.kernel.file_record import RACY_NS, FileRecord, digest, entries_after, stat_key
from reconciler.kernel.statedir import StateDir
from reconciler.state.model import File, State
from tests.conftest import eventually, sh
from tests.test_kernel import THREE

HOSTS = "127.0.0.1\tlocalhost\n172.31.0.2\tweb\n"


@pytest.fixture
def container_dir(tmp_path):
    """An etc-netns directory with container web's hosts file; its descriptor."""
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "hosts").write_text(HOSTS)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def recorded(path: Path, text: str = HOSTS) -> FileRecord:
    return FileRecord({("file", "web", "hosts"): (stat_key(os.lstat(path)), digest(text))})


def test_a_file_as_recorded_is_left_out_and_noted(container_dir):
    etc, fd = container_dir
    record = recorded(etc / "web" / "hosts")
    found, _ = observe_files(fd, str(etc / "web"), "web", record=record)
    assert found == [] and record.unread == {("file", "web", "hosts"): digest(HOSTS)}


def test_a_write_that_sets_the_mtime_back_is_read(container_dir):
    etc, fd = container_dir
    path = etc / "web" / "hosts"
    record = recorded(path)
    before = os.lstat(path)
    path.write_text(HOSTS.replace("web", "wub"))  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -d: the ctime still moves
    found, _ = observe_files(fd, str(etc / "web"), "web", record=record)
    assert found == [File("web", "hosts", HOSTS.replace("web", "wub"))] and record.unread == {}
    assert record.seen[("file", "web", "hosts")] == stat_key(os.lstat(path))


def test_only_files_read_as_wanted_and_not_changed_just_now_are_recorded(container_dir):
    etc, _ = container_dir
    found = os.lstat(etc / "web" / "hosts")
    record = FileRecord()
    keys = [("file", "web", name) for name in ("hosts", "hostname", "resolv.conf")]
    for key in keys:
        record.was_read(key, found)
    desired = State.of([File("web", "hosts", HOSTS), File("web", "hostname", "web\n"), File("web", "resolv.conf", "")])
    live = State.of([File("web", "hosts", HOSTS), File("web", "hostname", "old\n"), File("web", "resolv.conf", "")])
    record.began_ns = found.st_ctime_ns + RACY_NS + 1  # the observation began long enough after the change
    assert entries_after(record, desired, live) == {
        keys[0]: (stat_key(found), digest(HOSTS)), keys[2]: (stat_key(found), digest(""))}
    record.began_ns = found.st_ctime_ns + RACY_NS // 2  # changed just before: read again next time
    assert entries_after(record, desired, live) == {}


class StateOnlySession:
    def __init__(self, path: Path, etc: Path | None = None) -> None:
        self.state = StateDir(path, None)
        self.state.path = path  # this directory itself, not a host's directory under it
        self.etc = etc

    def etc_dir(self, netns: str) -> str:
        return os.path.join(self.etc, netns)


def test_the_record_is_written_0600_and_read_back(tmp_path):
    session = StateOnlySession(tmp_path / "state")
    found = SimpleNamespace(st_dev=1, st_ino=2, st_size=len(HOSTS), st_mtime_ns=4, st_ctime_ns=5)  # long ago
    record = FileRecord()
    record.was_read(("file", "web", "hosts"), found)
    desired = State.of([File("web", "hosts", HOSTS)])
    file_record.write(session, record, desired, desired)
    written = tmp_path / "state" / file_record.RECORD_NAME
    assert written.stat().st_mode & 0o777 == 0o600
    assert file_record.load(session).entries == {("file", "web", "hosts"): (stat_key(found), digest(HOSTS))}


@pytest.mark.parametrize("spoil", ["symlink", "group-writable", "damaged", "other version"])
def test_a_record_that_cannot_be_trusted_reads_as_empty(tmp_path, spoil):
    state = tmp_path / "state"
    state.mkdir()
    document = {"version": file_record.RECORD_VERSION, "files": {"web/hosts": [1, 2, 3, 4, 5, digest(HOSTS)]}}
    good = tmp_path / "good.json"
    good.write_text(json.dumps(document))
    good.chmod(0o600)
    path = state / file_record.RECORD_NAME
    session = StateOnlySession(state)
    os.link(good, path)
    assert file_record.load(session).entries  # as written, it is read
    path.unlink()
    if spoil == "symlink":
        path.symlink_to(good)
    else:
        texts = {"group-writable": json.dumps(document), "damaged": "{not json",
                 "other version": json.dumps({**document, "version": 99})}
        path.write_text(texts[spoil])
        path.chmod(0o620 if spoil == "group-writable" else 0o600)
    assert file_record.load(session).entries == {}


def test_settle_takes_the_wanted_text_only_where_its_digest_is_the_recorded_one(container_dir):
    etc, _ = container_dir
    (etc / "web" / "hostname").write_text("web\n")
    record = FileRecord()
    record.unread = {("file", "web", "hosts"): digest(HOSTS), ("file", "web", "hostname"): digest("web\n")}
    wanted_hosts = File("web", "hosts", HOSTS)
    desired = State.of([wanted_hosts, File("web", "hostname", "db\n")])
    settled = file_record.settle(State(), desired, record, StateOnlySession(etc, etc))
    assert settled.objects[("file", "web", "hosts")].content is wanted_hosts.content  # not read: the wanted text
    assert settled.objects[("file", "web", "hostname")] == File("web", "hostname", "web\n")  # read


# --- in the kernel ------------------------------------------------------------------

def record_of(sandbox) -> dict:
    paths = list(Path(sandbox.state_dir).glob(f"*/{file_record.RECORD_NAME}"))
    return json.loads(paths[0].read_text())["files"] if paths else {}


def recorded_after_no_ops(sandbox, spec: Path) -> dict:
    """Apply until a no-op has recorded web's hosts file (files changed within RACY_NS
    are not recorded yet), each apply a no-op."""
    hosts = f"{sandbox.name('web')}/hosts"

    def has_record() -> bool:
        assert sandbox.apply(spec)["actions"] == []
        return hosts in record_of(sandbox)

    eventually(has_record, "a no-op apply records the hosts file", timeout=60)
    return record_of(sandbox)


@pytest.mark.kernel
def test_a_hand_edit_that_restores_the_mtime_is_found_and_restored_and_destroy_drops_the_record(sandbox):
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    recorded_after_no_ops(sandbox, spec)
    hosts = Path("/etc/netns") / sandbox.name("web") / "hosts"
    wanted = hosts.read_text()
    mtime = sh(f"stat -c %y {hosts}").strip()
    hosts.write_text(wanted.replace("localhost", "localhust"))  # same size
    sh(f"touch -d '{mtime}' {hosts}")
    actions = sandbox.apply(spec)["actions"]
    assert [(a["op"], a["kind"], a["name"]) for a in actions] == [("update", "file", f"{sandbox.name('web')}/hosts")]
    assert hosts.read_text() == wanted
    assert sandbox.apply(spec)["actions"] == []
    assert sandbox.run("destroy", spec=spec).code == 0
    assert not list(Path(sandbox.state_dir).glob(f"*/{file_record.RECORD_NAME}"))  # destroy leaves no record


@pytest.mark.kernel
def test_a_record_is_trusted_for_a_stat_identical_file_only(sandbox):
    """The threat model: whoever can write the record (root: the state directory) can make
    a no-op take a file for what it records. Planted with the stat of a hand-edited file
    and the wanted text's digest, it hides that edit; the next change to the file (a chmod)
    is found."""
    spec = sandbox.write_spec(THREE)
    sandbox.apply(spec)
    files = recorded_after_no_ops(sandbox, spec)
    key = f"{sandbox.name('web')}/hosts"
    hosts = Path("/etc/netns") / key
    wanted = hosts.read_text()
    hosts.write_text("# edited by hand\n")
    files[key] = [*stat_key(os.lstat(hosts)), digest(wanted)]
    path = next(Path(sandbox.state_dir).glob(f"*/{file_record.RECORD_NAME}"))
    path.write_text(json.dumps({"version": file_record.RECORD_VERSION, "files": files}))
    assert sandbox.apply(spec)["actions"] == []  # trusted: stat as recorded
    assert hosts.read_text() == "# edited by hand\n"
    hosts.chmod(0o644)  # moves the ctime: no longer as recorded
    actions = sandbox.apply(spec)["actions"]
    assert [(a["op"], a["name"]) for a in actions] == [("update", key)]
    assert hosts.read_text() == wanted
