"""The composition root: the Faust app, its topics and tables, and the flows on them.

Five flows, each a small module (read, decode, step, send) over the runtime seam
(``agents.runtime``):

- ``ingest`` (``agents.ingest``) reads ``events.clickstream`` and ``events.service``;
- ``identify`` (``agents.identify``) reads ``identity-events`` with the ``identities``
  table;
- ``feedback`` (``agents.feedback``) reads channel feedback;
- ``decide`` (``agents.decide``) reads ``customer-events`` and steps the customer with
  the pure core (``pipeline.step``);
- ``learn`` (``agents.learning``) turns labelled examples into signed model snapshots.

A timer (``agents.sweep``) sends ticks for customers with something due. The runtime
(``agents.runtime.kafka``) batches the hot flows, holds acknowledgements until the state
changelog is sent, repairs source gaps and stalls. Nothing here starts anything or
patches Faust: the worker command does (``agents.cli``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from agents.decide import Decider
from agents.feedback import Feedback
from agents.identify import Identify
from agents.ingest import Ingest
from agents.learning import Learners
from agents.metrics import Metrics
from agents.models import ModelRegistry
from agents.outbox import Outbox, Recorder
from agents.playbooks import PlaybookRegistry
from agents.runtime import Partitioner
from agents.runtime.kafka import KafkaRuntime
from agents.settings import Settings
from agents.sweep import Sweep
from agents.web import DueList, Readiness, add_pages
from pipeline.events import Decoder

__all__ = ["Baton", "create_app"]

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


def _faust_app(s: Settings) -> faust.App:
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
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
        producer_max_batch_size=s.producer_batch_bytes,
        producer_max_request_size=max(1048576, 8 * s.producer_batch_bytes),
        producer_compression_type=None
        if s.producer_compression == "none"
        else s.producer_compression,
        broker_session_timeout=s.session_timeout_s,
        table_standby_replicas=s.standby_replicas,
        # room for whole fetches: a fetch that finds a stream's buffer full takes
        # Faust's per-message wait path (a task and a wait for each message)
        stream_buffer_maxsize=s.stream_buffer,
    )


class Baton:
    """The worker's Faust app with its topics, tables, flows and metrics."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        s = self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = m = Metrics.create(self.registry)
        dev = s.dev_keys()
        if "BATON_PII_HASH_KEY" in dev:
            log.warning("BATON_PII_HASH_KEY is not set: e-mail/phone hashes use the default key")
        if "BATON_MODEL_SIGNING_KEY" in dev:
            log.warning("BATON_MODEL_SIGNING_KEY is not set: model snapshots use the default key")
        self.app = _faust_app(s)
        self._declare_topics()
        record = Recorder(m, s.stage_sample, s.deadletter_raw)
        self.runtime = rt = KafkaRuntime(self.app, s, record, self.customers, self.progress)
        self.states, self.held, self.stalls = rt.states, rt.held, rt.stalls
        self.models = ModelRegistry(s, m)
        self.playbooks = PlaybookRegistry(s, m)
        self.due = DueList()
        self.decider = Decider(
            rt.states, self.due, m, record, self.models, self.playbooks, rt.share, s.step_config()
        )
        decoder = Decoder(s.decode_config())
        parts = Partitioner(s.partitions)
        self.ingest = Ingest(decoder, record, self.decider, rt.tracked, parts, keyless=s.keyless)
        self.identify = Identify(self.identities, record, m)
        self.feedback_flow = Feedback(decoder, record)
        self.sweep = Sweep(
            rt.states, self.due, self.decider, m, s.state_retention_s, s.rescan_interval_s
        )
        self.learners = Learners(s, m, self.models, self.models_topic)
        self._declare_flows()

    def _declare_topics(self) -> None:
        s, app = self.settings, self.app
        self.sources = app.topic(s.topic("events.clickstream"), s.topic("events.service"))
        self.customer_events = app.topic(s.topic("customer-events"), partitions=s.partitions)
        self.identity_events = app.topic(s.topic("identity-events"), partitions=s.partitions)
        self.feedback = app.topic(s.topic("feedback"))
        self.examples = app.topic(s.topic("training-examples"))
        self.models_topic = app.topic(s.topic("models"))
        # key_type/value_type=bytes select Faust's raw codec for a table. Without them
        # Faust writes our bytes but decodes the changelog as JSON on recovery, and the
        # recovered table silently misses every customer (found by test_recovery).
        raw: dict[str, Any] = {"default": None, "partitions": s.partitions}
        raw |= {"key_type": bytes, "value_type": bytes}
        self.identities = app.Table("identities", **raw, options=self._store_options())
        self.customers = app.Table("customers", **raw, options=self._store_options())
        # per source partition: the next offset
        self.progress = app.Table("progress", **raw, options=self._store_options())

    def _store_options(self) -> dict[str, Any] | None:
        """RocksDB's memory per table partition, bounded (a fresh dict per table: Faust's
        store pops keys from the one it is given)."""
        s = self.settings
        if s.store != "rocksdb":
            return None
        return {
            "block_cache_size": s.rocksdb_block_cache_mb * 2**20,
            "write_buffer_size": s.rocksdb_write_buffer_mb * 2**20,
            "max_write_buffer_number": 2,
        }

    def _declare_flows(self) -> None:
        s, app, rt = self.settings, self.app, self.runtime
        app.agent(self.sources, name="ingest")(self._ingest)
        app.agent(self.identity_events, name="identify")(self._identify)
        app.agent(self.feedback, name="feedback")(self._feedback)
        app.agent(self.customer_events, name="decide")(self._decide)
        app.agent(self.examples, name="learn")(self.learners.agent)
        app.timer(s.timer_interval_s)(self._sweep)
        app.task(rt.keep_changelog)
        app.timer(max(0.5, s.stall_after_s / 4))(rt.check_stalls)
        app.task(self.models.follow)
        app.task(self.playbooks.follow)
        app.timer(5.0)(self._observe)
        self.readiness = Readiness(app, {"playbook": self.playbooks, "models": self.models})
        add_pages(app, self.registry, self.readiness, self.metrics.ready)

    async def _ingest(self, stream: faust.StreamT[bytes]) -> None:
        await self.runtime.batches(stream, self.ingest.one, "ingest")

    async def _decide(self, stream: faust.StreamT[bytes]) -> None:
        await self.runtime.batches(stream, self.decider.one, "decide")

    async def _identify(self, stream: faust.StreamT[bytes]) -> None:
        await self._each(stream, self.identify.one)

    async def _feedback(self, stream: faust.StreamT[bytes]) -> None:
        await self._each(stream, self.feedback_flow.one)

    async def _each(self, stream: faust.StreamT[bytes], one: Any) -> None:
        async for ev in stream.events():
            out: Outbox = []
            one(ev, out)
            await self.runtime.send(out)

    async def _observe(self) -> None:
        await self.runtime.observe()
        self.metrics.ready.set(0 if self.readiness.problems() else 1)

    async def _sweep(self) -> None:
        app, now = self.app, time.time()
        await self.sweep.run(self.runtime.send, app.rebalancing, app.rebalancing_count, now)
        await self.learners.publish_due(now)


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> Baton:
    """Build the worker's app from settings (nothing is started, nothing patched)."""
    return Baton(settings, registry)
