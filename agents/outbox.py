"""What the flows hand to the runtime, and the counters every flow moves.

An outbox is a list of ``(topic, key, value)``: ``topic`` is a logical topic name
(``actions``, ``events.deadletter``, ``customer-events``, ...), to which the runtime adds
the configured prefix.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from agents.metrics import Metrics
from pipeline.events import Rejected, format_time
from pipeline.messages import Source

__all__ = ["Outbox", "Recorder"]

Outbox = list[tuple[str, bytes | None, bytes]]
T = TypeVar("T")


class Recorder:
    """The per-message counters, their children looked up once per label value (a
    ``labels()`` call is ~1.5 µs); the label values are bounded (topics, event types,
    the playbook's actions, the reasons)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        cache = functools.lru_cache(maxsize=1024)
        self._received, self._events = cache(metrics.received.labels), cache(metrics.events.labels)
        self._actions, self._dead = cache(metrics.actions.labels), cache(metrics.deadletters.labels)

    def received(self, topic: str) -> None:
        self._received(topic).inc()

    def event(self, event_type: str) -> None:
        self._events(event_type).inc()

    def action(self, action: str) -> None:
        self._actions(action).inc()

    def edge(
        self,
        ev: Any,
        decode: Callable[[bytes | None, float], T | Rejected],
        now: float,
        out: Outbox,
    ) -> tuple[T, Source] | None:
        """Count a source message in and decode it; a reject goes to the dead-letter topic
        (``out``) and gives None, else the decoded value and where it was read."""
        msg = ev.message
        self.received(msg.topic)
        result = decode(ev.value, now)
        src = (msg.topic, msg.partition, msg.offset)
        if isinstance(result, Rejected):
            out.append(self.dead(ev.key, ev.value, result, src, now))
            return None
        return result, src

    def dead(
        self, key: bytes | None, raw: bytes | None, why: Rejected, src: Source, now: float
    ) -> tuple[str, bytes | None, bytes]:
        """The dead letter for a rejected message (``schemas/deadletter.v1.json``); its
        counter moves now."""
        self._dead(why.reason).inc()
        envelope: dict[str, Any] = {
            "schema_version": 1,
            "reason": why.reason,
            "detail": why.detail,
            "source": {"topic": src[0], "partition": src[1], "offset": src[2]},
            "event_id": why.event_id,
            "raw_base64": base64.b64encode(raw or b"").decode(),
            "received_at": format_time(now),
        }
        return ("events.deadletter", key, orjson.dumps(envelope))
