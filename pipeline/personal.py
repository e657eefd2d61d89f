"""Personal data at the edge: e-mail addresses and phone numbers are replaced by keyed
hashes when an event is decoded, before anything is forwarded to an internal topic (an
e-mail address in any other text is redacted), and redacted from the dead-letter copy of
a rejected message.

A hash is HMAC-SHA256 over the normalised value (an e-mail address trimmed and
lower-cased, a phone number reduced to its digits and ``+``) with a secret key from the
settings, 128 bits in hex: enough to match and deduplicate, useless to read. A hash a
producer sent itself (``email_hash``, ``phone_hash``) is dropped: only Baton's are kept.

    >>> props = pseudonymised({"email": " Ann@Example.com ", "phone": "+33 6 12"}, b"k")
    >>> sorted(props), props["email_hash"] == keyed_hash("ann@example.com", b"k")
    (['email_hash', 'phone_hash'], True)
    >>> redacted(b'{"properties": {"email": "ann@example.com", "q": "for bob@x.org"}}')
    b'{"properties": {"email": "[redacted]", "q": "for [redacted]"}}'
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "HASHED",
    "PERSONAL",
    "keyed_hash",
    "pseudonymised",
    "redacted",
    "redacted_detail",
    "scrubbed",
]

PERSONAL: Final = ("email", "phone")  # event properties that name a person
HASHED: Final = ("email_hash", "phone_hash")  # what Baton keeps of them
_ALL: Final = frozenset(PERSONAL + HASHED)

# a personal field's value in JSON text, whole or not (a string, or any other token)
_FIELD: Final = re.compile(rb'("(?:email|phone)"\s*:\s*)(?:"(?:[^"\\]|\\.)*"?|[^,}\]\s]+)')
# an e-mail address anywhere else (a search query, a free-text attribute, broken JSON);
# a match starts only where a run of local-part characters starts, so a long run without
# an "@" (an oversized message's padding) is read once, not once per position
_ADDRESS: Final = re.compile(
    rb"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
_ADDRESS_TEXT: Final = re.compile(_ADDRESS.pattern.decode())


def keyed_hash(value: str, key: bytes) -> str:
    """HMAC-SHA256 of a normalised identifier, 128 bits in hex."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def _email(raw: object) -> str:
    return raw.strip().lower() if isinstance(raw, str) else ""


def _phone(raw: object) -> str:
    return re.sub(r"[^0-9+]", "", raw) if isinstance(raw, str) else ""


def pseudonymised(props: Mapping[str, Any], key: bytes) -> Mapping[str, Any]:
    """``props`` with ``email`` and ``phone`` replaced by ``email_hash`` and
    ``phone_hash`` (an empty or unusable value by nothing); unchanged without them."""
    if _ALL.isdisjoint(props):
        return props
    out = {k: v for k, v in props.items() if k not in _ALL}
    email, phone = _email(props.get("email")), _phone(props.get("phone"))
    if email:
        out["email_hash"] = keyed_hash(email, key)
    if phone:
        out["phone_hash"] = keyed_hash(phone, key)
    return out


def scrubbed(value: Any) -> Any:
    """``value`` (a property, or a mapping or list of them) with every e-mail address in
    its text replaced by ``[redacted]``: a search query or a free-text attribute may
    hold one. The decoder calls it only on messages with an ``@`` in them.

    >>> scrubbed({"query": "orders of ann@x.org", "tags": ["a@b.co"], "n": 2})
    {'query': 'orders of [redacted]', 'tags': ['[redacted]'], 'n': 2}
    """
    if isinstance(value, str):
        return _ADDRESS_TEXT.sub("[redacted]", value) if "@" in value else value
    if isinstance(value, Mapping):
        return {k: scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    return value


def redacted(raw: bytes) -> bytes:
    """A message's bytes with the values of its ``email`` and ``phone`` fields and any
    other e-mail address replaced by ``[redacted]``; everything else byte for byte.
    Works on broken JSON too (a dead letter is often one): it reads text, not JSON.

    >>> redacted(b'{"phone": 33612345678, "email": "a\\\\"b@c.d"')
    b'{"phone": "[redacted]", "email": "[redacted]"'
    """
    return _ADDRESS.sub(b"[redacted]", _FIELD.sub(rb'\1"[redacted]"', raw))


def redacted_detail(detail: str) -> str:
    """A dead letter's detail without the personal values a validation error quotes.

    >>> redacted_detail("properties/phone: '+33 6 12' is longer than 32 characters")
    'properties/phone: [redacted]'
    >>> redacted_detail("event_type 'x' from ann@x.org")
    "event_type 'x' from [redacted]"
    """
    where, sep, _ = detail.partition(": ")
    if sep and where.rsplit("/", 1)[-1] in PERSONAL:
        return f"{where}: [redacted]"
    return _ADDRESS_TEXT.sub("[redacted]", detail) if "@" in detail else detail
