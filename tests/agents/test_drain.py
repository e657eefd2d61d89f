"""The lean per-partition handler (agents.drain): it queues the event itself in the
common case and leaves every other case to Faust's handler.

The handler runs in the worker on every broker test (recovery, rebalance)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from agents import drain


def test_install_replaces_faust_handler_and_uninstall_restores_it() -> None:
    from faust.transport.conductor import ConductorCompiler

    original = ConductorCompiler.build
    try:
        drain.install()
        assert ConductorCompiler.build is drain._build
    finally:
        drain.uninstall()
    assert ConductorCompiler.build is original


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
