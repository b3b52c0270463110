"""Prometheus metrics of watch mode, served by prometheus_client on --metrics-port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WatchMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.passes = Counter("netreconcile_passes", "Reconcile passes run, by outcome (applied, noop, interrupted, "
                              "error, invalid_spec, refused, host_missing)", ["outcome"], registry=self.registry)
        self.actions = Counter("netreconcile_actions_applied", "Actions applied, by kind", ["kind"],
                               registry=self.registry)
        self.errors = Counter("netreconcile_errors", "Passes that failed", registry=self.registry)
        self.drift = Counter("netreconcile_drift_corrections",
                             "Actions that undid changes made outside netreconcile", registry=self.registry)
        self.duration = Histogram("netreconcile_pass_duration_seconds", "Duration of a reconcile pass",
                                  registry=self.registry,
                                  buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.last_success = Gauge("netreconcile_last_success_timestamp_seconds",
                                  "Unix time of the last pass that ended converged", registry=self.registry)
