"""Topic creation retries while a cluster is unreachable, then gives up with the error."""

from __future__ import annotations

import time

import pytest
from aiokafka.errors import KafkaConnectionError

from agents.localkafka import free_port
from agents.settings import Settings
from agents.topics import TOPICS, create_topics


async def test_unreachable_cluster_is_retried_then_reported() -> None:
    s = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(KafkaConnectionError):
        await create_topics(s, retry_for_s=2.0)
    assert 1.0 <= time.monotonic() - t0 < 30.0


def test_compaction_where_the_design_says() -> None:
    cleanup = {t.name: t.cleanup for t in TOPICS}
    assert cleanup["models"] == cleanup["playbook"] == "compact"
    assert cleanup["events.clickstream"] == "delete"
