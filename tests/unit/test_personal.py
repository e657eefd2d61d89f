"""Personal data at the edge: e-mail addresses and phone numbers leave the decoder as
keyed hashes, and a dead letter's copy of the bytes is redacted."""

from __future__ import annotations

import time

import orjson

from pipeline.events import DecodeConfig, Decoder, Event
from pipeline.personal import keyed_hash, pseudonymised, redacted, scrubbed
from pipeline.simulator import event_doc

KEY = b"k" * 32


def test_a_decoded_event_carries_hashes_not_the_values() -> None:
    doc = event_doc("e1", "signup", 100.0, "c1", {"email": " Ann@X.org ", "phone": "+33 6 1"})
    doc["properties"] |= {"email_hash": "forged", "timezone": "Europe/Paris"}
    ev = Decoder(DecodeConfig(pii_key=KEY)).decode(orjson.dumps(doc), now=100.0)
    assert isinstance(ev, Event)
    assert dict(ev.properties) == {
        "timezone": "Europe/Paris",
        "email_hash": keyed_hash("ann@x.org", KEY),
        "phone_hash": keyed_hash("+3361", KEY),
    }
    wire = orjson.dumps(ev.to_dict())
    assert b"@" not in wire and b"+33" not in wire and b"forged" not in wire


def test_an_address_in_free_text_is_redacted_at_decoding() -> None:
    props = {"query": "orders of ann@x.org", "attributes": {"note": "cc bob@y.com"}}
    doc = event_doc("e1", "search", 100.0, "c1", props)
    ev = Decoder(DecodeConfig(pii_key=KEY)).decode(orjson.dumps(doc), now=100.0)
    assert isinstance(ev, Event)
    assert ev.properties["query"] == "orders of [redacted]"
    assert ev.properties["attributes"] == {"note": "cc [redacted]"}


def test_events_without_personal_fields_are_left_alone() -> None:
    props = {"url": "/", "query": "shoes"}
    assert pseudonymised(props, KEY) is props
    assert pseudonymised({"email": "  ", "phone": "n/a"}, KEY) == {}  # nothing usable


def test_redaction_keeps_every_other_byte() -> None:
    raw = b'{"event_id":"e1","properties":{"email" : "a@b.co","phone":"+33 6","url":"/x"}}'
    assert redacted(raw) == (
        b'{"event_id":"e1","properties":{"email" : "[redacted]","phone":"[redacted]","url":"/x"}}'
    )


def test_redaction_reaches_broken_json_and_free_text() -> None:
    assert redacted(b'{"email": "ann@x.org') == b'{"email": "[redacted]"'  # cut short
    assert redacted(b'{"phone": 33612345678}') == b'{"phone": "[redacted]"}'  # not a string
    assert redacted(b"search=mail ann.smith+shop@mail.example.com now") == (
        b"search=mail [redacted] now"
    )
    assert (
        redacted(b'{"email": "a\\"b@x.org", "url": "/"}') == b'{"email": "[redacted]", "url": "/"}'
    )
    assert redacted(b"\xff\xfe not utf-8 bob@x.org") == b"\xff\xfe not utf-8 [redacted]"


def test_redaction_reads_a_long_run_once() -> None:
    """An oversized message's padding (a 1 MB run of letters with no address in it) is
    scanned in one pass: a pattern that restarts at every position of the run took
    minutes on it and stalled the worker's event loop. The bound is generous (one pass
    takes milliseconds); a quadratic scan would take hours."""
    pad = b"x" * 1_000_000
    raw = b'{"pad": "' + pad + b'", "q": "' + pad + b"@" + pad + b'", "to": "ann@x.org"}'
    began = time.perf_counter()
    out = redacted(raw)
    assert time.perf_counter() - began < 5.0
    assert out == raw.replace(b"ann@x.org", b"[redacted]")
    assert scrubbed(pad.decode() + " ann@x.org") == pad.decode() + " [redacted]"
