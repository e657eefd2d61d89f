"""Source progress marks find a range committed but never processed, and read it again
from the real broker, in order, exactly (agents.runtime.progress)."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.runtime.progress import Progress
from tests.kafkaio import produce

pytestmark = [pytest.mark.broker]


class Table:  # the Faust table's store, as Progress uses it
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


async def test_a_gap_is_found_and_read_again_exactly(kafka, prefix) -> None:
    topic = f"{prefix}events.clickstream"
    msgs = [(topic, f"k{i}".encode(), f"v{i}".encode()) for i in range(120)]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    await produce(kafka.bootstrap, msgs)

    table = Table()
    p = Progress(table, {"bootstrap_servers": kafka.bootstrap})
    assert p.gap(topic, 0, 0) is None, "no mark yet: nothing to compare"
    for offset in range(10):
        p.done(topic, 0, offset)
    records = p.flush()
    assert records == [(0, f"{topic}:0".encode(), b"10")]

    # a new owner (fresh object, same table) sees offset 70 first: 10..69 were skipped
    q = Progress(table, {"bootstrap_servers": kafka.bootstrap})
    assert q.gap(topic, 0, 9) is None, "a redelivery is not a gap"
    assert q.gap(topic, 0, 10) is None
    assert q.gap(topic, 0, 70) == (10, 70)
    again = await q.reread(topic, 0, 10, 70)
    assert [m.message.offset for m in again] == list(range(10, 70))
    assert [(m.key, m.value) for m in again] == [(k, v) for _, k, v in msgs[10:70]]
    q.seen(topic, 0, 70)
    assert q.gap(topic, 0, 71) is None
