"""Decoding and validation of incoming events: bytes in, an ``Event`` or a ``Rejected`` out.

Poison messages are data (STYLE 8): nothing here raises on bad input. Every rejection
carries a reason code from a closed set (``REASONS``), which becomes a metric label and
the ``reason`` field of the dead-letter envelope, and a detail string for humans. A valid
event's e-mail address and phone number leave the decoder as keyed hashes
(``pipeline.personal``).

    >>> dec = Decoder(DecodeConfig())
    >>> dec.decode(b"{nope", now=0.0).reason
    'malformed_json'
    >>> raw = b'{"event_id":"e1","schema_version":1,"event_type":"login",'
    >>> raw += b'"event_time":"1970-01-01T00:00:10Z","customer_id":"c1"}'
    >>> ev = dec.decode(raw, now=10.0)
    >>> (ev.event_type, ev.key, ev.event_time)
    ('login', 'c1', 10.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import jsonschema_rs
import orjson

import schemas
from pipeline.personal import pseudonymised, scrubbed

__all__ = [
    "REASONS",
    "DecodeConfig",
    "Decoder",
    "Event",
    "Feedback",
    "Rejected",
    "format_time",
    "parse_time",
]

REASONS: Final = (
    "null_value",
    "missing_key",
    "empty",
    "oversized",
    "invalid_utf8",
    "non_finite_number",
    "malformed_json",
    "too_deep",
    "not_an_object",
    "unsupported_schema_version",
    "unknown_event_type",
    "missing_identity",
    "identity_conflict",
    "schema_violation",
    "bad_timestamp",
    "too_late",
    "future_timestamp",
    "duplicate",
    "unknown_decision",
)

SUPPORTED_SCHEMA_VERSIONS: Final = frozenset({1})
_MAX_DETAIL: Final = 300


@dataclass(frozen=True, slots=True)
class DecodeConfig:
    """Limits applied at the edge.

    Attributes:
        max_bytes: larger messages are rejected before parsing (``oversized``).
        max_future_s: event times further ahead of the worker's clock are ``future_timestamp``.
        max_lateness_s: event times further behind are ``too_late``.
        max_depth: deeper nesting of objects and arrays is ``too_deep``.
        pii_key: the key of the hashes that replace e-mail addresses and phone numbers
            in a valid event (``pipeline.personal``).
    """

    max_bytes: int = 64 * 1024
    max_future_s: float = 600.0
    max_lateness_s: float = 7 * 86400.0
    max_depth: int = 8
    pii_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class Event:
    """A valid customer event. ``event_time`` is seconds since the epoch (UTC)."""

    event_id: str
    event_type: str
    event_time: float
    customer_id: str | None
    anonymous_id: str | None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The id that state is kept under (identity stitching comes later)."""
        return self.customer_id or self.anonymous_id or ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        """Rebuild from ``to_dict`` output (already validated upstream; internal topics only)."""
        return cls(
            event_id=d["event_id"],
            event_type=d["event_type"],
            event_time=parse_time(d["event_time"]) or 0.0,
            customer_id=d.get("customer_id"),
            anonymous_id=d.get("anonymous_id"),
            properties=d.get("properties") or {},
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form, as in ``schemas/event.v1.json``."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "schema_version": 1,
            "event_type": self.event_type,
            "event_time": format_time(self.event_time, "microseconds"),
            "properties": dict(self.properties),
        }
        if self.customer_id is not None:
            out["customer_id"] = self.customer_id
        if self.anonymous_id is not None:
            out["anonymous_id"] = self.anonymous_id
        return out


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message could not be used. ``reason`` is one of ``REASONS``."""

    reason: str
    detail: str
    event_id: str | None = None


def parse_time(text: str) -> float | None:
    """RFC 3339 text with a zone to epoch seconds, or None.

    >>> parse_time("1970-01-01T01:00:00+01:00")
    0.0
    >>> parse_time("1970-01-01T00:00:00") is None  # no zone: ambiguous
    True
    """
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return dt.timestamp()


def format_time(ts: float, timespec: str = "milliseconds") -> str:
    """Epoch seconds to RFC 3339 UTC text (milliseconds unless told otherwise).

    >>> format_time(0.25)
    '1970-01-01T00:00:00.250Z'
    """
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def _nonempty_str(v: object) -> bool:
    return isinstance(v, str) and v != ""


def _why_not_json(raw: bytes, exc: orjson.JSONDecodeError) -> Rejected:
    """Name the most useful reason for bytes that orjson refused (cold path only)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Rejected("invalid_utf8", f"invalid UTF-8 at byte {bad.start}")
    if any(tok in raw for tok in (b"NaN", b"Infinity")):
        return Rejected("non_finite_number", f"NaN/Infinity are not JSON: {exc}"[:_MAX_DETAIL])
    return Rejected("malformed_json", str(exc)[:_MAX_DETAIL])


def _depth(doc: object, limit: int) -> int:
    """Nesting depth of a decoded document, stopping once past ``limit``.

    >>> _depth({"a": [1, {"b": 2}]}, 8)
    3
    """
    level, frontier = 0, [doc]
    while frontier and level <= limit:
        level += 1
        nxt: list[object] = []
        for node in frontier:
            if isinstance(node, dict):
                nxt.extend(v for v in node.values() if isinstance(v, dict | list))
            elif isinstance(node, list):
                nxt.extend(v for v in node if isinstance(v, dict | list))
        frontier = nxt
    return level


@dataclass(frozen=True, slots=True)
class Feedback:
    """A channel's response to an action (``schemas/feedback.v1.json``)."""

    event_id: str
    feedback_type: str
    event_time: float
    customer_id: str
    decision_id: str
    action: str
    channel: str


class Decoder:
    """Turns raw bytes into events (or feedback). Build once: schemas are compiled here."""

    __slots__ = ("_cfg", "_feedback", "_types", "_validator")

    def __init__(self, cfg: DecodeConfig) -> None:
        doc = schemas.load("event.v1")
        self._cfg = cfg
        self._validator = jsonschema_rs.validator_for(doc, validate_formats=True)
        self._types = frozenset(doc["properties"]["event_type"]["enum"])
        self._feedback = jsonschema_rs.validator_for(
            schemas.load("feedback.v1"), validate_formats=True
        )

    def decode(self, raw: bytes | None, now: float) -> Event | Rejected:
        """Decode one message; ``now`` is the worker's clock in epoch seconds."""
        doc = self._parse(raw)
        if isinstance(doc, Rejected):
            return doc
        return self._check(doc, now, raw is not None and b"@" in raw)

    def decode_feedback(self, raw: bytes | None, now: float) -> Feedback | Rejected:
        """Decode one feedback message: the same edge checks, then ``feedback.v1``."""
        doc = self._parse(raw)
        if isinstance(doc, Rejected):
            return doc
        eid = doc.get("event_id") if isinstance(doc.get("event_id"), str) else None
        error = next(self._feedback.iter_errors(doc), None)
        if error is not None:
            where = "/".join(str(p) for p in error.instance_path) or "(root)"
            return Rejected("schema_violation", f"{where}: {error.message}"[:_MAX_DETAIL], eid)
        ts = parse_time(doc["event_time"])
        if ts is None:
            return Rejected("bad_timestamp", "event_time is not RFC 3339 with a zone", eid)
        if ts > now + self._cfg.max_future_s:
            return Rejected("future_timestamp", f"event_time {ts - now:.0f}s ahead of clock", eid)
        if ts < now - self._cfg.max_lateness_s:
            return Rejected("too_late", f"event_time {now - ts:.0f}s behind clock", eid)
        keys = ("event_id", "feedback_type", "customer_id", "decision_id", "action", "channel")
        return Feedback(**{k: doc[k] for k in keys}, event_time=ts)

    def _parse(self, raw: bytes | None) -> dict[str, Any] | Rejected:
        if raw is None:
            return Rejected("null_value", "the record has no value (a tombstone)")
        if not raw:
            return Rejected("empty", "the value is empty (zero bytes)")
        if len(raw) > self._cfg.max_bytes:
            return Rejected("oversized", f"{len(raw)} bytes > limit {self._cfg.max_bytes}")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _why_not_json(raw, exc)
        if not isinstance(doc, dict):
            return Rejected("not_an_object", f"top level is {type(doc).__name__}")
        limit = self._cfg.max_depth
        # walked only when it could be too deep: every level opens a bracket
        if raw.count(b"{") + raw.count(b"[") > limit and _depth(doc, limit) > limit:
            return Rejected("too_deep", f"nesting deeper than {limit} levels")
        return doc

    def _check(self, doc: dict[str, Any], now: float, at: bool = False) -> Event | Rejected:
        eid = doc.get("event_id") if isinstance(doc.get("event_id"), str) else None
        version = doc.get("schema_version")
        if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
            return Rejected("unsupported_schema_version", f"schema_version {version!r}", eid)
        if doc.get("event_type") not in self._types:
            return Rejected("unknown_event_type", f"event_type {doc.get('event_type')!r}", eid)
        if not (_nonempty_str(doc.get("customer_id")) or _nonempty_str(doc.get("anonymous_id"))):
            return Rejected("missing_identity", "needs customer_id or anonymous_id", eid)
        if not isinstance(doc.get("event_time"), str) or parse_time(doc["event_time"]) is None:
            text = repr(doc.get("event_time"))[:60]
            return Rejected("bad_timestamp", f"event_time {text} is not RFC 3339 with a zone", eid)
        if not self._validator.is_valid(doc):  # the first error only for the reason
            error = next(self._validator.iter_errors(doc))
            where = "/".join(str(p) for p in error.instance_path) or "(root)"
            return Rejected("schema_violation", f"{where}: {error.message}"[:_MAX_DETAIL], eid)
        return self._timed(doc, now, eid, at)

    def _timed(
        self, doc: dict[str, Any], now: float, eid: str | None, at: bool
    ) -> Event | Rejected:
        ts = parse_time(doc["event_time"]) or 0.0  # checked in _check
        if ts > now + self._cfg.max_future_s:
            return Rejected("future_timestamp", f"event_time {ts - now:.0f}s ahead of clock", eid)
        if ts < now - self._cfg.max_lateness_s:
            return Rejected("too_late", f"event_time {now - ts:.0f}s behind clock", eid)
        props = pseudonymised(doc.get("properties") or {}, self._cfg.pii_key)
        return Event(
            event_id=doc["event_id"],
            event_type=doc["event_type"],
            event_time=ts,
            customer_id=doc.get("customer_id"),
            anonymous_id=doc.get("anonymous_id"),
            properties=scrubbed(props) if at else props,  # an address in other text
        )
