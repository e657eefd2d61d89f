"""Fault test: the broker hangs (SIGSTOP) for eight seconds while the worker drains a
backlog, so its producer cannot deliver and its buffer fills.

Kafka's consumers never slow a producer down (a slow consumer of ``actions`` only lags
behind on the broker), so what a worker must survive is a broker that stops taking
its writes. aiokafka keeps one pending batch per partition and ``send`` waits when it
is full, and the stream buffers are bounded (``BATON_STREAM_BUFFER``): the worker's
memory must stay bounded while the broker hangs, nothing may crash, and once the broker
resumes every event must be counted exactly once. RSS is printed before, during and
after.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from agents.demo import start_worker, stop_worker, wait_healthy
from agents.localkafka import LocalKafka, free_port
from bench.soak import rss_mb
from pipeline.simulator import event_doc
from tests.kafkaio import changelog_counts, processed, produce, wait_processed

pytestmark = [pytest.mark.broker, pytest.mark.slow]
CUSTOMERS, EACH, HANG_S = 1000, 20, 8.0


def test_worker_memory_stays_bounded_while_the_broker_hangs(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka")
    bootstrap = broker.start()
    prefix, port = "hang.", free_port()
    env = {
        **os.environ,
        "BATON_KAFKA_BOOTSTRAP": bootstrap,
        "BATON_TOPIC_PREFIX": prefix,
        "BATON_WEB_PORT": str(port),
        "BATON_DATA_DIR": str(tmp_path / "data"),
    }
    proc = start_worker(env, tmp_path / "worker.log")
    sent: Counter[str] = Counter()
    try:
        wait_healthy(port, proc, timeout=120)
        msgs, now = [], time.time()
        for k in range(EACH):
            for i in range(CUSTOMERS):
                cid = f"h{i:04d}"
                doc = event_doc(f"{cid}-{k}", "page_view", now - 600 + k, cid, {"url": "/"})
                msgs.append((f"{prefix}events.clickstream", cid.encode(), orjson.dumps(doc)))
                sent[cid] += 1
        asyncio.run(produce(bootstrap, msgs))
        rss = [rss_mb(proc.pid)]
        deadline = time.monotonic() + 60
        while processed(port) < len(msgs) / 4:  # busy: reading, deciding and sending
            assert time.monotonic() < deadline, f"stuck at {processed(port)} processed"
            time.sleep(0.05)
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(int(HANG_S)):
                time.sleep(1.0)
                rss.append(rss_mb(proc.pid))
                assert proc.poll() is None, "the worker survives the hang"
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        wait_processed(port, len(msgs), 120, every=0.2)
        rss.append(rss_mb(proc.pid))

        changelog = f"{prefix}worker-customers-changelog"
        counted = asyncio.run(changelog_counts(bootstrap, changelog, sent, timeout=90))
        assert counted == dict(sent), "every event once"
        assert proc.poll() is None
        growth = max(rss) - rss[0]
        print(
            f"broker hung {HANG_S:.0f} s during a {len(msgs)}-event backlog: RSS (MB) "
            f"{' '.join(f'{r:.0f}' for r in rss)}; peak growth {growth:.0f} MB; state exact"
        )
        assert growth < 300, f"memory grew {growth:.0f} MB while the broker hung"
    finally:
        stop_worker(proc)
        if broker.proc is not None:
            broker.proc.send_signal(signal.SIGCONT)
        broker.cleanup()
