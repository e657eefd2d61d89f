"""Faust's fetch-to-stream loop, with one race per fetch instead of one per message.

Faust 0.15.3 hands each fetched message to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: four tasks
created, raced and cancelled per message, so that a delivery blocked on a full stream
buffer is given up when a rebalance stops the flow. On a worker draining a backlog that
was about 40 µs of CPU per event, the largest single piece of the framework's cost.
``install`` replaces the loop (``Consumer._drain_messages``, adapted from Faust, BSD
licence): the fetch is read whole, as before never inside a race (cancelling it loses
what the fetch thread returned, and left a table recovery waiting forever in a first
version), and then, while the flow runs, its messages are delivered in order inside
one race against the same events, with Faust's read-offset, gap and commit
bookkeeping. If the flow stops mid-fetch, the rest of that fetch goes through Faust's
own per-message race, as it would have: what does not block is delivered. (A first
version left the rest undelivered, counting on Faust seeking back to the committed
offsets; a table's changelog has none, and a recovery that lost a fetched changelog
record that way waited for it forever, seen in the SIGKILL test after a rebalance.)
While the flow is stopped, messages go through Faust's own per-message race.

Each message then goes to its partition's handler directly (not through the conductor's
wrapper, which takes a lock per message), and the handler ``install`` gives the conductor
puts the event on the stream's queue itself in the case that is nearly always true (one
stream reads the topic, the flow runs, the producer's buffer is under its limit, the
stream's buffer has room); in every other case Faust's own handler runs, with its waits.
A commit due after ``broker_commit_every`` messages is started beside the delivery
instead of awaited in it (``_commit_soon``).

Installed by the Baton app (not at import): the benchmark's minimal Faust agent keeps
Faust's own loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.exceptions import KeyDecodeError, ValueDecodeError
from faust.transport.conductor import ConductorCompiler
from faust.transport.consumer import CONSUMER_FETCHING, Consumer

__all__ = ["install"]

log = logging.getLogger(__name__)

_original = Consumer._drain_messages
_original_build = ConductorCompiler.build


def install() -> None:
    """Use the per-fetch loop and the lean handlers in every Faust consumer and
    conductor of this process."""
    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    ConductorCompiler.build = _build  # type: ignore[method-assign]


def uninstall() -> None:
    """Faust's own loop and handlers again (tests)."""
    Consumer._drain_messages = _original  # type: ignore[method-assign]
    ConductorCompiler.build = _original_build  # type: ignore[method-assign]


_COMMITS: dict[int, asyncio.Task[Any]] = {}  # per consumer, the commit it started


def _commit_soon(consumer: Any) -> None:
    """Start a commit, unless the one this loop started last is still running. Faust
    awaits it here, so delivery stopped for the whole commit (the producer flushed to
    the last record): with the state changelog sent at commits (``agents.commits``),
    a few hundred milliseconds every few seconds, which paced traffic saw as latency.
    Commits are serialised by Faust either way."""
    running = _COMMITS.get(id(consumer))
    if running is None or running.done():
        task = _COMMITS[id(consumer)] = asyncio.ensure_future(consumer.commit())
        task.add_done_callback(_commit_done)


def _commit_done(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("commit failed: %r", task.exception())


def _build(self: Any, conductor: Any, tp: Any, channels: Any) -> Any:
    """Faust's handler of one partition's messages, with a lean path for the case that
    is nearly always true: one stream reads the topic, the flow runs, the producer's
    buffer is below its limit and the stream's buffer has room. Faust's handler awaits
    two coroutines and builds a set and a list for every message to check the same; it
    still handles every other case."""
    slow = _original_build(self, conductor, tp, channels)
    app = conductor.app
    if app.conf.producer_threaded:
        return slow
    flow_stopped = app.flow_control._suspend.is_set
    buffer, consumer = app.producer.buffer, app.consumer
    limit, on_full = buffer.max_messages, app.sensors.on_topic_buffer_full

    def on_pressure_high() -> None:  # as Faust's: this partition stops being fetched
        on_full(tp)
        consumer.on_buffer_full(tp)

    def on_pressure_drop() -> None:
        consumer.on_buffer_drop(tp)

    async def on_message(message: Any) -> None:
        if len(channels) != 1 or flow_stopped() or len(buffer.pending._queue) > limit:
            return await slow(message)  # type: ignore[no-any-return]
        for chan in channels:
            queue = chan.queue
            if queue.full():
                return await slow(message)  # type: ignore[no-any-return]
            message.incref(1)
            try:
                event = await chan.decode(message, propagate=True)
            except KeyDecodeError as exc:
                message.ack(consumer, n=1)
                await chan.on_key_decode_error(exc, message)
                return None
            except ValueDecodeError as exc:
                message.ack(consumer, n=1)
                await chan.on_value_decode_error(exc, message)
                return None
            queue.put_nowait_enhanced(
                event, on_pressure_high=on_pressure_high, on_pressure_drop=on_pressure_drop
            )
        return None

    return on_message


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - a thread
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            self.diag.set_flag(CONSUMER_FETCHING)
            ait = self.getmany(timeout=1.0)
            # as Faust: getmany may be called in a loop never releasing the event loop
            await self.sleep(0)
            if not self.should_stop:
                first = await anext(ait, None)  # the fetch itself: never inside a race
                if first is not None and (self.suspend_flow.is_set() or self.app.rebalancing):
                    # Faust's own way while partitions move and tables recover (with one
                    # race for the fetch, a recovery could wait forever for a changelog
                    # record: the SIGKILL test, 3 runs in 3)
                    await _deliver_fetch(self, first, ait, race_each=True)
                elif first is not None:
                    delivery = _deliver_fetch(self, first, ait)
                    await self.wait_first(delivery, self.suspend_flow.wait())
                await ait.aclose()
            self.diag.unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        self.diag.unset_flag(CONSUMER_FETCHING)


async def _deliver(self: Any, fetched: list[Any], race_each: bool = False) -> None:
    """A fetch's messages, given as a list, to the streams in order (tests)."""
    step = _stepper(self, race_each)
    for i, (tp, message) in enumerate(fetched):
        if i % 100 == 99:
            await asyncio.sleep(0)
        await step(tp, message)


async def _deliver_fetch(self: Any, first: Any, rest: Any, race_each: bool = False) -> None:
    """A fetch's messages to the streams in order, read from Faust's ``getmany`` one at a
    time as Faust does: it stops yielding when the flow stops or the generation changes
    (a rebalance), so nothing fetched before a rebalance reaches a stream after it."""
    step = _stepper(self, race_each)
    await step(*first)
    i = 1
    async for tp, message in rest:
        i += 1
        if i % 100 == 0:
            await asyncio.sleep(0)
        await step(tp, message)


def _stepper(self: Any, race_each: bool) -> Any:
    """Faust's per-message body: read-offset and gap bookkeeping, the commit due, then
    the message to its partition's handler; ``race_each``: each delivery raced against
    the flow stopping, as Faust does."""
    callback, get_read_offset = self.callback, self._read_offset.get
    # the conductor's handler per partition, without its lock and wrapper per message
    # (Faust's own ``callback`` when a partition has none: a subscription changing)
    handlers = self.app.topics._tp_to_callback
    set_read_offset = self._read_offset.__setitem__
    acks_enabled_for, commit_every = self.app.topics.acks_enabled_for, self._commit_every
    app = self.app

    async def step(tp: Any, message: Any) -> None:
        offset = message.offset
        r_offset = get_read_offset(tp)
        if r_offset is None or offset >= r_offset:
            gap = offset - (r_offset or 0)
            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                _commit_soon(self)
            if race_each or app.rebalancing:
                await self.wait_first(callback(message), self.suspend_flow.wait())
            else:
                handler = handlers.get(tp)
                await (callback(message) if handler is None else handler(message))
            set_read_offset(tp, offset)

    return step
