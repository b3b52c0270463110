"""Watch mode: converge, then keep converging on every trigger, level-triggered.

Triggers (reconciler/run/triggers.py) only queue a pass; reconciler/run/scheduler.py decides
when the next one runs. Every pass loads nothing it does not need (the spec only when
it changed) and applies the plan through the same engine as `apply`. The first pass,
a resync and every pass for a changed spec observe the whole state; a pass for kernel
or container-file events only reads again what they name, plans against the observed
state kept since (reconciler/kernel/observe_cache.py, reconciler/run/incremental.py)
and the last desired state; one for a changed host resolv.conf or /etc/hosts builds the
desired state again and plans it against the kept state. A resync logs what the kept state missed. An invalid spec
edit is reported and changes nothing: the last valid spec stays in force. A failed
pass is retried with a capped exponential backoff; an object another tool keeps
changing back is held (its repair waits, nothing else does). A host namespace that
disappears is reported once and waited for, never made again. SIGTERM and SIGINT stop
between passes; SIGHUP asks for a pass.
With host.dns_resolver the embedded DNS server runs on a thread of this process, given
each converged pass's spec and state, so that a container a pass adds resolves at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import time
from collections import Counter
from typing import TYPE_CHECKING, Callable

from reconciler.errors import GuardError, NetreconcileError, SourceError, SpecError, VerifyError
from reconciler.kernel.observe_cache import NAMESPACE_KINDS, CachingReaders, Scopes
from reconciler.kernel.observe_namespaces import list_netns
from reconciler.kernel.session import KernelSession, netns_path
from reconciler.render import resolvconf
from reconciler.run import logs
from reconciler.run.engine import Outcome, Target, converge
from reconciler.run.incremental import HOST_EVENTS, HOST_FILE_CHANGES, kept_state_scopes, missed_changes
from reconciler.run.metrics import WatchMetrics
from reconciler.run.scheduler import FightDetector, PassScheduler
from reconciler.run.sources import FileSource, GitSource
from reconciler.run.triggers import EventSources, nftables_events_socket, route_events_socket
from reconciler.spec.types import Spec
from reconciler.state.model import State
from reconciler.state.plan import Plan
from reconciler.state.scopes import scope_of

if TYPE_CHECKING:
    from reconciler.run.resolver import BackgroundResolver

MISSED_SHOWN = 10  # objects a resync names when the kept state missed changes
SIGNAL_POLL = 0.2  # seconds: how soon a signal is noticed while waiting
# a verification that fails because something changed during the pass is followed by
# another pass at once; only this many in a row count as failures (with backoff)
VERIFY_RETRIES = 3
# triggers that mean the input changed; anything else that leads to actions is drift
INPUT_CHANGES = frozenset({"start", "spec", "resolv.conf", "hosts", "sighup", "git"})

log = logs.get_logger()


class Watcher:
    def __init__(
        self, source: FileSource | GitSource, open_session: Callable[[], KernelSession],
        prepare_host: Callable[[], None],
        host_netns: str | None, etc_netns: str, resync: float, debounce: float,
        metrics: WatchMetrics | None = None, clock: Callable[[], float] = time.monotonic,
        lock: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext, force: bool = False,
        spec: Spec | None = None, start_resolver: Callable[[], BackgroundResolver] | None = None,
    ):
        """`spec`: the source's spec, already loaded by the caller (else loaded at start when
        the source must be valid from the start). `start_resolver`: starts serving DNS, on
        the first converged pass of a spec with host.dns_resolver."""
        self.source = source
        self.open_session = open_session
        self.prepare_host = prepare_host
        self.host_netns = host_netns
        self.etc_netns = etc_netns
        self.metrics = metrics
        self.clock = clock
        self.lock = lock
        self.force = force
        self.start_resolver = start_resolver
        self.resolver: BackgroundResolver | None = None
        self.scheduler = PassScheduler(debounce=debounce, resync=resync, started=clock())
        self.fights = FightDetector()
        self.events: queue.Queue[str] = queue.Queue()
        self.sources = EventSources(self.events.put)
        self.spec: Spec | None = spec
        self.rejected_text: str | None = None  # the invalid spec last reported, to report it once
        self.stopping = False
        self.hup = False
        self.verify_misses = 0
        self.host_made = False  # the first pass makes the --host-netns namespace, as apply does; later ones never
        self.host_gone = False  # said once: the host namespace disappeared
        self.host_identity: tuple[int, int] | None = None  # of the namespace the host sockets listen in
        self.listened: tuple = ()  # (host identity, container names) the sockets were last asked for
        # whether the last pass can have made or deleted a namespace (or read them all): only
        # then is /run/netns listed again (15 ms with 12,900 namespaces on the machine)
        self.namespaces_may_differ = True
        self.listened_spec: Spec | None = None  # the spec the namespaces were listed for
        self.own: list[str] = []  # its containers with a namespace of their own, as last listed
        self.watched_files: tuple = ()  # (spec, files) the file watches were last asked for
        # kept between passes: the observed state by scope, the last desired state, and the
        # live state the last pass ended with (what a resync compares the kernel with)
        self.readers = CachingReaders()
        self.target: Target | None = None
        self.kept: State | None = None

    # --- the loop ------------------------------------------------------------------

    def run(self) -> int:
        if self.spec is None and self.source.must_load_at_start:
            self.spec = self.source.load()  # an invalid spec file at start is the caller's error
        self._install_signal_handlers()
        self.sources.start()
        self.scheduler.trigger("start", self.clock())
        try:
            while not self.stopping:
                self._step()
        finally:
            self.sources.stop()
            if self.resolver is not None:
                self.resolver.close()
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
            ok = self._pass(reasons)
            # a hold that ended while the pass ran was still in force for it: it needs a pass too
            backoff = self.scheduler.finished_pass(self.clock(), ok, wake_at=self.fights.next_release(now))
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

    def _pass(self, reasons: tuple[str, ...]) -> bool:
        """Run one pass, then listen to what it made; False when it failed."""
        self.namespaces_may_differ = True  # unless the pass says otherwise: a failed one may have made some
        try:
            return self._converge(reasons)
        finally:
            self._watch_everything()

    def _converge(self, reasons: tuple[str, ...]) -> bool:
        trigger = ",".join(reasons)
        asked = set(reasons)
        if asked & self.source.reload_on and not (self.spec is not None and asked == {"start"}):
            before = self.source.current()
            if not self._reload_spec() and (self.spec is None or asked == {"spec"}):
                # nothing to converge on yet, or only the (now invalid) file asked: nothing changes
                self._count("invalid_spec")
                return True
            if before and self.source.current() != before:  # a new commit: what the pass is for
                reasons = (*(r for r in reasons if r not in ("resync", "retry")), "git")
                trigger = ",".join(reasons)
        if self._host_missing(trigger):
            return True
        started = self.clock()
        scopes = kept_state_scopes(reasons)
        incremental = scopes is not None and self.target is not None and self.readers.filled
        try:
            outcome = self._converge_kept(reasons, scopes if incremental else None)
        except SpecError as error:  # e.g. a subnet without free addresses for a new container
            self._report_spec_problems(error)
            self._count("invalid_spec")
            self.source.failed(error)
            return True
        except GuardError as error:  # an emptied or truncated spec: say so once and wait for a better one
            self._report_problem(str(error))
            self._count("refused")
            self.source.failed(error)
            return True
        except VerifyError as error:
            self.verify_misses += 1
            if self.verify_misses <= VERIFY_RETRIES:  # most likely changed while we applied: look again
                log.info("pass", trigger=trigger, outcome="interrupted",
                         duration_ms=_ms(self.clock() - started), detail=str(error))
                self.scheduler.trigger("changed during the pass", self.clock())
                self._count("interrupted", self.clock() - started)
                return True
            return self._failed(trigger, error, started)
        except NetreconcileError as error:
            return self._failed(trigger, error, started)
        self.verify_misses = 0
        self.source.converged()
        if not incremental and self.kept is not None and "resync" in reasons:
            self._report_missed(outcome.observed)
        self.target, self.kept = Target(outcome.desired, outcome.host_files), outcome.after
        # the objects held back still differ: their scopes are planned again until repaired
        self.readers.also_planned = {scope_of(action.obj) for action in outcome.held}
        self.namespaces_may_differ = not incremental or any(a.obj.kind in NAMESPACE_KINDS for a in outcome.plan.actions)
        duration = self.clock() - started
        plan = outcome.plan
        kinds = dict(sorted(Counter(a.kind for a in plan.actions).items()))
        drift = not set(reasons) & INPUT_CHANGES
        if drift:
            self._notice_fights(plan)
        held = dict(sorted(Counter(a.kind for a in outcome.held).items()))
        level = log.info if plan.actions else log.debug
        level("pass", trigger=trigger, outcome="applied" if plan.actions else "noop", duration_ms=_ms(duration),
              actions=kinds, drift=drift and bool(plan.actions), **({"held": held} if held else {}),
              observed="full" if self.readers.reads_all else "incremental",
              namespaces_read=self.readers.namespaces_read,
              **({"host_read": self.readers.host_read} if self.readers.host_read else {}),
              **self.source.current())
        self._count("applied" if plan.actions else "noop", duration, plan, drift)
        return True

    def _converge_kept(self, reasons: tuple[str, ...], scopes: Scopes | None) -> Outcome:
        """Converge, reading everything or only `scopes` (what the events of `reasons` name)
        against the kept state, and the kept desired state unless a host file it is built
        from changed; keeps nothing after a failure."""
        incremental = scopes is not None
        if incremental:
            # the host links named by events; none when the host sent none (those that come
            # meanwhile are the next pass's)
            host_links = self.sources.take_host_links() if HOST_EVENTS in reasons else {}
            self.readers.read_again(scopes, host_links,
                                    host_changed=self.sources.host_change if host_links is None else "")
        else:
            self.sources.take_host_links()  # everything is read
            self.readers.read_everything()
        try:
            with self.lock():
                if not self.host_made:
                    self.prepare_host()
                    self.host_made = True
                with self.open_session() as session:
                    outcome = converge(self.spec, session, force=self.force, held=self.fights.held(self.clock()),
                                       readers=self.readers,
                                       target=self.target if incremental and not HOST_FILE_CHANGES & set(reasons)
                                       else None)
                self._serve_dns(outcome)
        except BaseException:
            self.readers.forget()  # what the kernel holds now is not known: the next pass reads it all
            self.target = self.kept = None
            raise
        return outcome

    def _report_missed(self, observed: State) -> None:
        """Warn about what a resync found that the kept state lacked: changes no event told of."""
        missed = missed_changes(self.kept, observed)
        if missed:
            more = [f"and {len(missed) - MISSED_SHOWN} more"] if len(missed) > MISSED_SHOWN else []
            log.warning("the resync found changes no event told of", objects=missed[:MISSED_SHOWN] + more,
                        detail="the state kept between passes missed them; this pass repairs them")

    def _serve_dns(self, outcome: Outcome) -> None:
        """Serve what this converged pass made (nothing once the spec drops dns_resolver),
        from the state the pass observed: its addresses are the ones it converged on."""
        if self.start_resolver is None or (self.resolver is None and not self.spec.host.dns_resolver):
            return
        from reconciler.dns.config import ResolverConfig
        from reconciler.run.resolver import resolver_tables

        if self.resolver is None:
            self.resolver = self.start_resolver()
        self.resolver.update(
            resolver_tables(self.spec, outcome.observed, outcome.host_files.resolv_conf)
            if self.spec.host.dns_resolver else ResolverConfig())

    def _host_missing(self, trigger: str) -> bool:
        """True when the host namespace this watch converged is gone: said once, then
        waited out (its reappearance in /run/netns wakes the watch). It is not made
        again: whoever deleted it meant to, and a new one would fight the old one,
        still alive behind the containers' veths."""
        if not self.host_netns or not self.host_made:
            return False
        if os.path.exists(netns_path(self.host_netns)):
            if self.host_gone:
                log.warning("the host namespace is back: converging on it", host_netns=self.host_netns)
                self.host_gone = False
            return False
        if not self.host_gone:
            self.host_gone = True
            log.error("the host namespace is gone: waiting for it to come back", host_netns=self.host_netns,
                      detail=f"{netns_path(self.host_netns)} was deleted; watch does not make it again. It converges "
                             f"again once the namespace exists (ip netns add {self.host_netns}, or netreconcile "
                             "apply); stop the watch (SIGTERM) if the host is gone for good")
            self._count("host_missing")
        log.debug("pass", trigger=trigger, outcome="host_missing")
        return True

    def _failed(self, trigger: str, error: NetreconcileError, started: float) -> bool:
        self.source.failed(error)
        duration = self.clock() - started
        log.error("pass", trigger=trigger, outcome="error", error=str(error), duration_ms=_ms(duration))
        self._count("error", duration)
        if self.metrics:
            self.metrics.errors.inc()
        return False

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

    def _notice_fights(self, plan: Plan) -> None:
        """Hold the objects another tool keeps changing back; only their repairs wait."""
        fought = self.fights.record([a.key for a in plan.actions], self.clock())
        for key, hold in fought.items():
            action = next(a for a in plan.actions if a.key == key)
            log.warning("another tool keeps changing this back", kind=action.kind, object=action.obj.name,
                        times=self.fights.threshold, window_s=self.fights.window)
            log.warning("backing off", kind=action.kind, object=action.obj.name, wait_s=hold,
                        detail="only this object's repair waits; everything else is still repaired at once")

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
        host's nftables, and the files; called after each pass, as namespaces come and go.
        A pass that made and deleted no namespace leaves the namespaces and the file
        watches as they were: nothing here grows with the containers then."""
        if self.spec is None:
            return
        host_path = netns_path(self.host_netns) if self.host_netns else "/proc/self/ns/net"
        try:
            host = os.stat(host_path)
            identity = (host.st_dev, host.st_ino)
        except FileNotFoundError:
            identity = None  # gone: the sockets in it are closed, so that it does not live on through them
        if identity != self.host_identity:
            self.sources.watch_sockets({})  # a new host namespace under the old name: listen in the new one
            self.host_identity = identity
        all_open = self.sources.socket_count() == len(self.own) + 2 * (identity is not None)
        if self.namespaces_may_differ or self.spec is not self.listened_spec or not all_open:
            present = list_netns()
            self.own = [c.name for c in self.spec.local_containers if c.mode in ("bridge", "none") and c.name in present]
            self.listened_spec = self.spec
            all_open = self.sources.socket_count() == len(self.own) + 2 * (identity is not None)
        own = self.own
        # after most passes nothing came or went: the same sockets, all open (at 5000
        # containers making the openers and comparing them cost 60 ms a pass)
        listened = (identity, tuple(own))
        if listened != self.listened or not all_open:
            openers = {}
            if identity is not None:
                openers["netlink:host"] = lambda: _open_in(host_path, route_events_socket)
                openers["nftables"] = lambda: _open_in(host_path, nftables_events_socket)
            for name in own:
                openers[f"netlink:{name}"] = lambda name=name: _open_in(netns_path(name), route_events_socket)
            self.sources.watch_sockets(openers)
            self.listened = listened
        resolv = self.spec.host.resolv_conf
        files = {**self.source.files(), resolv: "resolv.conf", os.path.realpath(resolv): "resolv.conf",
                 resolvconf.SYSTEMD_RESOLV_CONF: "resolv.conf"}
        if self.host_netns:
            files[host_path] = "host netns"  # deleted or made again
        watched = (self.spec, tuple(files.items()))
        unchanged = bool(self.watched_files) and self.watched_files[0] is self.spec and self.watched_files[1] == watched[1]
        if unchanged and not self.namespaces_may_differ:
            return
        if any(c.mode == "host" for c in self.spec.local_containers):
            files["/etc/hosts"] = "hosts"
        # each container's own directory: files of other namespaces are not ours to watch
        self.sources.watch_files(files, {self.etc_netns: {c.name: f"files:{c.name}"
                                                          for c in self.spec.local_containers}})
        self.watched_files = watched


def _open_in(path: str, opener):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return opener(fd)
    finally:
        os.close(fd)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
