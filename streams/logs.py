"""Logging that stays readable while something is down."""

from __future__ import annotations

import logging
import time


class OncePerInterval(logging.Filter):
    """Lets a warning or error (by its template) through once per ``interval_s``: a broker away for a minute is a few
    lines, not hundreds a second from the client libraries' reconnect loops."""

    def __init__(self, interval_s: float = 30.0):
        super().__init__()
        self.interval_s = interval_s
        self.last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key, now = (record.name, record.msg), time.monotonic()
        if now - self.last.get(key, -self.interval_s) < self.interval_s:
            return False
        if len(self.last) > 1000:
            self.last.clear()
        self.last[key] = now
        return True


def quiet_repeats(handler: logging.Handler, interval_s: float = 30.0) -> None:
    """Give ``handler`` a :class:`OncePerInterval` filter (once)."""
    if not any(isinstance(f, OncePerInterval) for f in handler.filters):
        handler.addFilter(OncePerInterval(interval_s))
