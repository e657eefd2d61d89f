"""Native rules agree with CEL: for every rule that translates (``pipeline.rules``), the
policy's result (the translation, or CEL when the translation raises) is CEL's result,
or CEL's error, on generated contexts; every shipped rule translates; what is outside
the subset is left to CEL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.context import SAMPLE, rule_types
from pipeline.features import FEATURES
from pipeline.playbook import DEFAULT_PATH, load_file
from pipeline.policy import _run
from pipeline.rules import compile_native

PLAYBOOKS = [DEFAULT_PATH, *sorted((Path(__file__).parents[1] / "playbooks").glob("*.yaml"))]
# the shipped playbooks' parameters, and one for the constructs below
PARAMS = {k: v for path in PLAYBOOKS for k, v in load_file(path).parameters.items()} | {"x": 2.0}
TYPES = rule_types(PARAMS)

# every construct of the subset, with the edges where Python and CEL could part ways:
# int against double, bool against number, errors on either side of && and ||, division
# by zero, absent features, string methods
TRANSLATED = [
    "cart.items > 0",
    "cart.items == 0",
    "cart.value * 2.0 >= params.high_value",
    "cart.value / cart.items > 5.0",
    "-cart.value < 1.0 && cart.value - 1.0 != 3.0",
    "!session.active || cart.items == 0.0",
    "trigger == 'event' ? cart.value : 0.0",
    "trigger == 'event' ? 'a' : trigger",
    "event.type in ['purchase', 'add_to_cart']",
    "cart.items in [0.0, 1, 2.0]",
    "'email' in consent",
    "has(consent.sms) || has(f.cart_value)",
    "has(f.cart_value) && f.cart_value > 10.0",
    "f.cart_value > 10.0 && has(f.cart_value)",
    "f.cart_value > 10.0 || true",
    "f.cart_value > 10.0 && false",
    "affinity.top.startsWith('elec') || affinity.top.endsWith('loans')",
    "affinity.top.contains('audio') && size(affinity.top) > 3",
    "affinity.top.size() >= 3 && double(size(event.type)) / 2.0 > 1.0",
    "hour >= 22.0 || hour < 7.0",
    "customer.known == true && session.purchased != false",
    "customer.known < session.purchased",
    "trigger + event.type == 'eventpurchase'",
    "'a' < trigger && 1.0 < 2 && 2 >= 1",
    "(cart.value + 1.0) * (cart.items - 1.0) / 3.0 > params.x",
    "score.churn >= 0.6 || (customer.orders >= 2.0 && customer.days_since_order >= 60.0)",
    "models == false ? score.purchase > 0.5 : score.purchase > 0.2",
    "1e3 > cart.value && .5 < 1.5",
]
LEFT_TO_CEL = [
    "cart.items % 2.0 == 0.0",
    "consent.email",
    "consent.email == true",
    "attributes.tier == 'gold'",
    "[1.0, 2.0].exists(x, x > 1.0)",
    "cart.items + 1 > 0.0",
    "int(cart.value) > 3",
    "{'a': 1.0}.a > 0.0",
    "trigger == 'a\\'b'",
    "null == trigger",
    "-1 < cart.items",
    "customer.known == 1.0",
    "0x10 > 1",
    "unknown > 1.0",
    "cart.nope > 1.0",
    "affinity.scores['x'] > 1.0",
    "size(consent) > 0",
    "trigger == 'event' ? 1.0 : 'x'",
]


def _rules() -> list[str]:
    out = []
    for path in PLAYBOOKS:
        for a in load_file(path).actions:
            out.append(a.rule)
            if a.value_expr is not None:
                out.append(a.value_expr.source)
    return out


@pytest.mark.parametrize("expr", _rules())
def test_every_shipped_rule_runs_natively(expr: str) -> None:
    assert compile_native(expr, TYPES) is not None, expr


def test_shipped_playbooks_carry_their_native_rules() -> None:
    pb = load_file(DEFAULT_PATH)
    assert all(a.native_eligible is not None for a in pb.actions)
    assert all((a.value_expr is None) == (a.native_value is None) for a in pb.actions)


@pytest.mark.parametrize("expr", TRANSLATED)
def test_the_subset_translates(expr: str) -> None:
    assert compile_native(expr, TYPES) is not None


@pytest.mark.parametrize("expr", LEFT_TO_CEL)
def test_the_rest_is_left_to_cel(expr: str) -> None:
    assert compile_native(expr, TYPES) is None


# NaN read straight from the context as well as made by arithmetic (CEL errors on ordering it)
numbers = st.sampled_from(
    [0.0, -1.0, 0.5, 1.0, 2.0, 3.0, 30.0, 60.0, 365.0, 1e9, math.inf, math.nan]
)
texts = st.sampled_from(["", "event", "timer", "purchase", "electronics.audio", "finance.loans"])


@st.composite
def contexts(draw: Any) -> dict[str, Any]:
    def fill(template: Any) -> Any:
        if isinstance(template, bool):
            return draw(st.booleans())
        if isinstance(template, float):
            return draw(numbers)
        if isinstance(template, str):
            return draw(texts)
        if isinstance(template, dict):
            return {k: fill(v) for k, v in template.items()}
        return template

    ctx = fill({**SAMPLE, "params": PARAMS})
    ctx["f"] = draw(st.dictionaries(st.sampled_from(sorted(FEATURES)), numbers, max_size=6))
    ctx["consent"] = draw(st.dictionaries(st.sampled_from(["email", "sms"]), st.booleans()))
    return ctx


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        value = fn()
    except Exception:
        return ("error", None)
    if isinstance(value, float) and math.isnan(value):
        return ("nan", None)
    return ("ok", (type(value), value))


@settings(max_examples=300, deadline=None)
@given(contexts())
def test_native_results_are_cels(ctx: dict[str, Any]) -> None:
    for expr in TRANSLATED + _rules():
        program, native = cel.compile(expr), compile_native(expr, TYPES)
        want = _outcome(lambda p=program: p.execute(cel.Context(ctx)))
        got = _outcome(lambda p=program, n=native: _run(p, n, ctx, lambda: cel.Context(ctx)))
        assert got == want, (expr, ctx)
