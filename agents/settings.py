"""One settings object for the worker and the CLI, read once from ``BATON_*`` variables.

Every field below is an environment variable: ``kafka_bootstrap`` is read from
``BATON_KAFKA_BOOTSTRAP``, and so on. Nothing is read at import time; call ``Settings()``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.events import DecodeConfig
from pipeline.labels import LabelConfig
from pipeline.playbook import DEFAULT_PATH, Playbook, load_file
from pipeline.state import StateConfig
from pipeline.step import StepConfig

__all__ = ["Settings"]


_BATCH = (
    "the ingest and decide agents take up to this many events, waiting at most this long for "
    "more (the wait adds to latency only when traffic is light); each event is still decided "
    "on its own and in order"
)


class Settings(BaseSettings):
    """Baton configuration (env prefix ``BATON_``); see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="BATON_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="comma-separated bootstrap servers"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`"
    )
    sasl_username: str | None = Field(
        default=None, description="SASL credentials (the password is a secret type, never logged)"
    )
    sasl_password: SecretStr | None = Field(
        default=None, description="SASL credentials (the password is a secret type, never logged)"
    )
    ssl_cafile: Path | None = Field(default=None, description="TLS trust and client certificate")
    ssl_certfile: Path | None = Field(default=None, description="TLS trust and client certificate")
    ssl_keyfile: Path | None = Field(default=None, description="TLS trust and client certificate")

    topic_prefix: str = Field(
        default="baton.",
        description="prefix of every topic, of the consumer group and of changelog topics",
    )
    partitions: int = Field(
        default=4, description="partitions of every Baton topic (all co-partitioned by customer)"
    )
    replication_factor: int = Field(
        default=1, description="replication factor for topics Baton creates"
    )
    app_id: str = Field(
        default="worker", description="Faust app id; the group is `<prefix><app_id>`"
    )

    store: Literal["memory", "rocksdb"] = Field(
        default="memory",
        description=(
            "table store: `memory` (state rebuilt from the changelog at start) or `rocksdb` "
            "(local RocksDB files under `BATON_DATA_DIR`, through `rocksdict`; only the "
            "changelog's tail is read at start)"
        ),
    )
    data_dir: Path = Field(default=Path("data"), description="local state directory")
    web_host: str = Field(
        default="127.0.0.1", description="where `/metrics` and `/health` are served"
    )
    web_port: int = Field(default=6066, description="where `/metrics` and `/health` are served")

    max_event_bytes: int = Field(
        default=64 * 1024, description="larger messages are dead-lettered as `oversized`"
    )
    max_future_s: float = Field(
        default=600.0, description="events further ahead of the worker clock: `future_timestamp`"
    )
    max_lateness_s: float = Field(
        default=7 * 86400.0, description="events older than this: `too_late`"
    )
    session_gap_s: float = Field(default=1800.0, description="inactivity that ends a session")
    playbook_file: Path | None = Field(
        default=None,
        description="the playbook a worker starts with, until one arrives on the `playbook` topic",
    )
    playbook_params: dict[str, float] = Field(
        default={},
        description=(
            "JSON object overriding the playbook's `parameters` in every playbook this worker "
            "loads (demos and tests shorten idle thresholds with it; the override is part of the "
            "version hash)"
        ),
    )
    timer_interval_s: float = Field(
        default=5.0,
        description="how often the worker looks for decisions that fell due without an event",
    )
    fetch_wait_s: float = Field(
        default=0.025,
        ge=0,
        description=(
            "how long the broker may hold a fetch for more records (64 KB or a backlog is sent at"
            " once): at 25 ms a worker paced at 1,000 events/s used ~35 % less CPU per event for "
            "~15 ms more median latency; 0 answers with the first record (Faust's way)"
        ),
    )
    batch_max: int = Field(
        default=500,
        description=_BATCH,
    )
    batch_within_s: float = Field(
        default=0.005,
        description=_BATCH,
    )
    stream_buffer: int = Field(
        default=20_000,
        description=(
            "events each agent's stream may hold fetched and not yet processed (Faust's "
            "`stream_buffer_maxsize`, 4,096 by default; fetching pauses at 80 %). A fetch that "
            "finds the buffer full takes Faust's per-message wait path (a task and a wait for "
            "each message): with 4,096, a worker draining a backlog on 4 partitions spent ~10 µs "
            "more per event there and reached ~15 % fewer events/s. Costs up to about 1-2 KB per "
            "buffered event"
        ),
    )
    changelog_interval_s: float = Field(
        default=2.0,
        description=(
            "how often the state changelog is sent: each customer written since the last flush "
            "gets one record with their newest state, and the events are acknowledged (so "
            "committed) only after it (see How it works). Longer coalesces more (on evenly spread"
            " traffic, 5,000 customers at ~6,000 events/s: 0.34 records per event at 2 s, ~1 per "
            "event when sent per batch); after a crash the events since the last flush and commit"
            " are processed again"
        ),
    )
    standby_replicas: int = Field(
        default=1,
        ge=0,
        description=(
            "standby copies of each table partition kept by other workers (Faust's "
            "`table_standby_replicas`): a worker that takes a partition over from a dead "
            "one then replays only the changelog's tail, not all of it"
        ),
    )
    stall_after_s: float = Field(
        default=10.0,
        description=(
            "a source partition with messages past its committed offset, nothing of it in flight "
            "and no movement for this long is read again from its committed offset, logged and "
            "counted (`baton_stalled_partitions_total`, see [Rebalancing](#rebalancing))"
        ),
    )
    stage_sample: int = Field(
        default=16,
        ge=1,
        description=(
            "one message in this many is timed stage by stage (`baton_stage_seconds`: decode, "
            "state, decide); 1 times every message (about 2 µs more per message)"
        ),
    )
    state_cache: int = Field(
        default=5_000,
        description=(
            "decoded customer states kept in memory, the customers most recently read or "
            "written; the rest are held as their JSON (about a quarter of the size) and decoded"
            " on their next event (~25-35 µs of CPU). A decoded state takes about 9 KB, so "
            "5,000 is about 45 MB. With `rocksdb` the decoded copy is checked against the "
            "stored bytes on each read; 0 keeps none there (the `memory` store keeps at least 1)"
        ),
    )
    rocksdb_block_cache_mb: int = Field(
        default=32,
        ge=1,
        description=(
            "with `BATON_STORE=rocksdb`: RocksDB's block cache per table partition, in MiB "
            "(Faust's default is 2 GiB each, so a worker's memory grew with its state)"
        ),
    )
    rocksdb_write_buffer_mb: int = Field(
        default=16,
        ge=1,
        description=(
            "with `BATON_STORE=rocksdb`: the size of each of RocksDB's two write buffers "
            "(memtables) per table partition, in MiB (Faust's default is three of 64 MiB)"
        ),
    )
    gc_thresholds: tuple[int, int, int] = Field(
        default=(10_000, 50, 100),
        description=(
            "the worker's cyclic garbage collector thresholds (`gc.set_threshold`; Python's are "
            "`[700, 10, 10]`). With Python's, full collections over a heap of customer states "
            "cost ~25 µs of CPU per event on evenly spread traffic (`agents/heap.py`)"
        ),
    )
    gc_freeze: bool = Field(
        default=True,
        description="move all built before the worker starts out of the GC's scans (`gc.freeze`)",
    )
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="none",
        description=(
            "compression of the record batches the worker produces (actions, changelogs, "
            "internal topics); every codec is always consumed"
        ),
    )
    producer_batch_bytes: int = Field(
        default=16384,
        description="largest record batch the producer builds per partition (bytes)",
    )
    producer_linger_s: float = Field(
        default=0.0,
        description=(
            "the producer's linger (Faust's `producer_linger`). Leave it at 0: at 5 ms, a worker "
            "fed 1,500 events/s fell behind (p50 1.2 s), its CPU per event barely moved"
        ),
    )
    session_timeout_s: float = Field(
        default=60.0,
        description="consumer-group session timeout: how soon a dead worker's partitions move",
    )
    rescan_interval_s: float = Field(
        default=3600.0,
        description=(
            "how often (besides after each rebalance) the worker scans its table to rebuild the "
            "timer's due list and find idle customers"
        ),
    )
    pending_points: int = Field(
        default=5, description="prediction points per session kept for their purchase label"
    )
    support_horizon_s: float = Field(
        default=7 * 86400.0, description="horizons of the support and churn labels"
    )
    churn_horizon_s: float = Field(
        default=30 * 86400.0, description="horizons of the support and churn labels"
    )
    snapshot_every: int = Field(
        default=1000,
        description=(
            "the learner publishes a model snapshot after this many examples, or this many "
            "seconds if it learned anything"
        ),
    )
    snapshot_interval_s: float = Field(
        default=60.0,
        description=(
            "the learner publishes a model snapshot after this many examples, or this many "
            "seconds if it learned anything"
        ),
    )
    state_retention_s: float = Field(
        default=400 * 86400.0,
        description=(
            "customers idle longer than this (by event time) are deleted from state, identity "
            "links included"
        ),
    )
    log_level: str = Field(default="info", description="worker log level")
    pii_hash_key: SecretStr = Field(
        default=SecretStr("baton-development-key"),
        description=(
            "secret key of the HMAC that replaces e-mail addresses and phone numbers in state; "
            "set your own in production and keep it stable"
        ),
    )
    deadletter_raw: Literal["redacted", "full", "none"] = Field(
        default="redacted",
        description=(
            "what a dead letter keeps of the rejected message's bytes: `redacted` (e-mail "
            "addresses and the `email` and `phone` fields replaced by `[redacted]`), `full` "
            "or `none`"
        ),
    )
    model_signing_key: SecretStr = Field(
        default=SecretStr("baton-development-model-key"),
        description="HMAC key that model snapshots on the `models` topic must be signed with",
    )

    processing_guarantee: Literal["at_least_once"] = Field(
        default="at_least_once",
        description=(
            "`at_least_once` only: after a crash, events since the last changelog flush are "
            "processed again (ignored by the reducers; a decision sent again keeps its id). "
            "`exactly_once` is refused, not ignored (docs/adr/0005-no-exactly-once.md)"
        ),
    )

    @field_validator("processing_guarantee", mode="before")
    @classmethod
    def _at_least_once(cls, value: object) -> object:
        if value != "at_least_once":
            raise ValueError(
                f"{value!r} is not offered: Baton is at_least_once, with idempotent state "
                "and decision ids (docs/adr/0005-no-exactly-once.md)"
            )
        return value

    keyless: Literal["deadletter", "route"] = Field(
        default="deadletter",
        description=(
            "an event record without a key: `deadletter` (reason `missing_key`; keyed "
            "processing needs the customer id as the key, as Kafka Streams drops such "
            "records) or `route` (re-keyed by the body's `customer_id` through "
            "`customer-events`, for producers that cannot set a key)"
        ),
    )
    playbook_signing_key: SecretStr = Field(
        default=SecretStr("baton-development-playbook-key"),
        description=(
            "HMAC key that playbooks on the `playbook` topic must be signed with (`baton "
            "playbook publish` signs with it); an unsigned or tampered one is refused"
        ),
    )
    allow_dev_keys: bool = Field(
        default=False,
        description=(
            "let `baton worker` start with the built-in development values of "
            "`BATON_PII_HASH_KEY`, `BATON_MODEL_SIGNING_KEY` or `BATON_PLAYBOOK_SIGNING_KEY` "
            "(the demo, the tests and the "
            "quickstart set it); without it a worker with either refuses to start (exit 2)"
        ),
    )

    def dev_keys(self) -> list[str]:
        """The secret settings still at their built-in development values."""
        fields = type(self).model_fields
        return [
            f"BATON_{name.upper()}"
            for name in ("pii_hash_key", "model_signing_key", "playbook_signing_key")
            if getattr(self, name).get_secret_value() == fields[name].default.get_secret_value()
        ]

    def topic(self, name: str) -> str:
        """Full topic name for a logical name, e.g. ``actions`` -> ``baton.actions``."""
        return f"{self.topic_prefix}{name}"

    @property
    def group_id(self) -> str:
        """Faust application id: consumer group and prefix of changelog topics."""
        return f"{self.topic_prefix}{self.app_id}"

    def decode_config(self) -> DecodeConfig:
        key = self.pii_hash_key.get_secret_value().encode()
        s = self
        return DecodeConfig(s.max_event_bytes, s.max_future_s, s.max_lateness_s, pii_key=key)

    def state_config(self) -> StateConfig:
        key = self.pii_hash_key.get_secret_value().encode()
        return StateConfig(session_gap_s=self.session_gap_s, pii_key=key)

    def label_config(self) -> LabelConfig:
        return LabelConfig(
            self.session_gap_s,
            self.pending_points,
            support_horizon_s=self.support_horizon_s,
            churn_horizon_s=self.churn_horizon_s,
        )

    def step_config(self) -> StepConfig:
        """The settings of the pure per-customer step."""
        return StepConfig(self.state_config(), self.label_config(), self.state_retention_s)

    def playbook(self) -> Playbook:
        """The playbook a worker starts with (until one arrives on the playbook topic)."""
        return load_file(self.playbook_file or DEFAULT_PATH, self.playbook_params)

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS context for SSL and SASL_SSL, from the CA and client files if given."""
        if not self.security_protocol.endswith("SSL"):
            return None
        ctx = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        if self.ssl_certfile:
            ctx.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return ctx

    def client_kwargs(self) -> dict[str, object]:
        """Connection settings for aiokafka clients (producer, consumer, admin)."""
        kw: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "security_protocol": self.security_protocol,
        }
        ctx = self.ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        if self.security_protocol.startswith("SASL"):
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return kw
