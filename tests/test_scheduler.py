"""Watch mode's pass scheduling and fight detection (pure: the tests pass the time in)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.run.scheduler import HOLD_ENDED, MAX_BATCH_FACTOR, RESYNC, FightDetector, PassScheduler
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired
from reconciler.state.model import State
from reconciler.state.planner import hold_back, plan


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


def test_a_pass_is_due_when_a_hold_ends_without_any_trigger():
    s = scheduler(resync=3600.0)
    s.started_pass(1.0)
    s.finished_pass(1.0, ok=True, wake_at=5.0)
    assert s.due(4.9) == ()
    assert abs(s.wait_time(2.0) - 3.0) < 1e-9
    assert s.due(5.0) == (HOLD_ENDED,)
    s.started_pass(5.0)
    s.finished_pass(5.1, ok=True)
    assert s.due(100.0) == ()


def test_a_hold_does_not_delay_passes_for_other_triggers():
    s = scheduler()
    s.started_pass(1.0)
    s.finished_pass(1.0, ok=True, wake_at=33.0)
    s.trigger("netlink:host", 1.5)
    assert s.due(1.6) == ("netlink:host",)


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


def test_an_object_changed_back_again_and_again_is_held_alone_with_growing_holds():
    fights = FightDetector(threshold=3, window=60.0, max_hold=8.0)
    key, other = ("firewall", ""), ("veth", "veth1234567")
    assert fights.record([key], 1.0) == {}
    assert fights.record([key, other], 2.0) == {}
    assert fights.held(2.0) == frozenset() and fights.next_release(2.0) is None
    assert fights.record([key], 3.0) == {key: 2.0}
    assert fights.held(3.0) == {key}  # the veth, corrected as often, but not three times, is not held
    assert fights.next_release(3.0) == 5.0
    assert fights.held(5.0) == frozenset()
    holds = [fights.record([key], moment)[key] for moment in (5.0, 7.0, 11.0, 19.0)]
    assert holds == [4.0, 8.0, 8.0, 8.0]
    assert fights.record([other], 90.0) == {}  # the firewall was left alone for a window: it starts afresh
    assert fights.held(90.0) == frozenset() and fights.next_release(90.0) is None
    assert fights.record([key], 91.0) == {}


def test_corrections_spread_beyond_the_window_are_no_fight():
    fights = FightDetector(threshold=3, window=60.0)
    key = ("file", "web", "hosts")
    assert [fights.record([key], moment) for moment in (0.0, 50.0, 120.0, 190.0)] == [{}, {}, {}, {}]


HELD_SPEC = ("version: 1\nnetworks:\n  front: {subnet: 10.1.0.0/24}\ncontainers:\n"
             "  web: {networks: [front], ports: ['8080:80']}\n  db: {networks: [front]}\n")


def desired_and_live(*missing_kinds_or_keys) -> tuple[State, State]:
    """The spec's objects, and the same live without the given kinds, keys, and links of containers."""
    desired = build_desired(load_spec_text(HELD_SPEC, "spec.yaml"), State())
    live = State({key: obj for key, obj in desired.objects.items()
                  if key[0] not in missing_kinds_or_keys and key not in missing_kinds_or_keys
                  and not (key[0] in ("veth", "address", "route") and obj.netns in missing_kinds_or_keys)})
    return desired, live


def test_a_held_object_waits_and_everything_else_is_repaired_at_once():
    desired, live = desired_and_live("firewall", "web", "db", ("sysctl", "", "net.ipv4.ip_forward"))
    current = plan(desired, live)
    assert {a.kind for a in current.actions} == {"firewall", "veth", "address", "route", "sysctl"}
    kept, waiting = hold_back(current, frozenset({("firewall", "")}))
    # forwarding is switched on only behind the firewall, so it waits with it
    assert [a.key for a in waiting] == [("firewall", ""), ("sysctl", "", "net.ipv4.ip_forward")]
    assert {a.key for a in kept.actions} == {a.key for a in current.actions} - {a.key for a in waiting}
    assert [a.key for a in kept.actions] == [a.key for a in current.actions if a not in waiting]  # order kept


def test_what_needs_a_held_object_waits_with_it():
    desired, live = desired_and_live("veth", "address", "route")
    web_veth = next(key for key, obj in desired.objects.items() if key[0] == "veth" and obj.netns == "web")
    kept, waiting = hold_back(plan(desired, live), frozenset({web_veth}))
    assert {a.key for a in waiting} == {web_veth, ("address", "web", "eth0", "10.1.0.2/24"), ("route", "web", 4, "default")}
    assert "web" not in {a.obj.netns for a in kept.actions} and "db" in {a.obj.netns for a in kept.actions}


def test_nothing_held_is_the_plan_itself():
    desired, live = desired_and_live("firewall")
    current = plan(desired, live)
    assert hold_back(current, frozenset()) == (current, ())
    assert hold_back(current, frozenset({("veth", "veth0000000")})) == (current, ())
