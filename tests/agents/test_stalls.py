"""The stall check: a source partition with data past its committed offset, nothing of it
in flight and no movement for ``after_s`` is sought back to its committed offset, once;
anything in flight, moving, or a rebalance leaves it alone. The consumer here is a
stand-in with the attributes the check reads (the real one is exercised by the
rebalance tests on a broker)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from agents.metrics import Metrics
from agents.runtime.stalls import Stalls

TP = TopicPartition("events.clickstream", 0)


@dataclass(frozen=True)
class Msg:
    tp: TopicPartition


class Consumer:
    def __init__(self) -> None:
        self.flow_active = True
        self._unacked_messages: set[Any] = set()
        self._committed_offset = {TP: 100}
        self._read_offset = {TP: 150}
        self.end = 200
        self.sought: list[tuple[Any, int]] = []

    def assignment(self) -> set[Any]:
        return {TP}

    def highwater(self, tp: Any) -> int:
        return self.end

    async def seek(self, tp: Any, offset: int) -> None:
        self.sought.append((tp, offset))
        self._read_offset[tp] = offset


class FlowControl:
    def __init__(self) -> None:
        self.active, self._queues = True, [asyncio.Queue()]

    def is_active(self) -> bool:
        return self.active


def setup(after_s: float = 0.0) -> tuple[Stalls, Any, Metrics]:
    metrics = Metrics.create(CollectorRegistry())
    app = SimpleNamespace(consumer=Consumer(), flow_control=FlowControl(), rebalancing=False)
    stalls = Stalls(app, lambda topic: topic == TP.topic, metrics.stalled_partitions, after_s)
    return stalls, app, metrics


def count(metrics: Metrics) -> float:
    return metrics.stalled_partitions.labels(TP.topic)._value.get()


async def test_an_idle_partition_with_lag_is_sought_back_to_its_committed_offset() -> None:
    stalls, app, metrics = setup()
    assert await stalls.check(held=[]) == 0, "first sight: the clock starts"
    assert await stalls.check(held=[]) == 1
    assert app.consumer.sought == [(TP, 100)] and count(metrics) == 1
    assert await stalls.check(held=[]) == 0, "sought: watched again from scratch"


async def test_in_flight_moving_or_rebalancing_is_left_alone() -> None:
    for disturb in (
        lambda app: app.consumer._unacked_messages.add(Msg(TP)),
        lambda app: app.flow_control._queues[0].put_nowait(object()),
        lambda app: setattr(app, "rebalancing", True),
        lambda app: setattr(app.consumer, "flow_active", False),
        lambda app: setattr(app.consumer, "end", 100),  # no lag
    ):
        stalls, app, _ = setup()
        disturb(app)
        for _ in range(3):
            await stalls.check(held=[])
        assert app.consumer.sought == [], disturb
    stalls, app, _ = setup()
    for _ in range(3):
        await stalls.check(held=[TP])  # held for the changelog
    assert app.consumer.sought == []


async def test_a_moving_partition_is_not_stalled() -> None:
    stalls, app, _ = setup()
    for _ in range(5):
        await stalls.check(held=[])
        app.consumer._read_offset[TP] += 10  # still delivering
    assert app.consumer.sought == []


async def test_not_before_after_s() -> None:
    stalls, app, _ = setup(after_s=60.0)
    for _ in range(3):
        await stalls.check(held=[])
    assert app.consumer.sought == []
