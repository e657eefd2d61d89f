"""Identity stitching: anonymous ids (cookie, device) linked to known customers.

Events may carry an ``anonymous_id``, a ``customer_id`` or both. An event with both (a
login, a signup, or any event a tracker sends after login) links the two; from then
on events under either id update one customer. The stream layer keeps the links in a
table keyed by anonymous id (co-partitioned with the topic it reads), and merges the
state gathered while anonymous into the known customer with ``merge``.

    >>> from pipeline.events import Event
    >>> login = Event("e1", "login", 5.0, "c1", "cookie-1", {})
    >>> resolve(login, link=None)
    Resolved(key='c1', new_link='c1', conflict=None)
    >>> later = Event("e2", "page_view", 6.0, None, "cookie-1", {})
    >>> resolve(later, link="c1").key
    'c1'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.events import Event
from pipeline.profile import merge_profiles
from pipeline.state import (
    Cart,
    CartItem,
    Contacts,
    CustomerState,
    Lifetime,
    Service,
    StateConfig,
)
from pipeline.values import evolve

__all__ = ["Resolved", "merge", "resolve"]


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an event goes: the state key, the event (with its customer filled in), a
    link to record (first sight of both ids together), or the customer the anonymous id
    is already linked to when it conflicts."""

    key: str
    event: Event = field(repr=False)
    new_link: str | None = None
    conflict: str | None = None


def resolve(event: Event, link: str | None) -> Resolved:
    """Route one event that carries an ``anonymous_id``, given that id's current link."""
    cid = event.customer_id
    if cid is None:
        if link is None:
            return Resolved(event.anonymous_id or "", event)
        return Resolved(link, evolve(event, customer_id=link))
    if link is None:
        return Resolved(cid, event, new_link=cid)
    if link != cid:
        return Resolved(cid, event, conflict=link)
    return Resolved(cid, event)


def merge(
    known: CustomerState | None,
    anon: CustomerState | None,
    anon_id: str,
    customer_id: str,
    now: float,
    cfg: StateConfig,
) -> CustomerState:
    """Fold the state of an anonymous visitor (None if it had none) into the known
    customer's, and remember the anonymous id (``merged_from``), which an erasure
    unlinks. Idempotent: an anonymous id already merged changes nothing."""
    if known is None:
        first = anon.first_seen if anon else now
        known = CustomerState(customer_id, first, anon.last_seen if anon else now)
    if anon_id in known.merged_from:
        return known
    if anon is None:
        return evolve(known, merged_from=(*known.merged_from, anon_id))
    late, early = (known, anon) if known.last_seen >= anon.last_seen else (anon, known)
    return evolve(
        known,
        first_seen=min(known.first_seen, anon.first_seen),
        last_seen=late.last_seen,
        counts=_add(known.counts, anon.counts),
        last_at={
            k: max(known.last_at.get(k, 0.0), anon.last_at.get(k, 0.0))
            for k in {*known.last_at, *anon.last_at}
        },
        session=late.session or early.session,
        cart=_merge_carts(known.cart, anon.cart),
        recent_ids=(*known.recent_ids, *anon.recent_ids)[-cfg.dedupe_window :],
        service=_merge_service(known.service, anon.service),
        lifetime=Lifetime(
            known.lifetime.orders + anon.lifetime.orders,
            round(known.lifetime.value + anon.lifetime.value, 2),
        ),
        **_merge_affinity(known, anon, cfg),
        profile=merge_profiles(known.profile, anon.profile),
        previous_sessions=tuple(
            sorted((*known.previous_sessions, *anon.previous_sessions), key=lambda x: x.started_at)
        )[-cfg.previous_sessions :],
        merged_from=(*known.merged_from, anon_id),
        contacts=_merge_contacts(known.contacts, anon.contacts),
    )


def _add(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def _merge_carts(a: Cart, b: Cart) -> Cart:
    items = {i.product_id: i for i in a.items}
    for i in b.items:
        old = items.get(i.product_id)
        items[i.product_id] = CartItem(
            i.product_id, i.quantity + (old.quantity if old else 0), i.price
        )
    return Cart(
        tuple(sorted(items.values(), key=lambda i: i.product_id)), max(a.changed_at, b.changed_at)
    )


def _merge_service(a: Service, b: Service) -> Service:
    late = a if a.last_contact_at >= b.last_contact_at else b
    return Service(
        open_tickets=a.open_tickets + b.open_tickets,
        last_contact_at=max(a.last_contact_at, b.last_contact_at),
        last_outage_at=max(a.last_outage_at, b.last_outage_at),
        last_delivery_problem_at=max(a.last_delivery_problem_at, b.last_delivery_problem_at),
        last_nps=_first(late.last_nps, a.last_nps, b.last_nps),
        last_csat=_first(late.last_csat, a.last_csat, b.last_csat),
    )


def _merge_contacts(a: Contacts, b: Contacts) -> Contacts:
    """Both histories count against caps and cool-downs: an anonymous visitor's sends
    were sends to the same person."""
    return Contacts(
        tuple(sorted((*a.sent, *b.sent), key=lambda s: s.at))[-64:],
        _latest(a.dismissed, b.dismissed),
        _latest(a.converted, b.converted),
    )


def _latest(x: Mapping[str, float], y: Mapping[str, float]) -> dict[str, float]:
    return {k: max(x.get(k, 0.0), y.get(k, 0.0)) for k in {*x, *y}}


def _first(*values: int | None) -> int | None:
    """The first answer given; 0 is an answer (an NPS of 0 is the strongest detractor)."""
    return next((v for v in values if v is not None), None)


def _merge_affinity(a: CustomerState, b: CustomerState, cfg: StateConfig) -> dict[str, Any]:
    t = max(a.affinity_at, b.affinity_at)
    scores: dict[str, float] = {}
    for s in (a, b):
        decay = 0.5 ** ((t - s.affinity_at) / cfg.affinity_half_life_s)
        for c, v in s.affinity.items():
            scores[c] = scores.get(c, 0.0) + v * decay
    top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[: cfg.affinity_top]
    return {"affinity": {c: round(v, 6) for c, v in top}, "affinity_at": t}
