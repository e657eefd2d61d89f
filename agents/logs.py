"""The worker's log stays readable when the same warning repeats (a broker outage).

While a broker is down, aiokafka logs every reconnection attempt, metadata refresh and
failed fetch: about 2,500 ERROR and WARNING lines in a 10-second outage, here. ``Throttle``
lets the first record of each (logger, message template) at WARNING or above through,
holds the repeats for ``interval_s``, and lets the next one through with the count of
those held: "(and 212 more like this in the last 10 s)". Only the clients' and the
framework's loggers (aiokafka, faust, mode) are throttled: Baton's own warnings (a
refused playbook, a refused snapshot) each say something different and are all
written. Records below WARNING and messages that do not repeat are untouched.

    >>> t, clock = Throttle(10.0), iter([0.0, 1.0, 2.0, 12.0])
    >>> t.now = lambda: next(clock)
    >>> E = logging.ERROR
    >>> rec = lambda: logging.LogRecord("aiokafka.conn", E, "", 0, "down %s", ("n1",), None)
    >>> [t.filter(r) for r in (rec(), rec(), rec())]
    [True, False, False]
    >>> r = rec(); t.filter(r), r.getMessage()
    (True, 'down n1 (and 2 more like this in the last 10 s)')
    >>> ours = logging.LogRecord("agents.playbooks", E, "", 0, "refused %s", ("x",), None)
    >>> t.filter(ours), t.filter(ours)
    (True, True)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["Throttle", "throttle_handlers"]


class Throttle(logging.Filter):
    """Repeats of a warning or error within ``interval_s`` are counted, not written."""

    def __init__(
        self, interval_s: float = 10.0, loggers: tuple[str, ...] = ("aiokafka", "faust", "mode")
    ) -> None:
        super().__init__()
        self.interval_s, self.loggers = interval_s, loggers
        self.now: Callable[[], float] = time.monotonic
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.loggers):
            return True
        key, now = (record.name, record.msg), self.now()
        since, held = self._seen.get(key, (None, 0))
        if since is not None and now - since < self.interval_s:
            self._seen[key] = (since, held + 1)
            return False
        if len(self._seen) > 1000:  # bounded: templates are few, but be safe
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} (and {held} more like this in the last "
            record.msg += f"{self.interval_s:.0f} s)"
        return True


def throttle_handlers(logger: logging.Logger, interval_s: float = 10.0) -> None:
    """Put one ``Throttle`` on every handler of ``logger`` (the root logger, once the
    worker has set logging up)."""
    throttle = Throttle(interval_s)
    for handler in logger.handlers:
        handler.addFilter(throttle)
