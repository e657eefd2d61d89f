"""Fault test: the broker stops for ten seconds and comes back while the worker runs.

The worker has its own broker here (the session's is shared). Events flow at about
100 a second from a separate producer before, during and after the outage (sends during
the outage wait in the producer and are retried). The worker must reconnect and catch
up with no manual step, every valid event counted exactly once in state (read back from
the changelog), and its log must stay readable: connection errors during the outage are
logged once per logger and message per interval, with a count, not once per attempt.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.demo import start_worker, stop_worker, wait_healthy
from agents.localkafka import LocalKafka, free_port
from pipeline.simulator import event_doc
from tests.kafkaio import changelog_counts, wait_processed

pytestmark = [pytest.mark.broker, pytest.mark.slow]

RATE, BEFORE_S, OUTAGE_S, AFTER_S = 100, 5.0, 10.0, 5.0
CUSTOMERS = 200


async def feed(bootstrap: str, prefix: str, seconds: float, first: int, sent: Counter) -> int:
    """Events at RATE a second for ``seconds``; returns the next event number."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=60_000, linger_ms=5
    )
    await producer.start()
    n, began, futures = first, time.monotonic(), []
    try:
        while time.monotonic() - began < seconds:
            cid = f"b{n % CUSTOMERS:03d}"
            doc = event_doc(f"{cid}-{n}", "page_view", time.time(), cid, {"url": "/"})
            futures.append(
                await producer.send(
                    f"{prefix}events.clickstream", orjson.dumps(doc), key=cid.encode()
                )
            )
            sent[cid] += 1
            n += 1
            await asyncio.sleep(max(0.0, began + (n - first) / RATE - time.monotonic()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n


def test_worker_survives_a_broker_restart(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka", port=free_port())
    bootstrap = broker.start()
    prefix, port, log = "br.", free_port(), tmp_path / "worker.log"
    env = {
        **os.environ,
        "BATON_KAFKA_BOOTSTRAP": bootstrap,
        "BATON_TOPIC_PREFIX": prefix,
        "BATON_WEB_PORT": str(port),
        "BATON_DATA_DIR": str(tmp_path / "data"),
        "BATON_TIMER_INTERVAL_S": "1",
    }
    proc = start_worker(env, log)
    sent: Counter[str] = Counter()
    try:
        wait_healthy(port, proc, timeout=120)
        seconds = BEFORE_S + OUTAGE_S + AFTER_S
        feeder = threading.Thread(
            target=lambda: asyncio.run(feed(bootstrap, prefix, seconds, 0, sent)), daemon=True
        )
        feeder.start()
        time.sleep(BEFORE_S)
        outage_began = log.stat().st_size
        broker.stop()
        time.sleep(OUTAGE_S)
        broker.start()
        outage_log = log.read_bytes()[outage_began:].decode(errors="replace")
        feeder.join(timeout=seconds + 90)
        assert not feeder.is_alive(), "the producer finished"
        total = sum(sent.values())
        wait_processed(port, total, 120, every=0.5)
        assert proc.poll() is None, "the worker is still running"

        changelog = f"{prefix}worker-customers-changelog"
        counted = asyncio.run(changelog_counts(bootstrap, changelog, sent, timeout=60))
        assert counted == dict(sent), "every event once, none lost"
        noisy = [ln for ln in outage_log.splitlines() if re.search(r"\[(ERROR|WARNING)\]", ln)]
        print(
            f"broker restart: {total} events sent over {seconds:.0f} s, all counted once; "
            f"{len(noisy)} ERROR/WARNING lines during the {OUTAGE_S:.0f} s outage"
        )
        assert len(noisy) <= 60, "\n".join(noisy[:80])
    finally:
        stop_worker(proc)
        broker.cleanup()
