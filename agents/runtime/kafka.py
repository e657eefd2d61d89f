"""The flows on Faust and Apache Kafka: batches, held acknowledgements, the changelog.

The hot flows (ingest, decide) take events in batches (``BATON_BATCH_MAX`` within
``BATON_BATCH_WITHIN_S``): each event is still handled on its own, in order, and the
batch's messages go straight to the producer. The state changelog gets one record per
customer every ``BATON_CHANGELOG_INTERVAL_S``, and the events are acknowledged only
after it is sent, so a committed offset never runs ahead of its outputs or its state
(``holding``, ``customers``; docs/adr/0001). A range of a source committed but never
processed is read again first (``progress``; docs/adr/0002), and a partition left
with lag that nothing delivers is sought back (``stalls``; docs/adr/0003).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from agents.outbox import Outbox, Recorder, Timed
from agents.runtime.customers import Customers, raw
from agents.runtime.drain import fetch_errors
from agents.runtime.holding import Held
from agents.runtime.internals import (
    cluster_partitions,
    flow_suspended,
    offsets,
    producer_send,
    set_current_event,
)
from agents.runtime.progress import Progress
from agents.runtime.stalls import Stalls
from agents.settings import Settings

__all__ = ["KafkaRuntime"]

log = logging.getLogger(__name__)

# a changelog entry: (changelog topic name, key, value, partition, table); a live state
# is encoded when it is sent
_Changelog = tuple[str, bytes, Any, int, Any]
# changelog records encoded and handed to the producer between two yields to the flows
_CHUNK = 200


def changelog_producer(s: Settings, conf: Any) -> AIOKafkaProducer:
    """The producer of the state changelog, apart from Faust's (actions and the other
    outputs). aiokafka keeps one produce request in flight per broker, so on a shared
    producer every action waited behind a flush's thousands of records for its turn:
    the flush-shaped latency spikes of issue 15. Larger batches and a short linger suit
    this bulk path; acks, request size and compression as Faust's producer (``conf``,
    its app's settings)."""
    return AIOKafkaProducer(
        **s.client_kwargs(),
        acks="all",
        linger_ms=5,
        max_batch_size=max(65536, s.producer_batch_bytes),
        max_request_size=conf.producer_max_request_size,
        compression_type=conf.producer_compression_type,
        client_id=f"{s.group_id}-changelog",
    )


class KafkaRuntime:
    """Runs the flows of one worker on its Faust app."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        record: Recorder,
        customers: Any,
        progress: Any,
    ) -> None:
        s = self.settings = settings
        self.app, self.record, self.metrics = app, record, record.metrics
        metrics = record.metrics
        self.states = Customers(customers, s.state_cache, live=s.store == "memory")
        self.customers_table, self.progress_table = customers, progress
        self.marks = {n: Progress(progress, s.client_kwargs()) for n in ("ingest", "decide")}
        self.held = Held(s.changelog_interval_s)
        self._writing = asyncio.Lock()
        hot = {s.topic(n) for n in ("events.clickstream", "events.service", "customer-events")}
        self.stalls = Stalls(app, hot.__contains__, metrics.stalled_partitions, s.stall_after_s)
        self._names: dict[str, str] = {}
        self._source_partitions: dict[str, int | None] = {}
        self._share = (-1, 1.0)
        self._persists = s.store == "rocksdb"  # the memory store keeps no offsets
        sources = ("events.clickstream", "events.service", "feedback", "training-examples")
        self._sources = hot | {s.topic(n) for n in (*sources, "identity-events")}
        self._lagging: set[tuple[str, str]] = set()
        self._rebalances = 0
        self._fetch_errors = fetch_errors()

    # -- the interface the flows see (agents.runtime) ------------------------------------
    def tracked(self, topic: str) -> bool:
        """Whether a source topic has the table's partition count (progress is kept)."""
        n = self.settings.partitions
        if self._source_partitions.get(topic) != n:
            self._source_partitions[topic] = cluster_partitions(self.app, topic)
        return self._source_partitions[topic] == n

    def share(self) -> float:
        """This worker's share of the partitions of ``customer-events``."""
        app, count = self.app, self.app.rebalancing_count
        if self._share[0] != count:
            topic = self.settings.topic("customer-events")
            mine = sum(1 for tp in app.assignor.assigned_actives() if tp.topic == topic)
            self._share = (count, max(1, mine) / self.settings.partitions)
        return self._share[1]

    async def send(self, outbox: Outbox) -> None:
        """Hand the messages to the producer in order, without Faust's per-message
        wrapping; a failed delivery is logged and counted (the commit that follows
        flushes the producer, so none is left behind unsent). An action's latency is
        recorded when Kafka acknowledges it."""
        send, names, topic = producer_send(self.app), self._names, self.settings.topic
        began = time.perf_counter()
        for entry in outbox:
            name, key, value = entry
            full = names.get(name) or names.setdefault(name, topic(name))
            fut = await send(full, value, key=key, partition=None)
            fut.add_done_callback(self._delivered)
            if type(entry) is Timed:
                fut.add_done_callback(functools.partial(self._acted, entry))
        if outbox:
            self.record.stage["send"].observe(time.perf_counter() - began)

    # -- batches --------------------------------------------------------------------------
    async def batches(
        self, stream: faust.StreamT[bytes], one: Callable[[Any, Outbox], None], name: str
    ) -> None:
        """Take events in batches, handle each in order with ``one(event, outbox)`` (after
        any range of the source found committed but never processed), then send the
        outbox and hold the events: they are acknowledged at the next changelog flush,
        once the changelog of the customers and source marks they changed is sent."""
        s, m, marks = self.settings, self.metrics, self.marks[name]
        # take_events is on faust's Stream, not on its StreamT protocol
        batches = stream.take_events(s.batch_max, s.batch_within_s)  # type: ignore[attr-defined]
        async for taken in batches:
            marks.reset_if(self.app.rebalancing_count)
            events = await self._with_gaps(taken, marks)
            # one writer of the customers table at a time, over the whole batch; a flush
            # takes its records under the same lock, so it never sees a batch half written
            async with self._writing:
                out: Outbox = []
                for ev in events:
                    set_current_event(ev)  # the RocksDB store finds a key's partition
                    one(ev, out)
                    msg = ev.message
                    if self.tracked(msg.topic):
                        marks.done(msg.topic, msg.partition, msg.offset)
                m.batch_size.observe(len(events))
                marks.store()
                await self.send(out)
                self.held.hold(taken)

    async def _with_gaps(self, events: Any, marks: Progress) -> list[Any]:
        """The batch, with any range found missing before one of its messages read again
        from Kafka and put in front of that message (``agents.runtime.progress``)."""
        result: list[Any] = []
        for ev in events:
            msg = ev.message
            if self.tracked(msg.topic):
                set_current_event(ev)
                gap = marks.gap(msg.topic, msg.partition, msg.offset)
                if gap is not None:
                    result += await self._reread(marks, msg.topic, msg.partition, gap)
                marks.seen(msg.topic, msg.partition, msg.offset)
            result.append(ev)
        return result

    async def _reread(
        self, marks: Progress, topic: str, partition: int, gap: tuple[int, int]
    ) -> list[Any]:
        again = await marks.reread(topic, partition, *gap)
        log.warning(
            "offsets %d..%d of %s[%d] were committed but never processed (a rebalance "
            "under load); read again: %d messages",
            gap[0],
            gap[1] - 1,
            topic,
            partition,
            len(again),
        )
        self.metrics.source_gaps.labels(topic).inc()
        self.metrics.source_gap_events.labels(topic).inc(len(again))
        return again

    # -- the changelog --------------------------------------------------------------------
    def _take_changelog(self) -> tuple[list[_Changelog], list[Any]]:
        """The changelog records of every customer and source mark written since the last
        flush (one each), and the messages held for them. Call holding ``_writing``."""
        records = self.states.take()  # encoded later, off the lock (_send_changelog)
        self.metrics.changelog_records.inc(len(records))
        out = self._changelog(self.customers_table, records)
        for marks in self.marks.values():
            out += self._changelog(self.progress_table, marks.flush())
        return out, self.held.take()

    @staticmethod
    def _changelog(table: Any, records: Sequence[tuple[int, bytes, Any]]) -> list[_Changelog]:
        name = table.changelog_topic.get_topic_name()
        return [(name, key, value, partition, table) for partition, key, value in records]

    async def keep_changelog(self) -> None:
        """Flush the changelog every ``changelog_interval_s``, and at once when the
        consumer's flow stops (a rebalance or a shutdown waits for the held events).

        The records are taken under ``_writing`` (a swap of dicts) and encoded and sent
        outside it, ``_CHUNK`` at a time with a yield to the flows between chunks:
        encoding thousands of states at once held every flow for 50-170 ms. They go
        through a producer of their own (``changelog_producer``), and the held events
        are acknowledged once the broker has acknowledged every record of the flush.
        This task is the only flusher, so flushes reach the changelog in order."""
        m, app = self.metrics, self.app
        producer = changelog_producer(self.settings, app.conf)
        await producer.start()
        try:
            while True:  # until cancelled: the app's stop waits for the held events first
                await asyncio.sleep(0.05)
                m.held_events.set(len(self.held))
                if not len(self.held) or not (self.held.due() or flow_suspended(app)):
                    continue
                began = time.perf_counter()
                async with self._writing:
                    out, messages = self._take_changelog()
                try:
                    await self._send_changelog(producer.send, out)
                except Exception as exc:  # the state would go unrecorded: restart, replay
                    m.send_errors.inc()
                    log.exception("state changelog flush failed")
                    await app.crash(exc)
                    return
                stale = self.held.release(messages, app.consumer, app.consumer_generation_id)
                if stale:
                    log.info("%d events handled before a rebalance left to be read again", stale)
                m.changelog_flush.observe(time.perf_counter() - began)
        finally:
            await producer.stop()

    async def _send_changelog(self, send: Any, records: list[_Changelog]) -> None:
        """Send changelog records to their partitions and wait for the broker to
        acknowledge them all; for the RocksDB store, tell it the last offset each
        partition's changelog reached (Faust's own changelog path does the same per
        record), so a restart replays only the records after it."""
        last: dict[tuple[int, int], tuple[Any, Any]] = {}
        futures = []
        for i, (name, key, value, partition, table) in enumerate(records):
            if i % _CHUNK == _CHUNK - 1:
                await asyncio.sleep(0)  # the flows go on between chunks
            fut = await send(name, raw(value), key=key, partition=partition)
            futures.append(fut)
            if self._persists:
                last[(id(table), partition)] = (table, fut)
        if futures:
            await asyncio.gather(*futures)  # the first failure raises
        for table, fut in last.values():
            self._persisted(table, fut)

    async def observe(self) -> None:
        """Consumer lag of every assigned source partition (log end offset minus the
        committed offset), and the rebalances and fetch errors since the last look."""
        m, consumer = self.metrics, self.app.consumer
        count = self.app.rebalancing_count
        if count > self._rebalances:
            m.rebalances.inc(count - self._rebalances)
        self._rebalances = count
        errors = fetch_errors()
        if errors > self._fetch_errors:
            m.fetch_errors.inc(errors - self._fetch_errors)
        self._fetch_errors = errors
        seen: set[tuple[str, str]] = set()
        for tp in consumer.assignment():
            if tp.topic not in self._sources:
                continue
            end, committed = consumer.highwater(tp), offsets(consumer, tp)[0]
            if end is None:
                continue
            labels = (tp.topic, str(tp.partition))
            m.lag.labels(*labels).set(max(0, end - (committed or 0)))
            seen.add(labels)
        for labels in self._lagging - seen:  # partitions moved away
            m.lag.remove(*labels)
        self._lagging = seen

    async def check_stalls(self) -> None:
        await self.stalls.check(self.held.partitions())

    def _acted(self, value: Timed, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is None:
            self.record.acted(value)

    def _delivered(self, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            self.metrics.send_errors.inc()
            log.error("send failed: %r", fut.exception())

    @staticmethod
    def _persisted(table: Any, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        meta = fut.result()
        try:
            table.data.set_persisted_offset(meta.topic_partition, meta.offset)
        except Exception:  # a partition moved away meanwhile: its next owner recovers
            log.warning("could not record %s's changelog offset", table.name, exc_info=True)
