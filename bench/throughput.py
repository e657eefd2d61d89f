"""Throughput, latency and scaling of Baton on the local Apache Kafka broker, next to
two floors measured in the same run: a plain aiokafka consume -> update a dict ->
produce loop (the Python limit on this machine) and a minimal Faust agent doing the same
with a table (the framework's own floor).

    .venv/bin/python -m bench.throughput --events 50000

1. the aiokafka loop drains the pre-loaded events; then the peers a team would pick
   instead (``bench.peers``), each on the same events with Baton's traffic mix: a
   confluent-kafka loop and Quix Streams (per-customer state in RocksDB with a
   changelog), each without and with a river logistic score-and-learn per event;
2. the Faust floor and one Baton worker (full pipeline: ingest, state, labels, scoring,
   policy, emit) each drain the same number of pre-loaded events, in turn, ``--rounds``
   times on fresh topics (medians reported, and each round in the JSON); then
   end-to-end latency is measured for 10 s at 50 % and at 80 % of the rate Baton
   reached, with the same traffic mix and one probe in twenty (a new customer's first
   event, which always gets a decision): probe produced -> its decision consumed;
3. two Baton workers in one group drain the same number of events on fresh topics.

Prints a table and writes JSON (``--json``). Numbers, not pass/fail: the test suite only
runs it with tiny sizes to check that it works.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.demo import scrape, start_worker, stop_worker, wait_healthy
from agents.localkafka import free_port
from agents.settings import Settings
from agents.topics import create_topics
from bench.common import on_broker, trained_models
from pipeline.models import IntentModel, sign
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


async def baseline(bootstrap: str, topic_in: str, topic_out: str, n: int) -> tuple[float, float]:
    """Plain aiokafka: consume, decode, update a dict, produce one message per event.
    Returns events/s and CPU µs per event (this process)."""
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
    seen, t0, c0 = 0, 0.0, time.process_time()
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
        return seen / (time.perf_counter() - t0), (time.process_time() - c0) / seen * 1e6
    finally:
        await c.stop()
        await p.stop()


# CPU is read this long after the last event is decided, for the floor and Baton alike:
# what a worker still does for those events (the producer's last sends, the offset commit
# Faust runs every 2.8 s) is counted, and so is the idle seconds' CPU
SETTLE_S = 3.5


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Mark:
    """Where a drain's figures start: the events the worker(s) had processed, the time
    and the CPU seconds they had used, just after their first event."""

    done: float
    at: float
    cpu: float


async def mark(ports: list[int], metric: str, pids: list[int], timeout: float = 120.0) -> Mark:
    """Poll the workers' /metrics until they have processed an event, then mark.

    A worker starts on the backlog before it reports ready (3,269 of 20,000 events were
    done when /readyz first said ready): dividing every event by the time and CPU from
    readiness overstated the rate (7,518 against 6,290 events/s) and understated the CPU
    per event (128 against 153 µs). From just after the first event, its start-up is
    left out and nearly every event is counted; the few before the mark count in
    neither figure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ms = [await asyncio.to_thread(scrape, port) for port in ports]
            done = sum(sum(m.get(metric, {}).values()) for m in ms)
        except OSError:  # not listening yet
            done = 0.0
        if done > 0 or time.monotonic() > deadline:
            return Mark(done, time.perf_counter(), sum(cpu_s(pid) for pid in pids))
        await asyncio.sleep(0.02)


async def processed_rate(ports: list[int], metric: str, n: int, start: Mark) -> tuple[float, float]:
    """Events/s from ``start`` until ``n`` are processed (summed over the workers'
    ``metric``), and how many were processed since ``start`` (divide CPU by these)."""
    done = 0.0
    deadline = time.monotonic() + 60 + n / 100  # bounded: at least 100 events/s
    while done < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        done = 0.0
        for port in ports:
            m = await asyncio.to_thread(scrape, port)
            done += sum(m.get(metric, {}).values())
    assert done >= n, f"processed {done} of {n}"
    counted = max(1.0, done - start.done)
    return counted / (time.perf_counter() - start.at), counted


PROBE_EVERY = 20


async def decisions_consumer(s: Settings) -> AIOKafkaConsumer:
    """A consumer of ``actions`` and ``holdout`` from their end, joined and positioned
    (so nothing decided after this returns is missed)."""
    c = AIOKafkaConsumer(
        s.topic("actions"),
        s.topic("holdout"),
        bootstrap_servers=s.kafka_bootstrap,
        auto_offset_reset="latest",
        group_id=f"lat-{uuid.uuid4()}",
    )
    await c.start()
    await c.getmany(timeout_ms=1000)
    return c


async def latency(
    s: Settings, rate: float, seconds: float, first: int, customers: int
) -> tuple[list[float], float]:
    """End to end at a paced rate, under the throughput run's traffic: the events go to
    the customers already in state (the same mix), and one in ``PROBE_EVERY`` is a probe,
    a new customer's first page view, which always gets a decision (a welcome action, or
    a held-out one); probe produced -> its decision consumed. Returns the probes'
    latencies and the rate actually sent."""
    c = await decisions_consumer(s)
    p = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=2)
    await p.start()
    sent: dict[str, float] = {}
    lat: list[float] = []
    total = max(1, int(rate * seconds))
    probes = len(range(0, total, PROBE_EVERY))
    run_id = uuid.uuid4().hex[:6]

    async def read() -> None:
        deadline = time.monotonic() + 60 + seconds
        while len(lat) < probes and time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=200)).values():
                for m in msgs:
                    eid = orjson.loads(m.value)["trigger"]["event_id"]
                    if eid in sent:
                        lat.append(time.time() - sent.pop(eid))

    reader = asyncio.create_task(read())
    try:
        t0, tick, j = time.perf_counter(), 0.01, 0
        while j < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while j < due:
                i, kind = first + j, KINDS[j % len(KINDS)]
                cid = f"c-{i % customers}"
                if j % PROBE_EVERY == 0:
                    cid, kind = f"lat-{run_id}-{j}", "page_view"
                    sent[f"b-{i}-page_view"] = time.time()  # ids unique across runs
                await p.send(
                    s.topic("events.clickstream"),
                    event(i, kind, time.time(), cid),
                    key=cid.encode(),
                )
                j += 1
            await asyncio.sleep(tick)
        achieved = total / (time.perf_counter() - t0)
        await reader
    finally:
        await p.stop()
        await c.stop()
    return lat, achieved


def pct(xs: list[float], q: float) -> float:
    return (
        statistics.quantiles(xs, n=100, method="inclusive")[q - 1]
        if len(xs) > 1
        else (xs or [float("nan")])[0]
    )


def worker_env(s: Settings, port: int, data: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BATON_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "BATON_TOPIC_PREFIX": s.topic_prefix,
        "BATON_WEB_PORT": str(port),
        "BATON_PARTITIONS": str(s.partitions),
        "BATON_DATA_DIR": str(data),
        "BATON_TIMER_INTERVAL_S": "3600",
        "BATON_LOG_LEVEL": "warning",
    }


KINDS = ("page_view", "product_view", "add_to_cart", "product_view", "page_view")


async def preload(s: Settings, events: list[tuple[int, str]], now: float) -> None:
    """Baton's topics, a signed snapshot of each intent model (``bench_models``: the worker
    scores every event, as a deployed one with its learners' models does), and the
    events with its traffic mix (``KINDS``) on ``events.clickstream``, keyed by
    customer."""
    kinds = KINDS
    await create_topics(s)
    key = s.model_signing_key.get_secret_value().encode()
    models = [
        (s.topic("models"), i.encode(), sign(m.snapshot(), key)) for i, m in bench_models().items()
    ]
    topic = s.topic("events.clickstream")
    await produce_all(
        s.kafka_bootstrap,
        models + [(topic, c.encode(), event(i, kinds[i % 5], now, c)) for i, c in events],
    )


@functools.cache
def bench_models() -> dict[str, IntentModel]:
    now = time.time()
    return trained_models([event(i, KINDS[i % 5], now, f"m-{i % 500}") for i in range(5_000)])


async def faust_floor(
    s: Settings, events: list[tuple[int, str]], workdir: Path
) -> tuple[float, float]:
    """The minimal Faust agent (bench/faust_floor.py) over the same events: events/s
    and the agent's CPU µs per event."""
    topic_in, topic_out = s.topic("floor.in"), s.topic("floor.out")
    await produce_all(
        s.kafka_bootstrap,
        [(topic_in, c.encode(), event(i, "page_view", time.time(), c)) for i, c in events],
    )
    port = free_port()
    data, parts = str(workdir / "floor"), str(s.partitions)
    args = [s.kafka_bootstrap, topic_in, topic_out, str(port), data, parts]
    with (workdir / "floor.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.faust_floor", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        start = await mark([port], "floor_processed_total", [proc.pid])
        await asyncio.to_thread(wait_healthy, port, proc)
        eps, counted = await processed_rate([port], "floor_processed_total", len(events), start)
        await asyncio.sleep(SETTLE_S)
        return eps, (cpu_s(proc.pid) - start.cpu) / counted * 1e6
    finally:
        stop_worker(proc)


PEERS = (("confluent", False), ("confluent", True), ("quix", False), ("quix", True))


def peer_name(peer: str, river: bool) -> str:
    return f"{peer}_river" if river else peer


async def peer(
    s: Settings, events: list[tuple[int, str]], name: str, river: bool, workdir: Path
) -> tuple[float, float]:
    """One peer job (``bench.peers``) over the same events as Baton (its traffic mix), on
    topics of its own (Baton's, under a fresh prefix: ``events.clickstream`` in,
    ``actions`` out): events/s and CPU µs per event, from its first event to its last."""
    tag = peer_name(name, river)
    s = settings(s.kafka_bootstrap, s.partitions)
    await preload(s, events, time.time())
    topic_in, topic_out = s.topic("events.clickstream"), s.topic("actions")
    args = [name, s.kafka_bootstrap, topic_in, topic_out, str(len(events))]
    args += ["--dir", str(workdir / f"peer-{s.topic_prefix}{tag}")] + (["--river"] if river else [])
    with (workdir / f"peer-{tag}.log").open("ab") as log:
        done = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.peers", *args, stdout=subprocess.PIPE, stderr=log
        )
        try:
            out, _ = await asyncio.wait_for(done.communicate(), timeout=600)
        finally:
            if done.returncode is None:
                done.kill()
    r = orjson.loads(out.strip().splitlines()[-1])
    return float(r["events_per_s"]), float(r["cpu_us_per_event"])


async def baton_workers(
    s: Settings, events: list[tuple[int, str]], workers: int, workdir: Path
) -> tuple[float, list[subprocess.Popen[bytes]], float, float]:
    """Baton worker(s) in one group over pre-loaded events; returns events/s, the
    still-running workers (the caller stops them), state changelog records per event and
    the workers' CPU µs per event."""
    await preload(s, events, time.time())
    ports = [free_port() for _ in range(workers)]
    procs = [
        start_worker(
            worker_env(s, port, workdir / f"data-{s.topic_prefix}{i}"),
            workdir / f"worker-{s.topic_prefix}{i}.log",
        )
        for i, port in enumerate(ports)
    ]
    try:
        # from the first worker's first event: it starts on the backlog while the next
        # one starts
        metric, pids = "baton_events_processed_total", [p.pid for p in procs]
        start = await mark(ports[:1], metric, pids)
        for port, proc in zip(ports, procs, strict=True):
            await asyncio.to_thread(wait_healthy, port, proc)
        eps, counted = await processed_rate(ports, metric, len(events), start)
        await asyncio.sleep(SETTLE_S)
        cpu_us = (sum(cpu_s(p.pid) for p in procs) - start.cpu) / counted * 1e6
        metrics = [await asyncio.to_thread(scrape, port) for port in ports]
    except BaseException:
        for proc in procs:
            stop_worker(proc)
        raise
    for m in metrics:  # the figures are of a worker that scored its events
        scored = {dict(k).get("intent") for k, v in m.get("baton_model_version", {}).items() if v}
        if not set(bench_models()) <= scored:
            raise RuntimeError(f"the worker loaded models for {sorted(scored)} only")
    records = sum(sum(m.get("baton_changelog_records_total", {}).values()) for m in metrics)
    return eps, procs, records / len(events), cpu_us


def settings(bootstrap: str, partitions: int) -> Settings:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    return Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions)


async def run(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Any]:
    n, customers = args.events, max(1, args.events // 10)
    # --burst B: each customer's events come B in a row (a session's clicks), else one
    # customer's events are spread evenly over the run (no two close together)
    events = [(i, f"c-{(i // args.burst) % customers}") for i in range(n)]
    out: dict[str, Any] = {
        "events": n,
        "customers": customers,
        "partitions": args.partitions,
        "burst": args.burst,
    }

    # 1. the two floors, on their own topics: plain aiokafka, then a minimal Faust agent
    s = settings(bootstrap, args.partitions)
    await create_topics(s)
    base_in, base_out = s.topic("base.in"), s.topic("base.out")
    await produce_all(
        bootstrap, [(base_in, c.encode(), event(i, "page_view", time.time(), c)) for i, c in events]
    )
    base, base_cpu = await baseline(bootstrap, base_in, base_out, n)
    peers = {}
    if args.peers:
        for name, river in PEERS:
            peers[peer_name(name, river)] = await peer(s, events, name, river, workdir)

    # 2. the Faust floor and one Baton worker on the same events, pre-loaded, drained
    #    from the start, in turn for --rounds rounds on fresh topics (the medians are
    #    reported: on two shared cores one run moves by ±10 %); then the latency at
    #    50 % and 80 % of the rate Baton reached, on the last round's worker
    floors: list[tuple[float, float]] = []
    batons: list[tuple[float, float]] = []
    for r in range(args.rounds):
        if r:
            s = settings(bootstrap, args.partitions)
            await create_topics(s)
        floors.append(await faust_floor(s, events, workdir))
        eps_r, procs, per_event, cpu_r = await baton_workers(s, events, 1, workdir)
        batons.append((eps_r, cpu_r))
        if r < args.rounds - 1:
            for proc in procs:
                stop_worker(proc)
    floor, floor_cpu = (statistics.median(x) for x in zip(*floors, strict=True))
    eps, cpu_us = (statistics.median(x) for x in zip(*batons, strict=True))
    try:
        rss_full = rss_mb(procs[0].pid)
        lat_runs = {}
        for share in (0.5, 0.8):
            rate, first = eps * share * args.latency_scale, int(share * 10) * 10_000_000
            lat, achieved = await latency(s, rate, args.latency_seconds, first, customers)
            lat_runs[share] = (lat, achieved)
    finally:
        for proc in procs:
            stop_worker(proc)
    out |= {
        "baseline_aiokafka_events_per_s": round(base),
        "faust_floor_events_per_s": round(floor),
        "baton_events_per_s": round(eps),
        "baton_vs_aiokafka": round(eps / base, 3),
        "baton_vs_faust_floor": round(eps / floor, 3),
        "baton_changelog_records_per_event": round(per_event, 3),
        # CPU per event: steadier than events/s when the broker shares the cores
        "baseline_aiokafka_cpu_us_per_event": round(base_cpu, 1),
        "faust_floor_cpu_us_per_event": round(floor_cpu, 1),
        "baton_cpu_us_per_event": round(cpu_us, 1),
        "baton_vs_faust_floor_cpu": round(floor_cpu / cpu_us, 3) if cpu_us else None,
        "rounds": args.rounds,
    }
    for tag, (peer_eps, peer_cpu) in peers.items():
        out |= {
            f"{tag}_events_per_s": round(peer_eps),
            f"{tag}_cpu_us_per_event": round(peer_cpu, 1),
            f"baton_vs_{tag}": round(eps / peer_eps, 3),
        }
    out |= {
        "faust_floor_rounds": [[round(e), round(c, 1)] for e, c in floors],
        "baton_rounds": [[round(e), round(c, 1)] for e, c in batons],
    }
    for share, (lat, achieved) in lat_runs.items():
        tag = f"at_{round(share * 100)}pct"
        out |= {
            f"latency_{tag}_rate_per_s": round(achieved),
            f"latency_{tag}_samples": len(lat),
            f"latency_{tag}_p50_ms": round(pct(lat, 50) * 1000, 1),
            f"latency_{tag}_p95_ms": round(pct(lat, 95) * 1000, 1),
            f"latency_{tag}_p99_ms": round(pct(lat, 99) * 1000, 1),
        }
    out["worker_rss_mb_after"] = round(rss_full, 1)

    # 3. scaling: two workers in one group over the same number of events and partitions
    if args.scaling:
        s2 = settings(bootstrap, args.partitions)
        eps2, procs2, _, _ = await baton_workers(s2, events, 2, workdir)
        for proc in procs2:
            stop_worker(proc)
        out |= {"baton_2_workers_events_per_s": round(eps2), "scaling_2_vs_1": round(eps2 / eps, 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument(
        "--burst",
        type=int,
        default=1,
        help="events per customer in a row (session-shaped traffic); 1 spreads them evenly",
    )
    ap.add_argument(
        "--latency-seconds", type=float, default=10.0, help="length of each latency run"
    )
    ap.add_argument(
        "--latency-scale",
        type=float,
        default=1.0,
        help="multiply the latency rates (50 %% and 80 %% of throughput) by this (smoke tests)",
    )
    ap.add_argument(
        "--scaling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run two workers in one group",
    )
    ap.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the peers (confluent-kafka loop, Quix Streams; with and without river)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="floor and Baton measured in turn this many times; medians reported",
    )
    ap.add_argument("--json", type=Path, default=None)
    return on_broker(run, ap.parse_args(argv), "baton-bench-")


if __name__ == "__main__":
    sys.exit(main())
