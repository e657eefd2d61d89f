"""Fault test: one broker of two stops; the partitions on the other keep flowing.

A two-broker cluster on loopback (node 1 broker and controller, node 2 a broker only),
every topic the worker uses created with replication factor 1 and its partitions 0 and
1 on node 1, 2 and 3 on node 2 (the consumer offsets live on node 1). Forty customers,
half on each broker's partitions, send one event each; then node 2 stops. Its half's
next events wait in their producer; the other half's are processed while node 2 is
down, and the worker must stay up. Node 2 comes back: the waiting events are delivered
and processed, and each customer's state (read back from the changelog) counts every
event once.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.demo import start_worker, stop_worker, wait_healthy
from agents.localkafka import LocalKafka, free_port
from agents.runtime import Partitioner
from agents.topics import TOPICS
from pipeline.simulator import event_doc
from tests.kafkaio import changelog_counts, processed, produce, wait_processed

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PREFIX, PARTITIONS = "po.", 4
ON_NODE = {0: [1], 1: [1], 2: [2], 3: [2]}
EXPECTED = [(0, 1), (1, 1), (2, 2), (3, 2)]  # (partition, leader)


async def offsets_on_first_node(bootstrap: str) -> None:
    """Look up a group coordinator once, so Kafka creates its offsets topic while node 1
    is the only broker (every group's coordinator then stays on node 1)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"{PREFIX}warm")
    await consumer.start()
    try:
        await consumer._coordinator.ensure_coordinator_known()  # aiokafka has no public call
    finally:
        await consumer.stop()


async def placed_topics(bootstrap: str) -> dict[str, list[tuple[int, int]]]:
    """Baton's topics and Faust's (the tables' changelogs, the assignor's leader topic),
    partitions placed as ``ON_NODE``; returns topic -> [(partition, leader)]."""
    config = {PREFIX + t.name: t.config() for t in TOPICS}
    compacted = {"cleanup.policy": "compact"}
    tables = [f"{PREFIX}worker-{t}-changelog" for t in ("customers", "identities", "progress")]
    new = [
        NewTopic(
            name, -1, -1, replica_assignments=ON_NODE, topic_configs=config.get(name, compacted)
        )
        for name in [*config, *tables]
    ]
    new.append(
        NewTopic(f"{PREFIX}worker-__assignor-__leader", -1, -1, replica_assignments={0: [1]})
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    placed: dict[str, list[tuple[int, int]]] = {}
    try:
        deadline = time.monotonic() + 30  # node 2 registers with the controller
        while len((await admin.describe_cluster())["brokers"]) < 2:
            assert time.monotonic() < deadline, "node 2 never joined the cluster"
            await asyncio.sleep(0.5)
        await admin.create_topics(new)
        deadline = time.monotonic() + 30  # leaders are elected just after creation
        while time.monotonic() < deadline:
            described = await admin.describe_topics([t.name for t in new])
            placed = {
                d["topic"]: sorted((p["partition"], p["leader"]) for p in d["partitions"])
                for d in described
            }
            if all(leader >= 0 for parts in placed.values() for _, leader in parts):
                break
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    return placed


def events(customers: list[str], n: int) -> list[tuple[str, bytes, bytes]]:
    topic = f"{PREFIX}events.clickstream"
    docs = [event_doc(f"{c}-{n}", "page_view", time.time(), c, {"url": f"/{n}"}) for c in customers]
    return [(topic, d["customer_id"].encode(), orjson.dumps(d)) for d in docs]


def test_partitions_on_a_live_broker_flow_while_another_is_down(tmp_path: Path) -> None:
    first = LocalKafka(tmp_path / "node1")
    b1 = first.start()
    asyncio.run(offsets_on_first_node(b1))
    second = LocalKafka(tmp_path / "node2", joins=first, node=2)
    b2 = second.start()
    bootstrap = f"{b1},{b2}"
    port, log, proc = free_port(), tmp_path / "worker.log", None
    try:
        placed = asyncio.run(placed_topics(bootstrap))
        wrong = {t: p for t, p in placed.items() if "assignor" not in t and p != EXPECTED}
        assert not wrong and len(placed) == len(TOPICS) + 4, placed
        env = {
            **os.environ,
            "BATON_KAFKA_BOOTSTRAP": bootstrap,
            "BATON_TOPIC_PREFIX": PREFIX,
            "BATON_WEB_PORT": str(port),
            "BATON_DATA_DIR": str(tmp_path / "data"),
            "BATON_PARTITIONS": str(PARTITIONS),
        }
        proc = start_worker(env, log)
        wait_healthy(port, proc, timeout=120)
        names = [f"po-{i}" for i in range(400)]
        partition = Partitioner(PARTITIONS)  # Kafka's default, as the producers use
        live = [c for c in names if partition(c.encode()) < 2][:20]  # on node 1
        away = [c for c in names if partition(c.encode()) >= 2][:20]  # on node 2
        asyncio.run(produce(bootstrap, events(live + away, 0)))
        assert wait_processed(port, 40, 60) == 40

        outage_began = log.stat().st_size
        second.stop()
        stopped = time.monotonic()
        # node 2's customers' next events wait in their producer until it is back
        delivered: list[int] = []
        waiting = threading.Thread(
            target=lambda: delivered.append(
                asyncio.run(produce(bootstrap, events(away, 1), 180_000))
            )
        )
        waiting.start()
        asyncio.run(produce(b1, events(live, 1)))
        flowed = wait_processed(port, 60, 60)
        during = time.monotonic() - stopped
        assert flowed == 60, "node 1's partitions kept flowing with node 2 down"
        time.sleep(5)  # node 2 stays down a while longer: the worker stays up
        assert proc.poll() is None, "the worker is still running"
        assert processed(port) == 60

        second.start()
        waiting.join(timeout=120)
        assert not waiting.is_alive() and delivered == [20], "the waiting events were delivered"
        assert wait_processed(port, 80, 90) == 80
        outage_log = log.read_bytes()[outage_began:].decode(errors="replace")
        want = dict.fromkeys(live + away, 2)
        changelog = f"{PREFIX}worker-customers-changelog"
        counted = asyncio.run(changelog_counts(bootstrap, changelog, want, timeout=60))
        assert counted == want, "every event once, none lost"
        noisy = [ln for ln in outage_log.splitlines() if re.search(r"\[(ERROR|WARNING)\]", ln)]
        print(
            f"node 2 down: node 1's 20 customers' events processed {during:.1f} s after it "
            f"stopped; node 2's 20 processed once it was back; all 80 counted once; "
            f"{len(noisy)} ERROR/WARNING lines"
        )
        assert len(noisy) <= 60, "\n".join(noisy[:80])
    finally:
        if proc is not None:
            stop_worker(proc)
        second.cleanup()
        first.cleanup()
