"""Small aiokafka helpers for broker-backed tests: produce, and read topics until done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord


async def produce(
    bootstrap: str,
    messages: Iterable[tuple[str, bytes | None, bytes]],
    request_timeout_ms: int = 40_000,
) -> int:
    """Send (topic, key, value) messages and wait until all are acknowledged (each send
    waits up to ``request_timeout_ms`` for its partition's leader)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        acks="all",
        request_timeout_ms=request_timeout_ms,
    )
    await producer.start()
    try:
        futures = [await producer.send(t, v, key=k) for t, k, v in messages]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


async def read_until(
    bootstrap: str,
    topics: list[str],
    done: Callable[[list[ConsumerRecord]], bool],
    timeout: float = 120.0,
    grace: float = 0.0,
) -> list[ConsumerRecord]:
    """Read ``topics`` from the beginning until ``done(records)`` (then ``grace`` s more)."""
    # No group: the consumer is assigned every partition and starts from the beginning.
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        finished_at: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=250)
            for msgs in batch.values():
                records.extend(msgs)
            if finished_at is None and done(records):
                finished_at = time.monotonic()
            if finished_at is not None and time.monotonic() - finished_at >= grace:
                break
        return records
    finally:
        await consumer.stop()


async def changelog_counts(
    bootstrap: str, changelog: str, expected: Mapping[str, int], timeout: float
) -> dict[str, int]:
    """Read the customers changelog until each customer in ``expected`` has that many
    events counted in its latest state (or ``timeout``); returns what the latest states
    count, for the caller to compare with ``expected``."""

    def counts(records: list[ConsumerRecord]) -> dict[str, int]:
        latest = latest_by_key(records)
        return {
            c: sum(orjson.loads(v)["counts"].values())
            for c in expected
            if (v := latest.get(c.encode())) is not None
        }

    records = await read_until(
        bootstrap, [changelog], lambda rs: counts(rs) == dict(expected), timeout=timeout
    )
    return counts(records)


def latest_by_key(records: Iterable[ConsumerRecord]) -> dict[bytes, bytes | None]:
    """Compacted view of a changelog: the last value per key (None = tombstone)."""
    out: dict[bytes, bytes | None] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.key] = r.value
    return out


def wait_processed(port: int, n: float, timeout: float, every: float = 0.25) -> float:
    """Poll a worker's processed count until it reaches ``n`` or ``timeout`` seconds
    pass; returns the last count read."""
    deadline = time.monotonic() + timeout
    while processed(port) < n and time.monotonic() < deadline:
        time.sleep(every)
    return processed(port)


def processed(port: int) -> float:
    """Events a worker has applied so far (its metrics), 0 while it does not answer."""
    from agents.demo import scrape

    try:
        return sum(scrape(port).get("baton_events_processed_total", {}).values())
    except OSError:
        return 0.0
