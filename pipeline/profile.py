"""Profile, consent and reachability: what a customer told us, kept without raw PII.

E-mail addresses and phone numbers are never stored: the decoder replaced them by keyed
hashes (``pipeline.personal``) before the event left ingest; an event folded without
that step (in-process, or in flight from an older worker) is hashed here. Consent is per
channel and the newest change wins, whatever order the events arrive in.

    >>> from pipeline.events import Event
    >>> ev = Event("e1", "profile_updated", 5.0, "c1", None,
    ...            {"email": " Ann@Example.com ", "timezone": "Europe/Paris"})
    >>> p = next_profile(Profile(), ev, b"k")
    >>> (p.timezone, len(p.email_hash or ""), "example" in repr(p))
    ('Europe/Paris', 32, False)
    >>> p.email_hash == keyed_hash("ann@example.com", b"k")
    True
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pipeline.events import Event
from pipeline.personal import PERSONAL, keyed_hash, pseudonymised
from pipeline.values import evolve

__all__ = ["CHANNELS", "Profile", "keyed_hash", "merge_profiles", "next_profile"]

CHANNELS = ("email", "sms", "push", "web", "app", "agent")
_MAX_ATTRIBUTES = 32


@dataclass(frozen=True, slots=True)
class Profile:
    attributes: Mapping[str, Any] = field(default_factory=dict)
    email_hash: str | None = None
    phone_hash: str | None = None
    timezone: str | None = None
    preferred_channel: str | None = None
    consent: Mapping[str, bool] = field(default_factory=dict)
    consent_at: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self.__slots__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Profile:
        return cls(**d) if d else cls()


def _plain(v: Any) -> Any:
    return dict(v) if isinstance(v, Mapping) else v


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def next_profile(p: Profile, event: Event, key: bytes) -> Profile:
    """Fold a ``consent_changed``, ``profile_updated`` or ``signup`` event into ``p``."""
    kind, props = event.event_type, event.properties
    if kind == "consent_changed":
        return _consent(p, props, event.event_time)
    if kind not in ("profile_updated", "signup"):
        return p
    changes: dict[str, Any] = {}
    if any(k in props for k in PERSONAL):
        props = pseudonymised(props, key)
    for name in ("email_hash", "phone_hash"):
        if isinstance(props.get(name), str):
            changes[name] = props[name]
    if props.get("timezone") in _zones():
        changes["timezone"] = props["timezone"]
    if props.get("preferred_channel") in CHANNELS:
        changes["preferred_channel"] = props["preferred_channel"]
    if isinstance(props.get("attributes"), Mapping):
        merged = {**p.attributes, **props["attributes"]}
        changes["attributes"] = dict(list(merged.items())[:_MAX_ATTRIBUTES])
    return evolve(p, **changes) if changes else p


def _consent(p: Profile, props: Mapping[str, Any], t: float) -> Profile:
    channel, granted = props.get("channel"), props.get("granted")
    if channel not in CHANNELS or not isinstance(granted, bool):
        return p
    if t < p.consent_at.get(channel, float("-inf")):
        return p  # an older change arriving late does not undo a newer one
    return evolve(
        p, consent={**p.consent, channel: granted}, consent_at={**p.consent_at, channel: t}
    )


def merge_profiles(known: Profile, anon: Profile) -> Profile:
    """The known customer's profile wins; the anonymous one fills gaps; consent by time."""
    consent, at = dict(anon.consent), dict(anon.consent_at)
    for ch, granted in known.consent.items():
        if known.consent_at.get(ch, 0.0) >= at.get(ch, float("-inf")):
            consent[ch], at[ch] = granted, known.consent_at.get(ch, 0.0)
    return Profile(
        attributes={**anon.attributes, **known.attributes},
        email_hash=known.email_hash or anon.email_hash,
        phone_hash=known.phone_hash or anon.phone_hash,
        timezone=known.timezone or anon.timezone,
        preferred_channel=known.preferred_channel or anon.preferred_channel,
        consent=consent,
        consent_at=at,
    )
