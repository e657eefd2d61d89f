"""A source partition left behind after a rebalance is read again from its committed offset.

Works around faust-streaming#629 (docs/adr/0002-stalled-partitions.md).

Measured here (two workers starting together on a backlog, Faust 0.15.3, Apache Kafka
4.4, state changelog held to the flush): in about one start in five, a partition kept
data past its committed offset that nothing would ever deliver again. The consumer had
fetched it, but Faust dropped the messages: fetched while a stream partition was not
active, skipped by a stream after the flow stopped, or found below a read offset that a
delivery from before the rebalance had moved. Faust seeks back to the committed offsets
only at the next rebalance, so the partition stood still with lag and no error.

``Stalls.check`` runs on a timer. A partition is stalled when it has data past its
committed offset while nothing of it is in flight (no message delivered and not yet
acknowledged, none held for the changelog, every stream buffer empty) and neither its
committed nor its read offset has moved for ``after_s`` seconds. It is then sought to
its committed offset, which is what Faust does after a rebalance: the messages are
fetched and processed again (at-least-once; the reducers ignore events already
applied). Each repair is logged and counted (``baton_stalled_partitions_total``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from agents.runtime.internals import in_flight, offsets, stream_buffers_empty

__all__ = ["Stalls"]

log = logging.getLogger(__name__)


class Stalls:
    """Finds source partitions with lag that nothing delivers, and seeks them back."""

    def __init__(self, app: Any, tracked: Callable[[str], bool], counter: Any, after_s: float):
        self.app, self.tracked, self.counter, self.after_s = app, tracked, counter, after_s
        self._since: dict[Any, tuple[tuple[int | None, int | None], float]] = {}

    async def check(self, held: Iterable[Any]) -> int:
        """Seek back the partitions stalled for ``after_s``; ``held``: the partitions
        with messages held for the changelog. Returns how many were sought."""
        app, consumer = self.app, self.app.consumer
        if app.rebalancing or not consumer.flow_active or not app.flow_control.is_active():
            self._since.clear()
            return 0
        busy: set[Any] | None = in_flight(consumer) | set(held)
        if not stream_buffers_empty(app):
            busy = None  # a stream has messages waiting: nothing is idle yet
        now, sought = time.monotonic(), 0
        for tp in consumer.assignment():
            seen = offsets(consumer, tp)
            committed = seen[0]
            if not self._idle_with_lag(tp, committed, busy):
                self._since.pop(tp, None)
                continue
            first = self._since.get(tp)
            if first is None or first[0] != seen:
                self._since[tp] = (seen, now)
            elif now - first[1] >= self.after_s:
                log.warning(
                    "%s[%d] has messages from offset %d that were never processed (read up "
                    "to %s, nothing in flight for %.0f s): read again from there",
                    tp.topic,
                    tp.partition,
                    committed,
                    seen[1],
                    now - first[1],
                )
                self.counter.labels(tp.topic).inc()
                await consumer.seek(tp, committed)
                del self._since[tp]
                sought += 1
        return sought

    def _idle_with_lag(self, tp: Any, committed: int | None, busy: set[Any] | None) -> bool:
        if busy is None or tp in busy or committed is None or not self.tracked(tp.topic):
            return False
        end = self.app.consumer.highwater(tp)
        return end is not None and committed < end
