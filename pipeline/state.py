"""Per-customer state: an immutable value and its wire form (``to_dict`` / ``to_json``).

The reducer that folds an event into it is ``pipeline.fold.apply``. State is an
immutable value; the stream layer writes it back to its table once per event (STYLE 3).

    >>> s = CustomerState("c1", 100.0, 100.0)
    >>> CustomerState.from_dict(s.to_dict()) == s
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.activity import Activity
from pipeline.profile import Profile
from pipeline.values import evolve

__all__ = [
    "Cart",
    "CartItem",
    "Contacts",
    "CustomerState",
    "LastAction",
    "Sent",
    "Session",
    "StateConfig",
]


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Reducer settings: inactivity gap that ends a session, size of the dedupe window."""

    session_gap_s: float = 1800.0
    dedupe_window: int = 64
    affinity_half_life_s: float = 7 * 86400.0
    affinity_top: int = 20
    session_recent: int = 10
    previous_sessions: int = 3
    pii_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class Session:
    """The current session: a run of events with no gap longer than ``session_gap_s``."""

    id: str
    started_at: float
    last_event_at: float
    events: int
    pages: int = 0
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    purchased: bool = False
    cart_changes: int = 0  # add- and remove-from-cart events

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Session:
        return cls(
            d["id"],
            d["started_at"],
            d["last_event_at"],
            d["events"],
            d.get("pages", 0),
            tuple(d.get("products", ())),
            tuple(d.get("categories", ())),
            tuple(d.get("searches", ())),
            d.get("purchased", False),
            d.get("cart_changes", 0),
        )


@dataclass(frozen=True, slots=True)
class CartItem:
    product_id: str
    quantity: int
    price: float


@dataclass(frozen=True, slots=True)
class Cart:
    """Cart contents; ``changed_at`` is the event time of the last change (0 = never)."""

    items: tuple[CartItem, ...] = ()
    changed_at: float = 0.0

    @property
    def value(self) -> float:
        return round(sum(i.quantity * i.price for i in self.items), 2)


@dataclass(frozen=True, slots=True)
class LastAction:
    """The decision standing for this customer (sent, or held out in the control group),
    so the same one is not re-sent and a conversion can be attributed to it."""

    decision_id: str
    action: str
    decided_at: float
    expires_at: float
    cart_changed_at: float = 0.0
    channel: str | None = None
    journey: str = ""
    group: str = "treatment"
    converted: bool = False


@dataclass(frozen=True, slots=True)
class Service:
    """Service relationship: open tickets, last contacts, last survey answers (0 = never)."""

    open_tickets: int = 0
    last_contact_at: float = 0.0
    last_outage_at: float = 0.0
    last_delivery_problem_at: float = 0.0
    last_nps: int | None = None
    last_csat: int | None = None


@dataclass(frozen=True, slots=True)
class Lifetime:
    """Lifetime orders and their total value."""

    orders: int = 0
    value: float = 0.0


_DAY, _WEEK = 86400.0, 7 * 86400.0
_KEEP = 64


@dataclass(frozen=True, slots=True)
class Sent:
    """One action sent to the customer (holdout decisions are not sends)."""

    decision_id: str
    action: str
    channel: str
    at: float
    shown: bool = False
    response: str | None = None


@dataclass(frozen=True, slots=True)
class Contacts:
    sent: tuple[Sent, ...] = ()
    dismissed: Mapping[str, float] = field(default_factory=dict)
    converted: Mapping[str, float] = field(default_factory=dict)

    def sent_one(self, decision_id: str, action: str, channel: str, at: float) -> Contacts:
        """Record a send; sends older than a week (or beyond 64) are forgotten."""
        keep = tuple(s for s in self.sent if at - s.at < _WEEK)
        return evolve(self, sent=(*keep, Sent(decision_id, action, channel, at))[-_KEEP:])

    def count(
        self, now: float, window: float, action: str | None = None, channel: str | None = None
    ) -> int:
        return sum(
            1
            for s in self.sent
            if now - s.at < window
            and (action is None or s.action == action)
            and (channel is None or s.channel == channel)
        )

    def find(self, decision_id: str) -> Sent | None:
        return next((s for s in self.sent if s.decision_id == decision_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": [
                [s.decision_id, s.action, s.channel, s.at, s.shown, s.response] for s in self.sent
            ],
            "dismissed": dict(self.dismissed),
            "converted": dict(self.converted),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Contacts:
        if not d:
            return cls()
        return cls(
            tuple(Sent(*row) for row in d.get("sent", ())),
            dict(d.get("dismissed") or {}),
            dict(d.get("converted") or {}),
        )


# A prediction point waiting for its label: (time, features at that time), and, when a
# model served a score there, (..., that score, the model's version). The features are
# a row in ``pipeline.features.FEATURES`` order (None where absent: a third of the JSON
# and half the memory of named ones), or named (points written before rows).
Row = Sequence[float | None] | Mapping[str, float]
Point = tuple[float, Row] | tuple[float, Row, float, int]


@dataclass(frozen=True, slots=True)
class CustomerState:
    customer_id: str
    first_seen: float
    last_seen: float
    counts: Mapping[str, int] = field(default_factory=dict)
    session: Session | None = None
    cart: Cart = field(default_factory=Cart)
    recent_ids: tuple[str, ...] = ()
    last_action: LastAction | None = None
    last_at: Mapping[str, float] = field(default_factory=dict)
    affinity: Mapping[str, float] = field(default_factory=dict)
    affinity_at: float = 0.0
    service: Service = field(default_factory=Service)
    lifetime: Lifetime = field(default_factory=Lifetime)
    merged_from: tuple[str, ...] = ()
    previous_sessions: tuple[Session, ...] = ()
    profile: Profile = field(default_factory=Profile)
    pending: tuple[Point, ...] = ()
    support_points: tuple[Point, ...] = ()
    churn_points: tuple[Point, ...] = ()
    anonymous: bool = False
    contacts: Contacts = field(default_factory=Contacts)
    activity: Activity = field(default_factory=Activity)

    @property
    def total_events(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for the table's changelog (orjson serialises it)."""
        return {
            "customer_id": self.customer_id,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "counts": dict(self.counts),
            "session": _as_dict(self.session),
            "cart": {
                "items": [_as_dict(i) for i in self.cart.items],
                "changed_at": self.cart.changed_at,
            },
            "recent_ids": list(self.recent_ids),
            "last_action": _as_dict(self.last_action),
            "last_at": dict(self.last_at),
            "affinity": dict(self.affinity),
            "affinity_at": self.affinity_at,
            "service": _as_dict(self.service),
            "lifetime": _as_dict(self.lifetime),
            "merged_from": list(self.merged_from),
            "previous_sessions": [_as_dict(p) for p in self.previous_sessions],
            "profile": self.profile.to_dict(),
            "pending": _points_out(self.pending),
            "support_points": _points_out(self.support_points),
            "churn_points": _points_out(self.churn_points),
            "anonymous": self.anonymous,
            "contacts": self.contacts.to_dict(),
            "activity": _as_dict(self.activity),
        }

    def to_json(self) -> bytes:
        """``orjson.dumps(self.to_dict())``, a quarter cheaper (the worker writes one per
        customer per batch): the nested value classes go to orjson as they are (it writes
        a dataclass's fields in order, as ``to_dict`` does), not through dicts built
        first."""
        c = self.contacts
        return orjson.dumps(
            {
                "customer_id": self.customer_id,
                "first_seen": self.first_seen,
                "last_seen": self.last_seen,
                "counts": self.counts,
                "session": self.session,
                "cart": {"items": self.cart.items, "changed_at": self.cart.changed_at},
                "recent_ids": self.recent_ids,
                "last_action": self.last_action,
                "last_at": self.last_at,
                "affinity": self.affinity,
                "affinity_at": self.affinity_at,
                "service": self.service,
                "lifetime": self.lifetime,
                "merged_from": self.merged_from,
                "previous_sessions": self.previous_sessions,
                "profile": self.profile,
                "pending": self.pending,
                "support_points": self.support_points,
                "churn_points": self.churn_points,
                "anonymous": self.anonymous,
                "contacts": {
                    "sent": [
                        (s.decision_id, s.action, s.channel, s.at, s.shown, s.response)
                        for s in c.sent
                    ],
                    "dismissed": c.dismissed,
                    "converted": c.converted,
                },
                "activity": self.activity,
            },
            default=_mapping,
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CustomerState:
        cart = d.get("cart") or {}
        return cls(
            customer_id=d["customer_id"],
            first_seen=d["first_seen"],
            last_seen=d["last_seen"],
            counts=dict(d.get("counts") or {}),
            session=Session.from_dict(d["session"]) if d.get("session") else None,
            cart=Cart(
                tuple(CartItem(**i) for i in cart.get("items", ())), cart.get("changed_at", 0.0)
            ),
            recent_ids=tuple(d.get("recent_ids") or ()),
            last_action=LastAction(**d["last_action"]) if d.get("last_action") else None,
            last_at=dict(d.get("last_at") or {}),
            affinity=dict(d.get("affinity") or {}),
            affinity_at=d.get("affinity_at", 0.0),
            service=Service(**(d.get("service") or {})),
            lifetime=Lifetime(**(d.get("lifetime") or {})),
            merged_from=tuple(d.get("merged_from") or ()),
            previous_sessions=tuple(Session.from_dict(p) for p in d.get("previous_sessions") or ()),
            profile=Profile.from_dict(d.get("profile")),
            pending=_points_in(d.get("pending")),
            support_points=_points_in(d.get("support_points")),
            churn_points=_points_in(d.get("churn_points")),
            anonymous=d.get("anonymous", False),
            contacts=Contacts.from_dict(d.get("contacts")),
            activity=Activity.from_dict(d.get("activity")),
        )


def _points_out(points: tuple[Point, ...]) -> tuple[Point, ...]:
    # as they are: orjson writes a tuple as an array, and a state's feature dicts are
    # never changed after they are made (no copy: they are most of a state's bytes)
    return points


def _points_in(raw: Any) -> tuple[Point, ...]:
    # a row comes back from JSON as a list: a tuple again, as it was made; named
    # features (points stored before rows) are a dict fresh from JSON, not copied
    return tuple(_point_in(p) for p in raw or ())


def _point_in(p: Sequence[Any]) -> Point:
    x = tuple(p[1]) if isinstance(p[1], list) else p[1]
    return (float(p[0]), x) if len(p) < 4 else (float(p[0]), x, float(p[2]), int(p[3]))


def _mapping(value: Any) -> dict[Any, Any]:
    # orjson writes dicts itself; any other Mapping a state holds is copied into one
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _as_dict(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {name: getattr(obj, name) for name in obj.__slots__}
