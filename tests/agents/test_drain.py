"""The per-fetch delivery loop (agents.drain): messages reach the streams in order with
Faust's read-offset and gap bookkeeping, and a suspension mid-fetch leaves the rest of
the fetch undelivered with their read offsets where they were.

The loop itself runs in the worker on every broker test (recovery, rebalance)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agents import drain


@dataclass
class Msg:
    topic: str
    offset: int


class Consumer:
    def __init__(self, block_at: int | None = None) -> None:
        self.delivered: list[int] = []
        self.gaps: list[tuple[int, int]] = []
        self._read_offset: defaultdict[str, int | None] = defaultdict(lambda: None)
        self._commit_every = None
        self._n_acked = 0
        self.block_at = block_at
        topics = type("T", (), {"acks_enabled_for": bool, "_tp_to_callback": {}})()
        self.app = type("App", (), {"topics": topics, "rebalancing": False})()

    async def callback(self, message: Msg) -> None:
        if message.offset == self.block_at:  # a full stream buffer
            await asyncio.sleep(3600)
        self.delivered.append(message.offset)

    async def _add_gap(self, tp: str, start: int, end: int) -> None:
        self.gaps.append((start, end))


def fetch(offsets: list[int]) -> list[tuple[str, Msg]]:
    return [("t-0", Msg("t", o)) for o in offsets]


async def test_a_fetch_is_delivered_in_order_with_its_bookkeeping() -> None:
    c = Consumer()
    c._read_offset["t-0"] = 9
    await drain._deliver(c, fetch([8, 10, 11, 14, 15]))
    assert c.delivered == [10, 11, 14, 15], "an offset below the read offset is not redelivered"
    assert c.gaps == [(12, 14)]
    assert c._read_offset["t-0"] == 15


async def test_a_fetch_is_read_from_faust_one_message_at_a_time() -> None:
    """Faust's ``getmany`` stops yielding when the flow stops or a rebalance changes the
    generation; the loop reads it lazily, so what it stops yielding is never delivered
    (a first version read the whole fetch first: a recovery then waited forever for a
    changelog record, in the SIGKILL test)."""
    c, flow = Consumer(), {"active": True}

    async def getmany() -> AsyncIterator[tuple[str, Msg]]:
        for tp, m in fetch([10, 11, 12, 13]):
            if not flow["active"]:
                break
            yield tp, m
            if m.offset == 11:
                flow["active"] = False  # a rebalance begins while 11 is handled

    ait = getmany()
    first = await anext(ait)
    await drain._deliver_fetch(c, first, ait)
    assert c.delivered == [10, 11] and c._read_offset["t-0"] == 11


async def test_a_suspension_mid_fetch_leaves_the_rest_unread() -> None:
    c = Consumer(block_at=12)

    async def rest() -> AsyncIterator[tuple[str, Msg]]:
        for pair in fetch([11, 12, 13]):
            yield pair

    ait = rest()
    task = asyncio.ensure_future(drain._deliver_fetch(c, fetch([10])[0], ait))
    await asyncio.sleep(0.05)
    task.cancel()  # what wait_first does when the flow is suspended
    await asyncio.gather(task, return_exceptions=True)
    await ait.aclose()
    assert c.delivered == [10, 11]
    assert c._read_offset["t-0"] == 11, "fetched again after the rebalance, from the commit"


def test_install_replaces_faust_loop_and_uninstall_restores_it() -> None:
    from faust.transport.consumer import Consumer as FaustConsumer

    original = FaustConsumer._drain_messages
    try:
        drain.install()
        assert FaustConsumer._drain_messages is drain._drain_messages
    finally:
        drain.uninstall()
    assert FaustConsumer._drain_messages is original


async def test_a_partitions_handler_is_called_without_the_conductors_wrapper() -> None:
    c, seen = Consumer(), []

    async def handler(message: Msg) -> None:
        seen.append(message.offset)

    c.app.topics._tp_to_callback["t-0"] = handler
    await drain._deliver(c, [*fetch([1, 2]), ("t-1", Msg("t", 3))])
    assert seen == [1, 2] and c.delivered == [3], "a partition with no handler: Faust's way"


class Queue(asyncio.Queue):  # Faust's FlowControlQueue, as far as the handler uses it
    def put_nowait_enhanced(self, value: object, **callbacks: object) -> None:
        self.put_nowait(value)


class Channel:
    def __init__(self, maxsize: int = 0) -> None:
        self.queue = Queue(maxsize)

    async def decode(self, message: Message, propagate: bool = False) -> tuple[str, int]:
        return ("event", message.offset)


@dataclass
class Message:
    offset: int
    refs: int = 0

    def incref(self, n: int) -> None:
        self.refs += n


def conductor(channels: set[Channel]) -> tuple[object, list[int], asyncio.Event]:
    """A conductor whose Faust handler (the slow path) records what it was given."""
    slow: list[int] = []
    suspend = asyncio.Event()
    ns = type("NS", (), {})
    app = ns()
    app.conf = type("C", (), {"producer_threaded": False})()
    app.flow_control = type("F", (), {"_suspend": suspend})()
    app.producer = ns()
    app.producer.buffer = type("B", (), {"max_messages": 100, "pending": asyncio.Queue()})()
    app.sensors = type("S", (), {"on_topic_buffer_full": lambda self, tp: None})()
    app.consumer = ns()
    cond = type("Cond", (), {"app": app})()

    async def faust_handler(message: Message) -> None:
        slow.append(message.offset)

    drain._original_build = lambda self, conductor, tp, chans: faust_handler  # type: ignore[assignment]
    return cond, slow, suspend


async def test_the_lean_handler_queues_the_event_and_leaves_the_rest_to_faust() -> None:
    original = drain._original_build
    try:
        chan = Channel(maxsize=2)
        cond, slow, suspend = conductor({chan})
        handle = drain._build(None, cond, "t-0", {chan})
        first = Message(1)
        await handle(first)
        assert chan.queue.get_nowait() == ("event", 1) and first.refs == 1
        suspend.set()  # a rebalance stopped the flow: Faust's handler waits for it
        await handle(Message(2))
        suspend.clear()
        await handle(Message(3))
        await handle(Message(4))
        await handle(Message(5))  # the stream's buffer is full: Faust's handler waits
        assert slow == [2, 5] and chan.queue.qsize() == 2
        two = {Channel(), Channel()}
        cond, slow, _ = conductor(two)
        await drain._build(None, cond, "t-0", two)(Message(6))
        assert slow == [6], "several streams on one topic: Faust's handler"
    finally:
        drain._original_build = original  # type: ignore[assignment]


async def test_a_commit_due_runs_beside_the_delivery_not_in_its_way() -> None:
    c, release, commits = Consumer(), asyncio.Event(), []

    async def commit() -> bool:  # a slow commit: the producer flushing the changelog
        commits.append(len(c.delivered))
        await release.wait()
        return True

    c.commit = commit  # type: ignore[attr-defined]
    c._commit_every, c._n_acked = 2, 2
    await drain._deliver(c, fetch([1, 2, 3]))
    assert c.delivered == [1, 2, 3], "delivery went on while the commit ran"
    await asyncio.sleep(0)
    c._n_acked = 2
    await drain._deliver(c, fetch([4]))
    await asyncio.sleep(0)
    assert commits == [3], "one commit at a time from this loop"
    release.set()
    await asyncio.sleep(0.01)
    c._n_acked = 2
    await drain._deliver(c, fetch([5]))
    await asyncio.sleep(0)
    assert commits == [3, 5] and c._n_acked == 0
    release.set()
