"""End-to-end latency under paced load, every probe timed, with its worst second.

    .venv/bin/python -m bench.latency --shares 0.25 0.5 0.8 0.95 --seconds 30

With ``--ref COMMIT`` the earlier commit's worker is measured first, the same way and at
the same rates (``bench.versions`` explains how it runs), then this tree's. With
``--peers quix confluent`` the peers' reference job (``bench.peers``: per-customer state,
one output per event) is paced the same way at the same rates, after Baton, each on its
own topics, and each rate reports Baton's p99 against theirs.

One Baton worker first drains ``--events`` pre-loaded events (its drain rate, as in
``bench.throughput``); then, for each rate (``--rates`` in events/s, and ``--shares`` of
the drain rate), a separate process (``bench.pacer``) sends events at that rate for
``--seconds``. One in ``--probe-every`` is a probe (a new customer's first page view,
which always gets a decision); probe handed to the producer -> its decision consumed
here is its latency. Per rate: p50, p95, p99, max, and the worst one-second window
(the highest p99 of the probes sent in any one second, and its ratio to the run's p99:
a flush-shaped stall shows up there), and the job's CPU µs per event while paced
(``cpu_us_per_event``, all its threads, next to its drain's: an event that arrives a few
at a time costs more than one in a backlog). ``--png`` plots latency over time for each
rate.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from agents.demo import stop_worker
from agents.topics import create_topics
from bench.common import on_broker
from bench.throughput import baton_workers, cpu_s, decisions_consumer, event, pct, settings
from bench.versions import ROOT, drain, export

__all__ = ["main", "windows"]


def windows(samples: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(second, p99 of the probes sent in it) for each whole second of the run.

    >>> windows([(0.1, 0.01), (0.5, 0.03), (1.2, 0.5)])
    [(0.0, 0.03), (1.0, 0.5)]
    """
    if not samples:
        return []
    t0 = samples[0][0]
    by_second: dict[int, list[float]] = {}
    for t, lat in samples:
        by_second.setdefault(int(t - t0), []).append(lat)
    return [(float(s), pct(v, 99)) for s, v in sorted(by_second.items())]


async def probe_run(
    s: Any, rate: float, seconds: float, customers: int, probe_every: int
) -> tuple[list[tuple[float, float]], float]:
    """Pace ``rate`` events/s from a separate process; the probes' (sent, latency)."""
    c = await decisions_consumer(s)  # positioned before the pacer starts
    run_id = uuid.uuid4().hex[:6]
    args = [s.kafka_bootstrap, s.topic("events.clickstream"), str(rate), str(seconds)]
    pacer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.pacer",
        *args,
        str(customers),
        run_id,
        str(probe_every),
        stdout=subprocess.PIPE,
    )
    expected = len(range(0, max(1, int(rate * seconds)), probe_every))
    got: list[tuple[float, float]] = []
    tag = f"lat-{run_id}-".encode()
    try:
        deadline = time.monotonic() + seconds + 90  # bounded
        while len(got) < expected and time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=200)).values():
                now = time.time()
                for m in msgs:
                    if tag not in m.value:
                        continue
                    eid = orjson.loads(m.value)["trigger"]["event_id"]
                    sent = int(eid.rsplit("-", 1)[1]) / 1e9
                    got.append((sent, now - sent))
        out, _ = await pacer.communicate()
        achieved = float(out.decode().strip() or "nan")
    finally:
        if pacer.returncode is None:
            pacer.kill()
        await c.stop()
    got.sort()
    return got, achieved


def figures(samples: list[tuple[float, float]], achieved: float) -> dict[str, Any]:
    lat = [x for _, x in samples]
    worst = max(windows(samples), key=lambda w: w[1], default=(0.0, float("nan")))
    p99 = pct(lat, 99)
    return {
        "rate_achieved": round(achieved),
        "probes": len(lat),
        "p50_ms": round(pct(lat, 50) * 1000, 1),
        "p95_ms": round(pct(lat, 95) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(max(lat, default=float("nan")) * 1000, 1),
        "worst_second_p99_ms": round(worst[1] * 1000, 1),
        "worst_second_vs_p99": round(worst[1] / p99, 2) if p99 else None,
    }


def plot(runs: dict[str, list[tuple[float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    for name, samples in runs.items():
        if samples:
            t0 = samples[0][0]
            ax.plot([t - t0 for t, _ in samples], [x * 1000 for _, x in samples], ".", ms=2,
                    label=name)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("seconds into the run (probe sent)")
    ax.set_ylabel("event produced -> action consumed, ms (log)")
    ax.set_title("latency over time, one Baton worker")
    ax.legend(markerscale=5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


async def run(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    trees: dict[str, Path | None] = {"": None}
    if args.ref:
        trees = {"before ": export(args.ref, workdir / "ref"), "after ": ROOT}
    out: dict[str, Any] = {"events": args.events, "ref": args.ref}
    runs: dict[str, list[tuple[float, float]]] = {}
    rates: list[tuple[str, float]] = []
    for version, tree in trees.items():
        eps, procs, cpu, s = await _drain(args, bootstrap, workdir, tree)
        out |= {f"{version}drain_events_per_s": round(eps), f"{version}drain_cpu_us": cpu}
        if not rates:  # the same rates for every version: shares of the first one's rate
            rates = [(f"{r:g}/s", r) for r in args.rates]
            rates += [(f"{round(x * 100)}%", x * eps) for x in args.shares]
        try:
            out |= await paced(s, args, rates, version, runs, [p.pid for p in procs])
        finally:
            for proc in procs:
                stop_worker(proc)
    for name in args.peers:
        out |= await _peer_runs(name, args, bootstrap, workdir, rates, runs)
        for label, _ in rates:  # this tree's p99 (the last version measured)
            mine = out.get(f"{list(trees)[-1]}{label} p99_ms")
            theirs = out.get(f"{name} {label} p99_ms")
            if mine and theirs:
                out[f"{label} p99_vs_{name}"] = round(mine / theirs, 2)
    if args.png:
        plot(runs, args.png)
    return out


async def _peer_runs(
    name: str,
    args: argparse.Namespace,
    bootstrap: str,
    workdir: Path,
    rates: list[tuple[str, float]],
    runs: dict[str, list[tuple[float, float]]],
) -> dict[str, Any]:
    """A peer's job (``bench.peers``) running until stopped, paced at each rate."""
    s = settings(bootstrap, args.partitions)
    await create_topics(s)
    cmd = [name, bootstrap, s.topic("events.clickstream"), s.topic("actions"), "0"]
    cmd += ["--dir", str(workdir / f"peer-{name}-{s.topic_prefix}")]
    log = (workdir / f"peer-{name}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.peers", *cmd], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        await warm(s)
        return await paced(s, args, rates, f"{name} ", runs, [proc.pid])
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def paced(
    s: Any,
    args: argparse.Namespace,
    rates: list[tuple[str, float]],
    prefix: str,
    runs: dict[str, list[tuple[float, float]]],
    pids: list[int],
) -> dict[str, Any]:
    """Each rate paced in turn against the job on ``s``'s topics (run by the processes
    ``pids``): its figures, keyed ``prefix + rate label``, with the job's CPU µs per
    event while paced, and its samples added to ``runs`` (for the plot)."""
    out: dict[str, Any] = {}
    customers = max(1, args.events // 10)
    for label, rate in rates:
        c0 = sum(cpu_s(pid) for pid in pids)
        got = await probe_run(s, rate, args.seconds, customers, args.probe_every)
        used = sum(cpu_s(pid) for pid in pids) - c0
        runs[f"{prefix}{label} ({rate:,.0f}/s)"] = got[0]
        sent = got[1] * args.seconds  # the pacer's events (its rate achieved x its time)
        cpu = {"cpu_us_per_event": round(used / sent * 1e6, 1) if sent > 0 else None}
        out |= {f"{prefix}{label} {k}": v for k, v in (figures(*got) | cpu).items()}
    return out


async def warm(s: Any, limit_s: float = 120.0) -> None:
    """Wait until a job consumes the events topic: one event sent every second until
    its output appears (a job still joining its group would time its first probes)."""
    c = await decisions_consumer(s)
    p = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap)
    await p.start()
    try:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            cid = f"warm-{uuid.uuid4().hex[:6]}"
            await p.send_and_wait(
                s.topic("events.clickstream"), event(0, "page_view", time.time(), cid),
                key=cid.encode(),
            )  # fmt: skip
            if any((await c.getmany(timeout_ms=1000)).values()):
                return  # its output topic is its own
        raise TimeoutError("the peer produced nothing")
    finally:
        await p.stop()
        await c.stop()


async def _drain(
    args: argparse.Namespace, bootstrap: str, workdir: Path, tree: Path | None
) -> tuple[float, list[Any], float, Any]:
    """One worker (of this tree, or of ``tree``) drains the pre-loaded events; it keeps
    running for the paced runs."""
    if tree is not None:
        eps, cpu, proc, s = await drain(tree, bootstrap, args, workdir, tree.name)
        return eps, [proc], round(cpu, 1), s
    customers = max(1, args.events // 10)
    s = settings(bootstrap, args.partitions)
    events = [(i, f"c-{i % customers}") for i in range(args.events)]
    eps, procs, _, cpu = await baton_workers(s, events, 1, workdir)
    return eps, procs, round(cpu, 1), s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rates", type=float, nargs="*", default=[1000.0])
    ap.add_argument("--shares", type=float, nargs="*", default=[0.25, 0.5, 0.8, 0.95])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--probe-every", type=int, default=5)
    ap.add_argument("--ref", default=None, help="also measure this earlier commit, first")
    ap.add_argument(
        "--peers", nargs="*", default=[], choices=["quix", "confluent"],
        help="also pace these peers' reference job (bench.peers) at the same rates",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None)
    return on_broker(run, ap.parse_args(argv), "baton-latency-")


if __name__ == "__main__":
    sys.exit(main())
