"""Memory per 100,000 customers in state, for the memory and the RocksDB table stores.

    .venv/bin/python -m bench.memory --customers 100000

For each store: a fresh worker, N customers with two events each (a product view with
a category, an add to cart), then the worker's resident memory before and after, the
RocksDB files on disk, and the mean size of one customer's state as written to the
changelog. Figures are scaled to 100,000 customers. Prints a table; ``--json`` writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from agents.demo import scrape, start_worker, stop_worker, wait_healthy
from agents.localkafka import free_port
from agents.settings import Settings
from agents.topics import create_topics
from bench.common import broker, save
from bench.throughput import event, produce_all, rss_mb
from tests.kafkaio import latest_by_key, read_until

__all__ = ["main"]


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


async def wait_processed(port: int, n: int, limit_s: float = 1800) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        m = await asyncio.to_thread(scrape, port)
        if sum(m.get("baton_events_processed_total", {}).values()) >= n:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"worker did not process {n} events")


async def one_store(store: str, bootstrap: str, customers: int, workdir: Path) -> dict[str, Any]:
    prefix = f"mem{uuid.uuid4().hex[:6]}."
    await create_topics(Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix))
    port, data = free_port(), workdir / f"data-{store}"
    env = {
        **os.environ,
        "BATON_KAFKA_BOOTSTRAP": bootstrap,
        "BATON_TOPIC_PREFIX": prefix,
        "BATON_WEB_PORT": str(port),
        "BATON_DATA_DIR": str(data),
        "BATON_STORE": store,
        "BATON_TIMER_INTERVAL_S": "3600",
        "BATON_LOG_LEVEL": "warning",
    }
    proc = start_worker(env, workdir / f"worker-{store}.log")
    try:
        await asyncio.to_thread(wait_healthy, port, proc)
        before = rss_mb(proc.pid)
        now, topic = time.time(), f"{prefix}events.clickstream"
        msgs = [
            (topic, f"m-{c}".encode(), event(c * 2 + k, kind, now - 60 + k, f"m-{c}"))
            for c in range(customers)
            for k, kind in enumerate(("product_view", "add_to_cart"))
        ]
        await produce_all(bootstrap, msgs)
        await wait_processed(port, len(msgs))
        await asyncio.sleep(2)
        after = rss_mb(proc.pid)
        disk = du_mb(data) if store == "rocksdb" else 0.0
    finally:
        stop_worker(proc)
    changelog = await read_until(
        bootstrap, [f"{prefix}worker-customers-changelog"], lambda rs: False, timeout=5
    )
    values = [v for v in latest_by_key(changelog).values() if v]
    scale = 100_000 / customers
    return {
        "store": store,
        "customers": customers,
        "rss_mb_ready": round(before, 1),
        "rss_mb_after": round(after, 1),
        "rss_mb_per_100k_customers": round((after - before) * scale, 1),
        "rocksdb_disk_mb_per_100k_customers": round(disk * scale, 1),
        "state_bytes_mean": round(sum(map(len, values)) / max(1, len(values))),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="baton-bench-mem-"))
    with broker(workdir) as bootstrap:
        rows = [
            asyncio.run(one_store(s, bootstrap, args.customers, workdir))
            for s in ("memory", "rocksdb")
        ]
    keys = list(rows[0])
    print("  ".join(f"{k:>20}" for k in keys))
    for r in rows:
        print("  ".join(f"{r[k]!s:>20}" for k in keys))
    save(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
