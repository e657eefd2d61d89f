"""Personal data through the in-process worker: an e-mail address or phone number
reaches no topic Baton writes and no state, only its keyed hash; a dead letter keeps
the bytes as ``BATON_DEADLETTER_RAW`` says (``tests/e2e/test_personal_data.py`` reads
every topic of a real broker the same way)."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from pipeline.personal import keyed_hash
from tests.flows.test_flows import Shop

EMAIL, PHONE = "Ann.Smith@Example.org", "+33 6 12 34 56 78"
SECRETS = (b"ann.smith", b"Ann.Smith", b"12 34 56", b"612345678")
KEY = "pii-" * 8


def test_only_hashes_reach_internal_topics_and_state(tmp_path: Path) -> None:
    shop = Shop(tmp_path, pii_hash_key=KEY)
    anon = {"event_id": "a-1", "schema_version": 1, "event_type": "signup"}
    anon |= {"event_time": "2027-01-15T08:00:00Z", "anonymous_id": "anon-1"}
    anon["properties"] = {"email": EMAIL, "phone": PHONE}
    shop.send("events.clickstream", b"anon-1", anon)  # resolved through identity-events
    shop.ev("c-2", "profile_updated", email=EMAIL)  # straight to the state
    shop.ev("c-3", "page_view", url="/", query=f"orders of {EMAIL}")  # free text
    written = [t for t in shop.run.topics if not t.startswith("events.")]
    assert {"identity-events", "customer-events", "actions"} <= set(written)
    for topic in written:
        for record in shop.run.topics[topic]:
            assert not any(s in record.value for s in SECRETS), (topic, record.value)
    for key in (b"anon-1", b"c-2", b"c-3"):
        state = shop.run.states.peek(key)
        assert state is not None and not any(s in orjson.dumps(state.to_dict()) for s in SECRETS)
        if key != b"c-3":
            assert state.profile.email_hash == keyed_hash(EMAIL.lower(), KEY.encode())


@pytest.mark.parametrize("mode", ["redacted", "full", "none"])
def test_a_dead_letter_keeps_the_bytes_as_told(tmp_path: Path, mode: str) -> None:
    shop = Shop(tmp_path, deadletter_raw=mode)
    raw = b'{"event_type": "signup", "properties": {"email": "ann.smith@x.org", "phone": "+33'
    shop.send("events.clickstream", b"c-9", raw)
    (dead,) = shop.run.values("events.deadletter")
    kept = base64.b64decode(dead["raw_base64"])
    assert dead["reason"] == "malformed_json" and dead["raw_kept"] == mode
    if mode == "full":
        assert kept == raw
    elif mode == "none":
        assert kept == b""
    else:
        want = (
            b'{"event_type": "signup", "properties": {"email": "[redacted]", "phone": "[redacted]"'
        )
        assert kept == want


def test_a_validation_error_does_not_quote_the_value(tmp_path: Path) -> None:
    """A schema error names the field; unless ``full``, it does not repeat its value."""
    shop = Shop(tmp_path)
    shop.ev("c-8", "signup", phone="+33 6 12 34 56 78 " * 4)  # longer than 32 characters
    (dead,) = shop.run.values("events.deadletter")
    assert dead["reason"] == "schema_violation"
    assert dead["detail"] == "properties/phone: [redacted]"
