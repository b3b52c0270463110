"""Structured logs: structlog on stderr (stdout for watch mode), JSON lines when that
stream is not a terminal.

structlog is imported on the first message that passes the level, not at start-up: it
brings asyncio with it (structlog.stdlib), 45 ms of every run, and a one-shot command
that logs warnings and errors only usually logs nothing.
"""

from __future__ import annotations

import logging
import sys

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
           "error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL}
_settings: dict = {"level": logging.INFO, "stream": None, "applied": False}


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


def configure(level: int = logging.INFO, stream=None) -> None:
    """Where and from which level messages go; taken up by structlog at the first message."""
    _settings.update(level=level, stream=stream or sys.stderr, applied=False)


def _structlog():
    structlog = _import_structlog()
    if not _settings["applied"]:
        stream = _settings["stream"] or sys.stderr
        renderer = structlog.dev.ConsoleRenderer() if stream.isatty() else structlog.processors.JSONRenderer()
        structlog.configure(
            processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), renderer],
            logger_factory=structlog.PrintLoggerFactory(stream),
            wrapper_class=structlog.make_filtering_bound_logger(_settings["level"]),
            cache_logger_on_first_use=False,
        )
        _settings["applied"] = True
    return structlog


def _dropped(*args, **kwargs) -> None:
    return None


class _Logger:
    """A structlog logger made when a message passes the configured level."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, method: str):
        if _LEVELS.get(method, logging.CRITICAL) < _settings["level"]:
            return _dropped
        return getattr(_structlog().get_logger(self._name), method)


def get_logger(name: str = "netreconcile") -> _Logger:
    return _Logger(name)
