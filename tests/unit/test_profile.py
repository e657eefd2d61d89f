"""Profile and consent: no raw PII in state, newest consent wins whatever the order."""

from __future__ import annotations

import itertools

import orjson

from pipeline.events import Event
from pipeline.fold import apply
from pipeline.profile import Profile, keyed_hash, next_profile
from pipeline.state import StateConfig

KEY = b"test-key"


def ev(eid: str, kind: str, t: float, **props: object) -> Event:
    return Event(eid, kind, t, "c1", None, props)


def test_no_raw_email_or_phone_in_state() -> None:
    cfg = StateConfig(pii_key=KEY)
    e = ev(
        "1",
        "profile_updated",
        1,
        email="Ann.Smith@Example.COM",
        phone="+33 6 12-34-56-78",
        attributes={"tier": "gold", "language": "fr"},
        preferred_channel="sms",
    )
    s = apply(None, e, cfg).state
    blob = orjson.dumps(s.to_dict())
    assert b"example" not in blob.lower() and b"12-34" not in blob and b"612345678" not in blob
    assert s.profile.email_hash == keyed_hash("ann.smith@example.com", KEY)
    assert s.profile.phone_hash == keyed_hash("+33612345678", KEY)
    assert s.profile.attributes == {"tier": "gold", "language": "fr"}
    assert s.profile.preferred_channel == "sms"
    assert keyed_hash("ann.smith@example.com", b"other") != s.profile.email_hash


def test_invalid_values_are_ignored() -> None:
    p = next_profile(
        Profile(),
        ev("1", "profile_updated", 1, timezone="Mars/Olympus", preferred_channel="pigeon"),
        KEY,
    )
    assert p == Profile()


def test_newest_consent_wins_in_any_arrival_order() -> None:
    changes = [
        ev("1", "consent_changed", 10, channel="email", granted=True),
        ev("2", "consent_changed", 20, channel="email", granted=False),
        ev("3", "consent_changed", 15, channel="sms", granted=True),
    ]
    results = set()
    for order in itertools.permutations(changes):
        p = Profile()
        for e in order:
            p = next_profile(p, e, KEY)
        results.add((tuple(sorted(p.consent.items())), tuple(sorted(p.consent_at.items()))))
    assert results == {((("email", False), ("sms", True)), (("email", 20), ("sms", 15)))}
