"""Watch mode's pass scheduling and fight detection (pure: the tests pass the time in)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.scheduler import MAX_BATCH_FACTOR, RESYNC, FightDetector, PassScheduler


def scheduler(**kwargs) -> PassScheduler:
    return PassScheduler(debounce=kwargs.pop("debounce", 0.1), resync=kwargs.pop("resync", 60.0), started=0.0,
                         **kwargs)


def test_a_burst_of_triggers_becomes_one_pass_after_a_quiet_period():
    s = scheduler()
    for moment in (1.0, 1.05, 1.08):
        s.trigger("netlink:host", moment)
    s.trigger("files", 1.09)
    assert s.due(1.15) == ()
    assert abs(s.wait_time(1.15) - 0.04) < 1e-9
    assert s.due(1.2) == ("files", "netlink:host")
    s.started_pass(1.2)
    s.finished_pass(1.2, ok=True)
    assert s.due(1.5) == ()


def test_a_steady_trickle_cannot_starve_the_pass():
    s = scheduler()
    moment = 1.0
    while moment < 1.0 + 0.1 * MAX_BATCH_FACTOR:
        s.trigger("netlink:host", moment)
        assert s.due(moment) == ()
        moment += 0.05
    s.trigger("netlink:host", moment)
    assert s.due(moment) == ("netlink:host",)


def test_resync_runs_a_pass_without_triggers():
    s = scheduler(resync=60.0)
    assert s.due(59.9) == ()
    assert abs(s.wait_time(30.0) - 30.0) < 1e-9
    assert s.due(60.0) == (RESYNC,)
    s.started_pass(60.0)
    s.finished_pass(60.5, ok=True)
    assert s.due(100.0) == () and s.due(120.5) == (RESYNC,)


def test_failures_back_off_exponentially_up_to_a_cap_and_success_resets():
    s = scheduler(max_backoff=8.0)
    now, waits = 0.0, []
    for _ in range(6):
        s.started_pass(now)
        waits.append(s.finished_pass(now, ok=False))
        assert s.due(now + waits[-1] - 0.01) == ()
        now += waits[-1]
        assert s.due(now) == ("retry",)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    s.started_pass(now)
    assert s.finished_pass(now, ok=True) == 0.0
    s.trigger("spec", now + 1)
    assert s.due(now + 1.2) == ("spec",)


def test_a_hold_delays_the_next_pass_even_when_triggered():
    s = scheduler()
    s.started_pass(1.0)
    s.finished_pass(1.0, ok=True, hold=4.0)
    s.trigger("netlink:host", 1.5)
    assert s.due(4.9) == ()
    assert abs(s.wait_time(2.0) - 3.0) < 1e-9
    assert s.due(5.0) == ("netlink:host",)


@given(st.lists(st.tuples(st.floats(0, 100), st.sampled_from(["a", "b", "c"])), max_size=30))
def test_every_trigger_is_served_by_a_pass_no_later_than_promised(triggers):
    s = scheduler(debounce=0.5, resync=1000.0)
    served: set[str] = set()
    for moment, reason in sorted(triggers):
        s.trigger(reason, moment)
    if not triggers:
        return
    now = max(moment for moment, _ in triggers)
    later = now + s.wait_time(now)
    assert later <= now + 0.5 + 1e-9
    served.update(s.due(later + 1e-9))
    assert served == {reason for _, reason in triggers}


def test_an_object_changed_back_again_and_again_is_a_fight_with_growing_holds():
    fights = FightDetector(threshold=3, window=60.0, max_hold=8.0)
    key = ("veth", "veth1234567")
    assert fights.record([key], 1.0) == []
    assert fights.hold([]) == 0.0
    assert fights.record([key], 5.0) == []
    assert fights.record([key], 9.0) == [key]
    assert [fights.hold([key]) for _ in range(5)] == [2.0, 4.0, 8.0, 8.0, 8.0]
    assert fights.hold([]) == 0.0


def test_corrections_spread_beyond_the_window_are_no_fight():
    fights = FightDetector(threshold=3, window=60.0)
    key = ("file", "web", "hosts")
    assert [fights.record([key], moment) for moment in (0.0, 50.0, 120.0, 190.0)] == [[], [], [], []]
