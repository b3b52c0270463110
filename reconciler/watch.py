"""Watch mode: converge, then keep converging on every trigger, level-triggered.

Triggers (reconciler/triggers.py) only queue a pass; reconciler/scheduler.py decides
when the next one runs. Every pass loads nothing it does not need (the spec only when
it changed), observes the whole state again and applies the plan through the same
engine as `apply`. An invalid spec edit is reported and changes nothing: the last
valid spec stays in force. A failed pass is retried with a capped exponential
backoff. SIGTERM and SIGINT stop between passes; SIGHUP asks for a pass.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import time
from collections import Counter
from typing import Callable

from reconciler import logs, resolvconf
from reconciler.engine import converge
from reconciler.errors import GuardError, NetreconcileError, SourceError, SpecError, VerifyError
from reconciler.metrics import WatchMetrics
from reconciler.observe import list_netns
from reconciler.planner import Plan
from reconciler.scheduler import FightDetector, PassScheduler
from reconciler.session import KernelSession, netns_path
from reconciler.sources import FileSource, GitSource
from reconciler.spec import Spec
from reconciler.triggers import EventSources, nftables_events_socket, route_events_socket

SIGNAL_POLL = 0.2  # seconds: how soon a signal is noticed while waiting
# a verification that fails because something changed during the pass is followed by
# another pass at once; only this many in a row count as failures (with backoff)
VERIFY_RETRIES = 3
# triggers that mean the input changed; anything else that leads to actions is drift
INPUT_CHANGES = frozenset({"start", "spec", "resolv.conf", "hosts", "sighup"})

log = logs.get_logger()


class Watcher:
    def __init__(
        self, source: FileSource | GitSource, open_session: Callable[[], KernelSession],
        prepare_host: Callable[[], None],
        host_netns: str | None, etc_netns: str, resync: float, debounce: float,
        metrics: WatchMetrics | None = None, clock: Callable[[], float] = time.monotonic,
        lock: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext, force: bool = False,
    ):
        self.source = source
        self.open_session = open_session
        self.prepare_host = prepare_host
        self.host_netns = host_netns
        self.etc_netns = etc_netns
        self.metrics = metrics
        self.clock = clock
        self.lock = lock
        self.force = force
        self.scheduler = PassScheduler(debounce=debounce, resync=resync, started=clock())
        self.fights = FightDetector()
        self.events: queue.Queue[str] = queue.Queue()
        self.sources = EventSources(self.events.put)
        self.spec: Spec | None = None
        self.rejected_text: str | None = None  # the invalid spec last reported, to report it once
        self.stopping = False
        self.hup = False
        self.verify_misses = 0

    # --- the loop ------------------------------------------------------------------

    def run(self) -> int:
        if self.source.must_load_at_start:
            self.spec = self.source.load()  # an invalid spec file at start is the caller's error
        self._install_signal_handlers()
        self.sources.start()
        self.scheduler.trigger("start", self.clock())
        try:
            while not self.stopping:
                self._step()
        finally:
            self.sources.stop()
        log.info("watch stopped")
        return 0

    def _step(self) -> None:
        now = self.clock()
        if self.hup:
            self.hup = False
            self.scheduler.trigger("sighup", now)
        reasons = self.scheduler.due(now)
        if reasons:
            self.scheduler.started_pass(now)
            ok, hold = self._pass(reasons)
            backoff = self.scheduler.finished_pass(self.clock(), ok, hold)
            if not ok:
                log.warning("retrying", retry_in_s=backoff)
            return
        try:
            reason = self.events.get(timeout=min(self.scheduler.wait_time(now), SIGNAL_POLL))
        except queue.Empty:
            return
        self.scheduler.trigger(reason, self.clock())
        while True:
            try:
                self.scheduler.trigger(self.events.get_nowait(), self.clock())
            except queue.Empty:
                return

    def _install_signal_handlers(self) -> None:
        def stop(signum, frame) -> None:
            self.stopping = True

        def hup(signum, frame) -> None:
            self.hup = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    # --- one pass --------------------------------------------------------------------

    def _pass(self, reasons: tuple[str, ...]) -> tuple[bool, float]:
        """Run one pass, then listen to what it made; (converged, extra wait asked for)."""
        try:
            return self._converge(reasons)
        finally:
            self._watch_everything()

    def _converge(self, reasons: tuple[str, ...]) -> tuple[bool, float]:
        trigger = ",".join(reasons)
        asked = set(reasons)
        if asked & self.source.reload_on and not (self.spec is not None and asked == {"start"}):
            if not self._reload_spec() and (self.spec is None or asked == {"spec"}):
                # nothing to converge on yet, or only the (now invalid) file asked: nothing changes
                self._count("invalid_spec")
                return True, 0.0
        started = self.clock()
        try:
            with self.lock():
                self.prepare_host()
                with self.open_session() as session:
                    outcome = converge(self.spec, session, force=self.force)
        except SpecError as error:  # e.g. a subnet without free addresses for a new container
            self._report_spec_problems(error)
            self._count("invalid_spec")
            self.source.failed(error)
            return True, 0.0
        except GuardError as error:  # an emptied or truncated spec: say so once and wait for a better one
            self._report_problem(str(error))
            self._count("refused")
            self.source.failed(error)
            return True, 0.0
        except VerifyError as error:
            self.verify_misses += 1
            if self.verify_misses <= VERIFY_RETRIES:  # most likely changed while we applied: look again
                log.info("pass", trigger=trigger, outcome="changed during the pass",
                         duration_ms=_ms(self.clock() - started), detail=str(error))
                self.scheduler.trigger("changed during the pass", self.clock())
                self._count("interrupted", self.clock() - started)
                return True, 0.0
            return self._failed(trigger, error, started)
        except NetreconcileError as error:
            return self._failed(trigger, error, started)
        self.verify_misses = 0
        self.source.converged()
        duration = self.clock() - started
        plan = outcome.plan
        kinds = dict(sorted(Counter(a.kind for a in plan.actions).items()))
        drift = not set(reasons) & INPUT_CHANGES
        hold = self._notice_fights(plan) if drift else 0.0
        level = log.info if plan.actions else log.debug
        level("pass", trigger=trigger, outcome="applied" if plan.actions else "noop", duration_ms=_ms(duration),
              actions=kinds, drift=drift and bool(plan.actions))
        self._count("ok" if plan.actions else "noop", duration, plan, drift)
        return True, hold

    def _failed(self, trigger: str, error: NetreconcileError, started: float) -> tuple[bool, float]:
        self.source.failed(error)
        duration = self.clock() - started
        log.error("pass", trigger=trigger, outcome="error", error=str(error), duration_ms=_ms(duration))
        self._count("error", duration)
        if self.metrics:
            self.metrics.errors.inc()
        return False, 0.0

    def _reload_spec(self) -> bool:
        """Load the spec again; False (and the problems logged once) when it is invalid
        or cannot be had: the last valid one stays in force."""
        try:
            self.spec = self.source.load()
        except SpecError as error:
            self._report_spec_problems(error)
            return False
        except SourceError as error:
            self._report_problem(str(error))
            return False
        self.rejected_text = None
        return True

    def _report_spec_problems(self, error: SpecError) -> None:
        self._report_problem(str(error), [str(problem) for problem in error.problems])

    def _report_problem(self, text: str, problems: list[str] | None = None) -> None:
        if text == self.rejected_text:
            return
        self.rejected_text = text
        if problems is None:
            log.warning("cannot load the spec: keeping the last valid one", error=text)
        else:
            log.warning("invalid spec: keeping the last valid one", problems=problems)

    def _notice_fights(self, plan: Plan) -> float:
        fought = self.fights.record([a.key for a in plan.actions], self.clock())
        for key in fought:
            action = next(a for a in plan.actions if a.key == key)
            log.warning("another tool keeps changing this back", kind=action.kind, object=action.obj.name,
                        times=self.fights.threshold, window_s=self.fights.window)
        hold = self.fights.hold(fought)
        if hold:
            log.warning("backing off", wait_s=hold)
        return hold

    def _count(self, outcome: str, duration: float | None = None, plan: Plan | None = None,
               drift: bool = False) -> None:
        if self.metrics is None:
            return
        self.metrics.passes.labels(outcome=outcome).inc()
        if duration is not None:
            self.metrics.duration.observe(duration)
        if plan is not None:
            for action in plan.actions:
                self.metrics.actions.labels(kind=action.kind).inc()
            if drift:
                self.metrics.drift.inc(len(plan.actions))
            self.metrics.last_success.set(time.time())

    # --- what to listen to -------------------------------------------------------------

    def _watch_everything(self) -> None:
        """Listen to the host namespace, every container namespace of the spec, the
        host's nftables, and the files; called after each pass, as namespaces come and go."""
        if self.spec is None:
            return
        host_path = netns_path(self.host_netns) if self.host_netns else "/proc/self/ns/net"
        present = list_netns()
        own = [c.name for c in self.spec.containers if c.mode in ("bridge", "none") and c.name in present]
        openers = {
            "netlink:host": lambda: _open_in(host_path, route_events_socket),
            "nftables": lambda: _open_in(host_path, nftables_events_socket),
        }
        for name in own:
            openers[f"netlink:{name}"] = lambda name=name: _open_in(netns_path(name), route_events_socket)
        self.sources.watch_sockets(openers)
        resolv = self.spec.host.resolv_conf
        files = {**self.source.files(), resolv: "resolv.conf", os.path.realpath(resolv): "resolv.conf",
                 resolvconf.SYSTEMD_RESOLV_CONF: "resolv.conf"}
        if any(c.mode == "host" for c in self.spec.containers):
            files["/etc/hosts"] = "hosts"
        # each container's own directory: files of other namespaces are not ours to watch
        self.sources.watch_files(files, {os.path.join(self.etc_netns, c.name): "files" for c in self.spec.containers})


def _open_in(path: str, opener):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return opener(fd)
    finally:
        os.close(fd)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
