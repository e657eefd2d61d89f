"""The reducer that folds one event into a customer's state.

``apply(state, event, cfg) -> Applied`` is pure: no clock, no I/O. Duplicates (an
``event_id`` seen in the recent window) change nothing and are reported, so
at-least-once delivery is safe (STYLE 9).

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
from dataclasses import dataclass
from typing import Any

from pipeline.activity import next_activity
from pipeline.events import Event
from pipeline.profile import next_profile
from pipeline.state import Cart, CartItem, CustomerState, Lifetime, Service, Session, StateConfig
from pipeline.values import evolve

__all__ = ["Applied", "apply"]

_CART_CHANGES = frozenset({"add_to_cart", "remove_from_cart"})


@dataclass(frozen=True, slots=True)
class Applied:
    """Result of ``apply``: the new state and whether the event was a duplicate."""

    state: CustomerState
    duplicate: bool = False


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
            activity=next_activity(state.activity, event),
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
        cart_changes=s.cart_changes + (event.event_type in _CART_CHANGES),
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
