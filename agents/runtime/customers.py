"""The customers table as the batched agents use it.

Faust writes one changelog record per table assignment and finds the partition of a
key (and, for RocksDB, the partition's database) from the event being iterated. The
agents take events in batches, so this wrapper

- writes the store at once (later events read it) and returns the changelog records
  once per customer per flush (``agents.runtime.holding``: every ``BATON_CHANGELOG_INTERVAL_S``),
  for the partition the caller names: a customer with five events in that time costs
  one changelog record, not five (Kafka Streams' record cache). The caller hands them to
  the producer itself: through Faust's ``send_changelog`` each record cost about 100 µs
  of CPU (its buffer, per-message futures and schema step);
- with the memory store (``live``), keeps the decoded state itself in the table, as
  Faust's memory tables keep their values: a read is a dict lookup, and a state is
  encoded once per flush, for its changelog record. Values restored from the changelog
  arrive as bytes and are decoded on first read. Reading a state from its JSON (parse and
  object rebuild) cost ~40 µs of CPU per event on evenly spread traffic, a fifth of a
  worker's time;
- with RocksDB, keeps the decoded state of recently seen customers, checked against the
  stored bytes on every read (so a state recovered or written elsewhere is never served
  stale), which saves the JSON parse and the object rebuild for a customer who is active
  right now.

The caller must set Faust's current event to the event it processes before a read or a
write (the RocksDB store picks its per-partition database from it), and must hand the
records of a flush to the producer before another writer of the table runs (the agents
hold one lock over each batch and each flush), so the changelog receives a customer's
versions in the order the store did.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

from pipeline.state import CustomerState

__all__ = ["Customers", "encode", "raw"]


def encode(state: CustomerState) -> bytes:
    """A state as its table and changelog bytes (JSON)."""
    return state.to_json()


def raw(value: bytes | CustomerState | None) -> bytes | None:
    """A table value as its changelog bytes (a live state encoded; None deletes)."""
    return encode(value) if isinstance(value, CustomerState) else value


def decode(raw: bytes) -> CustomerState:
    return CustomerState.from_dict(orjson.loads(raw))


class Customers:
    """Reads and writes one Faust table of ``customer id -> state`` (JSON bytes, or with
    ``live`` the state itself once read or written)."""

    def __init__(self, table: Any, cache_size: int, live: bool = False) -> None:
        self.table = table
        self.live = live
        self.cache_size = 0 if live else cache_size  # live: the table is the cache
        # an OrderedDict: evicting the oldest of a plain dict (``next(iter(d))``) walks
        # the slots its earlier deletions left at the front (0.9 µs an eviction, not 0.3)
        self._cache: OrderedDict[bytes, tuple[bytes, CustomerState]] = OrderedDict()
        # key -> (partition, the value written: bytes, a live state, None deletes)
        self._dirty: dict[bytes, tuple[int, bytes | CustomerState | None]] = {}
        self.hits = self.misses = 0

    def get(self, key: bytes) -> CustomerState | None:
        data = self.table.data
        raw = data.get(key)
        if raw is None:
            return None
        if self.live:
            if type(raw) is CustomerState:
                self.hits += 1
                return raw
            self.misses += 1
            state = data[key] = decode(raw)  # restored from the changelog: decoded once
            return state
        cached = self._cache.get(key)
        if cached is not None and (cached[0] is raw or cached[0] == raw):
            self.hits += 1
            return cached[1]
        self.misses += 1
        state = decode(raw)
        self._remember(key, raw, state)
        return state

    def peek(self, key: bytes) -> CustomerState | None:
        """The state, without keeping a decoded copy (a scan of the whole table)."""
        raw = self.table.data.get(key)
        if raw is None or type(raw) is CustomerState:
            return raw
        return decode(raw)

    def keys(self) -> list[bytes]:
        """Every customer in the local table (a snapshot: the flows write meanwhile)."""
        return list(self.table.keys())

    def put(self, key: bytes, partition: int, state: CustomerState) -> None:
        if self.live:
            self.table.data[key] = state
            self._dirty[key] = (partition, state)
            return
        raw = encode(state)
        self.table.data[key] = raw
        self._remember(key, raw, state)
        self._dirty[key] = (partition, raw)

    def delete(self, key: bytes, partition: int) -> None:
        if self.table.data.get(key) is not None:
            del self.table.data[key]
        self._cache.pop(key, None)
        self._dirty[key] = (partition, None)

    def flush(self) -> list[tuple[int, bytes, bytes | None]]:
        """The changelog records (partition, key, value; None deletes) of the customers
        written since the last flush, one each, with the last value. The events that
        wrote them are acknowledged only after these are sent, and Faust's commit flushes
        the producer before it commits offsets, so a committed offset never runs ahead of
        its changelog (``agents.runtime.holding``)."""
        return [(p, key, raw(value)) for p, key, value in self.take()]

    def take(self) -> list[tuple[int, bytes, bytes | CustomerState | None]]:
        """As ``flush``, with a live state not yet encoded (``raw`` encodes it): states
        are immutable values, so the caller may encode them later, off the writers' lock,
        a few at a time."""
        dirty, self._dirty = self._dirty, {}
        return [(partition, key, value) for key, (partition, value) in dirty.items()]

    def _remember(self, key: bytes, raw: bytes, state: CustomerState) -> None:
        cache = self._cache
        if self.cache_size <= 0:
            return
        if key in cache:
            cache.move_to_end(key)  # most recent
        elif len(cache) >= self.cache_size:
            cache.popitem(last=False)  # the least recently written or decoded
        cache[key] = (raw, state)
