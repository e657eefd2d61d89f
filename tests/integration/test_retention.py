"""Retention: customers idle (by event time) past BATON_STATE_RETENTION_S are deleted
from state (a tombstone on the changelog); active ones stay."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from agents.demo import scrape
from pipeline.simulator import event_doc
from tests.kafkaio import latest_by_key, produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_idle_customers_expire(kafka, prefix, start_worker) -> None:
    worker = start_worker(BATON_STATE_RETENTION_S="3600", BATON_RESCAN_INTERVAL_S="1")
    now, topic = time.time(), f"{prefix}events.clickstream"
    msgs = [
        (topic, b"old", orjson.dumps(event_doc("o1", "page_view", now - 7200, "old", {}))),
        (topic, b"new", orjson.dumps(event_doc("n1", "page_view", now - 60, "new", {}))),
    ]
    await produce(kafka.bootstrap, msgs)

    def expired(rs: list) -> bool:
        latest = latest_by_key(rs)
        return b"old" in latest and latest[b"old"] is None

    changelog = await read_until(
        kafka.bootstrap, [f"{prefix}worker-customers-changelog"], expired, timeout=60, grace=2
    )
    latest = latest_by_key(changelog)
    assert latest[b"old"] is None and latest[b"new"] is not None
    for _ in range(50):
        if scrape(worker.web_port).get("baton_customers_expired_total", {}).get((), 0) >= 1:
            break
        await asyncio.sleep(0.1)
    assert scrape(worker.web_port)["baton_customers_expired_total"][()] == 1
