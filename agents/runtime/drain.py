"""Faust's fetch-to-stream loop, with one race per fetch instead of one per message.

See docs/adr/0003-fetch-loop-and-recovery.md (faust-streaming#176).

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
bookkeeping. If the flow stops mid-fetch, the rest of that fetch is not delivered and
its read offsets stay where they were (Faust would have delivered what did not block
and advanced them); Faust seeks back to the committed offsets when the flow is not
active, so they are fetched again, and a range committed but never processed is
re-read by ``agents.runtime.progress``. While the flow is stopped, messages go through Faust's
own per-message race.

An error while fetching (a batch that cannot be decoded, a broker error aiokafka does
not retry itself) no longer ends the loop at once: it is logged, counted
(``fetch_errors()``, exported as ``baton_fetch_errors_total``) and retried with an
exponential backoff (0.1 s doubling to 5 s); after ``MAX_FAILURES`` in a row the loop
raises as before, the worker crashes with the error logged and exits non-zero.

Installed by `baton worker` at start (`agents.runtime.install`), never at import or when an
app is built: the benchmark's minimal Faust agent keeps
Faust's own loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING, Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

__all__ = ["FETCH_MIN_BYTES", "MAX_FAILURES", "fetch_errors", "install"]

_original = Consumer._drain_messages
_create_consumer = AIOKafkaConsumerThread._create_worker_consumer
# with a fetch wait: the broker answers a fetch once it holds this much for it, or the
# wait has passed (a backlog is answered at once)
FETCH_MIN_BYTES = 65536
MAX_FAILURES = 12  # about 40 s of backoff in all
_errors = [0]  # fetch errors since the process started


def fetch_errors() -> int:
    """Fetch errors retried (or finally raised) since the process started."""
    return _errors[0]


def install(fetch_wait_s: float = 0.0) -> None:
    """Use the per-fetch loop in every Faust consumer of this process; with
    ``fetch_wait_s``, let the broker hold each fetch that long for more records
    (``fetched_together``)."""
    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    create = fetched_together(fetch_wait_s) if fetch_wait_s > 0 else _create_consumer
    AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


def uninstall() -> None:
    """Faust's own loop and consumer again (tests)."""
    Consumer._drain_messages = _original  # type: ignore[method-assign]
    AIOKafkaConsumerThread._create_worker_consumer = _create_consumer  # type: ignore[method-assign]


def fetched_together(wait_s: float) -> Any:
    """Faust's worker consumer factory, with fetches the broker holds for up to
    ``wait_s`` until ``FETCH_MIN_BYTES`` are there for them.

    Faust builds aiokafka's consumer with a minimum of one byte, so on paced traffic the
    broker answers each fetch with the few records that arrived since the last one: 1,000
    events/s arrived as hundreds of fetches a second, each a request over every assigned
    partition and a wake-up of the consumer thread, the fetch loop, the streams and the
    producer. Faust has no setting for it; the two values are read by aiokafka when the
    consumer starts (``AIOKafkaConsumer._fetch_min_bytes``, ``_fetch_max_wait_ms``)."""

    def create(self: Any, transport: Any) -> Any:
        consumer = _create_consumer(self, transport)
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        consumer._fetch_max_wait_ms = max(1, round(wait_s * 1000))
        return consumer

    return create


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - a thread
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    failures = 0
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            self.diag.set_flag(CONSUMER_FETCHING)
            try:
                fetched = await _fetch(self)
            except (asyncio.CancelledError, *self.consumer_stopped_errors):
                raise
            except Exception as exc:
                failures += 1
                await _failed(self, exc, failures)
                continue
            failures = 0
            if fetched and self.suspend_flow.is_set():
                await _deliver(self, fetched, race_each=True)  # Faust's own way
            elif fetched:
                await self.wait_first(_deliver(self, fetched), self.suspend_flow.wait())
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


async def _fetch(self: Any) -> list[Any]:
    ait = self.getmany(timeout=1.0)
    # as Faust: getmany may be called in a loop never releasing the event loop
    await self.sleep(0)
    return [] if self.should_stop else [pair async for pair in ait]


async def _failed(self: Any, exc: Exception, failures: int) -> None:
    """Count and log a failed fetch, then wait before the next; re-raise past the
    limit."""
    _errors[0] += 1
    if failures > MAX_FAILURES:
        self.log.error("fetch failed %d times in a row, giving up: %r", failures - 1, exc)
        raise exc
    delay = min(5.0, 0.1 * 2 ** (failures - 1))
    self.log.error("fetch failed (%d in a row), retrying in %.1f s: %r", failures, delay, exc)
    await asyncio.sleep(delay)


async def _deliver(self: Any, fetched: list[Any], race_each: bool = False) -> None:
    """One fetch's messages to the streams, in order (Faust's per-message body);
    ``race_each``: each delivery raced against the flow stopping, as Faust does.

    Without ``race_each`` the delivery gives up the rest of the fetch, without recording
    read offsets for it, as soon as the flow stops, the group's generation changes, or a
    partition's read offset is moved by someone else (Faust seeks to the committed
    offsets after a rebalance and at the end of a table recovery, and the seek sets the
    read offsets there). A delivery that went on across such a seek recorded read
    offsets of messages fetched before it: Faust then dropped the messages fetched again
    after the seek as already read, and the partition was never processed further (two
    workers starting together, 3 runs in 13)."""
    callback, get_read_offset = self.callback, self._read_offset.get
    set_read_offset = self._read_offset.__setitem__
    acks_enabled_for, commit_every = self.app.topics.acks_enabled_for, self._commit_every
    app, generation = self.app, self.app.consumer_generation_id
    flow = app.flow_control
    ours: dict[Any, Any] = {}  # partition -> the read offset this delivery last saw or set
    for i, (tp, message) in enumerate(fetched):
        if i % 100 == 99:
            await asyncio.sleep(0)
        r_offset = get_read_offset(tp)
        if not race_each and (
            not self.flow_active
            or not flow.is_active()
            or app.consumer_generation_id != generation
            or ours.get(tp, r_offset) != r_offset
        ):
            return  # the rest is fetched again from the committed offsets
        offset = message.offset
        if r_offset is None or offset >= r_offset:
            gap = offset - (r_offset or 0)
            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()
            if race_each:
                await self.wait_first(callback(message), self.suspend_flow.wait())
            else:
                await callback(message)
                if get_read_offset(tp) != r_offset or app.consumer_generation_id != generation:
                    return
            set_read_offset(tp, offset)
            r_offset = offset
        ours[tp] = r_offset
