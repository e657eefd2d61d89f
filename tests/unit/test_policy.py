"""The abandoned-cart decision: when it fires, once per cart, deterministic ids."""

from __future__ import annotations

import jsonschema_rs
from hypothesis import given
from hypothesis import strategies as st

import schemas
from pipeline.events import Event
from pipeline.policy import ABANDONED_CART, PolicyConfig, Trigger, decide, due_at
from pipeline.state import CustomerState, StateConfig, apply

CFG = PolicyConfig(cart_abandon_after_s=600, action_ttl_s=3600)
ACTION = jsonschema_rs.validator_for(schemas.load("action.v1"), validate_formats=True)


def with_cart(t: float = 1000.0) -> CustomerState:
    e = Event("e1", "add_to_cart", t, "c1", None, {"product_id": "p", "price": 4.0, "quantity": 3})
    return apply(None, e, StateConfig()).state


def test_nothing_before_the_cart_is_idle_long_enough() -> None:
    s = with_cart()
    assert due_at(s, CFG) == 1600.0
    assert decide(s, 1599.9, Trigger("timer"), CFG).action is None


def test_reminder_once_per_cart_version() -> None:
    s = with_cart()
    d = decide(s, 1600.0, Trigger("timer"), CFG)
    assert d.action is not None and d.action.action == ABANDONED_CART
    assert d.action.payload == {
        "items": [{"product_id": "p", "quantity": 3, "price": 4.0}],
        "cart_value": 12.0,
    }
    assert ACTION.is_valid(d.action.to_dict())
    assert due_at(d.state, CFG) is None
    assert decide(d.state, 99999.0, Trigger("timer"), CFG).action is None
    # the cart changes: a new reminder later, superseding the standing one
    e2 = Event("e2", "add_to_cart", 2000.0, "c1", None, {"product_id": "q", "price": 1.0})
    s2 = apply(d.state, e2, StateConfig()).state
    d2 = decide(s2, 2600.0, Trigger("event", "e9"), CFG)
    assert d2.action is not None
    assert d2.action.supersedes == d.action.decision_id
    assert d2.action.decision_id != d.action.decision_id
    assert d2.action.trigger == Trigger("event", "e9")


def test_expired_action_is_not_superseded() -> None:
    d = decide(with_cart(), 1600.0, Trigger("timer"), CFG)
    e2 = Event("e2", "add_to_cart", 9000.0, "c1", None, {"product_id": "q", "price": 1.0})
    s2 = apply(d.state, e2, StateConfig()).state
    d2 = decide(s2, 9600.0, Trigger("timer"), CFG)
    assert d2.action is not None and d2.action.supersedes is None


def test_empty_cart_never_reminded() -> None:
    s = with_cart()
    buy = Event("e3", "purchase", 1100.0, "c1", None, {})
    s = apply(s, buy, StateConfig()).state
    assert due_at(s, CFG) is None and decide(s, 1e9, Trigger("timer"), CFG).action is None


@given(
    st.floats(min_value=1600, max_value=1e6, allow_nan=False),
    st.floats(min_value=1600, max_value=1e6, allow_nan=False),
)
def test_decision_id_is_deterministic(t1: float, t2: float) -> None:
    """Whenever and however it is decided, the same cart gets the same decision id."""
    a = decide(with_cart(), t1, Trigger("timer"), CFG).action
    b = decide(with_cart(), t2, Trigger("event", "x"), CFG).action
    assert a is not None and b is not None and a.decision_id == b.decision_id
