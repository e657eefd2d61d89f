"""Memory and cost per customer as the state grows, for the memory and the RocksDB stores.

    .venv/bin/python -m bench.memory --sizes 10000 100000 1000000 --png bench/results/memory.png

For each store: a fresh worker, then customers added until the table holds each size in
turn (two events each: a product view with a category, an add to cart). After each step:
the worker's resident memory, its growth per customer since the worker was ready, the
worker's CPU per event over that step's events (so a store that slows with its size
shows it), the RocksDB files on disk, and the mean size of one customer's state as
written to the changelog. Prints a table; ``--json`` writes it, ``--png`` plots RSS and
CPU per event against the number of customers.
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
from bench.throughput import SETTLE_S, cpu_s, event, produce_all, rss_mb
from tests.kafkaio import latest_by_key, read_until

__all__ = ["main"]

CHUNK = 100_000  # messages produced at a time


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


async def wait_processed(port: int, n: int, limit_s: float = 3600) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        m = await asyncio.to_thread(scrape, port)
        if sum(m.get("baton_events_processed_total", {}).values()) >= n:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"worker did not process {n} events")


async def add_customers(bootstrap: str, topic: str, first: int, last: int) -> int:
    """Two events for each customer in ``[first, last)``; returns the messages sent."""
    now, sent = time.time(), 0
    for start in range(first, last, CHUNK // 2):
        msgs = [
            (topic, f"m-{c}".encode(), event(c * 2 + k, kind, now - 60 + k, f"m-{c}"))
            for c in range(start, min(last, start + CHUNK // 2))
            for k, kind in enumerate(("product_view", "add_to_cart"))
        ]
        await produce_all(bootstrap, msgs)
        sent += len(msgs)
    return sent


async def one_store(
    store: str, bootstrap: str, sizes: list[int], workdir: Path, env_extra: dict[str, str]
) -> list[dict[str, Any]]:
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
        **env_extra,
    }
    proc = start_worker(env, workdir / f"worker-{store}.log")
    rows: list[dict[str, Any]] = []
    try:
        await asyncio.to_thread(wait_healthy, port, proc)
        ready = rss_mb(proc.pid)
        topic, have, events, before = f"{prefix}events.clickstream", 0, 0, ready
        for size in sizes:
            cpu0 = cpu_s(proc.pid)
            step = await add_customers(bootstrap, topic, have, size)
            await wait_processed(port, events + step)
            await asyncio.sleep(SETTLE_S)
            cpu = cpu_s(proc.pid) - cpu0
            rss = rss_mb(proc.pid)
            marginal = (rss - before) * 1024 / (size - have)
            have, events, before = size, events + step, rss
            rows.append(
                {
                    "store": store,
                    "customers": size,
                    "rss_mb": round(rss, 1),
                    "rss_kb_per_customer": round((rss - ready) * 1024 / size, 2),
                    # the growth since the last size, per customer added
                    "rss_kb_per_customer_added": round(marginal, 2),
                    "cpu_us_per_event": round(cpu / max(1, step) * 1e6, 1),
                    "rocksdb_disk_mb": round(du_mb(data), 1) if store == "rocksdb" else 0.0,
                }
            )
            print(rows[-1], flush=True)
    finally:
        stop_worker(proc)
    changelog = await read_until(
        bootstrap, [f"{prefix}worker-customers-changelog"], lambda rs: False, timeout=5
    )
    values = [v for v in latest_by_key(changelog).values() if v]
    mean = round(sum(map(len, values)) / max(1, len(values)))
    for r in rows:
        r["rss_mb_ready"] = round(ready, 1)
        r["state_bytes_mean"] = mean
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for store in dict.fromkeys(r["store"] for r in rows):
        mine = [r for r in rows if r["store"] == store]
        xs = [r["customers"] for r in mine]
        left.plot(xs, [r["rss_mb"] for r in mine], marker="o", label=store)
        right.plot(xs, [r["cpu_us_per_event"] for r in mine], marker="o", label=store)
    for ax, title in ((left, "worker RSS (MB)"), (right, "CPU per event (µs)")):
        ax.set_xscale("log")
        ax.set_xlabel("customers in state")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--stores", nargs="+", default=["memory", "rocksdb"])
    ap.add_argument(
        "--env", nargs="*", default=[], metavar="NAME=VALUE", help="worker settings to add"
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args(argv)
    sizes = sorted(set(args.sizes))
    extra = dict(kv.split("=", 1) for kv in args.env)
    workdir = Path(tempfile.mkdtemp(prefix="baton-bench-mem-"))
    with broker(workdir) as bootstrap:
        rows = [
            r
            for s in args.stores
            for r in asyncio.run(one_store(s, bootstrap, sizes, workdir, extra))
        ]
    keys = list(rows[0])
    print("  ".join(f"{k:>20}" for k in keys))
    for r in rows:
        print("  ".join(f"{r[k]!s:>20}" for k in keys))
    save(args.json, rows)
    if args.png:
        plot(rows, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
