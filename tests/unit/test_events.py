"""Decoding at the edge: every bad kind gets its own reason; good events round-trip."""

from __future__ import annotations

import orjson
import pytest

from pipeline.events import REASONS, DecodeConfig, Decoder, Event, Rejected, parse_time
from pipeline.simulator import BAD_KINDS, bad_message

NOW = 1_800_000_000.0
DEC = Decoder(DecodeConfig())


def good(**kw: object) -> bytes:
    doc = {
        "event_id": "e1",
        "schema_version": 1,
        "event_type": "add_to_cart",
        "event_time": "2027-01-15T08:00:00Z",
        "customer_id": "c1",
        "properties": {"product_id": "p1", "price": 3.5, "quantity": 2},
    }
    doc.update(kw)
    return orjson.dumps({k: v for k, v in doc.items() if v is not None})


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_each_bad_kind_has_its_reason(kind: str) -> None:
    msg = bad_message(kind, NOW)
    out = DEC.decode(msg.value, NOW)
    assert isinstance(out, Rejected)
    assert out.reason == msg.expected_reason
    assert out.reason in REASONS and out.detail


def test_valid_event_round_trips() -> None:
    now = parse_time("2027-01-15T08:00:00Z")
    assert now is not None
    ev = DEC.decode(good(), now)
    assert isinstance(ev, Event)
    assert (ev.key, ev.event_type, ev.properties["quantity"]) == ("c1", "add_to_cart", 2)
    again = DEC.decode(orjson.dumps(ev.to_dict()), now)
    assert again == ev
    assert Event.from_dict(ev.to_dict()) == ev


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (good(schema_version=True), "unsupported_schema_version"),
        (good(schema_version="1"), "unsupported_schema_version"),
        (good(event_time="2027-01-15T08:00:00"), "bad_timestamp"),  # no zone
        (good(event_time="yesterday"), "bad_timestamp"),
        (good(event_time=1800000000), "bad_timestamp"),
        (good(event_id=""), "schema_violation"),
        (good(properties={"quantity": 0}), "schema_violation"),
        (b'{"event_id": NaN}', "non_finite_number"),
        (b'{"price": -Infinity}', "non_finite_number"),
        (b"", "empty"),
        (None, "null_value"),
        (b'{"a": ' * 9 + b"1" + b"}" * 9, "too_deep"),
        (b"\xc3\x28", "invalid_utf8"),
        (good(customer_id=""), "missing_identity"),
        (b'"just a string"', "not_an_object"),
    ],
)
def test_edge_cases(raw: bytes | None, reason: str) -> None:
    now = parse_time("2027-01-15T08:00:00Z") or 0.0
    out = DEC.decode(raw, now)
    assert isinstance(out, Rejected) and out.reason == reason, out


def test_size_limit_is_exact() -> None:
    dec = Decoder(DecodeConfig(max_bytes=len(good())))
    now = parse_time("2027-01-15T08:00:00Z") or 0.0
    assert isinstance(dec.decode(good(), now), Event)
    assert dec.decode(good() + b" ", now) == Rejected(
        "oversized", f"{len(good()) + 1} bytes > limit {len(good())}"
    )


def test_clock_bounds() -> None:
    cfg = DecodeConfig(max_future_s=60, max_lateness_s=3600)
    dec, t = Decoder(cfg), parse_time("2027-01-15T08:00:00Z") or 0.0
    assert isinstance(dec.decode(good(), t - 59), Event)
    assert dec.decode(good(), t - 61).reason == "future_timestamp"  # type: ignore[union-attr]
    assert isinstance(dec.decode(good(), t + 3599), Event)
    assert dec.decode(good(), t + 3601).reason == "too_late"  # type: ignore[union-attr]


def test_anonymous_only_event_is_keyed_by_its_anonymous_id() -> None:
    now = parse_time("2027-01-15T08:00:00Z") or 0.0
    ev = DEC.decode(good(customer_id=None, anonymous_id="cookie-1"), now)
    assert isinstance(ev, Event) and ev.key == "cookie-1"


def test_depth_limit_is_exact() -> None:
    now = parse_time("2027-01-15T08:00:00Z") or 0.0
    nested: object = 1
    for _ in range(7):  # the event object itself is level 1
        nested = {"x": nested}
    assert isinstance(DEC.decode(good(extra=nested), now), Event)
    assert DEC.decode(good(extra={"x": nested}), now).reason == "too_deep"  # type: ignore[union-attr]
