"""Throughput, latency and memory of one Baton worker on the local Apache Kafka broker,
next to a plain aiokafka consume -> update a dict -> produce loop measured in the same run.

    .venv/bin/python -m bench.throughput --events 50000

Prints a table and writes JSON (``--json``). Numbers, not pass/fail: the test suite only
runs it with a tiny ``--events`` to check that it works.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.demo import scrape, start_worker, stop_worker, wait_healthy
from agents.localkafka import free_port
from agents.settings import Settings
from agents.topics import create_topics
from bench.common import broker, report
from pipeline.simulator import event_doc

__all__ = ["main"]
MIN = 60.0


def event(i: int, kind: str, t: float, cid: str) -> bytes:
    """A ~400-byte clickstream event, like the DESIGN's reference job."""
    props = {
        "product_id": f"p-{i % 997}",
        "category": "electronics.audio.headphone",
        "price": 10.0 + i % 90,
        "quantity": 1,
        "url": f"https://shop.example/p/{i % 997}?utm_source=bench&ref=x{i % 13}",
    }
    return orjson.dumps(event_doc(f"b-{i}-{kind}", kind, t, cid, props))


async def produce_all(bootstrap: str, msgs: list[tuple[str, bytes, bytes]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await p.start()
    try:
        for t, k, v in msgs:
            await p.send(t, v, key=k)
        await p.flush()
    finally:
        await p.stop()


async def baseline(bootstrap: str, topic_in: str, topic_out: str, n: int) -> float:
    """Plain aiokafka: consume, decode, update a dict, produce one message per event."""
    c = AIOKafkaConsumer(
        topic_in,
        bootstrap_servers=bootstrap,
        group_id=f"base-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        max_poll_records=2000,
    )
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await c.start()
    await p.start()
    state: dict[bytes, int] = {}
    seen, t0 = 0, 0.0
    deadline = time.monotonic() + 600
    try:
        while seen < n and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=500)
            for msgs in batch.values():
                if not t0 and msgs:
                    t0 = time.perf_counter()
                for m in msgs:
                    doc = orjson.loads(m.value)
                    state[m.key] = state.get(m.key, 0) + 1
                    await p.send(
                        topic_out,
                        orjson.dumps({"n": state[m.key], "t": doc["event_type"]}),
                        key=m.key,
                    )
                seen += len(msgs)
        await p.flush()
        return seen / (time.perf_counter() - t0)
    finally:
        await c.stop()
        await p.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def baton_throughput(port: int, n: int, ready_at: float) -> float:
    """Events/s from the moment the worker reported ready until all ``n`` are processed.

    Counting from readiness (not from the first processed event) charges Baton for its
    consumer start-up; with tens of thousands of events that is a small share.
    """
    done = 0.0
    deadline = time.monotonic() + 1200
    while done < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        m = await asyncio.to_thread(scrape, port)
        done = sum(m.get("baton_events_processed_total", {}).values())
    assert done >= n, f"worker processed {done} of {n}"
    return done / (time.perf_counter() - ready_at)


async def latency(s: Settings, pairs: int, rate: float) -> list[float]:
    """End to end: event produced -> its action consumed, at a paced rate."""
    c = AIOKafkaConsumer(
        s.topic("actions"),
        bootstrap_servers=s.kafka_bootstrap,
        auto_offset_reset="latest",
        group_id=f"lat-{uuid.uuid4()}",
    )
    await c.start()
    await c.getmany(timeout_ms=1000)  # join and position before sending
    p = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=0)
    await p.start()
    sent: dict[str, float] = {}
    lat: list[float] = []

    async def read() -> None:
        deadline = time.monotonic() + 60 + pairs / rate
        while len(lat) < pairs and time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=200)).values():
                for m in msgs:
                    eid = orjson.loads(m.value)["trigger"]["event_id"]
                    if eid in sent:
                        lat.append(time.time() - sent[eid])

    reader = asyncio.create_task(read())
    try:
        for j in range(pairs):
            now, cid = time.time(), f"lat-{j}".encode()
            await p.send(
                s.topic("events.clickstream"),
                event(j, "add_to_cart", now - 40 * MIN, cid.decode()),
                key=cid,
            )
            sent[f"b-{j}-page_view"] = time.time()
            await p.send(
                s.topic("events.clickstream"),
                event(j, "page_view", time.time(), cid.decode()),
                key=cid,
            )
            await asyncio.sleep(1 / rate)
        await reader
    finally:
        await p.stop()
        await c.stop()
    return lat


def pct(xs: list[float], q: float) -> float:
    return (
        statistics.quantiles(xs, n=100, method="inclusive")[q - 1]
        if len(xs) > 1
        else (xs or [float("nan")])[0]
    )


async def run(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    n, customers = args.events, max(1, args.events // 10)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    s = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=args.partitions)
    await create_topics(s)
    now = time.time()
    events = [(i, f"c-{i % customers}") for i in range(n)]
    kinds = ("page_view", "product_view", "add_to_cart", "product_view", "page_view")

    # 1. baseline loop on its own topics
    base_in, base_out = f"{prefix}base.in", f"{prefix}base.out"
    await produce_all(
        bootstrap, [(base_in, c.encode(), event(i, kinds[i % 5], now, c)) for i, c in events]
    )
    base = await baseline(bootstrap, base_in, base_out, n)

    # 2. the Baton worker on the same events, pre-loaded, drained from the start
    await produce_all(
        bootstrap,
        [
            (s.topic("events.clickstream"), c.encode(), event(i, kinds[i % 5], now, c))
            for i, c in events
        ],
    )
    port = free_port()
    env = {
        **os.environ,
        "BATON_KAFKA_BOOTSTRAP": bootstrap,
        "BATON_TOPIC_PREFIX": prefix,
        "BATON_WEB_PORT": str(port),
        "BATON_PARTITIONS": str(args.partitions),
        "BATON_DATA_DIR": str(workdir / "data"),
        "BATON_TIMER_INTERVAL_S": "3600",
        "BATON_LOG_LEVEL": "warning",
    }
    proc = start_worker(env, workdir / "worker.log")
    try:
        await asyncio.to_thread(wait_healthy, port, proc)
        ready_at, rss_idle = time.perf_counter(), rss_mb(proc.pid)
        eps = await baton_throughput(port, n, ready_at)
        rss_full = rss_mb(proc.pid)
        lat = await latency(s, args.latency_events, args.rate)
    finally:
        stop_worker(proc)
    return {
        "events": n,
        "customers": customers,
        "partitions": args.partitions,
        "baseline_aiokafka_events_per_s": round(base),
        "baton_events_per_s": round(eps),
        "baton_vs_baseline": round(eps / base, 3),
        "latency_rate_per_s": args.rate,
        "latency_samples": len(lat),
        "latency_p50_ms": round(pct(lat, 50) * 1000, 1),
        "latency_p95_ms": round(pct(lat, 95) * 1000, 1),
        "latency_p99_ms": round(pct(lat, 99) * 1000, 1),
        "worker_rss_mb_ready": round(rss_idle, 1),
        "worker_rss_mb_after": round(rss_full, 1),
        "state_kb_per_customer": round((rss_full - rss_idle) * 1024 / customers, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--latency-events", type=int, default=500)
    ap.add_argument("--rate", type=float, default=100.0, help="paced pairs/s for latency")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    with broker(workdir) as bootstrap:
        result = asyncio.run(run(args, bootstrap, workdir))
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
