"""The runtime seam: the only code in Baton that touches Faust or aiokafka internals.

The flows (``agents.ingest``, ``agents.identify``, ``agents.feedback``,
``agents.decide``, ``agents.sweep``) are plain functions over the interfaces below;
a runtime runs them over topics and tables. Two ship in the product:

- ``agents.runtime.kafka.KafkaRuntime``: the worker on Faust and Apache Kafka. It owns
  the fetch loop (``drain``), the acknowledgements held until the state changelog is
  sent (``holding``), the changelog writes (``customers``), the source progress marks
  and gap repair (``progress``), the stall check (``stalls``), partition counts and
  producer access (``internals``). ``internals`` lists every private name it relies on;
  a contract test fails, naming it, when an installed release lacks one.
- ``agents.runtime.memory.InProcess``: the same flows over in-memory topics and tables,
  with no broker, for flow tests, replays and notebooks.

Interface of a runtime, as the flows see it:

- ``StateStore``: the customers table (``get``, ``put``, ``delete``, ``peek``,
  ``keys``), written through one store so the changelog sees one record per customer
  per flush;
- ``send(outbox)``: hand ``(logical topic, key, value)`` messages to the producer, in
  order;
- ``tracked(topic)``: the topic has the tables' partition count (an event read on
  partition ``p`` belongs to the worker that owns partition ``p`` of the tables);
- ``share()``: this worker's share of the partitions (for global hourly limits).

``install()`` replaces Faust's fetch loop (``agents.runtime.drain``); the worker
command calls it at start. Building an app patches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiokafka.partitioner import murmur2

from pipeline.state import CustomerState

__all__ = [
    "CODECS",
    "Partitioner",
    "Record",
    "StateStore",
    "Where",
    "install",
    "missing_codecs",
    "uninstall",
]

# every compression codec a Kafka record batch may use, and aiokafka's check for it
CODECS = ("gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Where:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Record:
    """A message the flows read without Faust (a range read again, an in-memory topic's
    message), shaped like the Faust event they handle: ``key``, ``value``, ``message``."""

    key: bytes | None
    value: bytes
    message: Where

    def json(self) -> Any:
        return orjson.loads(self.value)


class StateStore(Protocol):
    """The customers table: customer id -> state."""

    def get(self, key: bytes) -> CustomerState | None: ...

    def peek(self, key: bytes) -> CustomerState | None: ...

    def put(self, key: bytes, partition: int, state: CustomerState) -> None: ...

    def delete(self, key: bytes, partition: int) -> None: ...

    def keys(self) -> list[bytes]: ...


class Partitioner:
    """The partition Kafka's default partitioner puts a key on (murmur2, as Java clients
    and aiokafka do; pure Python, ~2.5 µs a key: remembered for the last ~100,000)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._known: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        known = self._known
        p = known.get(key)
        if p is None:
            if len(known) >= 100_000:
                known.clear()
            p = known[key] = (murmur2(key) & 0x7FFFFFFF) % self.partitions
        return p


def missing_codecs() -> list[str]:
    """The compression codecs aiokafka cannot decode here (none, once cramjam is
    installed). A worker must not start without them: producers (librdkafka, the Java
    client, Kafka Connect) commonly send compressed batches, and one batch it cannot
    decode stops the consumer."""
    from aiokafka import codec

    return [c for c in CODECS if not getattr(codec, f"has_{c}")()]


def install(fetch_wait_s: float = 0.0) -> None:
    """Use Baton's per-fetch loop in every Faust consumer of this process, each fetch
    held by the broker for up to ``fetch_wait_s`` for more records
    (``BATON_FETCH_WAIT_S``)."""
    from agents.runtime import drain

    drain.install(fetch_wait_s)


def uninstall() -> None:
    """Faust's own fetch loop again."""
    from agents.runtime import drain

    drain.uninstall()
