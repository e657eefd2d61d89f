"""Held messages: Faust's own acknowledgement (the stream's ack after a batch) does not
reach the consumer while a message is held; the release after the changelog flush does,
once per message. Real Faust messages; the consumer records what reaches it."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from faust.types.tuples import ConsumerMessage

from agents.runtime.holding import Held


class Consumer:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: Any) -> bool:
        message.acked = True
        self.acked.append(message.offset)
        return True


def event(offset: int, generation: int | None = None) -> Any:
    tp = TP("t", 0)
    msg = ConsumerMessage(
        "t", 0, offset, time.time(), 0, [], b"k", b"v", None, 1, 1, tp, generation_id=generation
    )
    msg.incref()  # as Faust's conductor does when it hands the message to a stream
    return SimpleNamespace(message=msg)


def test_a_held_message_is_acknowledged_only_when_released() -> None:
    consumer, held = Consumer(), Held(interval=60.0)
    batch = [event(o) for o in range(3)]
    held.hold(batch)
    for ev in batch:  # the stream acknowledges its batch (take_events' finally)
        ev.message.ack(consumer)
    assert consumer.acked == [] and len(held) == 3, "held: not yet safe to commit"

    taken = held.take()
    assert len(held) == 0
    later = event(3)
    held.hold([later])  # arrives while the flush is on its way: not part of it
    assert Held.release(taken, consumer, generation=0) == 0
    assert consumer.acked == [0, 1, 2]
    Held.release(taken, consumer, generation=0)  # a second release is not a second ack
    assert consumer.acked == [0, 1, 2] and len(held) == 1


def test_a_message_from_before_a_rebalance_is_not_acknowledged_late() -> None:
    """Its partition is read again from the committed offset after the rebalance; a late
    acknowledgement would commit past what the new generation has read."""
    consumer, held = Consumer(), Held(interval=60.0)
    old, new = event(0, generation=1), event(1, generation=2)
    held.hold([old, new])
    for ev in (old, new):  # the stream acknowledges its batch
        ev.message.ack(consumer)
    assert Held.release(held.take(), consumer, generation=2) == 1
    assert consumer.acked == [1]


def test_a_range_read_again_is_not_held() -> None:
    held = Held(interval=60.0)
    replayed = SimpleNamespace(message=SimpleNamespace(topic="t", partition=0, offset=5))
    held.hold([replayed])
    assert len(held) == 0


def test_due_after_the_interval_from_the_last_take() -> None:
    held = Held(interval=0.05)
    assert not held.due()
    time.sleep(0.06)
    assert held.due()
    held.take()
    assert not held.due()
