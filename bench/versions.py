"""Baton against an earlier commit of itself, in one run on one broker.

    .venv/bin/python -m bench.versions --ref acf5ef8 --events 30000

The earlier commit is exported (``git archive``) to a temporary folder and its worker
runs from there (``python -m agents.cli worker`` with that folder as the working
directory, so its ``agents`` and ``pipeline`` are imported, not this tree's). For
``--rounds`` rounds, each version in turn (the order alternating) drains the same
pre-loaded events on fresh topics: events/s and the worker's CPU µs per event. Then
each version's worker is fed at the same paced rate, 50 % of the slower version's
median drain rate, for ``--latency-seconds``: p50, p95 and p99 of probe produced ->
its decision consumed. Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agents.demo import stop_worker, wait_healthy
from agents.localkafka import free_port
from bench.common import on_broker
from bench.throughput import (
    SETTLE_S,
    cpu_s,
    latency,
    mark,
    pct,
    preload,
    processed_rate,
    settings,
    worker_env,
)

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]


def export(ref: str, into: Path) -> Path:
    """The tree of ``ref`` in a fresh folder (no work tree of this repository is touched)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True)
    if archive.returncode:
        raise SystemExit(f"git archive {ref}: {archive.stderr.decode().strip()}")
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def start(tree: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "worker"],
            cwd=tree,
            env={"BATON_ALLOW_DEV_KEYS": "true", **env},
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def drain(
    tree: Path, bootstrap: str, args: argparse.Namespace, workdir: Path, tag: str
) -> tuple[float, float, subprocess.Popen[bytes], Any]:
    """One worker from ``tree`` over pre-loaded events on fresh topics: events/s, CPU µs
    per event, the still-running worker and its settings."""
    n, customers = args.events, max(1, args.events // 10)
    s = settings(bootstrap, args.partitions)
    await preload(s, [(i, f"c-{i % customers}") for i in range(n)], time.time())
    port = free_port()
    env = worker_env(s, port, workdir / f"data-{s.topic_prefix}")
    proc = start(tree, env, workdir / f"worker-{tag}-{s.topic_prefix}log")
    try:
        began = await mark([port], "baton_events_processed_total", [proc.pid])
        await asyncio.to_thread(wait_healthy, port, proc)
        eps, counted = await processed_rate([port], "baton_events_processed_total", n, began)
        await asyncio.sleep(SETTLE_S)
        return eps, (cpu_s(proc.pid) - began.cpu) / counted * 1e6, proc, s
    except BaseException:
        stop_worker(proc)
        raise


async def run(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    trees = {"before": export(args.ref, workdir / "ref"), "after": ROOT}
    rounds: dict[str, list[tuple[float, float]]] = {v: [] for v in trees}
    last: dict[str, tuple[subprocess.Popen[bytes], Any]] = {}
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for version in order:
            eps, cpu, proc, s = await drain(trees[version], bootstrap, args, workdir, version)
            rounds[version].append((eps, cpu))
            if version in last:
                stop_worker(last[version][0])
            last[version] = (proc, s)
    medians = {v: [statistics.median(x) for x in zip(*rs, strict=True)] for v, rs in rounds.items()}
    rate = 0.5 * min(m[0] for m in medians.values())
    out: dict[str, Any] = {"ref": args.ref, "events": args.events, "rounds": args.rounds}
    out["latency_rate_per_s"] = round(rate)
    customers = max(1, args.events // 10)
    for i, version in enumerate(trees):
        proc, s = last[version]
        try:
            first = (i + 1) * 50_000_000
            lat, achieved = await latency(s, rate, args.latency_seconds, first, customers)
        finally:
            stop_worker(proc)
        eps, cpu = medians[version]
        out |= {
            f"{version}_events_per_s": round(eps),
            f"{version}_cpu_us_per_event": round(cpu, 1),
            f"{version}_rounds": [[round(e), round(c, 1)] for e, c in rounds[version]],
            f"{version}_latency_rate_achieved": round(achieved),
            f"{version}_latency_samples": len(lat),
            f"{version}_p50_ms": round(pct(lat, 50) * 1000, 1),
            f"{version}_p95_ms": round(pct(lat, 95) * 1000, 1),
            f"{version}_p99_ms": round(pct(lat, 99) * 1000, 1),
        }
    out["after_vs_before_events_per_s"] = round(
        out["after_events_per_s"] / out["before_events_per_s"], 3
    )
    out["after_vs_before_cpu"] = round(
        out["before_cpu_us_per_event"] / out["after_cpu_us_per_event"], 3
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--ref", default="acf5ef8", help="the earlier commit (default: before issue 14)"
    )
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--json", type=Path, default=None)
    return on_broker(run, ap.parse_args(argv), "baton-versions-")


if __name__ == "__main__":
    sys.exit(main())
