"""The host lock: one holder at a time, also when destroy retires the lock file; the
DNS server's lock, which tells apply and status whether something serves DNS."""

from __future__ import annotations

import threading

import pytest

from reconciler.errors import LockError
from reconciler.kernel.lock import dns_served, dns_serving, host_lock, keeper_lock, no_keeper
from reconciler.kernel.statedir import StateDir
from tests.conftest import eventually


def test_a_waiter_for_a_retired_lock_file_locks_the_new_one(tmp_path):
    state = StateDir(tmp_path, "h")
    waiting, acquired, done = threading.Event(), threading.Event(), threading.Event()

    def waiter() -> None:
        with host_lock(state, timeout=30, on_wait=lambda message: waiting.set()):
            acquired.set()
            done.wait(30)

    with host_lock(state, timeout=0) as held:
        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        eventually(waiting.is_set, "the second process waits for the lock")
        assert held.retire()
        assert not state.path.exists()
    try:
        eventually(acquired.is_set, "the waiter gets the lock")
        assert (state.path / "lock").exists()
        with pytest.raises(LockError):  # the waiter holds the lock at the path, not a retired file
            with host_lock(state, timeout=0):
                pass
    finally:
        done.set()
        thread.join(30)


def test_retire_keeps_a_state_directory_that_still_holds_records(tmp_path):
    state = StateDir(tmp_path, "h")
    state.write_pending_links({"veth1234567": "veth"})
    with host_lock(state, timeout=0) as held:
        assert not held.retire()
    assert (state.path / "lock").exists()


def test_a_watch_waiting_for_a_destroy_keeps_the_new_keeper_file_and_a_second_destroy_refuses(tmp_path):
    state = StateDir(tmp_path, "h")
    state.path.mkdir(parents=True)
    waiting, acquired, done = threading.Event(), threading.Event(), threading.Event()

    def watch() -> None:
        with keeper_lock(state, timeout=30, on_wait=lambda message: waiting.set()):
            acquired.set()
            done.wait(30)

    with no_keeper(state), host_lock(state, timeout=0) as held:
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        eventually(waiting.is_set, "the watch waits for the destroy")
        assert held.retire()
        assert not state.path.exists()
    try:
        eventually(acquired.is_set, "the watch starts once the destroy is done")
        assert (state.path / "keeper").exists()
        with pytest.raises(LockError, match="refusing to destroy"):
            with no_keeper(state):
                pass
    finally:
        done.set()
        thread.join(30)


def test_dns_is_served_exactly_while_a_server_holds_its_lock(tmp_path):
    state = StateDir(tmp_path, "h")
    assert not dns_served(state)
    assert not state.path.exists()  # probing creates nothing
    with dns_serving(state), dns_serving(state):  # shared: watch and `netreconcile dns` may both serve
        assert dns_served(state)
    assert not dns_served(state)


def test_retire_keeps_the_dns_lock_of_a_running_server_and_retires_it_after(tmp_path):
    state = StateDir(tmp_path, "h")
    with dns_serving(state):
        with host_lock(state, timeout=0) as held:
            assert not held.retire()
        assert dns_served(state)
    with host_lock(state, timeout=0) as held:
        assert held.retire()
    assert not state.path.exists()


def test_a_background_resolver_whose_server_fails_gives_up_the_dns_lock(tmp_path, monkeypatch):
    """watch and sync serve DNS on a thread: when that server dies, apply and status must
    warn again, so the lock saying DNS is served goes with it."""
    from reconciler.run import resolver

    def failing_serve(self, reload):
        reload()
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(resolver.Server, "serve", failing_serve)
    state = StateDir(tmp_path, "h")
    background = resolver.BackgroundResolver(None, state)  # the test's own namespace: only its fd is opened
    try:
        eventually(lambda: not dns_served(state), "the failed server's dns lock released")
    finally:
        background.close()
    assert not dns_served(state)
