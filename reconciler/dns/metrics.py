"""Prometheus metrics of the embedded DNS server: queries by result, and their latency."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from reconciler.dns.answering import RESULTS


class ResolverMetrics:
    """On `registry` (watch's, when it serves DNS too), else on one of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.queries = Counter("netreconcile_dns_queries", "DNS queries served, by result (answered, nxdomain, "
                               "forwarded, failed)", ["result"], registry=self.registry)
        self.latency = Histogram("netreconcile_dns_query_duration_seconds",
                                 "Time from a query's arrival to its reply, forwarding included",
                                 registry=self.registry,
                                 buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 4))
        # every result shows from the start, at 0; the children are looked up once
        self._by_result = {result: self.queries.labels(result) for result in RESULTS}

    def observe(self, result: str, seconds: float) -> None:
        self._by_result[result].inc()
        self.latency.observe(seconds)
