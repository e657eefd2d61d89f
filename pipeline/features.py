"""Model features derived from the customer state at a moment: a pure function.

Every feature is a float; absent facts are left out (river models treat a missing
feature as zero contribution), never invented. ``FEATURES`` documents each one with
its meaning and unit, and a contract test keeps the two in step.

    >>> from pipeline.state import Cart, CartItem, CustomerState
    >>> s = CustomerState("c1", 0.0, 100.0, cart=Cart((CartItem("p", 2, 5.0),), 40.0))
    >>> f = features(s, now=100.0)
    >>> (f["cart_value"], f["cart_idle_min"], f["has_cart"])
    (10.0, 1.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

from pipeline.activity import activity_features
from pipeline.state import CustomerState

__all__ = ["FEATURES", "features", "named", "row"]

DAY, MINUTE = 86400.0, 60.0
CAP_DAYS: Final = 365.0

FEATURES: Final[dict[str, str]] = {
    "session_events": "events in the current session (count)",
    "session_pages": "page views in the current session (count)",
    "session_minutes": "length of the current session so far (minutes)",
    "session_products": "distinct products seen in the session, up to 10 (count)",
    "session_categories": "distinct categories seen in the session, up to 10 (count)",
    "session_searches": "distinct searches in the session, up to 10 (count)",
    "has_cart": "the cart holds something (0/1)",
    "cart_items": "items in the cart (count of units)",
    "cart_value": "value of the cart (currency units)",
    "cart_idle_min": "time since the cart last changed, if it holds something (minutes)",
    "log_views": "log(1 + product views ever)",
    "log_carts": "log(1 + add-to-cart events ever)",
    "log_searches": "log(1 + searches ever)",
    "lifetime_orders": "orders ever (count)",
    "log_lifetime_value": "log(1 + total order value ever)",
    "days_since_first_seen": "customer age (days, capped at 365)",
    "days_since_last_order": "time since the last purchase, if any (days, capped at 365)",
    "previous_sessions": "earlier sessions remembered, up to 3 (count)",
    "previous_sessions_bought": "earlier remembered sessions with a purchase (count)",
    "open_tickets": "support tickets open (count)",
    "days_since_contact": "time since the last ticket, call or chat, if any (days, capped)",
    "days_since_outage": "time since the last outage notice, if any (days, capped)",
    "delivery_problem_7d": "a failed or delayed delivery in the last 7 days (0/1)",
    "nps": "last Net Promoter answer, if any (0-10)",
    "top_affinity": "strongest category affinity (decayed score)",
    # appended (the order is stored): intent-bearing activity (pipeline.activity)
    "log_wishlist": "log(1 + add-to-wishlist events ever)",
    "session_cart_changes": "add- and remove-from-cart events in the session (count)",
    "events_5m": "events in the last 5 minutes (count, of the latest 16)",
    "events_15m": "events in the last 15 minutes (count, of the latest 16)",
    "log_seconds_since_previous": "log(1 + seconds since the event before the latest, cap 3,600)",
    "product_views_15m": "views of the latest event's product in the last 15 minutes (count)",
    "product_views_ever": "views of the latest event's product ever (count; latest 20 products)",
    "product_carted": "the latest event's product is or was in a cart (0/1; the latest 10 carted)",
    "price_vs_usual": "latest price seen over the mean price of products viewed (ratio, cap 10)",
    "hour_sin": "local hour in the customer's zone (UTC if unknown), on the unit circle: sine",
    "hour_cos": "local hour in the customer's zone (UTC if unknown), on the unit circle: cosine",
    "weekend": "Saturday or Sunday in the customer's zone (0/1)",
}


# Prediction points waiting in a state keep their features as a row in this order, so
# the order is part of the stored state: append new features, never reorder or remove
# (a contract test holds the order).
NAMES: Final = tuple(FEATURES)


def row(f: Mapping[str, float]) -> tuple[float | None, ...]:
    """The features as a row in ``FEATURES`` order, None where absent.

    >>> named(row({"has_cart": 1.0, "nps": 9.0})) == {"has_cart": 1.0, "nps": 9.0}
    True
    """
    return tuple([f.get(n) for n in NAMES])


def named(x: Sequence[float | None] | Mapping[str, float]) -> dict[str, float]:
    """Named features from a row (or a copy of named ones: points stored before rows).
    A row shorter than ``FEATURES`` (written before a feature was appended) has those
    features absent."""
    if isinstance(x, Mapping):
        return dict(x)
    return {n: v for n, v in zip(NAMES, x, strict=False) if v is not None}


def _days(now: float, then: float) -> float:
    return min(CAP_DAYS, max(0.0, (now - then) / DAY))


def features(state: CustomerState, now: float) -> dict[str, float]:
    """The feature vector of ``state`` at time ``now`` (epoch seconds)."""
    f: dict[str, float] = {}
    _session(f, state, now)
    _cart(f, state, now)
    _history(f, state, now)
    _service(f, state, now)
    activity_features(f, state.activity, state.profile.timezone, now)
    f["session_cart_changes"] = float(state.session.cart_changes) if state.session else 0.0
    f["log_wishlist"] = math.log1p(state.counts.get("add_to_wishlist", 0))
    return f


def _session(f: dict[str, float], s: CustomerState, now: float) -> None:
    if s.session is None:
        return
    ss = s.session
    f["session_events"] = float(ss.events)
    f["session_pages"] = float(ss.pages)
    f["session_minutes"] = max(0.0, (min(now, ss.last_event_at) - ss.started_at) / MINUTE)
    f["session_products"] = float(len(ss.products))
    f["session_categories"] = float(len(ss.categories))
    f["session_searches"] = float(len(ss.searches))


def _cart(f: dict[str, float], s: CustomerState, now: float) -> None:
    items = s.cart.items
    f["has_cart"] = 1.0 if items else 0.0
    if items:
        f["cart_items"] = float(sum(i.quantity for i in items))
        f["cart_value"] = s.cart.value
        f["cart_idle_min"] = max(0.0, (now - s.cart.changed_at) / MINUTE)


def _history(f: dict[str, float], s: CustomerState, now: float) -> None:
    c = s.counts
    f["log_views"] = math.log1p(c.get("product_view", 0))
    f["log_carts"] = math.log1p(c.get("add_to_cart", 0))
    f["log_searches"] = math.log1p(c.get("search", 0))
    f["lifetime_orders"] = float(s.lifetime.orders)
    f["log_lifetime_value"] = math.log1p(s.lifetime.value)
    f["days_since_first_seen"] = _days(now, s.first_seen)
    if "purchase" in s.last_at:
        f["days_since_last_order"] = _days(now, s.last_at["purchase"])
    f["previous_sessions"] = float(len(s.previous_sessions))
    f["previous_sessions_bought"] = float(sum(p.purchased for p in s.previous_sessions))
    if s.affinity:
        f["top_affinity"] = max(s.affinity.values())


def _service(f: dict[str, float], s: CustomerState, now: float) -> None:
    sv = s.service
    f["open_tickets"] = float(sv.open_tickets)
    if sv.last_contact_at:
        f["days_since_contact"] = _days(now, sv.last_contact_at)
    if sv.last_outage_at:
        f["days_since_outage"] = _days(now, sv.last_outage_at)
    recent = sv.last_delivery_problem_at and now - sv.last_delivery_problem_at <= 7 * DAY
    f["delivery_problem_7d"] = 1.0 if recent else 0.0
    if sv.last_nps is not None:
        f["nps"] = float(sv.last_nps)
