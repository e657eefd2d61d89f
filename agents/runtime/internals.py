"""Every private name of faust-streaming, mode-streaming and aiokafka that Baton uses.

Nothing outside ``agents.runtime`` reaches into the framework; inside it, the names are
listed here in ``PRIVATE`` (owner, attribute) and ``ADAPTED`` (functions whose source
``agents.runtime.drain`` adapts), and ``tests/contract/test_runtime_internals.py`` fails,
naming the attribute, when an installed release no longer has one of them or changed
an adapted function. The versions they were read from are pinned in ``pyproject.toml``
(faust-streaming exactly, aiokafka and mode-streaming to a tested range).

The small accessors below are the only way the rest of the runtime reads them.
"""

from __future__ import annotations

import hashlib
import inspect
import weakref
from typing import Any

from faust.streams import _current_event

__all__ = [
    "ADAPTED",
    "PRIVATE",
    "cluster_partitions",
    "flow_suspended",
    "in_flight",
    "offsets",
    "producer_send",
    "set_current_event",
    "source_digest",
    "stream_buffers_empty",
]

# (owner as "module:qualname", attribute): each is read or called by agents.runtime
PRIVATE: tuple[tuple[str, str], ...] = (
    ("faust.streams", "_current_event"),  # the RocksDB store picks its partition from it
    ("faust.transport.consumer:Consumer", "_drain_messages"),  # replaced (drain)
    ("faust.transport.consumer:Consumer", "_read_offset"),  # drain, stalls
    ("faust.transport.consumer:Consumer", "_committed_offset"),  # stalls
    ("faust.transport.consumer:Consumer", "_unacked_messages"),  # stalls
    ("faust.transport.consumer:Consumer", "_commit_every"),  # drain
    ("faust.transport.consumer:Consumer", "_n_acked"),  # drain
    ("faust.transport.consumer:Consumer", "_add_gap"),  # drain
    ("faust.transport.consumer:Consumer", "_stopped"),  # drain (mode's Service)
    ("faust.transport.consumer:ThreadDelegateConsumer", "_thread"),  # partition counts
    ("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread", "_ensure_consumer"),
    ("faust.transport.drivers.aiokafka:Producer", "_ensure_producer"),  # producer access
    ("aiokafka.consumer.consumer:AIOKafkaConsumer", "_client"),  # cluster metadata
    # drain: the fetch wait, set on the consumer Faust builds, read by aiokafka at start
    ("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread", "_create_worker_consumer"),
    ("aiokafka.consumer.consumer:AIOKafkaConsumer", "_fetch_min_bytes"),
    ("aiokafka.consumer.consumer:AIOKafkaConsumer", "_fetch_max_wait_ms"),
    ("mode.utils.queues:FlowControlEvent", "_queues"),  # stalls: stream buffers
)

# functions whose body agents.runtime.drain adapts: (owner, name, sha256 of the source)
ADAPTED: tuple[tuple[str, str, str], ...] = (
    (
        "faust.transport.consumer:Consumer",
        "_drain_messages",
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    ),
)


def source_digest(fn: Any) -> str:
    """The sha256 of a function's source, to notice an upstream change to it."""
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()


def set_current_event(event: Any) -> None:
    """Make ``event`` Faust's current event (only the context variable: a stream's own
    ``current_event`` is what ``take_events`` reads to fill its next batch)."""
    _current_event.set(weakref.ref(event))


def producer_send(app: Any) -> Any:
    """aiokafka's ``send(topic, value, key=, partition=)`` of the producer Faust started,
    without Faust's wrapper (its produce signal and transaction checks, ~3 µs a
    message); through the wrapper on another transport."""
    faust_producer = app.producer
    try:
        return faust_producer._ensure_producer().send
    except AttributeError:
        return lambda topic, value, key, partition: faust_producer.send(
            topic, key, value, partition, None, None
        )


def cluster_partitions(app: Any, topic: str) -> int | None:
    """A topic's partition count from the consumer's cluster metadata.

    Faust's ``topic_partitions`` reads the group coordinator's snapshot, which only the
    group leader fills: on the other workers it said None, and they re-keyed every
    event (found with two workers)."""
    count: int | None = app.consumer.topic_partitions(topic)
    if count is None:
        try:
            thread = app.consumer._thread
            cluster = thread._ensure_consumer()._client.cluster
            parts = cluster.partitions_for_topic(topic)
            count = len(parts) if parts else None
        except AttributeError:  # another transport: no fast path, no repair
            count = None
    return count


def flow_suspended(app: Any) -> bool:
    """Whether the consumer's flow is stopped (a rebalance or a shutdown is under way)."""
    return bool(app.consumer.suspend_flow.is_set())


def offsets(consumer: Any, tp: Any) -> tuple[int | None, int | None]:
    """A partition's (committed, read) offsets as Faust's consumer records them."""
    return consumer._committed_offset.get(tp), consumer._read_offset.get(tp)


def in_flight(consumer: Any) -> set[Any]:
    """The topic-partitions with a message delivered and not yet acknowledged."""
    return {m.tp for m in list(consumer._unacked_messages)}


def stream_buffers_empty(app: Any) -> bool:
    """Whether every stream's buffer is empty (mode's flow-control queues)."""
    return all(q.empty() for q in list(app.flow_control._queues))
