"""The per-fetch delivery loop (agents.runtime.drain): messages reach the streams in order with
Faust's read-offset and gap bookkeeping, and a suspension mid-fetch, the flow stopping,
a new group generation or a seek leave the rest of the fetch undelivered with the read
offsets where they were (or where the seek put them).

The loop itself runs in the worker on every broker test (recovery, rebalance)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from agents.runtime import drain


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
        self.flow_active = True
        self.app = SimpleNamespace(
            topics=SimpleNamespace(acks_enabled_for=bool),
            consumer_generation_id=1,
            flow_control=SimpleNamespace(is_active=lambda: True),
        )
        self.during: Callable[[Consumer], None] | None = None  # what happens while delivering

    async def callback(self, message: Msg) -> None:
        if message.offset == self.block_at:  # a full stream buffer
            await asyncio.sleep(3600)
        if self.during is not None and message.offset == 11:
            self.during(self)
            await asyncio.sleep(0)
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


async def test_a_suspension_mid_fetch_leaves_the_rest_unread() -> None:
    c = Consumer(block_at=12)
    task = asyncio.ensure_future(drain._deliver(c, fetch([10, 11, 12, 13])))
    await asyncio.sleep(0.05)
    task.cancel()  # what wait_first does when the flow is suspended
    await asyncio.gather(task, return_exceptions=True)
    assert c.delivered == [10, 11]
    assert c._read_offset["t-0"] == 11, "fetched again after the rebalance, from the commit"


async def test_a_seek_while_delivering_stops_the_fetch_and_keeps_the_seek() -> None:
    """Faust seeks to the committed offsets at the end of a recovery; a delivery that went
    on past it, recording read offsets of older messages, once left a partition that
    Faust never delivered again."""
    c = Consumer()
    c.during = lambda c: c._read_offset.__setitem__("t-0", 5)  # the seek
    await drain._deliver(c, fetch([10, 11, 12, 13]))
    assert c.delivered == [10, 11]
    assert c._read_offset["t-0"] == 5


async def test_the_flow_stopping_or_a_new_generation_stops_the_fetch() -> None:
    for change in (
        lambda c: setattr(c, "flow_active", False),
        lambda c: setattr(c.app, "consumer_generation_id", 2),
    ):
        c = Consumer()
        c.during = change
        await drain._deliver(c, fetch([10, 11, 12, 13]))
        assert c.delivered == [10, 11], change
        assert c._read_offset["t-0"] in (10, 11)


def test_install_replaces_faust_loop_and_uninstall_restores_it() -> None:
    from faust.transport.consumer import Consumer as FaustConsumer

    original = FaustConsumer._drain_messages
    try:
        drain.install()
        assert FaustConsumer._drain_messages is drain._drain_messages
    finally:
        drain.uninstall()
    assert FaustConsumer._drain_messages is original


async def test_a_fetch_wait_reaches_the_consumer_faust_builds(monkeypatch) -> None:
    """``install(wait)`` wraps Faust's worker-consumer factory so that the broker holds
    each fetch up to ``wait`` for ``FETCH_MIN_BYTES``; without a wait Faust's factory
    stays (its minimum of one byte)."""
    from aiokafka import AIOKafkaConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread as Thread

    built = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")  # never started
    monkeypatch.setattr(drain, "_create_consumer", lambda self, transport: built)
    original = Thread._create_worker_consumer
    try:
        drain.install(0.025)
        assert Thread._create_worker_consumer(None, None) is built
        assert (built._fetch_min_bytes, built._fetch_max_wait_ms) == (65536, 25)
        drain.install(0.0)
        assert Thread._create_worker_consumer is drain._create_consumer
    finally:
        monkeypatch.undo()
        drain.uninstall()
    assert Thread._create_worker_consumer is original


class Fetching:
    """A consumer for the whole loop: ``getmany`` follows a script of fetches, where an
    exception is a failed fetch; the loop stops when the script ends."""

    def __init__(self, script: list) -> None:
        self.script, self.got = list(script), []
        stopped = asyncio.Event()
        self._stopped, self.should_stop = stopped, False
        self.diag = SimpleNamespace(set_flag=lambda f: None, unset_flag=lambda f: None)
        self.suspend_flow = asyncio.Event()
        self.consumer_stopped_errors = (LookupError,)
        self.transport = SimpleNamespace(app=SimpleNamespace(should_stop=False))
        self.log = SimpleNamespace(error=lambda *a: self.got.append(a[0] % a[1:]))

    def getmany(self, timeout: float):
        step = self.script.pop(0)
        if not self.script:
            self._stopped.set()
        if isinstance(step, Exception):
            raise step

        async def pairs():
            for p in step:
                yield p

        return pairs()

    async def sleep(self, s: float) -> None:
        await asyncio.sleep(s)

    async def wait_first(self, *coros):
        for c in coros[1:]:
            c.close()
        await coros[0]


async def test_a_failed_fetch_is_counted_logged_and_retried(monkeypatch) -> None:
    delivered: list = []

    async def deliver(self, fetched, race_each=False):
        delivered.extend(fetched)

    monkeypatch.setattr(drain, "_deliver", deliver)
    c = Fetching([RuntimeError("bad batch"), RuntimeError("bad batch"), [("t-0", 1)], []])
    before = drain.fetch_errors()
    await drain._drain_messages(c, SimpleNamespace(_stopped=asyncio.Event()))
    assert delivered == [("t-0", 1)], "the fetch after the failures is delivered"
    assert drain.fetch_errors() - before == 2
    assert c.got == [
        "fetch failed (1 in a row), retrying in 0.1 s: RuntimeError('bad batch')",
        "fetch failed (2 in a row), retrying in 0.2 s: RuntimeError('bad batch')",
    ]


async def test_fetches_failing_past_the_limit_raise(monkeypatch) -> None:
    monkeypatch.setattr(drain, "MAX_FAILURES", 2)
    monkeypatch.setattr(asyncio, "sleep", _no_wait)
    c = Fetching([RuntimeError("down")] * 4)
    c.log.exception = lambda *a: c.got.append("raised")
    try:
        await drain._drain_messages(c, SimpleNamespace(_stopped=asyncio.Event()))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the loop must raise past the limit")
    assert c.got[-2:] == [
        "fetch failed 2 times in a row, giving up: RuntimeError('down')",
        "raised",
    ]


_real_sleep = asyncio.sleep


async def _no_wait(s: float) -> None:
    await _real_sleep(0)
