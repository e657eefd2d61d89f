"""What a playbook rule can see: the rule context, built from state, event and scores.

Rules are CEL expressions (``pipeline.playbook``); this module builds the variables
they read. ``CONTEXT`` documents every variable, and ``SAMPLE`` is a context with every
variable present, which the playbook compiler uses to try each rule once (so a typo or
a type error is reported when the playbook is validated, not on the first event).
Every number is a double (CEL does not mix int and double in arithmetic); a fact that
is absent reads as a neutral value (0, "", false, or 365 days), never as an error.

    >>> from pipeline.state import Cart, CartItem, CustomerState
    >>> s = CustomerState("c1", 0.0, 600.0, cart=Cart((CartItem("p", 2, 5.0),), 0.0))
    >>> ctx = rule_context(s, 600.0, None, {})
    >>> (ctx["cart"]["value"], ctx["cart"]["idle_min"], ctx["trigger"], ctx["score"]["churn"])
    (10.0, 10.0, 'timer', 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pipeline.events import Event
from pipeline.features import FEATURES, features
from pipeline.localtime import local_hour
from pipeline.rules import schema
from pipeline.state import CustomerState

__all__ = ["CONTEXT", "SAMPLE", "local_hour", "rule_context", "rule_types"]

DAY, MINUTE, NEVER = 86400.0, 60.0, 365.0
INTENTS: Final = ("purchase", "churn", "support")

CONTEXT: Final[dict[str, str]] = {
    "trigger": "'event' or 'timer' (a timer decides customers who went idle)",
    "event": "the triggering event: type, category, product_id, status ('' for a timer)",
    "f": "the model features (pipeline.features.FEATURES); test with has(f.name)",
    "score": "intent scores purchase, churn, support in [0, 1] (0 until a model is loaded)",
    "models": "true when at least one intent model is loaded",
    "cart": "items (units), value, idle_min (minutes since the cart changed)",
    "session": "active, events, pages, products, categories, searches, minutes, idle_min, "
    "purchased",
    "customer": "age_days, orders, lifetime_value, days_since_order (365 if never), "
    "known (has an e-mail or phone), events",
    "service": "open_tickets, outage_days, delivery_problem_days, contact_days, survey_days "
    "(365 if never), "
    "nps and csat (-1 if never answered)",
    "affinity": "top (category), top_score, scores (category -> decayed score)",
    "consent": "channel -> true/false, only for channels the customer answered",
    "attributes": "profile attributes as sent in profile_updated",
    "hour": "hour of day (0-23) in the customer's time zone",
    "params": "the playbook's parameters (name -> number)",
}


def _days(now: float, then: float | None) -> float:
    return NEVER if not then else min(NEVER, max(0.0, (now - then) / DAY))


def _event(ev: Event | None) -> dict[str, str]:
    if ev is None:
        return {"type": "", "category": "", "product_id": "", "status": ""}
    p = ev.properties
    return {
        "type": ev.event_type,
        "category": str(p.get("category", "")),
        "product_id": str(p.get("product_id", "")),
        "status": str(p.get("status", "")),
    }


def _session(s: CustomerState, now: float) -> dict[str, Any]:
    ss = s.session
    if ss is None:
        return {k: 0.0 for k in ("events", "pages", "products", "categories", "searches")} | {
            "active": False,
            "minutes": 0.0,
            "idle_min": NEVER * DAY / MINUTE,
            "purchased": False,
        }
    return {
        "active": True,
        "events": float(ss.events),
        "pages": float(ss.pages),
        "products": float(len(ss.products)),
        "categories": float(len(ss.categories)),
        "searches": float(len(ss.searches)),
        "minutes": max(0.0, (ss.last_event_at - ss.started_at) / MINUTE),
        "idle_min": max(0.0, (now - ss.last_event_at) / MINUTE),
        "purchased": ss.purchased,
    }


def _service(s: CustomerState, now: float) -> dict[str, float]:
    sv = s.service
    return {
        "open_tickets": float(sv.open_tickets),
        "outage_days": _days(now, sv.last_outage_at),
        "delivery_problem_days": _days(now, sv.last_delivery_problem_at),
        "contact_days": _days(now, sv.last_contact_at),
        "survey_days": _days(now, s.last_at.get("survey_response")),
        "nps": float(sv.last_nps) if sv.last_nps is not None else -1.0,
        "csat": float(sv.last_csat) if sv.last_csat is not None else -1.0,
    }


def _affinity(s: CustomerState) -> dict[str, Any]:
    if not s.affinity:
        return {"top": "", "top_score": 0.0, "scores": {}}
    top = min(s.affinity.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"top": top[0], "top_score": float(top[1]), "scores": dict(s.affinity)}


def rule_context(
    state: CustomerState,
    now: float,
    event: Event | None,
    scores: Mapping[str, float],
    with_features: bool = True,
    x: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The variables a rule sees for ``state`` at ``now``, triggered by ``event`` (or timer).

    ``with_features=False`` leaves ``f`` empty, for playbooks whose rules do not read it;
    ``x`` is the state's features at ``now``, if already computed."""
    if with_features and x is None:
        x = features(state, now)
    cart, p = state.cart, state.profile
    return {
        "trigger": "timer" if event is None else "event",
        "event": _event(event),
        "f": dict(x) if with_features and x is not None else {},
        "score": {i: float(scores.get(i, 0.0)) for i in INTENTS},
        "models": bool(scores),
        "cart": {
            "items": float(sum(i.quantity for i in cart.items)),
            "value": float(cart.value),
            "idle_min": max(0.0, (now - cart.changed_at) / MINUTE) if cart.items else 0.0,
        },
        "session": _session(state, now),
        "customer": {
            "age_days": _days(now, state.first_seen) if state.first_seen else 0.0,
            "orders": float(state.lifetime.orders),
            "lifetime_value": float(state.lifetime.value),
            "days_since_order": _days(now, state.last_at.get("purchase")),
            "known": bool(p.email_hash or p.phone_hash),
            "events": float(state.total_events),
        },
        "service": _service(state, now),
        "affinity": _affinity(state),
        "consent": dict(p.consent),
        "attributes": dict(p.attributes),
        "hour": float(local_hour(now, p.timezone)[0]),
        "params": {},
    }


SAMPLE: Final[dict[str, Any]] = rule_context(CustomerState("sample", 1.0, 1.0), 2.0, None, {})


def rule_types(params: Mapping[str, float]) -> dict[str, Any]:
    """The CEL type of every variable a rule reads (``pipeline.rules.schema``), with the
    playbook's ``params``; every feature of ``f`` is a double that may be absent."""
    return schema({**SAMPLE, "params": params}, {"f": dict.fromkeys(FEATURES, "double")})
