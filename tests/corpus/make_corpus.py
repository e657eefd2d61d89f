"""Writes the bad-input corpus: one file per message in ``bad/`` and ``MANIFEST.json``
mapping each file to the dead-letter reason Baton must give it ("valid" for the
few good messages the corpus needs, such as the first copy of a duplicate). Files are
sent in name order: a duplicate and an identity conflict need their first message.

    python tests/corpus/make_corpus.py      # rewrite the files (they are committed)

Timestamps are fixed far in the past or future, so the expectations hold on any day.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOW = "2026-11-23T10:00:00Z"  # replaced by the test with the current time where marked


def doc(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "corpus-1",
        "schema_version": 1,
        "event_type": "add_to_cart",
        "event_time": "{{NOW}}",
        "customer_id": "corpus-c1",
        "properties": {"product_id": "p1", "price": 9.5, "quantity": 1},
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def j(d: object) -> bytes:
    return json.dumps(d).encode()


def nested(depth: int) -> object:
    out: object = 1
    for _ in range(depth):
        out = {"x": out}
    return out


CASES: dict[str, tuple[bytes, str]] = {
    "01-empty": (b"", "empty"),
    "02-not-json": (b"hello world", "malformed_json"),
    "03-truncated": (j(doc())[:-12], "malformed_json"),
    "04-trailing-garbage": (j(doc()) + b" xyz", "malformed_json"),
    "05-single-quotes": (b"{'event_id': 'x'}", "malformed_json"),
    "06-comment": (b'{"event_id": "x" /* hi */}', "malformed_json"),
    "07-invalid-utf8": (b'{"event_id": "caf\xe9"}', "invalid_utf8"),
    "08-utf16": (json.dumps(doc()).encode("utf-16"), "invalid_utf8"),
    "09-nan": (b'{"event_id": "x", "price": NaN}', "non_finite_number"),
    "10-infinity": (b'{"event_id": "x", "price": Infinity}', "non_finite_number"),
    "11-array": (j([doc()]), "not_an_object"),
    "12-string": (b'"add_to_cart"', "not_an_object"),
    "13-number": (b"42", "not_an_object"),
    "14-null": (b"null", "not_an_object"),
    "15-deep-nesting": (j(doc(extra=nested(40))), "too_deep"),
    "16-oversized": (j(doc(extra="x" * 70_000)), "oversized"),
    "17-missing-event-id": (j(doc(event_id=None)), "schema_violation"),
    "18-event-id-number": (j(doc(event_id=17)), "schema_violation"),
    "19-event-id-empty": (j(doc(event_id="")), "schema_violation"),
    "20-missing-schema-version": (j(doc(schema_version=None)), "unsupported_schema_version"),
    "21-schema-version-2": (j(doc(schema_version=2)), "unsupported_schema_version"),
    "22-schema-version-string": (j(doc(schema_version="1")), "unsupported_schema_version"),
    "23-unknown-event-type": (j(doc(event_type="teleport")), "unknown_event_type"),
    "24-missing-event-type": (j(doc(event_type=None)), "unknown_event_type"),
    "25-no-identity": (j(doc(customer_id=None)), "missing_identity"),
    "26-empty-customer-id": (j(doc(customer_id="")), "missing_identity"),
    "27-price-string": (
        j(doc(properties={"product_id": "p", "price": "cheap"})),
        "schema_violation",
    ),
    "28-quantity-zero": (j(doc(properties={"product_id": "p", "quantity": 0})), "schema_violation"),
    "29-properties-not-object": (j(doc(properties=[1, 2])), "schema_violation"),
    "30-customer-id-too-long": (j(doc(customer_id="c" * 200)), "schema_violation"),
    "31-time-without-zone": (j(doc(event_time="2026-11-23T10:00:00")), "bad_timestamp"),
    "32-time-garbage": (j(doc(event_time="yesterday")), "bad_timestamp"),
    "33-time-number": (j(doc(event_time=1800000000)), "bad_timestamp"),
    "34-time-far-future": (j(doc(event_time="2999-01-01T00:00:00Z")), "future_timestamp"),
    "35-time-ancient": (j(doc(event_time="2001-01-01T00:00:00Z")), "too_late"),
    "36-duplicate-first": (j(doc(event_id="corpus-dup")), "valid"),
    "37-duplicate-second": (j(doc(event_id="corpus-dup")), "duplicate"),
    "38-device-login-first": (
        j(
            doc(
                event_id="corpus-l1",
                event_type="login",
                properties={},
                customer_id="corpus-c3",
                anonymous_id="corpus-device",
            )
        ),
        "valid",
    ),
    "39-device-claimed-by-another": (
        j(
            doc(
                event_id="corpus-l2",
                event_type="login",
                customer_id="corpus-c4",
                properties={},
                anonymous_id="corpus-device",
            )
        ),
        "identity_conflict",
    ),
}


def main() -> None:
    out = HERE / "bad"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.bin"):
        old.unlink()
    for name, (raw, _) in CASES.items():
        (out / f"{name}.bin").write_bytes(raw)
    manifest = {f"{name}.bin": reason for name, (_, reason) in CASES.items()}
    (HERE / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
