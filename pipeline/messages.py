"""The internal messages that travel between Baton's agents, typed.

Two internal topics carry them, keyed by customer (``customer-events``) or by anonymous
id (``identity-events``). Each message is one of the kinds below; its wire form (JSON,
``to_dict``) is described by ``schemas/customer-message.v1.json`` and
``schemas/identity-message.v1.json``, and a contract test keeps the two in step.

======================  ==================  =============================================
kind                    topic               meaning
======================  ==================  =============================================
``EventIn``             both                a validated customer event, with its source
``Tick``                customer-events     something is due for this customer
``Expire``              customer-events     check whether the customer is past retention
``FeedbackIn``          both                channel feedback, to join to its decision
``MergeInto``           customer-events     move this anonymous state to a customer
``Absorb``              customer-events     fold a moved anonymous state into this one
``Unlink``              identity-events     forget this anonymous id's link (erasure)
======================  ==================  =============================================

    >>> m = parse({"tick": 5.0, "received_at": 5.0})
    >>> m
    Tick(at=5.0, received_at=5.0)
    >>> parse(m.to_dict()) == m
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.events import Event

__all__ = [
    "Absorb",
    "EventIn",
    "Expire",
    "FeedbackIn",
    "MergeInto",
    "Message",
    "Source",
    "Tick",
    "Unlink",
    "parse",
    "wire",
]

# (topic, partition, offset) of the message a customer message came from
Source = tuple[str, int, int]


def _src(raw: Any) -> Source:
    return (str(raw[0]), int(raw[1]), int(raw[2]))


@dataclass(frozen=True, slots=True)
class EventIn:
    """A validated event and the source message it was read from."""

    event: Event
    received_at: float
    src: Source

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event.to_dict(), "received_at": self.received_at, "src": self.src}


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"tick": self.at, "received_at": self.received_at}


@dataclass(frozen=True, slots=True)
class Expire:
    at: float
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"expire": self.at, "received_at": self.received_at}


@dataclass(frozen=True, slots=True)
class FeedbackIn:
    """Channel feedback as validated against ``schemas/feedback.v1.json``."""

    feedback: Mapping[str, Any]
    received_at: float
    src: Source

    def to_dict(self) -> dict[str, Any]:
        return {"feedback": dict(self.feedback), "received_at": self.received_at, "src": self.src}


@dataclass(frozen=True, slots=True)
class MergeInto:
    customer_id: str
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"merge_into": self.customer_id, "received_at": self.received_at}


@dataclass(frozen=True, slots=True)
class Absorb:
    """An anonymous visitor's state (``CustomerState.to_dict``, None if it had none)."""

    state: Mapping[str, Any] | None
    from_id: str
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        state = dict(self.state) if self.state is not None else None
        return {"absorb": state, "from": self.from_id, "received_at": self.received_at}


@dataclass(frozen=True, slots=True)
class Unlink:
    def to_dict(self) -> dict[str, Any]:
        return {"unlink": True}


Message = EventIn | Tick | Expire | FeedbackIn | MergeInto | Absorb | Unlink


def wire(message: Message) -> bytes:
    """A message's bytes on its topic (JSON of ``to_dict``); ``parse`` reads them back."""
    return orjson.dumps(message.to_dict())


def parse(doc: Mapping[str, Any]) -> Message:
    """The typed message of a wire dict (internal topics only: written by Baton)."""
    if "event" in doc:
        return EventIn(Event.from_dict(doc["event"]), doc["received_at"], _src(doc["src"]))
    if "tick" in doc:
        return Tick(doc["tick"], doc["received_at"])
    if "expire" in doc:
        return Expire(doc["expire"], doc["received_at"])
    if "feedback" in doc:
        return FeedbackIn(doc["feedback"], doc["received_at"], _src(doc["src"]))
    if "merge_into" in doc:
        return MergeInto(doc["merge_into"], doc["received_at"])
    if "absorb" in doc:
        return Absorb(doc["absorb"], doc["from"], doc["received_at"])
    if "unlink" in doc:
        return Unlink()
    raise ValueError(f"not an internal message: keys {sorted(doc)}")
