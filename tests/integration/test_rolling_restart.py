"""Fault test: a rolling restart of three workers during traffic.

Three workers share the partitions while a separate producer sends about 150 events/s
for 300 customers. Each worker in turn is stopped (SIGTERM: it flushes its changelog
and commits) and a new one started in its place, waiting for ``/readyz`` before the
next, as a StatefulSet's rolling update does. When the traffic ends, every customer's
state must count exactly the events sent (a fault-free replay), none lost, none twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.demo import stop_worker
from pipeline.simulator import event_doc
from tests.kafkaio import changelog_counts

pytestmark = [pytest.mark.broker, pytest.mark.slow]
RATE, CUSTOMERS = 150, 300


async def feed(bootstrap: str, topic: str, stop: threading.Event, sent: Counter) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    n, began, futures = 0, time.monotonic(), []
    try:
        while not stop.is_set() and time.monotonic() - began < 300:  # bounded
            cid = f"r{n % CUSTOMERS:03d}"
            doc = event_doc(f"{cid}-{n}", "page_view", time.time(), cid, {"url": "/"})
            futures.append(await producer.send(topic, orjson.dumps(doc), key=cid.encode()))
            sent[cid] += 1
            n += 1
            await asyncio.sleep(max(0.0, began + n / RATE - time.monotonic()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def test_a_rolling_restart_loses_nothing(kafka, prefix, start_worker) -> None:
    env = {"BATON_SESSION_TIMEOUT_S": "10"}
    workers = [start_worker(**env) for _ in range(3)]
    stop, sent = threading.Event(), Counter()
    feeder = threading.Thread(
        target=lambda: asyncio.run(
            feed(kafka.bootstrap, f"{prefix}events.clickstream", stop, sent)
        ),
        daemon=True,
    )
    feeder.start()
    began = time.monotonic()
    time.sleep(5)
    for i in range(3):  # one at a time, the next once the new one is ready
        stop_worker(workers[i].proc)
        workers[i] = start_worker(**env)
        time.sleep(3)
    stop.set()
    feeder.join(60)
    assert not feeder.is_alive()
    took = time.monotonic() - began

    changelog = f"{prefix}worker-customers-changelog"
    counted = asyncio.run(changelog_counts(kafka.bootstrap, changelog, sent, timeout=120))
    assert counted == dict(sent), "every event once"
    assert all(w.proc.poll() is None for w in workers)
    print(
        f"rolling restart of 3 workers in {took:.0f} s under {RATE} events/s: "
        f"{sum(sent.values())} events, {len(sent)} customers, state exact"
    )
