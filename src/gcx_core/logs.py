"""Logging for long-running processes: text or JSON lines, context ids, throttled repeats.

`configure(format, level)` sets up the root logger once per process (`GCX_LOG_FORMAT=json` for
one JSON object per line, `text` otherwise). `log_context(request_id=..., application_id=...,
notification_id=...)` attaches ids to every record logged inside it, in either format; code
passes an `event` name with `extra={"event": "delivery.sent"}` for records an operator may
count or alert on. Records carry ids, never personal data: no email addresses, names or
message bodies, and never a secret.

`Throttle` keeps a record that repeats (the same logger, level and message template) to one per
interval and says how many were left out, so an outage or a tight failure loop cannot fill a
disk with identical tracebacks.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

CONTEXT_KEYS = ("request_id", "application_id", "notification_id")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "gcx_log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Ids every record logged inside the block carries (nested blocks add to them)."""
    current = _context.get() or {}
    token = _context.set({**current, **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record (as attributes, for any formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, event, context ids, error."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event:
            entry["event"] = event
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        suppressed = getattr(record, "suppressed", 0)
        if suppressed:
            entry["suppressed"] = suppressed
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The plain format, with the context ids appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [f"{k}={getattr(record, k)}" for k in CONTEXT_KEYS if hasattr(record, k)]
        suppressed = getattr(record, "suppressed", 0)
        if suppressed:
            extras.append(f"({suppressed} more like this left out)")
        if not extras:
            return text
        first, sep, rest = text.partition("\n")
        return f"{first} [{' '.join(extras)}]{sep}{rest}"


class Throttle(logging.Filter):
    """Lets one record per `interval` seconds through for each (logger, level, template); the
    next one that passes carries how many were left out in between (`record.suppressed`)."""

    def __init__(self, interval: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            last, skipped = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.interval:
                self._seen[key] = (last, skipped + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # templates are few; never let the table grow unbounded
                self._seen = {key: (now, 0)}
        record.suppressed = skipped
        return True


def throttled(name: str, interval: float = 10.0) -> logging.Logger:
    """A logger whose repeats are throttled (see `Throttle`)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, Throttle) for f in logger.filters):
        logger.addFilter(Throttle(interval))
    return logger


def configure(format: str = "text", level: str = "INFO") -> None:
    """Log to stderr in `format` ("text" or "json") from `level` up; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_gcx", False)]:
        root.removeHandler(old)
    handler._gcx = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The task broker logs a line per task run; a delivery is one task, so those lines would
    # outnumber everything else. Its warnings still show.
    logging.getLogger("taskiq.receiver").setLevel(logging.WARNING)
