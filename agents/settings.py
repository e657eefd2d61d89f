"""One settings object for the worker and the CLI, read once from ``BATON_*`` variables.

Every field below is an environment variable: ``kafka_bootstrap`` is read from
``BATON_KAFKA_BOOTSTRAP``, and so on. Nothing is read at import time; call ``Settings()``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.events import DecodeConfig
from pipeline.labels import LabelConfig
from pipeline.playbook import DEFAULT_PATH, Playbook, load_file
from pipeline.state import StateConfig

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Baton configuration (env prefix ``BATON_``); see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="BATON_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    topic_prefix: str = "baton."
    partitions: int = 4
    replication_factor: int = 1
    app_id: str = "worker"

    store: Literal["memory", "rocksdb"] = "memory"
    data_dir: Path = Path("data")
    web_host: str = "127.0.0.1"
    web_port: int = 6066

    max_event_bytes: int = 64 * 1024
    max_future_s: float = 600.0
    max_lateness_s: float = 7 * 86400.0
    session_gap_s: float = 1800.0
    playbook_file: Path | None = None
    playbook_params: dict[str, float] = {}
    timer_interval_s: float = 5.0
    batch_max: int = 500
    batch_within_s: float = 0.005
    stream_buffer: int = 20_000
    changelog_interval_s: float = 2.0
    stall_after_s: float = 10.0
    state_cache: int = 2_000
    gc_thresholds: tuple[int, int, int] = (10_000, 50, 100)
    gc_freeze: bool = True
    producer_linger_s: float = 0.0
    session_timeout_s: float = 60.0
    rescan_interval_s: float = 3600.0
    pending_points: int = 5
    support_horizon_s: float = 7 * 86400.0
    churn_horizon_s: float = 30 * 86400.0
    snapshot_every: int = 1000
    snapshot_interval_s: float = 60.0
    state_retention_s: float = 400 * 86400.0
    log_level: str = "info"
    pii_hash_key: SecretStr = SecretStr("baton-development-key")
    model_signing_key: SecretStr = SecretStr("baton-development-model-key")

    def topic(self, name: str) -> str:
        """Full topic name for a logical name, e.g. ``actions`` -> ``baton.actions``."""
        return f"{self.topic_prefix}{name}"

    @property
    def group_id(self) -> str:
        """Faust application id: consumer group and prefix of changelog topics."""
        return f"{self.topic_prefix}{self.app_id}"

    def decode_config(self) -> DecodeConfig:
        return DecodeConfig(self.max_event_bytes, self.max_future_s, self.max_lateness_s)

    def state_config(self) -> StateConfig:
        key = self.pii_hash_key.get_secret_value().encode()
        return StateConfig(session_gap_s=self.session_gap_s, pii_key=key)

    @property
    def default_pii_key(self) -> bool:
        """True while the e-mail/phone hash key is the shipped default (set your own)."""
        return self.pii_hash_key.get_secret_value() == "baton-development-key"

    def label_config(self) -> LabelConfig:
        return LabelConfig(
            self.session_gap_s,
            self.pending_points,
            support_horizon_s=self.support_horizon_s,
            churn_horizon_s=self.churn_horizon_s,
        )

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
