"""When watch mode runs its next pass; pure: the caller passes the time in.

Triggers only queue a pass. A pass runs once the triggers have been quiet for the
debounce period (KERNEL_DEBOUNCE at most when only kernel events are pending: the
kernel sends the events of one change at once, while editors save a file in bursts
of several writes and renames spread over milliseconds; or have kept coming for ten debounce periods, so a steady trickle
of events cannot starve it), when the periodic resync is due, when the hold on an
object another tool is fighting over ends (see `FightDetector`: only that object
waits, never the pass), and not before the backoff after a failed pass (doubling up
to a cap) ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

RESYNC = "resync"
HOLD_ENDED = "hold ended"
MAX_BATCH_FACTOR = 10
KERNEL_DEBOUNCE = 0.01  # seconds; see the docstring
KERNEL_EVENT_PREFIXES = ("netlink:", "nftables")


def is_kernel_event(reason: str) -> bool:
    """Whether `reason` names a netlink or nftables event socket (reconciler.run.triggers)."""
    return reason.startswith(KERNEL_EVENT_PREFIXES)


@dataclass
class PassScheduler:
    debounce: float
    resync: float
    started: float
    max_backoff: float = 60.0
    pending: set[str] = field(default_factory=set)
    first_pending: float | None = None
    last_trigger: float | None = None
    last_pass: float | None = None
    failures: int = 0
    not_before: float = 0.0
    wake_at: float | None = None  # when a held object's hold ends: a pass repairs it then

    def __post_init__(self) -> None:
        self.last_pass = self.started

    def trigger(self, reason: str, now: float) -> None:
        self.pending.add(reason)
        self.last_trigger = now
        if self.first_pending is None:
            self.first_pending = now

    def due(self, now: float) -> tuple[str, ...]:
        """The reasons for a pass if one should start now, else ()."""
        if now < self.not_before:
            return ()
        if self.wake_at is not None and now >= self.wake_at:
            return tuple(sorted(self.pending | {HOLD_ENDED}))
        if self.pending:
            quiet = now - self.last_trigger >= self.quiet_period()
            waited = now - self.first_pending >= self.debounce * MAX_BATCH_FACTOR
            if quiet or waited or self.failures:
                return tuple(sorted(self.pending))
        if now - self.last_pass >= self.resync:
            return (RESYNC,)
        return ()

    def wait_time(self, now: float) -> float:
        """Seconds until `due` can change without a new trigger."""
        moments = [self.last_pass + self.resync]
        if self.wake_at is not None:
            moments.append(self.wake_at)
        if self.pending:
            moments += [self.last_trigger + self.quiet_period(), self.first_pending + self.debounce * MAX_BATCH_FACTOR]
        moment = max(min(moments), self.not_before)
        return max(0.0, moment - now)

    def quiet_period(self) -> float:
        """How long the pending triggers must be quiet before a pass runs."""
        if all(is_kernel_event(reason) for reason in self.pending):
            return min(self.debounce, KERNEL_DEBOUNCE)
        return self.debounce

    def started_pass(self, now: float) -> None:
        """Triggers from now on belong to the next pass."""
        self.pending.clear()
        self.first_pending = self.last_trigger = None
        self.wake_at = None

    def finished_pass(self, now: float, ok: bool, wake_at: float | None = None) -> float:
        """Record a pass's end; returns the backoff before the next one (0 when none).
        `wake_at` asks for a pass at that moment, triggers or not (a hold ends)."""
        self.last_pass = now
        self.wake_at = wake_at
        if ok:
            self.failures = 0
            backoff = 0.0
        else:
            self.failures += 1
            backoff = min(self.max_backoff, 2.0 ** (self.failures - 1))
            self.pending.add("retry")
            self.first_pending = self.last_trigger = now
        self.not_before = now + backoff
        return backoff


@dataclass
class FightDetector:
    """Notices an object that keeps being changed back after netreconcile corrected it:
    `threshold` corrections of the same object within `window` seconds. Such an object
    is held (its repairs wait) for 2, 4, 8, ... up to `max_hold` seconds while the fight
    goes on, per object as controller-runtime's per-key rate limiter does: everything
    else is still repaired at once. An object left alone for `window` starts afresh."""

    threshold: int = 3
    window: float = 60.0
    max_hold: float = 60.0
    _corrections: dict[tuple, deque] = field(default_factory=dict)
    _holds: dict[tuple, tuple[int, float]] = field(default_factory=dict)  # key -> (holds in a row, held until)

    def record(self, keys: list[tuple], now: float) -> dict[tuple, float]:
        """Note the objects a drift-correcting pass changed; returns those fought over,
        each with how long it is held from now."""
        fought = {}
        for key in keys:
            times = self._corrections.setdefault(key, deque())
            times.append(now)
            while times and now - times[0] > self.window:
                times.popleft()
            if len(times) >= self.threshold:
                count = self._holds.get(key, (0, now))[0] + 1
                fought[key] = min(self.max_hold, 2.0 ** count)
                self._holds[key] = (count, now + fought[key])
        for key in [k for k, times in self._corrections.items() if times and now - times[-1] > self.window]:
            del self._corrections[key]
            self._holds.pop(key, None)
        return fought

    def held(self, now: float) -> frozenset[tuple]:
        """The objects whose repair waits now."""
        return frozenset(key for key, (_, until) in self._holds.items() if now < until)

    def next_release(self, since: float) -> float | None:
        """When the first hold in force after `since` ends (a pass is due then to repair
        what it held; it may be past already), None if none."""
        ends = [until for _, until in self._holds.values() if until > since]
        return min(ends) if ends else None
