"""`watch --check-interval`: the health probes of `check`, run periodically beside the
watch loop, logged one line per round and exported as Prometheus gauges.

The rounds run on a thread of their own. Each takes the host lock the watch passes take
(so that it never probes a half-applied pass), observes as `check` does and runs the
probes on the spec the watch last loaded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge

from reconciler.errors import NetreconcileError
from reconciler.kernel.observe import observe
from reconciler.kernel.probing import FAILED, run_probes
from reconciler.kernel.session import KernelSession
from reconciler.run import logs
from reconciler.spec.types import Spec
from reconciler.state.probes import plan_probes

RESULTS = ("ok", "failed", "blocked as expected", "no listener")

log = logs.get_logger()


class CheckMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.probes = Gauge("netreconcile_check_probes", "Probes of the last check round, by result",
                            ["result"], registry=registry)
        self.failures = Gauge("netreconcile_check_failures",
                              "Failed probes of the last check round, by container and probe kind "
                              "(gateway, name, dns, port, reach)", ["container", "kind"], registry=registry)
        self.duration = Gauge("netreconcile_check_duration_seconds", "Duration of the last check round",
                              registry=registry)
        self.last_run = Gauge("netreconcile_check_last_run_timestamp_seconds",
                              "Unix time the last check round ended", registry=registry)

    def record(self, results: list, duration: float) -> None:
        counts = Counter(result.result for result in results)
        for result in RESULTS:
            self.probes.labels(result=result).set(counts.get(result, 0))
        failures = Counter((r.container, r.probe.split(" ", 1)[0]) for r in results if r.result == FAILED)
        self.failures.clear()  # containers and kinds no longer probed drop out
        for container, kind in sorted({(r.container, r.probe.split(" ", 1)[0]) for r in results}):
            self.failures.labels(container=container, kind=kind).set(failures.get((container, kind), 0))
        self.duration.set(duration)
        self.last_run.set(time.time())


class CheckLoop:
    """Runs a check round every `interval` seconds until stopped."""

    def __init__(self, interval: float, current_spec: Callable[[], Spec | None],
                 open_session: Callable[[], KernelSession], lock, host_netns: str | None, etc_netns: str,
                 metrics: CheckMetrics | None):
        self.interval = interval
        self.current_spec = current_spec
        self.open_session = open_session
        self.lock = lock
        self.host_netns = host_netns
        self.etc_netns = etc_netns
        self.metrics = metrics
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="check", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            spec = self.current_spec()
            if spec is not None:
                self.round(spec)

    def round(self, spec: Spec) -> None:
        started = time.monotonic()
        try:
            with self.lock():
                with self.open_session() as session:
                    live = observe(session)
                results = run_probes(plan_probes(spec, live), self.host_netns, self.etc_netns)
        except (NetreconcileError, OSError) as error:  # e.g. the host namespace is gone: the watch says so
            log.warning("check", outcome="error", detail=str(error))
            return
        duration = time.monotonic() - started
        failed = [f"{r.container}: {r.probe}: {r.detail}" for r in results if r.result == FAILED]
        counts = dict(sorted(Counter(r.result for r in results).items()))
        (log.warning if failed else log.info)("check", outcome="failed" if failed else "ok", probes=counts,
                                              duration_ms=round(duration * 1000, 1), failed=failed[:10])
        if self.metrics is not None:
            self.metrics.record(results, duration)
