"""The writer writes container files on a thread while the netlink batches before them in
the plan run (reconciler.kernel.writer), and only then: after the namespaces and every
deletion, never left running behind a failure, and not past an injected failure. The
kind writers' operations are replaced by recorders; nothing touches the kernel."""

from __future__ import annotations

import threading

import pytest

from reconciler.errors import ApplyError
from reconciler.kernel import files
from reconciler.kernel.writer import KernelWriter
from reconciler.state.model import File, Netns, Sysctl, Veth
from reconciler.state.plan import CREATE, DELETE, Action, Plan
from tests.test_file_writes import COUNT, EtcNetnsOnly

DEADLINE = 30.0  # seconds a recorder waits for the other thread: generous, never reached when it works


def veth(name: str) -> Veth:
    return Veth(f"v{name}", name, "net", name, "eth0", "br0", "02:00:00:00:00:01", 1500, 1500)


def actions_from_scratch() -> list[Action]:
    return [Action(CREATE, Netns("c1"), "missing"), Action(CREATE, veth("c1"), "missing"),
            Action(CREATE, File("c1", "hosts", "127.0.0.1 localhost\n"), "missing"),
            Action(CREATE, File("c1", "hostname", "c1\n"), "missing"),
            Action(CREATE, Sysctl("host", "net/ipv4/ip_forward", "1"), "missing")]


class Recorder:
    """Stands in for the kind writers: logs what each group did, on which thread."""

    def __init__(self, writer: KernelWriter):
        self.log: list[tuple[str, str]] = []
        self.files_started = threading.Event()
        self.files_done = threading.Event()
        for key in [("create", "netns"), ("delete", "netns"), ("create", "veth"), ("create", "file"),
                    ("create", "sysctl")]:
            writer.operations[key] = self.recording(*key)
        writer.beside_operations["create", "file"] = writer.operations["create", "file"]
        self.veth_waits_for_files = False
        self.veth_fails = False
        self.files_wait_for_veths = threading.Event()

    def recording(self, op: str, kind: str):
        def record(actions: list[Action]) -> None:
            self.log.append((f"{op} {kind}", threading.current_thread().name))
            if kind == "file":
                self.files_started.set()
                if self.veth_fails:  # still writing when the veths fail
                    self.files_wait_for_veths.wait(DEADLINE)
                self.files_done.set()
            if kind == "veth" and self.veth_waits_for_files:
                self.files_started.wait(DEADLINE)
                self.log.append(("veth saw files started", str(self.files_started.is_set())))
            if kind == "veth" and self.veth_fails:
                self.files_wait_for_veths.set()
                raise ApplyError("cannot create veth vc1: File exists")
        return record


def test_files_are_written_on_a_thread_while_the_links_are_made():
    writer = KernelWriter(object())
    recorder = Recorder(writer)
    recorder.veth_waits_for_files = True
    assert writer.apply(Plan(tuple(actions_from_scratch()))) == 5
    steps = [step for step, _ in recorder.log]
    assert ("veth saw files started", "True") in recorder.log
    assert steps.index("create netns") < steps.index("create file")  # the namespaces first
    assert steps[-1] == "create sysctl"  # what comes after the files waits for them
    threads = dict(recorder.log)
    assert threads["create file"] != threads["create veth"] == threading.current_thread().name


def test_a_failure_beside_the_files_is_raised_once_they_are_written():
    writer = KernelWriter(object())
    recorder = Recorder(writer)
    recorder.veth_fails = True
    with pytest.raises(ApplyError, match="cannot create veth"):
        writer.apply(Plan(tuple(actions_from_scratch())))
    assert recorder.files_done.is_set()  # the rollback never observes files still being written
    assert "create sysctl" not in [step for step, _ in recorder.log]


def test_files_never_overtake_a_deletion():
    writer = KernelWriter(object())
    recorder = Recorder(writer)
    made = actions_from_scratch()
    writer.apply(Plan((*made[:2], Action(DELETE, Netns("c0"), "not in the spec"), *made[2:])))
    assert [step for step, _ in recorder.log] == ["create netns", "create veth", "delete netns", "create file",
                                                 "create sysctl"]
    assert len({thread for _, thread in recorder.log}) == 1  # nothing ran ahead


def test_no_file_past_an_injected_failure_is_written():
    writer = KernelWriter(object(), fail_after=2)  # the namespace and the veth
    recorder = Recorder(writer)
    with pytest.raises(ApplyError, match="injected failure after action 2 of 5"):
        writer.apply(Plan(tuple(actions_from_scratch())))
    assert [step for step, _ in recorder.log] == ["create netns", "create veth"]


def test_an_injected_failure_inside_the_files_writes_only_those_before_it():
    writer = KernelWriter(object(), fail_after=3)
    Recorder(writer)
    written: list[str] = []
    writer.operations["create", "file"] = writer.beside_operations["create", "file"] = (
        lambda actions: written.extend(a.obj.filename for a in actions))
    with pytest.raises(ApplyError, match="injected failure after action 3 of 5"):
        writer.apply(Plan(tuple(actions_from_scratch())))
    assert written == ["hosts"]


def test_files_beside_the_batches_are_written_by_one_thread_in_turn(tmp_path, monkeypatch):
    """The file writer's own threads would fight the sending thread for the interpreter lock."""
    session = EtcNetnsOnly(tmp_path)
    writer = KernelWriter(session)
    threads_seen = set()
    write = files.write_atomically

    def recording_write(dir_fd, filename, content):
        threads_seen.add(threading.current_thread().name)
        return write(dir_fd, filename, content)

    monkeypatch.setattr(files, "write_atomically", recording_write)
    writer.operations["create", "veth"] = lambda actions: None
    made = [Action(CREATE, veth(f"c{n}"), "missing") for n in range(COUNT)]
    made += [Action(CREATE, File(f"c{n}", "hosts", f"hosts of c{n}\n"), "missing") for n in range(COUNT)]
    writer.apply(Plan(tuple(made)))
    assert threads_seen == {"netreconcile-files-ahead"}
    assert all((tmp_path / f"c{n}" / "hosts").read_text() == f"hosts of c{n}\n" for n in range(COUNT))
