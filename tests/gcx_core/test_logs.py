"""Logging: JSON lines with context ids, text with the same ids, throttled repeats."""

from __future__ import annotations

import json
import logging

import pytest

from gcx_core.exceptions import ConfigurationError
from gcx_core.logs import ContextFilter, JsonFormatter, TextFormatter, Throttle, log_context
from gcx_core.settings import Settings


def record(message: str = "sent %s", *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("gcx.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_carry_the_context_ids_and_the_event() -> None:
    rec = record("delivered %s", 7, event="delivery.sent")
    with log_context(request_id="r-1", notification_id=7), log_context(application_id=3):
        ContextFilter().filter(rec)
    line = json.loads(JsonFormatter().format(rec))
    assert line["message"] == "delivered 7" and line["event"] == "delivery.sent"
    assert line["level"] == "warning" and line["logger"] == "gcx.test"
    assert (line["request_id"], line["application_id"], line["notification_id"]) == ("r-1", 3, 7)
    assert line["time"].endswith("+00:00")
    # Outside the block, nothing is attached.
    bare = record()
    ContextFilter().filter(bare)
    assert "request_id" not in json.loads(JsonFormatter().format(bare))


def test_text_lines_carry_the_same_ids() -> None:
    rec = record()
    with log_context(notification_id=9):
        ContextFilter().filter(rec)
    assert TextFormatter().format(rec).endswith("[notification_id=9]")


def test_repeats_are_throttled_and_counted() -> None:
    now = [0.0]
    throttle = Throttle(interval=10, clock=lambda: now[0])
    passed = [throttle.filter(record("boom %s", i)) for i in range(50)]
    assert passed.count(True) == 1
    now[0] = 11
    again = record("boom %s", 99)
    assert throttle.filter(again) and again.suppressed == 49
    assert "(49 more like this left out)" in TextFormatter().format(again)
    assert throttle.filter(record("another message"))  # a different template is its own


def test_log_settings_are_checked() -> None:
    settings = Settings.from_env({"GCX_LOG_FORMAT": "JSON", "GCX_LOG_LEVEL": "warning"})
    assert (settings.log_format, settings.log_level) == ("json", "WARNING")
    with pytest.raises(ConfigurationError, match="GCX_LOG_FORMAT"):
        Settings.from_env({"GCX_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigurationError, match="GCX_TIME_ZONE"):
        Settings.from_env({"GCX_TIME_ZONE": "Mars/Olympus"})
