"""The flows in-process, over in-memory topics and tables: no broker, no Faust.

``InProcess`` wires the same flows as the worker (``agents.app``) to lists and dicts:
a message produced to a source topic is ingested, routed through ``identity-events``
and ``customer-events`` (each keyed message on the partition Kafka's default
partitioner would give it, so the direct path is taken as on a broker), and decided;
every message sent to any topic is kept, in order, in ``topics``. Time is the caller's:
``clock`` is read for each message, ``tick(now)`` runs the timer.

    >>> from prometheus_client import CollectorRegistry
    >>> from agents.settings import Settings
    >>> run = InProcess(Settings(), CollectorRegistry(), clock=lambda: 1e9)
    >>> run.produce("events.clickstream", b"c1", b"not json")
    >>> [r.key for r in run.topics["events.deadletter"]]
    [b'c1']
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry

from agents.decide import Decider
from agents.feedback import Feedback
from agents.identify import Identify
from agents.ingest import Ingest
from agents.metrics import Metrics
from agents.models import ModelRegistry
from agents.outbox import Outbox, Recorder, Timed
from agents.playbooks import PlaybookRegistry
from agents.runtime import Partitioner, Record, Where
from agents.settings import Settings
from agents.sweep import Sweep
from agents.web import DueList
from pipeline.events import Decoder
from pipeline.state import CustomerState

__all__ = ["InProcess", "MemoryStates"]

_SOURCES = ("events.clickstream", "events.service")


class MemoryStates:
    """The customers table as a dict of decoded states (``agents.runtime.StateStore``)."""

    def __init__(self) -> None:
        self.data: dict[bytes, CustomerState] = {}

    def get(self, key: bytes) -> CustomerState | None:
        return self.data.get(key)

    peek = get

    def put(self, key: bytes, partition: int, state: CustomerState) -> None:
        self.data[key] = state

    def delete(self, key: bytes, partition: int) -> None:
        self.data.pop(key, None)

    def keys(self) -> list[bytes]:
        return list(self.data)


class InProcess:
    """One worker's flows over in-memory topics (every partition is this worker's)."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        s = self.settings = settings
        self.clock = clock or time.time
        self.metrics = m = Metrics.create(registry or CollectorRegistry())
        self.topics: defaultdict[str, list[Record]] = defaultdict(list)
        self.states, self.identities = MemoryStates(), dict[bytes, bytes]()
        self.models, self.playbooks = ModelRegistry(s, m), PlaybookRegistry(s, m)
        self.record = record = Recorder(m, s.stage_sample, s.deadletter_raw)
        self.due, self.partition_of = DueList(), Partitioner(s.partitions)
        self.decider = Decider(
            self.states,
            self.due,
            m,
            record,
            self.models,
            self.playbooks,
            lambda: 1.0,
            s.step_config(),
            self.clock,
        )
        decoder = Decoder(s.decode_config())
        tracked = lambda topic: True  # noqa: E731 - every topic has the tables' partitions
        self.ingest = Ingest(
            decoder, record, self.decider, tracked, self.partition_of, self.clock, s.keyless
        )
        self.identify = Identify(self.identities, record, m, self.clock)
        self.feedback = Feedback(decoder, record, self.clock)
        self.sweep = Sweep(
            self.states, self.due, self.decider, m, s.state_retention_s, s.rescan_interval_s
        )
        self._flows: dict[str, Callable[[Any, Outbox], None]] = {
            **dict.fromkeys(_SOURCES, self.ingest.one),
            "feedback": self.feedback.one,
            "identity-events": self.identify.one,
            "customer-events": self.decider.one,
        }
        self._queue: deque[Record] = deque()

    def produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Produce one message to a logical topic and run every flow until quiet."""
        self._append(topic, key, value)
        self._run()

    def tick(self, now: float) -> None:
        """Run the timer at ``now`` (ticks and expiry checks), then every flow."""
        asyncio.run(self.sweep.run(self._send, rebalancing=False, generation=0, now=now))
        self._run()

    def values(self, topic: str) -> Iterator[Any]:
        """The decoded JSON values sent to ``topic``, in order."""
        return (r.json() for r in self.topics[topic])

    async def _send(self, outbox: Outbox) -> None:
        self._append_all(outbox)

    def _append_all(self, outbox: Outbox) -> None:
        for entry in outbox:
            if type(entry) is Timed:  # an action, acknowledged as soon as appended
                self.record.acted(entry, self.clock())
            self._append(*entry)

    def _append(self, topic: str, key: bytes | None, value: bytes) -> None:
        log = self.topics[topic]
        partition = self.partition_of(key) if key is not None else 0
        record = Record(key, value, Where(topic, partition, len(log)))
        log.append(record)
        if topic in self._flows:
            self._queue.append(record)

    def _run(self) -> None:
        while self._queue:  # bounded: every flow's output is finite per input
            record = self._queue.popleft()
            out: Outbox = []
            self._flows[record.message.topic](record, out)
            self._append_all(out)
