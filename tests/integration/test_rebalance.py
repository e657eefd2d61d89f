"""Rebalance test: a second worker joins the group mid-stream, then the first one leaves
(SIGTERM), so every partition changes hands at least once while events keep coming.

Each step must leave the state exact (every event applied once, none lost), which is
what batching and one changelog record per customer per batch (agents.customers) must
not break: the worker that takes a partition over recovers it from the changelog, so a
record not written (or written to the wrong partition) shows up here as a short count.
An earlier attempt at coalescing (from Faust's commit hook) left a two-worker group
stuck after a rebalance; a stall fails here by timeout.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka.partitioner import murmur2

from agents.demo import scrape, stop_worker
from pipeline.simulator import event_doc
from tests.kafkaio import latest_by_key, produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]
CUSTOMERS, PER_PHASE = 200, 5
KINDS = ("page_view", "product_view", "search", "page_view", "product_view")


def processed(port: int) -> float:
    try:
        return sum(scrape(port).get("baton_events_processed_total", {}).values())
    except OSError:
        return 0.0


async def test_state_stays_exact_while_partitions_move(kafka, prefix, start_worker) -> None:
    t0 = time.time() - 3600
    clickstream, changelog = f"{prefix}events.clickstream", f"{prefix}worker-customers-changelog"

    async def phase(n: int) -> None:
        msgs = []
        for k in range(n * PER_PHASE, (n + 1) * PER_PHASE):
            for i in range(CUSTOMERS):
                cid = f"m{i:03d}"
                doc = event_doc(f"{cid}-{k}", KINDS[k % 5], t0 + k, cid, {"product_id": f"p{k}"})
                msgs.append((clickstream, cid.encode(), orjson.dumps(doc)))
        await produce(kafka.bootstrap, msgs)

    async def state_is(events_each: int) -> None:
        def complete(records: list) -> bool:
            latest = latest_by_key(records)
            return all(
                (v := latest.get(f"m{i:03d}".encode())) is not None
                and sum(orjson.loads(v)["counts"].values()) == events_each
                for i in range(CUSTOMERS)
            )

        records = await read_until(kafka.bootstrap, [changelog], complete, timeout=180, grace=2)
        counts = {
            k.decode(): sum(orjson.loads(v)["counts"].values())
            for k, v in latest_by_key(records).items()
            if v is not None
        }
        assert counts == {f"m{i:03d}": events_each for i in range(CUSTOMERS)}
        # each record on its customer's partition, where the partition's next owner reads it
        wrong = [r.key for r in records if r.partition != (murmur2(r.key) & 0x7FFFFFFF) % 4]
        assert not wrong, f"changelog records on another partition: {wrong[:5]}"

    await phase(0)
    first = start_worker(BATON_SESSION_TIMEOUT_S="10")
    await state_is(PER_PHASE)

    second = start_worker(BATON_SESSION_TIMEOUT_S="10")  # joins: partitions move to it
    await phase(1)
    await state_is(2 * PER_PHASE)
    deadline = time.monotonic() + 60
    while processed(second.web_port) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert processed(second.web_port) > 0, "the second worker never got a partition"

    stop_worker(first.proc)  # leaves: its partitions move to the second worker
    await phase(2)
    await state_is(3 * PER_PHASE)
    assert first.proc.returncode is not None
