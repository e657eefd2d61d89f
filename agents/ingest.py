"""The ingest flow: read a source event, decode and validate it, route it.

Reads ``events.clickstream`` and ``events.service`` as raw bytes. A reject goes to
``events.deadletter`` (raw bytes, reason, source topic/partition/offset). A valid event
with an anonymous id goes to ``identity-events`` (keyed by that id) to be resolved; any
other goes to ``customer-events`` keyed by customer, or, when this worker already owns
the customer (the direct path), is decided here at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agents.decide import Decider
from agents.outbox import Outbox, Recorder, received_at
from agents.runtime import Partitioner
from pipeline.events import Decoder, Rejected
from pipeline.messages import EventIn, wire

__all__ = ["Ingest"]

_KEYLESS = Rejected("missing_key", "the record has no key (the customer id); BATON_KEYLESS=route")


class Ingest:
    """Decodes and routes source events (``one`` per message)."""

    def __init__(
        self,
        decoder: Decoder,
        record: Recorder,
        decider: Decider,
        tracked: Callable[[str], bool],
        partition_of: Partitioner,
        clock: Callable[[], float] = time.time,
        keyless: str = "deadletter",
    ) -> None:
        self.decoder, self.record, self.decider = decoder, record, decider
        self.tracked, self.partition_of, self.clock = tracked, partition_of, clock
        self.keyless_dead = keyless == "deadletter"

    def one(self, ev: Any, out: Outbox) -> None:
        msg, now = ev.message, self.clock()
        if ev.key is None and ev.value is not None and self.keyless_dead:
            self.record.received(msg.topic)
            src = (msg.topic, msg.partition, msg.offset)
            out.append(self.record.dead(None, ev.value, _KEYLESS, src, now))
            return
        got = self.record.edge(ev, self.decoder.decode, now, out)
        if got is None:
            return
        result, src = got
        key, message = result.key.encode(), EventIn(result, received_at(msg, now), src)
        if result.anonymous_id is None and self.direct(msg.topic, msg.partition, key):
            out.extend(self.decider.handle(key, msg.partition, message))
        elif result.anonymous_id is not None:  # resolved through the identity table first
            out.append(("identity-events", result.anonymous_id.encode(), wire(message)))
        else:
            out.append(("customer-events", key, wire(message)))

    def direct(self, topic: str, partition: int, key: bytes) -> bool:
        """Whether an event can be decided where it was read, skipping the re-keying hop
        (one Kafka write and one read per event): its source topic has the tables'
        partition count and it sits on the partition the key hashes to (Kafka's default
        murmur2 partitioner). Faust assigns the same partition number of co-partitioned
        topics to one worker, so this worker owns the customer. Events from other
        partitioners (librdkafka's default, for one) take the hop, as do ticks, merges
        and feedback."""
        return self.tracked(topic) and self.partition_of(key) == partition
