"""When watch mode runs its next pass; pure: the caller passes the time in.

Triggers only queue a pass. A pass runs once the triggers have been quiet for the
debounce period (or have kept coming for ten debounce periods, so a steady trickle
of events cannot starve it), when the periodic resync is due, or not before a
backoff ends: after a failed pass (doubling up to a cap) and while another tool is
fighting over an object (see `FightDetector`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

RESYNC = "resync"
MAX_BATCH_FACTOR = 10


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
        if self.pending:
            quiet = now - self.last_trigger >= self.debounce
            waited = now - self.first_pending >= self.debounce * MAX_BATCH_FACTOR
            if quiet or waited or self.failures:
                return tuple(sorted(self.pending))
        if now - self.last_pass >= self.resync:
            return (RESYNC,)
        return ()

    def wait_time(self, now: float) -> float:
        """Seconds until `due` can change without a new trigger."""
        moments = [self.last_pass + self.resync]
        if self.pending:
            moments += [self.last_trigger + self.debounce, self.first_pending + self.debounce * MAX_BATCH_FACTOR]
        moment = max(min(moments), self.not_before)
        return max(0.0, moment - now)

    def started_pass(self, now: float) -> None:
        """Triggers from now on belong to the next pass."""
        self.pending.clear()
        self.first_pending = self.last_trigger = None

    def finished_pass(self, now: float, ok: bool, hold: float = 0.0) -> float:
        """Record a pass's end; returns the backoff before the next one (0 when none).
        `hold` is an extra wait asked for by the caller (another tool fights us)."""
        self.last_pass = now
        if ok:
            self.failures = 0
            backoff = 0.0
        else:
            self.failures += 1
            backoff = min(self.max_backoff, 2.0 ** (self.failures - 1))
            self.pending.add("retry")
            self.first_pending = self.last_trigger = now
        backoff = max(backoff, hold)
        self.not_before = now + backoff
        return backoff


@dataclass
class FightDetector:
    """Notices an object that keeps being changed back after netreconcile corrected it:
    `threshold` corrections of the same object within `window` seconds."""

    threshold: int = 3
    window: float = 60.0
    max_hold: float = 60.0
    _corrections: dict[tuple, deque] = field(default_factory=dict)
    _holds: int = 0

    def record(self, keys: list[tuple], now: float) -> list[tuple]:
        """Note the objects a drift-correcting pass changed; returns those fought over."""
        fought = []
        for key in keys:
            times = self._corrections.setdefault(key, deque())
            times.append(now)
            while times and now - times[0] > self.window:
                times.popleft()
            if len(times) >= self.threshold:
                fought.append(key)
        for key in [k for k, times in self._corrections.items() if times and now - times[-1] > self.window]:
            del self._corrections[key]
        return fought

    def hold(self, fought: list[tuple]) -> float:
        """How long to wait before the next pass: doubling while a fight goes on."""
        if not fought:
            self._holds = 0
            return 0.0
        self._holds += 1
        return min(self.max_hold, 2.0 ** self._holds)
