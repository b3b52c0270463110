"""Watch mode's pass handling without a kernel: the engine and the session are stubbed."""

from __future__ import annotations

import contextlib

import pytest

from reconciler.errors import ApplyError, VerifyError
from reconciler.run import watch as watch_module
from reconciler.run.sources import FileSource
from reconciler.run.watch import VERIFY_RETRIES, Watcher
from reconciler.state.desired import NO_HOST_FILES
from reconciler.state.model import State
from reconciler.state.plan import Plan

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
