"""JSON log lines on stderr, carrying `trace_id` and `span_id` while a span is active."""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

#: Loggers that libraries configure with handlers of their own; they go through ours instead.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "kserve", "kserve.trace")


class TraceContextFilter(logging.Filter):
    """Adds the current span's ids to each record (nothing when no span is recording)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class NoTracebackFilter(logging.Filter):
    """Drops tracebacks from records: they reveal file paths, exception classes and internals.

    The message itself stays; `tracebacks=True` in `configure_logging` keeps them for debugging.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def configure_logging(level: str, service: str, tracebacks: bool = False) -> None:
    """Send every log record, ours and the libraries', to stderr as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContextFilter())
    if not tracebacks:
        handler.addFilter(NoTracebackFilter())
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
