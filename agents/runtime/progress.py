"""Source progress: a range of input committed but never processed is found and read again.

Works around faust-streaming#606 and #316 (docs/adr/0001-hold-acks-until-changelog.md,
docs/adr/0004-commit-bookkeeping.md).

Measured here (two workers starting on a backlog, Faust 0.15.3, Apache Kafka 4.4): on a
rebalance under load, a worker's group offsets can move past messages it had fetched
but not processed (about 2,600 per partition, its prefetch), and the partition's next
owner starts after them; the events are lost without a log line. The per-event agents
before batching lost them the same way (41,542 of 50,000 processed).

So every hot agent records, per source partition, the next offset it has processed up to
(``progress`` table, stored once per partition per batch, changelogged like the
customers table before the batch is acknowledged: ``agents.runtime.holding``). When the first
message a worker sees on a partition lies beyond that mark, the range in between is read
again from Kafka with a plain consumer (no group) and handled first, in order; each
repair is logged and counted (``baton_source_gaps_total``,
``baton_source_gap_events_total``). Offsets that legitimately do not exist (transaction
markers, compaction) read back as nothing.

Only source topics with the table's partition count are tracked (partition ``p`` of the
source is owned with partition ``p`` of the table); others are not repaired.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.runtime import Record, Where
from agents.runtime.internals import set_current_event

__all__ = ["Progress"]


class Progress:
    """Next offset to process per (topic, partition), in a Faust table of bytes."""

    def __init__(self, table: Any, client: dict[str, Any]) -> None:
        self.table, self.client = table, client
        self._next: dict[tuple[str, int], int] = {}
        self._moved: dict[tuple[str, int], int] = {}  # since the last store
        self._dirty: dict[tuple[str, int], bytes] = {}  # stored since the last flush
        self._generation = -1

    def reset_if(self, generation: int) -> None:
        """After a rebalance, forget what this worker knew: read the marks again."""
        if generation != self._generation:
            self._generation, self._next = generation, {}

    def gap(self, topic: str, partition: int, offset: int) -> tuple[int, int] | None:
        """The range [start, offset) never processed before ``offset``, if any. Call with
        Faust's current event set to this message (the RocksDB store needs it)."""
        tp = (topic, partition)
        expected = self._next.get(tp)
        if expected is None:
            raw = self.table.data.get(_key(tp))
            expected = int(raw) if raw else None
        return (expected, offset) if expected is not None and offset > expected else None

    def seen(self, topic: str, partition: int, offset: int) -> None:
        """A message is in the batch being handled: no gap before the next one."""
        tp = (topic, partition)
        self._next[tp] = max(offset + 1, self._next.get(tp, 0))

    def done(self, topic: str, partition: int, offset: int) -> None:
        """A message was handled: its mark is stored with the batch."""
        tp = (topic, partition)
        self._next[tp] = self._moved[tp] = max(offset + 1, self._next.get(tp, 0))

    def store(self) -> None:
        """Write the marks moved since the last store to the table's store (once per
        batch); their changelog records wait for ``flush``."""
        for tp, nxt in self._moved.items():
            value, here = str(nxt).encode(), Record(None, b"", Where(*tp, -1))
            set_current_event(here)  # RocksDB: the partition's database
            self.table.data[_key(tp)] = value
            self._dirty[tp] = value
        self._moved = {}

    def flush(self) -> list[tuple[int, bytes, bytes]]:
        """The changelog records (partition, key, value) of the marks stored since the
        last flush, one per source partition (storing any moved first)."""
        self.store()
        out = [(tp[1], _key(tp), value) for tp, value in self._dirty.items()]
        self._dirty = {}
        return out

    async def reread(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """Messages [start, end) of one partition, read with a plain consumer (bounded:
        30 s)."""
        tp = TopicPartition(topic, partition)
        c = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self.client)
        await c.start()
        out: list[Record] = []
        try:
            c.assign([tp])
            c.seek(tp, start)
            deadline = time.monotonic() + 30
            while await c.position(tp) < end and time.monotonic() < deadline:
                got = await c.getmany(tp, timeout_ms=500, max_records=1000)
                for m in got.get(tp, []):
                    if m.offset < end:
                        out.append(Record(m.key, m.value, Where(topic, partition, m.offset)))
        finally:
            await c.stop()
        return out


def _key(tp: tuple[str, int]) -> bytes:
    return f"{tp[0]}:{tp[1]}".encode()
