"""The document `netreconcile check` prints: its results, counts and a summary line; pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def probe_document(results: Iterable) -> dict:
    """`results`: ProbeResult-like objects (container, probe, result, detail), in order.
    `failed` counts the probes whose result is "failed": "blocked as expected" and
    "no listener" are not failures of the network."""
    rows = [{"container": r.container, "probe": r.probe, "result": r.result, "detail": r.detail} for r in results]
    counts = Counter(row["result"] for row in rows)
    summary = f"{len(rows)} probe(s): " + ", ".join(f"{count} {result}" for result, count in sorted(counts.items()))
    return {"results": rows, "counts": dict(sorted(counts.items())), "failed": counts.get("failed", 0),
            "summary": summary if rows else "no probes: no container with a namespace of its own"}
