"""What the flows hand to the runtime, and the counters every flow moves.

An outbox is a list of ``(topic, key, value)``: ``topic`` is a logical topic name
(``actions``, ``events.deadletter``, ``customer-events``, ...), to which the runtime adds
the configured prefix. An action's entry is ``Timed``: it carries the times its latency
runs from, and the runtime records that latency when Kafka acknowledges the action
(``Recorder.acted``), so the histograms cover the send and the time before the worker
read the event.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from agents.metrics import STAGES, Metrics
from pipeline.events import Rejected, format_time
from pipeline.messages import Source
from pipeline.personal import redacted, redacted_detail

__all__ = ["Outbox", "Recorder", "Timed", "received_at"]

Outbox = list[tuple[str, bytes | None, bytes]]
T = TypeVar("T")


class Timed(tuple[str, bytes | None, bytes]):
    """An action's outbox entry ``(topic, key, value)``, with the times its latency is
    measured from: ``event_at`` (the event's own time; a timer decision's tick) and
    ``received_at`` (the source record's Kafka timestamp; a tick's making), and its
    ``trigger`` (event, timer)."""

    event_at: float
    received_at: float
    trigger: str

    @classmethod
    def of(
        cls, entry: tuple[str, bytes | None, bytes], event_at: float, received: float, trigger: str
    ) -> Timed:
        t = cls(entry)
        t.event_at, t.received_at, t.trigger = event_at, received, trigger
        return t


def received_at(msg: Any, now: float) -> float:
    """When a source message reached Kafka: its record timestamp (Faust's seconds), as
    Kafka Streams' ``record-e2e-latency`` measures; the worker's clock when it has none
    or it lies ahead of that clock."""
    ts = getattr(msg, "timestamp", None)
    return ts if isinstance(ts, float | int) and 0 < ts <= now else now


class Recorder:
    """The per-message counters, their children looked up once per label value (a
    ``labels()`` call is ~1.5 µs); the label values are bounded (topics, event types,
    the playbook's actions, the reasons)."""

    def __init__(self, metrics: Metrics, sample: int = 16, raw: str = "redacted") -> None:
        self.metrics, self.sample, self._n = metrics, sample, 0
        self.raw = raw  # what a dead letter keeps of the bytes (BATON_DEADLETTER_RAW)
        cache = functools.lru_cache(maxsize=1024)
        self._received, self._events = cache(metrics.received.labels), cache(metrics.events.labels)
        self._actions, self._dead = cache(metrics.actions.labels), cache(metrics.deadletters.labels)
        self._e2e = cache(metrics.event_to_action.labels)
        self._r2e = cache(metrics.receive_to_action.labels)
        self.stage = {s: metrics.stage.labels(s) for s in STAGES}

    def sampled(self) -> bool:
        """Whether to time this message's stages (one in ``sample``)."""
        self._n += 1
        return self._n % self.sample == 0

    def acted(self, value: Timed, at: float | None = None) -> None:
        """An action acknowledged by Kafka at ``at``: its two latencies."""
        at = time.time() if at is None else at
        self._e2e(value.trigger).observe(max(0.0, at - value.event_at))
        self._r2e(value.trigger).observe(max(0.0, at - value.received_at))

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
        if self.sampled():
            began = time.perf_counter()
            result = decode(ev.value, now)
            self.stage["decode"].observe(time.perf_counter() - began)
        else:
            result = decode(ev.value, now)
        src = (msg.topic, msg.partition, msg.offset)
        if isinstance(result, Rejected):
            out.append(self.dead(ev.key, ev.value, result, src, now))
            return None
        return result, src

    def dead(
        self, key: bytes | None, raw: bytes | None, why: Rejected, src: Source, now: float
    ) -> tuple[str, bytes | None, bytes]:
        """The dead letter for a rejected message (``schemas/deadletter.v1.json``), its
        bytes kept as ``raw`` says (``redacted``: personal data out); its counter moves
        now."""
        self._dead(why.reason).inc()
        kept, detail = raw or b"", why.detail
        if self.raw != "full":
            kept = redacted(kept) if self.raw == "redacted" else b""
            detail = redacted_detail(detail)
        envelope: dict[str, Any] = {
            "schema_version": 1,
            "reason": why.reason,
            "detail": detail,
            "source": {"topic": src[0], "partition": src[1], "offset": src[2]},
            "event_id": why.event_id,
            "raw_base64": base64.b64encode(kept).decode(),
            "raw_kept": self.raw,
            "received_at": format_time(now),
        }
        return ("events.deadletter", key, orjson.dumps(envelope))
