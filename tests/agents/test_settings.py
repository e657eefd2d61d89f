"""Settings: read from BATON_* once, secrets stay secret, TLS/SASL reach the clients."""

from __future__ import annotations

import ssl

import faust
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from agents.app import _credentials, create_app
from agents.settings import Settings


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_KAFKA_BOOTSTRAP", "k1:9093,k2:9093")
    monkeypatch.setenv("BATON_TOPIC_PREFIX", "acme.")
    monkeypatch.setenv("BATON_PARTITIONS", "12")
    s = Settings()
    assert (s.kafka_bootstrap, s.partitions, s.topic("actions")) == (
        "k1:9093,k2:9093",
        12,
        "acme.actions",
    )
    assert s.group_id == "acme.worker"
    with pytest.raises(ValidationError):
        s.partitions = 3  # type: ignore[misc]  # frozen


def test_sasl_ssl_settings_reach_aiokafka_and_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("BATON_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("BATON_SASL_USERNAME", "baton")
    monkeypatch.setenv("BATON_SASL_PASSWORD", "s3cret")
    s = Settings()
    assert "s3cret" not in repr(s)
    kw = s.client_kwargs()
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_password"] == "s3cret"
    assert isinstance(kw["ssl_context"], ssl.SSLContext)
    creds = _credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.username == "baton" and creds.ssl_context is not None


def test_plaintext_has_no_credentials() -> None:
    s = Settings(kafka_bootstrap="h:1")
    assert _credentials(s) is None and "ssl_context" not in s.client_kwargs()


def test_app_declares_co_partitioned_topics_and_table(tmp_path) -> None:
    s = Settings(
        kafka_bootstrap="h1:9092,h2:9092", topic_prefix="x.", partitions=6, data_dir=tmp_path
    )
    baton = create_app(s, CollectorRegistry())
    assert baton.customers.partitions == 6
    assert baton.customer_events.partitions == 6
    assert set(baton.sources.topics) == {"x.events.clickstream", "x.events.service"}
    assert [str(u) for u in baton.app.conf.broker] == ["kafka://h1:9092", "kafka://h2:9092"]
    assert baton.customers.key_serializer == "raw" and baton.customers.value_serializer == "raw"
    assert baton.app.conf.stream_buffer_maxsize == s.stream_buffer == 20_000
    assert baton.states.live, "the memory store holds decoded states"
    assert baton.held.interval == s.changelog_interval_s == 2.0
    assert baton.stalls.after_s == s.stall_after_s == 10.0
    assert baton.stalls.tracked("x.customer-events") and not baton.stalls.tracked("x.feedback")


def test_rocksdb_tables_hold_bytes_behind_a_cache(tmp_path) -> None:
    s = Settings(store="rocksdb", data_dir=tmp_path, state_cache=7)
    baton = create_app(s, CollectorRegistry())
    assert not baton.states.live and baton.states.cache_size == 7


def test_the_configuration_reference_is_generated_from_the_settings() -> None:
    from pathlib import Path

    from agents.cli import reference
    from agents.settings import Settings

    page = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert page.read_text() == reference(), "docs/configuration.md drifted: run `make docs`"
    for name in Settings.model_fields:
        assert f"`BATON_{name.upper()}`" in page.read_text()
        assert Settings.model_fields[name].description, f"{name} has no description"


def test_producer_compression_reaches_the_producer(tmp_path) -> None:
    s = Settings(data_dir=tmp_path, producer_compression="zstd")
    assert create_app(s, CollectorRegistry()).app.conf.producer_compression_type == "zstd"
    plain = create_app(Settings(data_dir=tmp_path), CollectorRegistry())
    assert plain.app.conf.producer_compression_type is None


def test_exactly_once_is_refused_not_ignored() -> None:
    """docs/adr/0005: the runtime's sends bypass Faust's transactions, so the setting
    must not pretend; at_least_once is the one value."""
    import pydantic

    from agents.settings import Settings

    assert Settings().processing_guarantee == "at_least_once"
    try:
        Settings(processing_guarantee="exactly_once")
    except pydantic.ValidationError as exc:
        assert "docs/adr/0005-no-exactly-once.md" in str(exc)
    else:
        raise AssertionError("exactly_once was accepted")
