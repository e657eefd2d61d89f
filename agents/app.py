"""The Faust application: topics, tables, agents, the timer and web pages.

Four agents, each co-partitioned with what it reads:

- ``ingest`` reads ``events.clickstream`` and ``events.service`` as raw bytes, decodes and
  validates them with the pure core, sends rejects to ``events.deadletter`` (raw bytes,
  reason, source topic/partition/offset), and forwards valid events keyed by customer to
  ``customer-events``, or keyed by anonymous id to ``identity-events``.
- ``identify`` reads ``identity-events`` with the ``identities`` table (anonymous id ->
  customer): links on login, routes to the customer, asks for the anonymous state to
  be merged.
- ``feedback`` reads channel feedback, validates it (``feedback.v1``) and forwards it,
  through the identity table (a decision made for an anonymous visitor who has since
  logged in lives with the customer), to ``customer-events``, so it is joined to its
  decision by the worker that owns the customer.
- ``decide`` reads ``customer-events``, folds each event (or feedback) into the customer's
  state (written to the changelog once per customer per flush), settles
  delayed labels, asks the policy for the
  next best action under the playbook in force and emits it on ``actions`` (or, for the
  control group, ``holdout``) only when it changes; journey outcomes become metrics and
  response examples.
- ``learn`` (``agents.learning``) turns labelled examples into signed model snapshots.

A timer sends "tick" messages through ``customer-events`` for customers with something
due (a cart left alone, a session's labels), so a customer who simply leaves is decided
too, by the worker that owns the partition, through the same single-writer path.

The hot agents (ingest, decide) take events in batches (``BATON_BATCH_MAX`` within
``BATON_BATCH_WITHIN_S``): each event is still decided on its own, in order, and the
batch's messages go straight to the producer. The state changelog gets one record per
customer every ``BATON_CHANGELOG_INTERVAL_S``, and the events are acknowledged only
after it is sent (so a committed offset never runs ahead of its outputs or its state).
See ``agents.customers`` and ``agents.holding``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
import weakref
from collections.abc import Sequence
from typing import Any

import faust
import orjson
from aiokafka.partitioner import murmur2
from faust.streams import _current_event
from prometheus_client import CollectorRegistry

from agents import drain
from agents.customers import Customers
from agents.holding import Held
from agents.journeys import Journeys
from agents.learning import Learners
from agents.metrics import Metrics
from agents.models import ModelRegistry
from agents.playbooks import PlaybookRegistry
from agents.progress import Progress
from agents.settings import Settings
from agents.stalls import Stalls
from agents.web import DueList, add_pages
from pipeline.events import Decoder, Event, Rejected, format_time
from pipeline.identity import merge, resolve
from pipeline.labels import Example, label_due, label_event, label_timeout
from pipeline.policy import Decision, Trigger, decide, due_at
from pipeline.privacy import ERASE, erasure_record, expired
from pipeline.state import CustomerState, apply

__all__ = ["Baton", "create_app"]

# messages to send after a state change: (Faust topic, key, value), or with a partition
Outbox = list[Any]

log = logging.getLogger(__name__)


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def _credentials(s: Settings) -> Any:
    ctx = s.ssl_context()
    if s.security_protocol.startswith("SASL"):
        password = s.sasl_password.get_secret_value() if s.sasl_password else None
        return faust.SASLCredentials(
            username=s.sasl_username, password=password, mechanism=s.sasl_mechanism, ssl_context=ctx
        )
    return faust.SSLCredentials(ctx) if ctx is not None else None


class Baton:
    """The worker's Faust app with its topics, table, agents and metrics."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        s = self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics.create(self.registry)
        # the per-event counters' children, looked up once per label value (a
        # ``labels()`` call is ~1.5 µs); the label values are bounded (topics, event
        # types, the playbook's actions)
        m = self.metrics
        self._received, self._events, self._actions = (
            functools.lru_cache(maxsize=1024)(c.labels) for c in (m.received, m.events, m.actions)
        )
        self.decoder = Decoder(s.decode_config())
        self.state_cfg = s.state_config()
        self.due = DueList()
        if s.default_pii_key:
            log.warning("BATON_PII_HASH_KEY is not set: e-mail/phone hashes use the default key")
        if s.model_signing_key.get_secret_value() == "baton-development-model-key":
            log.warning("BATON_MODEL_SIGNING_KEY is not set: model snapshots use the default key")
        drain.install()  # one race per fetch, not per message (agents.drain)
        self.models = ModelRegistry(s, self.metrics)
        self.playbooks = PlaybookRegistry(s, self.metrics)
        self._share = (-1, 1.0)
        self._source_partitions: dict[str, int | None] = {}
        self.journeys = Journeys(
            self.metrics,
            self.models,
            self.playbooks,
            self._volume_share,
            self.state_cfg.dedupe_window,
        )
        self.label_cfg = s.label_config()
        self._last_rescan, self._scanned_at = 0.0, -1
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            s.group_id,
            broker=_broker_urls(s.kafka_bootstrap),
            broker_credentials=_credentials(s),
            store="rocksdb://" if s.store == "rocksdb" else "memory://",
            datadir=str(s.data_dir / s.group_id),
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication_factor,
            key_serializer="raw",
            value_serializer="raw",
            web_host=s.web_host,
            web_bind=s.web_host,
            web_port=s.web_port,
            autodiscover=False,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_linger=s.producer_linger_s,
            broker_session_timeout=s.session_timeout_s,
            # room for whole fetches: a fetch that finds a stream's buffer full takes
            # Faust's per-message wait path (a task and a wait for each message)
            stream_buffer_maxsize=s.stream_buffer,
        )
        self._declare()
        self.states = Customers(self.customers, s.state_cache, live=s.store == "memory")
        client = s.client_kwargs()
        self.marks = {name: Progress(self.progress, client) for name in ("ingest", "decide")}
        self._topic_names: dict[int, str] = {}
        self._writing = asyncio.Lock()
        self.held = Held(s.changelog_interval_s)
        hot = {s.topic(n) for n in ("events.clickstream", "events.service", "customer-events")}
        stalled = self.metrics.stalled_partitions
        self.stalls = Stalls(self.app, hot.__contains__, stalled, s.stall_after_s)
        self._partitions_of: dict[bytes, int] = {}
        self._persists = s.store == "rocksdb"  # the memory store keeps no offsets

    def _declare(self) -> None:
        s, app = self.settings, self.app
        self.sources = app.topic(s.topic("events.clickstream"), s.topic("events.service"))
        self.deadletter = app.topic(s.topic("events.deadletter"))
        self.customer_events = app.topic(s.topic("customer-events"), partitions=s.partitions)
        self.identity_events = app.topic(s.topic("identity-events"), partitions=s.partitions)
        self.identities = app.Table(
            "identities", default=None, partitions=s.partitions, key_type=bytes, value_type=bytes
        )
        self.actions = app.topic(s.topic("actions"))
        self.holdout = app.topic(s.topic("holdout"))
        self.feedback = app.topic(s.topic("feedback"))
        self.examples = app.topic(s.topic("training-examples"))
        self.models_topic = app.topic(s.topic("models"))
        self.audit = app.topic(s.topic("audit"))
        # key_type/value_type=bytes select Faust's raw codec for the table. Without them
        # Faust writes our bytes but decodes the changelog as JSON on recovery, and the
        # recovered table silently misses every customer (found by test_recovery).
        self.customers = app.Table(
            "customers", default=None, partitions=s.partitions, key_type=bytes, value_type=bytes
        )
        # per source partition, the next offset processed (agents.progress)
        self.progress = app.Table(
            "progress", default=None, partitions=s.partitions, key_type=bytes, value_type=bytes
        )
        app.agent(self.sources, name="ingest")(self._ingest)
        app.agent(self.identity_events, name="identify")(self._identify)
        app.agent(self.feedback, name="feedback")(self._feedback)
        app.agent(self.customer_events, name="decide")(self._decide)
        self.learners = Learners(s, self.metrics, self.models, self.models_topic)
        app.agent(self.examples, name="learn")(self.learners.agent)
        app.timer(s.timer_interval_s)(self._sweep)
        app.task(self._keep_changelog)
        app.timer(max(0.5, s.stall_after_s / 4))(self._check_stalls)
        app.task(self.models.follow)
        app.task(self.playbooks.follow)
        add_pages(app, self.registry)

    # -- ingest -----------------------------------------------------------------------------
    def _edge(
        self, ev: Any, decode: Any, out: Outbox
    ) -> tuple[Any, tuple[str, int, int], float] | None:
        """Count a message in and decode it; a reject goes to the dead-letter topic (None)."""
        msg, now = ev.message, time.time()
        self._received(msg.topic).inc()
        result = decode(ev.value, now)
        src = (msg.topic, msg.partition, msg.offset)
        if isinstance(result, Rejected):
            out.append(self._dead_msg(ev.key, ev.value, result, src, now))
            return None
        return result, src, now

    async def _batches(self, stream: faust.StreamT[bytes], one: Any, marks: Progress) -> None:
        """Take events in batches, handle each in order with ``one(event, outbox)`` (after
        any range of the source found committed but never processed), then send the
        outbox and hold the events: they are acknowledged (Faust does it for a batch when
        this returns to it; here at the next changelog flush) once the changelog of the
        customers and source marks they changed is sent (``agents.holding``)."""
        s, m = self.settings, self.metrics
        async for taken in stream.take_events(s.batch_max, s.batch_within_s):
            marks.reset_if(self.app.rebalancing_count)
            events = await self._with_gaps(taken, marks)
            # one writer of the customers table at a time, over the whole batch; a
            # flush takes its records under the same lock, so it never sees a batch
            # half written (agents.customers)
            async with self._writing:
                out: Outbox = []
                for ev in events:
                    # the RocksDB store finds a key's partition from the current event.
                    # Only the context variable is set: the stream's own
                    # ``current_event`` is what take_events reads to fill the next batch
                    _current_event.set(weakref.ref(ev))
                    one(ev, out)
                    msg = ev.message
                    if self._tracked(msg.topic):
                        marks.done(msg.topic, msg.partition, msg.offset)
                m.batch_size.observe(len(events))
                marks.store()
                await self._send(out)
                self.held.hold(taken)

    def _take_changelog(self) -> tuple[Outbox, list[Any]]:
        """The changelog records of every customer and source mark written since the last
        flush (one each), and the messages held for them. Call holding ``_writing``."""
        records = self.states.flush()
        self.metrics.changelog_records.inc(len(records))
        out = self._changelog(self.customers, records)
        for marks in self.marks.values():
            out += self._changelog(self.progress, marks.flush())
        return out, self.held.take()

    async def _keep_changelog(self) -> None:
        """Flush the changelog every ``changelog_interval_s``, and at once when the
        consumer's flow stops (a rebalance or a shutdown waits for the held events).

        The records are taken under ``_writing`` and sent outside it: handing thousands
        of records to the producer waits for its per-partition batches to drain (a few
        hundred ms), and the agents go on meanwhile. This task is the only flusher, so
        flushes reach the changelog in order."""
        m = self.metrics
        while True:  # until cancelled: the app's stop waits for the held events first
            await asyncio.sleep(0.05)
            m.held_events.set(len(self.held))
            if not len(self.held) or not (
                self.held.due() or self.app.consumer.suspend_flow.is_set()
            ):
                continue
            began = time.perf_counter()
            async with self._writing:
                out, messages = self._take_changelog()
            try:
                await self._send(out)
            except Exception as exc:  # the state would go unrecorded: restart and replay
                log.exception("state changelog flush failed")
                await self.app.crash(exc)
                return
            stale = self.held.release(messages, self.app.consumer, self.app.consumer_generation_id)
            if stale:
                log.info("%d events handled before a rebalance left to be read again", stale)
            m.changelog_flush.observe(time.perf_counter() - began)

    async def _check_stalls(self) -> None:
        await self.stalls.check(self.held.partitions())

    @staticmethod
    def _changelog(table: Any, records: Sequence[tuple[int, bytes, bytes | None]]) -> Outbox:
        topic = table.changelog_topic
        return [(topic, key, value, partition, table) for partition, key, value in records]

    async def _with_gaps(self, events: Any, marks: Progress) -> list[Any]:
        """The batch, with any range found missing before one of its messages read again
        from Kafka and put in front of that message (see agents.progress)."""
        result: list[Any] = []
        for ev in events:
            msg = ev.message
            if self._tracked(msg.topic):
                _current_event.set(weakref.ref(ev))
                gap = marks.gap(msg.topic, msg.partition, msg.offset)
                if gap is not None:
                    again = await marks.reread(msg.topic, msg.partition, *gap)
                    log.warning(
                        "offsets %d..%d of %s[%d] were committed but never processed "
                        "(a rebalance under load); read again: %d messages",
                        gap[0],
                        gap[1] - 1,
                        msg.topic,
                        msg.partition,
                        len(again),
                    )
                    self.metrics.source_gaps.labels(msg.topic).inc()
                    self.metrics.source_gap_events.labels(msg.topic).inc(len(again))
                    result += again
                marks.seen(msg.topic, msg.partition, msg.offset)
            result.append(ev)
        return result

    def _tracked(self, topic: str) -> bool:
        """Whether a source topic has the table's partition count (progress is kept)."""
        n = self.settings.partitions
        if self._source_partitions.get(topic) != n:
            self._source_partitions[topic] = self._partition_count(topic)
        return self._source_partitions[topic] == n

    def _partition_count(self, topic: str) -> int | None:
        # Faust's topic_partitions reads the group coordinator's snapshot, which only the
        # group leader fills: on the other workers it said None, and they re-keyed every
        # event (found with two workers). Those read the consumer's cluster metadata.
        count: int | None = self.app.consumer.topic_partitions(topic)
        if count is None:
            try:
                thread = self.app.consumer._thread  # type: ignore[attr-defined]
                cluster = thread._ensure_consumer()._client.cluster
                parts = cluster.partitions_for_topic(topic)
                count = len(parts) if parts else None
            except AttributeError:  # another transport: no fast path, no repair
                count = None
        return count

    async def _ingest(self, stream: faust.StreamT[bytes]) -> None:
        await self._batches(stream, self._ingest_one, self.marks["ingest"])

    def _ingest_one(self, ev: Any, out: Outbox) -> None:
        got = self._edge(ev, self.decoder.decode, out)
        if got is None:
            return
        (result, src, now), msg = got, ev.message
        doc: dict[str, Any] = {"received_at": now, "src": src}
        key = result.key.encode()
        if result.anonymous_id is None and self._direct(msg.topic, msg.partition, key):
            out.extend(self._handle(key, msg.partition, doc, result))  # the Event as decoded
            return
        doc["event"] = result.to_dict()
        if result.anonymous_id is not None:  # resolve through the identity table first
            out.append((self.identity_events, result.anonymous_id.encode(), orjson.dumps(doc)))
        else:
            out.append((self.customer_events, key, orjson.dumps(doc)))

    def _direct(self, topic: str, partition: int, key: bytes) -> bool:
        """Whether an event can be decided where it was read, skipping the re-keying hop
        (one Kafka write and one read per event): its source topic has the table's
        partition count and it sits on the partition the key hashes to (Kafka's default
        murmur2 partitioner, which Java clients and aiokafka use). Faust assigns the same
        partition number of co-partitioned topics to one worker, so this worker owns the
        customer. Events from other partitioners (librdkafka's default, for one) take the
        hop, as do ticks, merges and feedback."""
        return self._tracked(topic) and self._partition_of(key) == partition

    def _partition_of(self, key: bytes) -> int:
        """The partition Kafka's default partitioner puts ``key`` on (aiokafka's murmur2
        is pure Python, ~2.5 µs a key: remembered for the last ~100,000 keys)."""
        known = self._partitions_of
        p = known.get(key)
        if p is None:
            if len(known) >= 100_000:
                known.clear()
            p = known[key] = (murmur2(key) & 0x7FFFFFFF) % self.settings.partitions
        return p

    # -- feedback ---------------------------------------------------------------------------
    async def _feedback(self, stream: faust.StreamT[bytes]) -> None:
        """Channel feedback in: validate, then route to the customer's partition."""
        async for ev in stream.events():
            out: Outbox = []
            got = self._edge(ev, self.decoder.decode_feedback, out)
            if got is None:
                await self._send(out)
                continue
            fb, src, now = got
            body = {"feedback": orjson.loads(ev.value), "received_at": now, "src": src}
            # through the identity table: an action decided for an anonymous visitor who
            # has since logged in now lives in the customer's state (merged)
            await self.identity_events.send(key=fb.customer_id.encode(), value=orjson.dumps(body))

    # -- identify ---------------------------------------------------------------------------
    async def _identify(self, stream: faust.StreamT[bytes]) -> None:
        """Events with an anonymous id, keyed by it: link, route to the customer, merge."""
        async for ev in stream.events():
            anon, doc = ev.key, orjson.loads(ev.value)
            if "feedback" in doc:  # to the customer the id is linked to, if any
                link = self.identities.get(anon)
                await self.customer_events.send(key=link or anon, value=ev.value)
                continue
            if "unlink" in doc:
                if self.identities.get(anon) is not None:
                    del self.identities[anon]
                continue
            link = self.identities.get(anon)
            r = resolve(Event.from_dict(doc["event"]), link.decode() if link else None)
            if r.conflict is not None:
                why = Rejected(
                    "identity_conflict",
                    f"anonymous id already linked to customer {r.conflict!r}",
                    r.event.event_id,
                )
                raw = orjson.dumps(doc["event"])  # as forwarded, like a duplicate's
                await self._dead(anon, raw, why, tuple(doc["src"]), time.time())  # type: ignore[arg-type]
                continue
            if r.new_link is not None:
                self.identities[anon] = r.new_link.encode()
                self.metrics.links.inc()
                # the anonymous state lives on the anonymous id's partition: ask it to move
                move = {"merge_into": r.new_link, "received_at": doc["received_at"]}
                await self.customer_events.send(key=anon, value=orjson.dumps(move))
            doc["event"] = r.event.to_dict()
            await self.customer_events.send(key=r.key.encode(), value=orjson.dumps(doc))

    def _dead_msg(
        self,
        key: bytes | None,
        raw: bytes | None,
        why: Rejected,
        src: tuple[str, int, int],
        now: float,
    ) -> tuple[Any, bytes | None, bytes]:
        """The dead letter for a rejected message (its counter moves now)."""
        self.metrics.deadletters.labels(why.reason).inc()
        envelope = {
            "schema_version": 1,
            "reason": why.reason,
            "detail": why.detail,
            "source": {"topic": src[0], "partition": src[1], "offset": src[2]},
            "event_id": why.event_id,
            "raw_base64": base64.b64encode(raw or b"").decode(),
            "received_at": format_time(now),
        }
        return (self.deadletter, key, orjson.dumps(envelope))

    async def _dead(
        self,
        key: bytes | None,
        raw: bytes | None,
        why: Rejected,
        src: tuple[str, int, int],
        now: float,
    ) -> None:
        await self._send([self._dead_msg(key, raw, why, src, now)])

    # -- decide -----------------------------------------------------------------------------
    # ``_handle`` does all the work for one message synchronously: read the state, compute,
    # write the state, and return what to send. With no await between the read and the
    # write, the two agents that call it (decide, and ingest on its direct path) can never
    # interleave on one customer and lose an update.
    async def _decide(self, stream: faust.StreamT[bytes]) -> None:
        await self._batches(stream, self._decide_one, self.marks["decide"])

    def _decide_one(self, ev: Any, out: Outbox) -> None:
        out.extend(self._handle(ev.key, ev.message.partition, orjson.loads(ev.value)))

    async def _send(self, outbox: Outbox) -> None:
        """Hand the messages to the producer in order, without Faust's per-message
        wrapping; a failed delivery is logged and counted (the commit that follows
        flushes the producer, so none is left behind unsent). Entries are (topic, key,
        value), or with a partition, or for a table's changelog also the table: the
        RocksDB store is then told the last offset its partition's changelog reached
        (Faust's own changelog path does the same per record), so a restart replays
        only the records after it."""
        send, names = self._producer_send(), self._topic_names
        last: dict[tuple[int, int | None], tuple[Any, Any]] = {}
        for topic, key, value, *where in outbox:
            name = names.get(id(topic))
            if name is None:
                name = names[id(topic)] = topic.get_topic_name()
            partition = where[0] if where else None
            fut = await send(name, value, key=key, partition=partition)
            fut.add_done_callback(self._delivered)  # type: ignore[attr-defined]
            if len(where) > 1 and self._persists:
                last[(id(where[1]), partition)] = (where[1], fut)
        for table, fut in last.values():
            fut.add_done_callback(functools.partial(self._persisted, table))

    def _producer_send(self) -> Any:
        """aiokafka's ``send(topic, value, key=, partition=)``: the producer Faust
        started, called without Faust's wrapper (its produce signal and transaction
        checks, ~3 µs a message); through the wrapper on another transport."""
        faust_producer = self.app.producer
        try:
            return faust_producer._ensure_producer().send
        except AttributeError:
            return lambda topic, value, key, partition: faust_producer.send(
                topic, key, value, partition, None, None
            )

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

    def _handle(
        self, key: bytes, partition: int, doc: dict[str, Any], event: Event | None = None
    ) -> Outbox:
        """One message for a customer on ``partition``: an event (decoded here, or
        ``event`` on the direct path), a tick, feedback, a merge step or an expiry check."""
        out: Outbox = []
        state = self.states.get(key)
        if "merge_into" in doc or "absorb" in doc:
            self._stitch(key, partition, doc, state, out)
        elif "expire" in doc:  # checked again here: an event may have come since
            if state is not None and expired(state, doc["expire"], self.settings.state_retention_s):
                self._forget(key, partition, state, out)
                self.metrics.expired.inc()
        elif "tick" in doc:
            if state is not None:
                self._tick(key, partition, doc, state, out)
        elif "feedback" in doc:
            joined = self.journeys.feedback(state, doc["feedback"])
            if isinstance(joined, Rejected):
                raw, src = orjson.dumps(doc["feedback"]), tuple(doc["src"])
                out.append(self._dead_msg(key, raw, joined, src, time.time()))  # type: ignore[arg-type]
            else:
                self._commit(key, partition, joined, doc["received_at"], time.time(), out)
        else:
            event = event or Event.from_dict(doc["event"])
            decision = self._on_event(key, partition, doc, event, state, out)
            if decision is not None:
                self._commit(key, partition, decision, doc["received_at"], event.event_time, out)
        return out

    def _tick(
        self, key: bytes, partition: int, doc: dict[str, Any], state: CustomerState, out: Outbox
    ) -> None:
        now = doc["tick"]
        labelled, examples = label_timeout(state, now, self.label_cfg)
        self._examples(examples, out)
        decision = decide(
            labelled, now, Trigger("timer"), None, self.journeys.inputs(labelled, now)
        )
        if decision.action is None and not examples and not decision.outcomes:
            self.due.set(key, self._due(state, now))
        else:
            self._commit(key, partition, decision, doc["received_at"], now, out)

    def _stitch(
        self,
        key: bytes,
        partition: int,
        doc: dict[str, Any],
        state: CustomerState | None,
        out: Outbox,
    ) -> None:
        """Move an anonymous state to its customer (two steps, each on its own partition)."""
        if "merge_into" in doc:  # on the anonymous id's partition
            if state is not None:
                self.states.delete(key, partition)
                self.due.set(key, None)
            moved = {
                "absorb": state.to_dict() if state else None,
                "from": key.decode(),
                "received_at": doc["received_at"],
            }
            out.append((self.customer_events, doc["merge_into"].encode(), orjson.dumps(moved)))
            return
        anon = CustomerState.from_dict(doc["absorb"]) if doc["absorb"] else None
        merged = merge(state, anon, doc["from"], key.decode(), time.time(), self.state_cfg)
        if merged is not state:
            self.metrics.merges.inc()
            self._commit(key, partition, Decision(merged), doc["received_at"], None, out)

    def _on_event(
        self,
        key: bytes,
        partition: int,
        doc: dict[str, Any],
        event: Event,
        state: CustomerState | None,
        out: Outbox,
    ) -> Decision | None:
        if event.event_type == ERASE:
            self._erase(key, partition, event, state, out)
            return None
        applied = apply(state, event, self.state_cfg)
        if applied.duplicate:
            why = Rejected("duplicate", "event_id already applied to this customer", event.event_id)
            src = tuple(doc["src"])
            raw = orjson.dumps(doc.get("event") or event.to_dict())  # as validated
            out.append(self._dead_msg(key, raw, why, src, time.time()))  # type: ignore[arg-type]
            # Write the unchanged state again. After a crash, Faust's RocksDB store can
            # hold a value whose changelog record was never acknowledged; the event is
            # then redelivered and found duplicate, and without this write the changelog
            # (what any other worker recovers from) would stay one update behind.
            return Decision(applied.state)
        self._events(event.event_type).inc()
        labelled, examples = label_event(state, applied.state, event, self.label_cfg)
        self._examples(examples, out)
        trigger, now = Trigger("event", event.event_id), event.event_time
        return decide(labelled, now, trigger, event, self.journeys.inputs(labelled, now))

    def _volume_share(self) -> float:
        """This worker's share of a global hourly limit: the share of partitions it owns."""
        count = self.app.rebalancing_count
        if self._share[0] != count:
            topic = self.customer_events.get_topic_name()
            mine = sum(1 for tp in self.app.assignor.assigned_actives() if tp.topic == topic)
            self._share = (count, max(1, mine) / self.settings.partitions)
        return self._share[1]

    def _due(self, state: CustomerState, now: float) -> float | None:
        """When the timer must look at this customer: a decision or a label falls due."""
        pb = self.playbooks.current
        dues = [d for d in (due_at(state, pb, now), label_due(state, self.label_cfg)) if d]
        return min(dues) if dues else None

    def _examples(self, examples: list[Example], out: Outbox) -> None:
        for ex in examples:  # keyed by intent: one partition, so one learner, per intent
            out.append((self.examples, ex.intent.encode(), orjson.dumps(ex.to_dict())))

    def _erase(
        self, key: bytes, partition: int, event: Event, state: CustomerState | None, out: Outbox
    ) -> None:
        """Delete the customer and their identity links (tombstones reach the changelogs),
        then confirm on the audit topic."""
        if state is not None:
            self._forget(key, partition, state, out)
        record = erasure_record(
            event, time.time(), state is not None, unlinked=state.merged_from if state else ()
        )
        out.append((self.audit, key, orjson.dumps(record)))
        self._events(event.event_type).inc()
        self.metrics.erasures.inc()

    def _forget(self, key: bytes, partition: int, state: CustomerState, out: Outbox) -> None:
        """Delete the customer's state and identity links (tombstones on both changelogs)."""
        self.states.delete(key, partition)
        self.due.set(key, None)
        for anon in state.merged_from:
            out.append((self.identity_events, anon.encode(), orjson.dumps({"unlink": True})))

    def _commit(
        self,
        key: bytes,
        partition: int,
        decision: Decision,
        received_at: float,
        now: float | None,
        out: Outbox,
    ) -> None:
        """Write the state once, queue the action (if any) and examples, reschedule."""
        self.states.put(key, partition, decision.state)
        action = decision.action
        if action is not None:
            topic = self.actions if action.group == "treatment" else self.holdout
            out.append((topic, key, orjson.dumps(action.to_dict())))
            if action.group == "treatment":  # held-out decisions are not actions sent
                self._actions(action.action).inc()
            self.metrics.decision_latency.observe(max(0.0, time.time() - received_at))
            self.journeys.sent(action)
        for ex in self.journeys.outcomes(decision.outcomes):
            out.append((self.examples, b"response", ex))
        self.due.set(key, self._due(decision.state, time.time() if now is None else now))

    # -- timer ------------------------------------------------------------------------------
    async def _sweep(self) -> None:
        now, app = time.time(), self.app
        interval_passed = now - self._last_rescan >= self.settings.rescan_interval_s
        if not app.rebalancing and (interval_passed or self._scanned_at != app.rebalancing_count):
            self._scanned_at, self._last_rescan = app.rebalancing_count, now
            for key in await self._rescan(now):
                body = {"expire": now, "received_at": now}
                await self.customer_events.send(key=key, value=orjson.dumps(body))
        await self.learners.publish_due(now)
        for key in self.due.pop_due(now):
            body = {"tick": now, "received_at": now}
            await self.customer_events.send(key=key, value=orjson.dumps(body))

    async def _rescan(self, now: float) -> list[bytes]:
        """Rebuild the due list from the table (after each rebalance, which covers a
        restart) and return the customers idle past the retention, to expire.

        It reads the whole local table, so it yields to the event loop every few hundred
        customers and runs only after a rebalance or every ``rescan_interval_s``."""
        keys, idle = list(self.customers.keys()), []  # a snapshot: the agent writes meanwhile
        for i, key in enumerate(keys):
            if i % 500 == 499:
                await asyncio.sleep(0)
            state = self.states.peek(key)
            if state is not None:
                # customers seen in the last day get idle thresholds that passed while no
                # worker owned them checked once more; older ones only future ones
                since = state.last_seen if now - state.last_seen < 86400.0 else now
                self.due.set(key, self._due(state, since))
                if expired(state, now, self.settings.state_retention_s):
                    idle.append(key)
        self.metrics.customers.set(len(keys))
        return idle


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> Baton:
    """Build the worker's app from settings (nothing is started)."""
    return Baton(settings, registry)
