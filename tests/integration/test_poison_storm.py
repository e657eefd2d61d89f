"""Fault test: a poison storm. A third of the traffic is malformed in every known way
(oversized messages included) while valid events keep coming.

One worker drains a clean backlog of valid events, then a backlog of the same number of
valid events mixed with half as many bad ones. Every bad message must reach the
dead-letter topic with its reason, every valid event must be counted, and the valid
events' throughput in the storm is printed against the clean run (no floor is asserted:
timed figures belong in benchmarks; the ratio is the measurement).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
import pytest

from pipeline.simulator import BAD_KINDS, bad_message, event_doc
from tests.kafkaio import produce, read_until, wait_processed

pytestmark = [pytest.mark.broker, pytest.mark.slow]

VALID = 3000


def valid_events(prefix: str, tag: str, now: float) -> list[tuple[str, bytes, bytes]]:
    out = []
    for i in range(VALID):
        cid = f"{tag}{i % 300:03d}"
        doc = event_doc(f"{tag}-{i}", "product_view", now - 60, cid, {"product_id": f"p{i % 9}"})
        out.append((f"{prefix}events.clickstream", cid.encode(), orjson.dumps(doc)))
    return out


def drain_rate(port: int, target: float, began: float, timeout: float = 180) -> float:
    assert wait_processed(port, target, timeout, every=0.1) >= target, "every valid event counted"
    return VALID / (time.monotonic() - began)


def test_a_poison_storm_is_dead_lettered_and_valid_events_flow(kafka, prefix, start_worker) -> None:
    worker = start_worker()
    port, now = worker.web_port, time.time()

    clean = valid_events(prefix, "a", now)
    began = time.monotonic()
    asyncio.run(produce(kafka.bootstrap, clean))
    clean_rate = drain_rate(port, VALID, began)

    kinds = sorted(BAD_KINDS)
    bad = [bad_message(kinds[j % len(kinds)], now, f"bad{j}".encode()) for j in range(VALID // 2)]
    storm = valid_events(prefix, "b", now)
    mixed = []
    for i, msg in enumerate(storm):  # one bad message after every second valid one
        mixed.append(msg)
        if i % 2 == 1:
            b = bad[i // 2]
            mixed.append((f"{prefix}events.clickstream", b.key, b.value))
    began = time.monotonic()
    asyncio.run(produce(kafka.bootstrap, mixed))
    storm_rate = drain_rate(port, 2 * VALID, began)

    dead = asyncio.run(
        read_until(
            kafka.bootstrap,
            [f"{prefix}events.deadletter"],
            lambda rs: len(rs) >= len(bad),
            timeout=120,
            grace=1,
        )
    )
    reasons = Counter(orjson.loads(r.value)["reason"] for r in dead)
    assert reasons == Counter(m.expected_reason for m in bad), worker.log_tail()
    assert reasons["oversized"] > 0
    assert worker.proc.poll() is None, "the worker is still running"
    print(
        f"poison storm: {len(bad)} bad of {len(mixed)} ({len(bad) / len(mixed):.0%}), all "
        f"dead-lettered by reason; valid events {storm_rate:,.0f}/s in the storm against "
        f"{clean_rate:,.0f}/s clean ({storm_rate / clean_rate:.2f} x)"
    )
