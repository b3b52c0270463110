"""Safety: one writer per host namespace, and guards against emptied or truncated specs."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from reconciler.errors import GuardError, LockError
from reconciler.kernel.lock import keeper_lock, no_keeper, parse_proc_locks
from reconciler.kernel.statedir import StateDir
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired
from reconciler.state.model import State
from reconciler.state.planner import mass_deletion, plan
from tests.conftest import REPO, netns_names

FIVE = "version: 1\nnetworks:\n  front: {bridge: '@br', subnet: 172.24.0.0/24}\ncontainers:\n" + "".join(
    f"  '@c{i}': {{networks: [front]}}\n" for i in range(5))


def containers_of(text: str) -> State:
    return build_desired(load_spec_text(text.replace("@", "t-"), "spec.yaml"), State())


@pytest.mark.parametrize(("kept", "refused"), [(5, False), (3, False), (2, True), (0, True)])
def test_deleting_more_than_half_or_everything_needs_force(kept, refused):
    live = containers_of(FIVE)
    lines = FIVE.splitlines(keepends=True)
    desired = containers_of("".join(lines[:4 + kept]) if kept else "version: 1\n")
    reason = mass_deletion(desired, live)
    assert (reason is not None) is refused
    if refused:
        assert reason.startswith(f"it would delete {5 - kept} of the 5 managed containers: ")


def test_the_only_container_going_is_everything():
    live = containers_of(FIVE.split("  '@c1'")[0])
    assert mass_deletion(containers_of("version: 1\n"), live) == "it would delete 1 of the 1 managed containers: t-c0"


@pytest.mark.kernel
def test_an_emptied_spec_is_refused_without_force_and_changes_nothing(sandbox):
    spec = sandbox.write_spec(FIVE)
    sandbox.apply(spec)
    before = {n for n in netns_names() if n.startswith(sandbox.prefix)}
    truncated = sandbox.write_spec(FIVE.split("  '@c2'")[0], "truncated.yaml")
    refused = sandbox.run("apply", spec=truncated)
    assert refused.code == 1
    assert "refusing to apply: it would delete 3 of the 5 managed containers: " in refused.stderr
    assert "--force" in refused.stderr
    assert {n for n in netns_names() if n.startswith(sandbox.prefix)} == before
    plan = sandbox.run("plan", spec=truncated)
    assert "warning: it would delete 3 of the 5 managed containers" in plan.stdout
    forced = sandbox.run("apply", "--force", spec=truncated)
    assert forced.code == 0, forced.stderr
    assert {n for n in netns_names() if n.startswith(sandbox.prefix)} == before - {
        sandbox.name(f"c{i}") for i in (2, 3, 4)}


@pytest.mark.kernel
def test_a_second_writer_waits_for_the_lock_and_gives_up_after_the_timeout(sandbox):
    spec = sandbox.write_spec(FIVE)
    sandbox.apply(spec)
    lock_path = sandbox.state_dir / f"netns-{sandbox.host}" / "lock"
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, b"pid 4242\n", 0)  # what an earlier, long gone holder may have left: not the holder
        blocked = sandbox.run("apply", "--lock-timeout", "0.5", spec=spec)
    finally:
        os.close(fd)
    assert blocked.code == 1
    assert f"waiting for another netreconcile (pid {os.getpid()})" in blocked.stderr
    assert "4242" not in blocked.stderr
    assert "has been working on this host namespace for over 0.5 s" in blocked.stderr
    assert sandbox.run("apply", "--lock-timeout", "0.5", spec=spec).code == 0


@pytest.mark.kernel
def test_two_applies_at_once_end_with_one_complete_spec(sandbox):
    sandbox.apply(sandbox.write_spec("version: 1\nnetworks:\n  front: {bridge: '@br', subnet: 172.24.0.0/24}\n"
                                     "containers:\n  '@seed': {networks: [front]}\n", "seed.yaml"))
    first = sandbox.write_spec(FIVE.replace("'@c", "'@a"), "first.yaml")
    second = sandbox.write_spec(FIVE.replace("'@c", "'@b"), "second.yaml")
    command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host, "--state-dir",
               str(sandbox.state_dir), "apply", "--force"]
    runs = [subprocess.Popen([*command, str(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
            for spec in (first, second)]
    codes = [run.wait(timeout=120) for run in runs]
    assert codes == [0, 0], [run.stderr.read() for run in runs]
    ours = {n for n in netns_names() if n.startswith(sandbox.prefix) and n != sandbox.host}
    winner = first if sandbox.name("a0") in ours else second
    letter = "a" if winner is first else "b"
    assert ours == {sandbox.name(f"{letter}{i}") for i in range(5)}
    assert sandbox.run("apply", "-o", "json", spec=winner).json()["actions"] == []


def test_lock_holders_are_read_from_the_kernel_table_not_from_waiters_or_other_files():
    table = ("1: FLOCK  ADVISORY  WRITE 4242 00:2d:77 0 EOF\n"
             "1: -> FLOCK  ADVISORY  WRITE 5151 00:2d:77 0 EOF\n"
             "2: FLOCK  ADVISORY  READ 6161 00:2d:78 0 EOF\n"
             "3: POSIX  ADVISORY  WRITE 7171 00:2d:77 0 EOF\n"
             "4: FLOCK  ADVISORY  READ 8181 00:2d:77 0 EOF\n"
             "5: FLOCK  ADVISORY  READ 9191 00:2e:77 0 EOF\n")
    assert parse_proc_locks(table, 0, 0x2d, 77) == [4242, 8181]
    assert parse_proc_locks(table, 0, 0x99, 78) == [6161]  # no exact device: the inode alone
    assert parse_proc_locks(table, 0, 0x2d, 79) == []


def test_destroy_is_refused_while_a_keeper_runs_and_keepers_wait_for_a_destroy(tmp_path):
    state = StateDir(tmp_path, "h")
    with no_keeper(state):  # nothing ever ran here: nothing to refuse, nothing left behind
        pass
    assert not state.path.exists()
    with keeper_lock(state, timeout=1), keeper_lock(state, timeout=1):  # watch and sync may keep it together
        with pytest.raises(LockError, match=rf"refusing to destroy: .*\(pid {os.getpid()}\).*kill -TERM {os.getpid()}"):
            with no_keeper(state):
                pass
    waited = []
    with no_keeper(state):
        with pytest.raises(LockError, match=rf"netreconcile destroy \(pid {os.getpid()}\) has been working"):
            with keeper_lock(state, timeout=0.1, on_wait=waited.append):
                pass
    assert waited == [f"waiting for netreconcile destroy (pid {os.getpid()}) working on this host namespace"]
    with keeper_lock(state, timeout=0.1):
        pass


def test_the_plan_says_whether_it_may_run_without_force():
    live = containers_of(FIVE)
    truncated = plan(containers_of(FIVE.split("  '@c2'")[0]), live)
    assert truncated.guard == mass_deletion(containers_of(FIVE.split("  '@c2'")[0]), live)
    with pytest.raises(GuardError, match="refusing to apply: it would delete 3 of the 5 managed containers: .*--force"):
        truncated.raise_if_unsafe()
    truncated.raise_if_unsafe(force=True)
    plan(containers_of(FIVE), live).raise_if_unsafe()
    assert plan(State(), live, destroying=True).guard is None  # destroy removes everything: what it is for
