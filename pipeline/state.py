"""Per-customer state and the reducer that folds one event into it.

``apply(state, event, cfg) -> Applied`` is pure: no clock, no I/O. State is an
immutable value; the stream layer writes the returned value back to its table once
per event (STYLE 3). Duplicates (an ``event_id`` seen in the recent window) change
nothing and are reported, so at-least-once delivery is safe (STYLE 9).

    >>> from pipeline.events import Event
    >>> cfg = StateConfig(session_gap_s=1800)
    >>> ev = Event("e1", "add_to_cart", 100.0, "c1", None, {"product_id": "p1", "price": 5.0})
    >>> s = apply(None, ev, cfg).state
    >>> (s.counts["add_to_cart"], s.cart.value, s.session.events)
    (1, 5.0, 1)
    >>> apply(s, ev, cfg).duplicate
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.events import Event
from pipeline.profile import Profile, next_profile
from pipeline.values import evolve

__all__ = [
    "Applied",
    "Cart",
    "CartItem",
    "Contacts",
    "CustomerState",
    "LastAction",
    "Sent",
    "Session",
    "StateConfig",
    "apply",
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


# A prediction point waiting for its label: (time, features at that time). The features
# are a row in ``pipeline.features.FEATURES`` order (None where absent: a third of the
# JSON and half the memory of named ones), or named (points written before rows).
Point = tuple[float, Sequence[float | None] | Mapping[str, float]]


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
        )


@dataclass(frozen=True, slots=True)
class Applied:
    """Result of ``apply``: the new state and whether the event was a duplicate."""

    state: CustomerState
    duplicate: bool = False


def _points_out(points: tuple[Point, ...]) -> tuple[Point, ...]:
    # as they are: orjson writes a tuple as an array, and a state's feature dicts are
    # never changed after they are made (no copy: they are most of a state's bytes)
    return points


def _points_in(raw: Any) -> tuple[Point, ...]:
    # a row comes back from JSON as a list: a tuple again, as it was made; named
    # features (points stored before rows) are a dict fresh from JSON, not copied
    return tuple((float(t), tuple(x) if isinstance(x, list) else x) for t, x in raw or ())


def _mapping(value: Any) -> dict[Any, Any]:
    # orjson writes dicts itself; any other Mapping a state holds is copied into one
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _as_dict(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {name: getattr(obj, name) for name in obj.__slots__}


def apply(state: CustomerState | None, event: Event, cfg: StateConfig) -> Applied:
    """Fold one event into the customer's state."""
    if state is None:
        t = event.event_time
        state = CustomerState(event.key, t, t, anonymous=event.customer_id is None)
    elif event.event_id in state.recent_ids:
        return Applied(state, duplicate=True)
    counts = dict(state.counts)
    counts[event.event_type] = counts.get(event.event_type, 0) + 1
    last_at = dict(state.last_at)
    last_at[event.event_type] = max(last_at.get(event.event_type, 0.0), event.event_time)
    return Applied(
        evolve(
            state,
            last_at=last_at,
            profile=next_profile(state.profile, event, cfg.pii_key),
            service=_next_service(state.service, event),
            lifetime=_next_lifetime(state.lifetime, state.cart, event),
            **_next_affinity(state, event, cfg),
            last_seen=max(state.last_seen, event.event_time),
            counts=counts,
            **_next_sessions(state, event, cfg),
            cart=_next_cart(state.cart, event),
            recent_ids=(*state.recent_ids, event.event_id)[-cfg.dedupe_window :],
        )
    )


def _session_id(customer_id: str, started_at: float) -> str:
    return hashlib.blake2b(f"{customer_id}|{started_at}".encode(), digest_size=8).hexdigest()


def _next_sessions(state: CustomerState, event: Event, cfg: StateConfig) -> dict[str, Any]:
    s, t = state.session, event.event_time
    if s is None or t - s.last_event_at > cfg.session_gap_s:
        ended = (*state.previous_sessions, s)[-cfg.previous_sessions :] if s else ()
        fresh = _seen(Session(_session_id(event.key, t), t, t, 0), event, cfg)
        return {"session": fresh, "previous_sessions": ended or state.previous_sessions}
    # A late event inside the session counts but does not move its clock back.
    return {"session": _seen(evolve(s, last_event_at=max(s.last_event_at, t)), event, cfg)}


def _seen(s: Session, event: Event, cfg: StateConfig) -> Session:
    """Count one event into the session and remember what it touched (most recent last)."""
    props, n = event.properties, cfg.session_recent
    return evolve(
        s,
        events=s.events + 1,
        pages=s.pages + (event.event_type == "page_view"),
        products=_recent(s.products, props.get("product_id"), n),
        categories=_recent(s.categories, props.get("category"), n),
        searches=_recent(
            s.searches, props.get("query") if event.event_type == "search" else None, n
        ),
        purchased=s.purchased or event.event_type == "purchase",
    )


def _recent(items: tuple[str, ...], new: object, n: int) -> tuple[str, ...]:
    if not new:
        return items
    value = str(new)
    return (*(i for i in items if i != value), value)[-n:]


def _next_cart(cart: Cart, event: Event) -> Cart:
    kind, props, t = event.event_type, event.properties, event.event_time
    if kind == "purchase":
        return Cart((), t)
    if kind not in ("add_to_cart", "remove_from_cart") or "product_id" not in props:
        return cart
    pid = str(props["product_id"])
    items = {i.product_id: i for i in cart.items}
    old = items.get(pid)
    qty = int(props.get("quantity", 1))
    if kind == "add_to_cart":
        price = float(props.get("price", old.price if old else 0.0))
        items[pid] = CartItem(pid, qty + (old.quantity if old else 0), price)
    elif old is not None:
        left = old.quantity - qty
        items[pid] = evolve(old, quantity=left)
        if left <= 0:
            del items[pid]
    return Cart(tuple(sorted(items.values(), key=lambda i: i.product_id)), t)


_CONTACTS = frozenset({"ticket_opened", "call", "chat"})


def _next_service(sv: Service, event: Event) -> Service:
    kind, t, props = event.event_type, event.event_time, event.properties
    if kind in _CONTACTS:
        opened = 1 if kind == "ticket_opened" else 0
        return evolve(
            sv, open_tickets=sv.open_tickets + opened, last_contact_at=max(sv.last_contact_at, t)
        )
    if kind == "ticket_resolved":
        return evolve(sv, open_tickets=max(0, sv.open_tickets - 1))
    if kind == "outage_notice":
        return evolve(sv, last_outage_at=max(sv.last_outage_at, t))
    if kind == "delivery_update" and props.get("status") in ("failed", "delayed", "lost"):
        return evolve(sv, last_delivery_problem_at=max(sv.last_delivery_problem_at, t))
    if kind == "survey_response":
        return evolve(
            sv, last_nps=props.get("nps", sv.last_nps), last_csat=props.get("csat", sv.last_csat)
        )
    return sv


def _next_lifetime(lt: Lifetime, cart: Cart, event: Event) -> Lifetime:
    if event.event_type != "purchase":
        return lt
    value = float(event.properties.get("order_value", cart.value))
    return Lifetime(lt.orders + 1, round(lt.value + value, 2))


def _next_affinity(state: CustomerState, event: Event, cfg: StateConfig) -> dict[str, Any]:
    """Category interest that halves every ``affinity_half_life_s`` without new signals.

    Scores are kept as of ``affinity_at``; a late event adds at the current scale.
    """
    category = event.properties.get("category")
    if not category:
        return {}
    t = max(state.affinity_at, event.event_time)
    decay = 0.5 ** ((t - state.affinity_at) / cfg.affinity_half_life_s) if state.affinity else 1.0
    scores = {c: v * decay for c, v in state.affinity.items()}
    scores[str(category)] = scores.get(str(category), 0.0) + _WEIGHT.get(event.event_type, 1.0)
    top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[: cfg.affinity_top]
    return {"affinity": {c: round(v, 6) for c, v in top}, "affinity_at": t}


_WEIGHT = {"product_view": 1.0, "search": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
