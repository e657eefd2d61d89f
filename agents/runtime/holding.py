"""Source messages held unacknowledged until the changelog of what they changed is sent.

Works around faust-streaming#606 (docs/adr/0001-hold-acks-until-changelog.md).

A state changelog record per customer per batch was about one record per event on
evenly spread traffic (5,000 customers, every event another customer's), the largest
single cost of a worker. Kafka Streams' answer is a record cache flushed before each
commit; the agents do the same with Faust's own acknowledgement rules instead of
hooking its commit: every handled message is held (its reference count raised, so
Faust's stream does not acknowledge it), and every ``interval`` seconds, or at once
when the consumer's flow stops (a rebalance or a shutdown), the changelog of the
customers written since the last flush goes to the changelog's own producer, one record
each, and once the broker has acknowledged them all the held messages are acknowledged.
Faust commits only acknowledged offsets, so a committed offset never runs ahead of the
changelog; on a rebalance Faust waits for every message it delivered to be
acknowledged (``stream_wait_empty``) before the partitions move, so the next owner
recovers the last states.

Actions and other outputs are not held: they go to the producer as each batch ends.
After a crash, the events since the last flush are delivered again and decided again
(at-least-once, deterministic decision ids), as before, over up to ``interval`` plus
Faust's commit interval of input.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["Held"]


class Held:
    """Messages handled since the last changelog flush, acknowledged together."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._messages: list[Any] = []
        self._since = time.monotonic()

    def __len__(self) -> int:
        return len(self._messages)

    def hold(self, events: Any) -> None:
        """Keep the events' messages from being acknowledged by their stream."""
        add = self._messages.append
        for ev in events:
            msg = ev.message
            if hasattr(msg, "incref"):  # not a range read again (agents.runtime.progress)
                msg.incref()
                add(msg)

    def partitions(self) -> set[Any]:
        """The topic-partitions with messages held."""
        return {msg.tp for msg in self._messages}

    def due(self) -> bool:
        """Whether the interval since the last flush has passed."""
        return time.monotonic() - self._since >= self.interval

    def take(self) -> list[Any]:
        """The held messages, to acknowledge once their changelog is sent."""
        messages, self._messages = self._messages, []
        self._since = time.monotonic()
        return messages

    @staticmethod
    def release(messages: list[Any], consumer: Any, generation: int) -> int:
        """Acknowledge messages taken (their changelog is with the producer), except those
        fetched before the consumer group's current ``generation``: after a rebalance
        each partition is read again from its committed offset, and a late
        acknowledgement would commit past what the new generation has read. Returns
        how many were left unacknowledged for that reason."""
        stale = 0
        for msg in messages:
            if msg.generation_id is not None and msg.generation_id != generation:
                stale += 1
                continue
            msg.ack(consumer)
        return stale
