"""Structured logs: structlog on stderr (stdout for watch mode), JSON lines when that
stream is not a terminal."""

from __future__ import annotations

import logging
import sys


def _import_structlog():
    # structlog.dev imports rich's traceback renderer and pretty-printer whenever rich
    # is importable: 0.13 s of every run's start-up, for exception rendering that
    # netreconcile never asks of it. Hiding rich during the import skips that.
    hide = "rich" not in sys.modules
    if hide:
        sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog
    finally:
        if hide:
            del sys.modules["rich"]
    return structlog


structlog = _import_structlog()


def configure(level: int = logging.INFO, stream=None) -> None:
    stream = stream or sys.stderr
    if stream.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), renderer],
        logger_factory=structlog.PrintLoggerFactory(stream),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "netreconcile"):
    return structlog.get_logger(name)
