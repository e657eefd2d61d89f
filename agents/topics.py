"""Every Baton topic, with its partitions, retention and cleanup policy, and their creation.

Names are ``<prefix><name>`` (default prefix ``baton.``). Topics keyed by customer share
one partition count (STYLE 4) so state, its changelog and its inputs stay co-partitioned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)

from agents.settings import Settings

__all__ = ["TOPICS", "AccessRefused", "TopicSpec", "check_access", "create_topics", "follow"]

DAY_MS = 86_400_000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    cleanup: str = "delete"
    retention_ms: int = 7 * DAY_MS

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup}
        if self.cleanup == "delete":
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("events.clickstream", "web/app events in (schemas/event.v1.json)"),
    TopicSpec("events.service", "service-system events in (schemas/event.v1.json)"),
    TopicSpec(
        "events.deadletter",
        "rejected input with reason and raw bytes (deadletter.v1)",
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        "customer-events", "internal: validated events re-keyed by customer", retention_ms=DAY_MS
    ),
    TopicSpec(
        "identity-events", "internal: events with an anonymous id, keyed by it", retention_ms=DAY_MS
    ),
    TopicSpec("actions", "next-best actions out, keyed by customer (action.v1)"),
    TopicSpec("holdout", "control-group decisions, recorded for lift, never sent (action.v1)"),
    TopicSpec("feedback", "channel responses in: impression, click, accept, dismiss, convert"),
    TopicSpec("training-examples", "internal: labelled feature snapshots for learning"),
    TopicSpec(
        "audit", "privacy audit trail: erasure confirmations (audit.v1)", retention_ms=400 * DAY_MS
    ),
    TopicSpec("models", "model snapshots, newest per model", cleanup="compact"),
    TopicSpec("playbook", "playbook versions, newest wins", cleanup="compact"),
)


async def create_topics(
    settings: Settings, admin_kwargs: dict[str, Any] | None = None, retry_for_s: float = 60.0
) -> list[str]:
    """Create every topic that does not exist yet; returns the names created.

    Retriable errors (a broker still starting, a leader moving) are retried with backoff
    for ``retry_for_s`` seconds before giving up, so a worker that starts with its
    cluster does not crash on the first refused request."""
    deadline, delay = time.monotonic() + retry_for_s, 0.5
    while True:
        try:
            return await _create(settings, admin_kwargs or {})
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or time.monotonic() + delay > deadline:
                raise
            log.warning("creating topics failed (%r); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _create(settings: Settings, admin_kwargs: dict[str, Any]) -> list[str]:
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), **admin_kwargs)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                settings.topic(t.name),
                settings.partitions,
                settings.replication_factor,
                topic_configs=t.config(),
            )
            for t in TOPICS
            if settings.topic(t.name) not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # raced another creator: fine
                await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


class AccessRefused(Exception):
    """Kafka refused this worker's credentials or its TLS certificate: no retry helps.
    Check BATON_SASL_USERNAME, BATON_SASL_PASSWORD, BATON_SASL_MECHANISM and
    BATON_SSL_CAFILE (docs/operations.md)."""


async def check_access(settings: Settings, timeout_s: float = 10.0) -> None:
    """Connect once to the first bootstrap broker that answers, with the configured
    security; a refused authentication or an untrusted certificate raises
    ``AccessRefused`` at once. aiokafka logs those as a connection error and retries
    them, so a wrong password would otherwise look like a broker that is down for as
    long as the clients retry. Anything else is left to those retries."""
    kw = settings.client_kwargs()
    for hostport in settings.kafka_bootstrap.split(","):
        host, _, port = hostport.strip().rpartition(":")
        try:
            conn = await create_conn(
                host,
                int(port),
                request_timeout_ms=int(timeout_s * 1000),
                ssl_context=kw.get("ssl_context"),
                security_protocol=settings.security_protocol,
                sasl_mechanism=kw.get("sasl_mechanism", "PLAIN"),
                sasl_plain_username=kw.get("sasl_plain_username"),
                sasl_plain_password=kw.get("sasl_plain_password"),
            )
        except _REFUSED as exc:
            raise AccessRefused(f"{hostport.strip()}: {exc!r}") from None
        except (TimeoutError, OSError, KafkaError, ValueError):
            continue
        conn.close()
        return


_REFUSED = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    UnsupportedSaslMechanismError,
    ssl.SSLCertVerificationError,
)


async def follow(
    settings: Settings,
    name: str,
    on_message: Callable[[bytes | None, float], object],
    on_caught_up: Callable[[], object] = lambda: None,
) -> None:
    """Read a (compacted) topic from the beginning, forever, without a consumer group:
    every worker gets every partition. For the models and playbook registries:
    ``on_message(value, record timestamp in seconds)`` for each message;
    ``on_caught_up()`` is called once, when every partition has been read to the end it
    had (a worker is not ready before: it would decide with an old playbook)."""
    consumer = AIOKafkaConsumer(
        settings.topic(name),
        **settings.client_kwargs(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        metadata_max_age_ms=5000,
    )
    await consumer.start()
    caught_up = False
    try:
        while True:
            for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                for msg in msgs:
                    on_message(msg.value, msg.timestamp / 1000)
            if not caught_up and await _at_end(consumer):
                caught_up = True
                on_caught_up()
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer) -> bool:
    parts = consumer.assignment()
    for tp in parts:
        end = consumer.highwater(tp)
        if end is None or await consumer.position(tp) < end:
            return False
    return bool(parts)
