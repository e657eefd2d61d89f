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
- with the memory store (``live``), keeps the decoded state itself in the table for the
  ``cache_size`` customers most recently read or written, and the JSON bytes for the
  rest: a read of a recent customer is a dict lookup, and a state is encoded once per
  flush, for its changelog record, or when it leaves the recent set. Reading a state from
  its JSON (parse and object rebuild) cost ~40 µs of CPU per event on evenly spread
  traffic, a fifth of a worker's time, but a decoded state takes about four times its
  JSON in memory (8.6 KB against 2.1 KB): holding every one decoded cost 862 MB of RSS per
  100,000 customers. The others' JSON is kept LZ4-compressed (``pack``). Values restored
  from the changelog arrive as JSON and are decoded on first read;
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

try:
    import cramjam
except ImportError:  # the worker refuses to start without it, naming the codecs (exit 2)
    cramjam = None  # type: ignore[assignment]

from pipeline.state import CustomerState

__all__ = ["Customers", "encode", "raw"]


def encode(state: CustomerState) -> bytes:
    """A state as its table and changelog bytes (JSON), in an allocation of their size.

    orjson 3.12 and later return bytes whose buffer keeps the capacity it grew to (a
    power of two from 4 KB: 16 KB for a 2.6 KB state); a table that keeps them keeps that
    (found with ``tracemalloc``: 7.8 KB per customer held for 2.6 KB of JSON; orjson's
    ``finish`` never shrinks, as home-assistant/core#181245 traced). The copy costs ~0.3
    µs."""
    return memoryview(state.to_json()).tobytes()


def raw(value: bytes | CustomerState | None) -> bytes | None:
    """A table value as its changelog bytes (a live state encoded; None deletes). Not
    trimmed as ``encode`` is: a record is dropped once the producer has sent it."""
    return value.to_json() if isinstance(value, CustomerState) else value


# a memory-store value kept compressed: this byte, then an LZ4 block of the JSON (which
# always starts with "{"); the changelog and RocksDB always get the JSON itself
_PACKED = b"\x04"


def pack(encoded: bytes) -> bytes:
    """A state's JSON as the memory store keeps it for a customer not active now: an LZ4
    block (cramjam, already here for aiokafka's codecs), about half the size (2,610 ->
    1,353 bytes for the benchmark's states) for ~2.5 µs, and ~1 µs to unpack."""
    return _PACKED + bytes(cramjam.lz4.compress_block(encoded))


def decode(raw: bytes) -> CustomerState:
    if raw[:1] == _PACKED:
        raw = bytes(cramjam.lz4.decompress_block(raw[1:]))
    return CustomerState.from_dict(orjson.loads(raw))


class Customers:
    """Reads and writes one Faust table of ``customer id -> state`` (JSON bytes, or with
    ``live`` the state itself for the ``cache_size`` customers last read or written)."""

    def __init__(self, table: Any, cache_size: int, live: bool = False) -> None:
        self.table = table
        self.live = live
        self.cache_size = cache_size
        # an OrderedDict: evicting the oldest of a plain dict (``next(iter(d))``) walks
        # the slots its earlier deletions left at the front (0.9 µs an eviction, not 0.3)
        self._cache: OrderedDict[bytes, tuple[bytes, CustomerState]] = OrderedDict()
        # live: the keys whose table value is the decoded state, least recent first
        self._recent: OrderedDict[bytes, None] = OrderedDict()
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
                try:
                    self._recent.move_to_end(key)
                except KeyError:  # written decoded by someone else: kept as recent
                    self._keep_live(key)
                return raw
            self.misses += 1
            state = data[key] = decode(raw)
            self._keep_live(key)
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
            self._keep_live(key)
            return
        raw = encode(state)
        self.table.data[key] = raw
        self._remember(key, raw, state)
        self._dirty[key] = (partition, raw)

    def delete(self, key: bytes, partition: int) -> None:
        if self.table.data.get(key) is not None:
            del self.table.data[key]
        self._cache.pop(key, None)
        self._recent.pop(key, None)
        self._dirty[key] = (partition, None)

    def flush(self) -> list[tuple[int, bytes, bytes | None]]:
        """The changelog records (partition, key, value; None deletes) of the customers
        written since the last flush, one each, with the last value. The events that
        wrote them are acknowledged only after the broker has acknowledged these, so a
        committed offset never runs ahead of its changelog (``agents.runtime.holding``)."""
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

    def _keep_live(self, key: bytes) -> None:
        """Mark a live key most recent; the least recent past ``cache_size`` goes back to
        bytes in the table, packed (a state written since the last flush is encoded
        once: its changelog record takes the JSON)."""
        recent = self._recent
        if key in recent:
            recent.move_to_end(key)
            return
        recent[key] = None
        if len(recent) <= max(1, self.cache_size):
            return
        old, _ = recent.popitem(last=False)
        data = self.table.data
        value = data.get(old)
        if type(value) is CustomerState:
            encoded = encode(value)
            data[old] = pack(encoded)
            dirty = self._dirty.get(old)
            if dirty is not None and dirty[1] is value:
                self._dirty[old] = (dirty[0], encoded)
