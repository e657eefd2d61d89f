"""The local demo and the real-time simulator feed.

``run_demo`` starts what it needs (a local Kafka unless BATON_KAFKA_BOOTSTRAP is set,
the topics, one ``baton worker`` process), feeds simulated shoppers, and prints a live
summary read from the real topics and the worker's /metrics, then stops all it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from agents.channels import ChannelPlayer
from agents.localkafka import LocalKafka, free_port
from agents.settings import Settings
from agents.topics import create_topics
from pipeline.simulator import SimConfig, Simulator

__all__ = ["run_demo", "scrape", "simulate", "start_worker", "stop_worker", "wait_healthy"]

# the default playbook, with the abandonment journeys sped up to fit a short demo
DEMO_DEFAULTS = {
    "BATON_PLAYBOOK_PARAMS": '{"cart_abandon_min": 0.17, "browse_abandon_min": 0.25}',
    "BATON_TIMER_INTERVAL_S": "1",
}


async def simulate(
    settings: Settings,
    duration: float,
    customers: int,
    seed: int,
    bad_share: float = 0.02,
    stop: asyncio.Event | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Produce simulated shoppers in real time for ``duration`` seconds; returns the count."""
    sim = Simulator(
        SimConfig(customers=customers, seed=seed, bad_share=bad_share), start=time.time()
    )
    producer = AIOKafkaProducer(**settings.client_kwargs(), linger_ms=5)
    await producer.start()
    sent, end = 0, time.monotonic() + duration
    try:
        while time.monotonic() < end and not (stop and stop.is_set()):
            for m in sim.due(time.time()):
                await producer.send(settings.topic(f"events.{m.topic}"), m.value, key=m.key)
                sent += 1
            if on_sent:
                on_sent(sent)
            await asyncio.sleep(0.05)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def scrape(
    port: int, host: str = "127.0.0.1"
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Read a worker's /metrics: {sample name: {labels: value}}."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def wait_healthy(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 120.0) -> None:
    """Wait until the worker's /readyz says ready (/health for a worker from before
    /readyz, as ``bench.versions`` runs); raise if it dies or times out."""
    deadline, page = time.monotonic() + timeout, "readyz"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}")
        url = f"http://127.0.0.1:{port}/{page}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                page = "health"
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"worker not ready after {timeout:.0f}s")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``baton worker`` as a child process with the given environment (the
    development keys allowed unless ``env`` says otherwise: the demo, tests, benches)."""
    with log.open("ab") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "worker"],
            env={"BATON_ALLOW_DEV_KEYS": "true", **env},
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a worker process: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Tally:
    """Counts actions and dead letters by reading their topics from the beginning."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.actions: Counter[str] = Counter()
        self.dead: Counter[str] = Counter()
        self.sample: dict[str, object] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        names = [s.topic("actions"), s.topic("events.deadletter")]
        consumer = AIOKafkaConsumer(
            *names,
            **s.client_kwargs(),
            group_id=f"{s.topic_prefix}demo-tally-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=2000,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                for tp, msgs in batch.items():
                    for m in msgs:
                        self._count(tp.topic == names[0], orjson.loads(m.value))
        finally:
            await consumer.stop()

    def _count(self, is_action: bool, doc: dict[str, object]) -> None:
        if is_action:
            self.actions[str(doc["action"])] += 1
            self.sample = self.sample or doc
        else:
            self.dead[str(doc["reason"])] += 1


def _kpis(m: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> str:
    """Totals of the journey counters: decisions and conversions by group, exposures,
    acceptances, and the response models' version."""

    def total(name: str, **match: str) -> int:
        rows = m.get(name, {})
        return int(sum(v for k, v in rows.items() if match.items() <= dict(k).items()))

    parts = [
        f"decisions treatment={total('baton_journey_decisions_total', group='treatment')}",
        f"control={total('baton_journey_decisions_total', group='control')}",
        f"exposures={total('baton_journey_exposures_total')}",
        f"acceptances={total('baton_journey_acceptances_total')}",
        f"conversions treatment={total('baton_journey_conversions_total', group='treatment')}",
        f"control={total('baton_journey_conversions_total', group='control')}",
        f"response-model version={total('baton_model_version', intent='response')}",
    ]
    return " ".join(parts)


def _fmt(c: Counter[str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(c.items())) or "-"


async def _drive(
    settings: Settings, web_port: int, duration: float, customers: int, seed: int
) -> None:
    stop, tally, sent = asyncio.Event(), _Tally(settings), [0]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    feed = asyncio.create_task(
        simulate(
            settings, duration, customers, seed, stop=stop, on_sent=lambda n: sent.__setitem__(0, n)
        )
    )
    reader = asyncio.create_task(tally.run(stop))
    channels = ChannelPlayer(settings, seed)
    player = asyncio.create_task(channels.run(stop))
    t0, last = time.monotonic(), (0.0, 0, 0.0)
    head = f"{'time':>6} {'sent':>8} {'sent/s':>7} {'processed':>9} {'proc/s':>7}"
    print(f"{head}  actions | dead letters")
    while not feed.done():
        await asyncio.wait([feed], timeout=2.0)
        m = await asyncio.to_thread(scrape, web_port)
        done = sum(m.get("baton_events_processed_total", {}).values())
        now = time.monotonic() - t0
        dt = max(now - last[0], 1e-9)
        print(
            f"{now:6.1f} {sent[0]:8d} {(sent[0] - last[1]) / dt:7.0f} {done:9.0f} "
            f"{(done - last[2]) / dt:7.0f}  {_fmt(tally.actions)} | {_fmt(tally.dead)}",
            flush=True,
        )
        last = (now, sent[0], done)
    await asyncio.sleep(4.0)  # let the last events, ticks and feedback through
    stop.set()
    await reader
    await player
    print(
        f"\nsent {feed.result()} messages; actions: {_fmt(tally.actions)}; "
        f"dead letters: {_fmt(tally.dead)}"
    )
    print(
        f"feedback from the simulated channels: {_fmt(channels.sent)} "
        f"({channels.in_moment} actions answered in the moment they were decided in)"
    )
    print(f"journeys: {_kpis(await asyncio.to_thread(scrape, web_port))}")
    if tally.sample:
        print("one action:", orjson.dumps(tally.sample, option=orjson.OPT_INDENT_2).decode())


def run_demo(duration: float, customers: int, seed: int) -> int:
    """The README's first command. Returns the process exit code."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop children on `kill` too
    workdir = Path(tempfile.mkdtemp(prefix="baton-demo-"))
    env = {**DEMO_DEFAULTS, **os.environ}
    kafka = None
    if "BATON_KAFKA_BOOTSTRAP" not in os.environ:
        kafka = LocalKafka(workdir / "kafka")
        print(f"starting local Apache Kafka {kafka.version} (KRaft) ...", flush=True)
        env["BATON_KAFKA_BOOTSTRAP"] = kafka.start()
    web_port = free_port()
    env |= {"BATON_WEB_PORT": str(web_port), "BATON_DATA_DIR": str(workdir / "data")}
    settings = Settings(
        kafka_bootstrap=env["BATON_KAFKA_BOOTSTRAP"],
        topic_prefix=env.get("BATON_TOPIC_PREFIX", "baton."),
    )
    proc = None
    try:
        asyncio.run(create_topics(settings))
        proc = start_worker(env, workdir / "worker.log")
        print(
            f"kafka {env['BATON_KAFKA_BOOTSTRAP']}  worker pid {proc.pid} "
            f"(log {workdir / 'worker.log'})  metrics http://127.0.0.1:{web_port}/metrics",
            flush=True,
        )
        wait_healthy(web_port, proc)
        print(
            f"feeding {customers} simulated customers for {duration:.0f}s "
            f"(playbook parameters {env['BATON_PLAYBOOK_PARAMS']})"
        )
        asyncio.run(_drive(settings, web_port, duration, customers, seed))
        return 0
    finally:
        if proc is not None:
            stop_worker(proc)
        if kafka is not None:
            kafka.cleanup()
        print("stopped worker and broker")
