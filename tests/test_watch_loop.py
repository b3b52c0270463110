"""Watch mode's pass handling without a kernel: the engine and the session are stubbed."""

from __future__ import annotations

import contextlib

import pytest

from reconciler.errors import ApplyError, VerifyError
from reconciler.run import watch as watch_module
from reconciler.run.sources import FileSource
from reconciler.run.watch import VERIFY_RETRIES, Watcher
from reconciler.state.desired import NO_HOST_FILES
from reconciler.state.model import Netns, State
from reconciler.state.plan import CREATE, Action, Plan

SPEC = "version: 1\nnetworks:\n  front: {subnet: 10.1.0.0/24}\ncontainers:\n  web: {networks: [front]}\n"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def watcher(tmp_path, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    runner = Watcher(FileSource(str(spec)), open_session=contextlib.nullcontext, prepare_host=lambda: None, host_netns=None,
                     etc_netns=str(tmp_path / "etc"), resync=60.0, debounce=0.1, clock=Clock())
    runner.spec = runner.source.load()
    monkeypatch.setattr(runner, "_watch_everything", lambda: None)
    return runner


def fail_with(error):
    def converge(spec, session, **options):
        raise error
    return converge


def test_a_verification_spoiled_by_a_concurrent_change_is_followed_by_another_pass(watcher, monkeypatch):
    monkeypatch.setattr(watch_module, "converge", fail_with(VerifyError("the kernel still differs")))
    for _ in range(VERIFY_RETRIES):
        assert watcher._pass(("netlink:host",)) is True
        assert "changed during the pass" in watcher.scheduler.pending
    assert watcher._pass(("netlink:host",)) is False  # it keeps differing: a failure, backed off


def test_a_failed_apply_is_a_failure(watcher, monkeypatch):
    monkeypatch.setattr(watch_module, "converge", fail_with(ApplyError("cannot create veth")))
    assert watcher._pass(("spec",)) is False


def test_an_invalid_spec_edit_keeps_the_last_valid_spec_and_runs_no_pass(watcher, monkeypatch):
    calls = []
    monkeypatch.setattr(watch_module, "converge", lambda spec, session, **options: calls.append(spec) or _Outcome())
    valid = watcher.spec
    with open(watcher.source.path, "w") as handle:
        handle.write(SPEC.replace("10.1.0.0/24", "10.1.0.0/33"))
    assert watcher._pass(("spec",)) is True
    assert watcher.spec is valid and calls == []
    assert watcher._pass(("spec", "netlink:host")) is True  # drift is still repaired, by the old spec
    assert calls == [valid]


class _Outcome:
    plan = Plan()
    applied = 0
    held = ()
    observed = desired = after = State()
    host_files = NO_HOST_FILES


def test_a_hold_that_ends_during_a_pass_still_gets_a_pass_of_its_own(watcher, monkeypatch):
    key = ("firewall", "")
    for moment in (97.0, 98.0, 99.0):
        watcher.fights.record([key], moment)  # the third: held for 2 s, until 101
    clock = watcher.clock

    def slow_converge(spec, session, **options):
        assert options["held"] == {key}
        clock.now = 101.2  # the pass outlasts the hold
        return _Outcome()

    monkeypatch.setattr(watch_module, "converge", slow_converge)
    watcher.scheduler.trigger("netlink:host", 100.5)
    clock.now = 100.9
    watcher._step()
    assert "hold ended" in watcher.scheduler.due(clock.now)


class _Sources:
    """EventSources without threads: what watch asked to listen to."""

    host_change = ""

    def __init__(self):
        self.sockets: dict = {}
        self.file_watches = 0
        self.failing: set[str] = set()  # sockets that cannot be opened (their namespace vanished)

    def watch_sockets(self, openers) -> None:
        self.sockets = {reason: None for reason in openers if reason not in self.failing}

    def socket_count(self) -> int:
        return len(self.sockets)

    def watch_files(self, files, trees) -> None:
        self.file_watches += 1

    def take_host_links(self):
        return {}


class _FilledReaders:
    """Readers that keep a state: drift passes are incremental."""

    filled, reads_all, namespaces_read, host_read = True, False, 1, ""
    also_planned: set = set()

    def read_again(self, scopes, host_links, host_changed="") -> None:
        pass

    def read_everything(self) -> None:
        pass

    def forget(self) -> None:
        pass


def _applying(*actions):
    class Applied(_Outcome):
        plan = Plan(actions)
    return lambda spec, session, **options: Applied()


@pytest.fixture
def listening(watcher, monkeypatch):
    """The watcher listening for real (after each pass), counting its lists of /run/netns."""
    monkeypatch.delattr(watcher, "_watch_everything")  # the fixture's stub
    listed = []
    monkeypatch.setattr(watch_module, "list_netns", lambda: listed.append(1) or {"web"})
    watcher.sources = _Sources()
    watcher.readers = _FilledReaders()
    monkeypatch.setattr(watch_module, "converge", _applying())
    return watcher, listed


def test_a_drift_pass_that_makes_no_namespace_neither_lists_the_namespaces_nor_rebuilds_the_file_watches(
        listening, monkeypatch):
    watcher, listed = listening
    assert watcher._pass(("start",)) is True
    assert len(listed) == 1 and watcher.sources.file_watches == 1
    assert set(watcher.sources.sockets) == {"netlink:host", "nftables", "netlink:web"}
    for reasons in (("netlink:web", "netlink:host"), ("files:web",), ("nftables",), ("resolv.conf",)):
        assert watcher._pass(reasons) is True
    assert len(listed) == 1 and watcher.sources.file_watches == 1  # O(changed): nothing grows with the containers


def test_a_pass_that_can_have_made_or_deleted_a_namespace_lists_them_again(listening, monkeypatch):
    watcher, listed = listening
    watcher._pass(("start",))
    monkeypatch.setattr(watch_module, "converge", _applying(Action(CREATE, Netns("web"), "missing")))
    watcher._pass(("netlink:host",))
    assert len(listed) == 2 and watcher.sources.file_watches == 2
    monkeypatch.setattr(watch_module, "converge", _applying())
    watcher._pass(("resync",))  # a full observation
    assert len(listed) == 3
    monkeypatch.setattr(watch_module, "converge", fail_with(ApplyError("cannot create veth")))
    watcher._pass(("netlink:web",))  # a failed pass may have made some
    assert len(listed) == 4
    monkeypatch.setattr(watch_module, "converge", _applying())
    watcher.spec = watcher.source.load()  # a new spec: other containers
    watcher._pass(("netlink:web",))
    assert len(listed) == 5


def test_a_socket_that_could_not_be_opened_is_tried_again_after_the_next_pass(listening):
    watcher, listed = listening
    watcher.sources.failing = {"netlink:web"}
    watcher._pass(("start",))
    assert "netlink:web" not in watcher.sources.sockets
    watcher.sources.failing = set()
    watcher._pass(("netlink:host",))
    assert "netlink:web" in watcher.sources.sockets and len(listed) == 2
