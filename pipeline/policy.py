"""Next-best-action decision for one customer: a pure function of state and time.

The foundation rule: a cart left untouched for ``cart_abandon_after_s`` gets one
``abandoned_cart_reminder`` per version of the cart. It is evaluated on every event of
the customer (with the event's time) and by a timer (with the worker's clock), so a
customer who simply leaves is reminded too. Emitting only when the standing action
changes keeps Kafka writes down (DESIGN, performance budget).

    >>> from pipeline.state import Cart, CartItem, CustomerState
    >>> s = CustomerState("c1", 0.0, 0.0, cart=Cart((CartItem("p1", 1, 9.5),), 100.0))
    >>> cfg = PolicyConfig(cart_abandon_after_s=60)
    >>> decide(s, 120.0, Trigger("timer"), cfg).action is None
    True
    >>> d = decide(s, 160.0, Trigger("timer"), cfg)
    >>> (d.action.action, d.action.payload["cart_value"])
    ('abandoned_cart_reminder', 9.5)
    >>> decide(d.state, 500.0, Trigger("timer"), cfg).action is None  # once per cart version
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from pipeline.events import format_time
from pipeline.state import CustomerState, LastAction

__all__ = ["ABANDONED_CART", "Action", "Decision", "PolicyConfig", "Trigger", "decide", "due_at"]

ABANDONED_CART = "abandoned_cart_reminder"


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Decision settings: cart idle time before a reminder, action lifetime, channel."""

    cart_abandon_after_s: float = 1800.0
    action_ttl_s: float = 86400.0
    channel: str = "email"


@dataclass(frozen=True, slots=True)
class Trigger:
    """What caused this decision: an event (with its id) or the timer."""

    kind: str
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    decision_id: str
    customer_id: str
    action: str
    channel: str
    decided_at: float
    expires_at: float
    supersedes: str | None
    trigger: Trigger
    explanation: dict[str, Any]
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The wire form, as in ``schemas/action.v1.json``."""
        return {
            "decision_id": self.decision_id,
            "schema_version": 1,
            "customer_id": self.customer_id,
            "action": self.action,
            "channel": self.channel,
            "decided_at": format_time(self.decided_at),
            "expires_at": format_time(self.expires_at),
            "supersedes": self.supersedes,
            "trigger": {"kind": self.trigger.kind, "event_id": self.trigger.event_id},
            "explanation": self.explanation,
            "payload": self.payload,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    state: CustomerState
    action: Action | None = None


def decision_id(customer_id: str, action: str, basis: float) -> str:
    """Deterministic id: the same decision, redelivered or replayed, has the same id."""
    text = f"{customer_id}|{action}|{basis!r}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def due_at(state: CustomerState, cfg: PolicyConfig) -> float | None:
    """When the timer should look at this customer again, or None if nothing is pending."""
    if not state.cart.items:
        return None
    la = state.last_action
    if la is not None and la.cart_changed_at == state.cart.changed_at:
        return None
    return state.cart.changed_at + cfg.cart_abandon_after_s


def decide(state: CustomerState, now: float, trigger: Trigger, cfg: PolicyConfig) -> Decision:
    """Pick the next best action for ``state`` at time ``now``; None if it is unchanged."""
    due = due_at(state, cfg)
    if due is None or now < due:
        return Decision(state)
    cart = state.cart
    prev = state.last_action
    action = Action(
        decision_id=decision_id(state.customer_id, ABANDONED_CART, cart.changed_at),
        customer_id=state.customer_id,
        action=ABANDONED_CART,
        channel=cfg.channel,
        decided_at=now,
        expires_at=now + cfg.action_ttl_s,
        supersedes=prev.decision_id if prev is not None and prev.expires_at > now else None,
        trigger=trigger,
        explanation={
            "rule": "cart_idle",
            "cart_idle_seconds": round(now - cart.changed_at, 3),
            "threshold_seconds": cfg.cart_abandon_after_s,
            "session_id": state.session.id if state.session else None,
        },
        payload={
            "items": [
                {"product_id": i.product_id, "quantity": i.quantity, "price": i.price}
                for i in cart.items
            ],
            "cart_value": cart.value,
        },
    )
    standing = LastAction(
        action.decision_id, ABANDONED_CART, now, action.expires_at, cart.changed_at
    )
    return Decision(replace(state, last_action=standing), action)
