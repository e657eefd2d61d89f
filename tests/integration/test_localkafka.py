"""The local broker itself: formats once, keeps its data across a restart, stops cleanly."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from agents import localkafka
from agents.localkafka import LocalKafka
from tests.kafkaio import produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_restart_keeps_data_and_odd_cluster_ids_work(tmp_path: Path, monkeypatch) -> None:
    # a cluster id that starts with "-" once broke the storage format step
    odd = uuid.UUID(bytes=b"\xfb" + bytes(15))
    monkeypatch.setattr(localkafka.uuid, "uuid4", lambda: odd)
    broker = LocalKafka(tmp_path / "k")
    try:
        bootstrap = broker.start()
        asyncio.run(produce(bootstrap, [("keep", b"k", b"v1")]))
        broker.stop()
        assert broker.proc is None
        bootstrap = broker.start()  # same directory: no new format, same data
        got = asyncio.run(read_until(bootstrap, ["keep"], lambda rs: len(rs) >= 1, timeout=60))
        assert [r.value for r in got] == [b"v1"]
        assert "-wAAAAAAAAAAAAAAAAAAAA" in (tmp_path / "k" / "data" / "meta.properties").read_text()
    finally:
        broker.cleanup()
    assert broker.proc is None
