"""A soak: one worker at a share of its measured capacity for minutes, RSS and latency
printed every ``--every`` seconds.

    .venv/bin/python -m bench.soak --minutes 10          # make soak
    .venv/bin/python -m bench.soak --minutes 0.5 --every 15 --rate 500 --events 3000  # CI

The worker first drains ``--events`` pre-loaded events (its capacity, as in
``bench.latency``); then a separate pacer process sends ``--share`` of that rate, in
windows of ``--every`` seconds, each timed the way ``bench.latency`` times its probes
(event produced -> action consumed); ``--rate`` sets a fixed rate instead (a small
backlog drains too fast to measure a capacity by). After each window: the worker's resident memory
(from ``/proc``), the p50/p99/max of that window's probes, the rate achieved. A worker
whose memory keeps growing, or whose p99 climbs window after window, shows it here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from agents.demo import stop_worker
from bench.common import on_broker
from bench.latency import _drain, figures, probe_run

__all__ = ["main", "rss_mb"]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    eps, procs, cpu, s = await _drain(args, bootstrap, workdir, None)
    rate, customers = args.rate or args.share * eps, max(1, args.events // 10)
    print(f"capacity {eps:,.0f} events/s ({cpu} µs CPU per event); soak at {rate:,.0f}/s")
    print(f"{'t (s)':>6} {'rate/s':>7} {'RSS MB':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    windows, began = [], time.monotonic()
    try:
        while time.monotonic() - began < args.minutes * 60 - 1:
            got = await probe_run(s, rate, args.every, customers, args.probe_every)
            row = figures(*got) | {
                "t_s": round(time.monotonic() - began),
                "rss_mb": round(rss_mb(procs[0].pid), 1),
            }
            windows.append(row)
            print(
                f"{row['t_s']:>6} {row['rate_achieved']:>7} {row['rss_mb']:>7} "
                f"{row['p50_ms']:>7} {row['p99_ms']:>7} {row['max_ms']:>7}",
                flush=True,
            )
            if procs[0].poll() is not None:
                raise RuntimeError(f"the worker exited with {procs[0].returncode}")
    finally:
        for proc in procs:
            stop_worker(proc)
    rss = [w["rss_mb"] for w in windows]
    return {
        "capacity_events_per_s": round(eps),
        "rate": round(rate),
        "windows": windows,
        "rss_first_mb": rss[0] if rss else None,
        "rss_last_mb": rss[-1] if rss else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=30.0)
    ap.add_argument("--share", type=float, default=0.5)
    ap.add_argument("--rate", type=float, default=None, help="events/s, instead of a share")
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--probe-every", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    return on_broker(run, ap.parse_args(argv), "baton-soak-")


if __name__ == "__main__":
    sys.exit(main())
