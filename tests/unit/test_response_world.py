"""Contextual response models (pipeline.response) and the world where choices matter
(pipeline.world): the response predicted for a customer in a situation, combined with
the base propensity; the world's hidden response moved by what the worker observes."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from pipeline.features import features
from pipeline.outcomes import on_feedback
from pipeline.playbook import load_file
from pipeline.policy import Inputs, Trigger, decide
from pipeline.response import CONTEXT_MIN, ResponseModels
from pipeline.world import WORLD_PLAYBOOK, WorldConfig, person, respond_p, run, situation_weights
from tests.unit.test_policy import MIN, cart_state, noon, pb_with


def trained(n: int = 600, seed: int = 1) -> ResponseModels:
    """Responds to 'cart' on a full cart (value 200) three times in four, on a small one
    (value 10) one time in ten; the base propensity is the same 0.2 throughout."""
    rng, rm = random.Random(seed), ResponseModels()
    for _ in range(n):
        full = rng.random() < 0.5
        y = rng.random() < (0.75 if full else 0.1)
        rm.learn("cart", y, {"cart_value": 200.0 if full else 10.0}, base=0.2)
    return rm


def test_contextual_model_predicts_for_the_situation() -> None:
    rm = trained()
    full, small = (
        rm.mean("cart", {"cart_value": 200.0}, 0.2),
        rm.mean("cart", {"cart_value": 10.0}, 0.2),
    )
    assert full == pytest.approx(0.75, abs=0.1) and small == pytest.approx(0.1, abs=0.1)
    # without features it is the action's Beta mean, over every outcome
    assert rm.mean("cart") == pytest.approx(0.425, abs=0.05) and rm.outcomes("cart") == 600
    back = ResponseModels.from_snapshot(rm.snapshot())
    assert back.mean("cart", {"cart_value": 200.0}, 0.2) == full and back.contextual("cart")


def test_contextual_prediction_is_rivers() -> None:
    """``mean`` scores with the folded ``Linear`` form of the action's river pipeline."""
    from pipeline.response import _row

    rng, rm = random.Random(4), ResponseModels()
    for i in range(CONTEXT_MIN + 100):
        x = {"cart_value": rng.uniform(0, 50), "session_events": float(rng.randrange(9))}
        base = rng.uniform(0.01, 0.9)
        rm.learn("a", rng.random() < base, x, base)
        if i >= CONTEXT_MIN and i % 10 == 0:
            for b in (None, 0.0, base, 1.0):
                river = rm.context["a"][0].predict_proba_one(_row(x, b))[True]
                assert rm.mean("a", x, b) == pytest.approx(river, abs=1e-12)


def test_contextual_model_waits_for_enough_outcomes_and_old_snapshots_load() -> None:
    rm = trained(CONTEXT_MIN - 1)
    assert not rm.contextual("cart")
    assert rm.mean("cart", {"cart_value": 200.0}, 0.2) == rm.mean("cart")
    rm.learn("cart", True, {"cart_value": 200.0}, base=0.2)
    assert rm.contextual("cart")
    beta_only = ResponseModels()
    beta_only.learn("cart", True)  # learned without features: the Kafka learner's examples
    snap = beta_only.snapshot()
    assert "context" not in snap and not ResponseModels.from_snapshot(snap).contextual("cart")


def test_the_policy_arbitrates_with_the_contextual_prediction() -> None:
    t = noon()
    pb = pb_with()
    rm = trained()
    s, at = cart_state(t), t + 31 * MIN  # a cart worth 9.5, left for 31 minutes
    # the worker passes the event's features (pipeline.step); without them, the Beta mean
    d = decide(s, at, Trigger("timer"), None, Inputs(pb, responses=rm), x=features(s, at))
    assert d.action is not None
    terms = d.action.explanation["arbitration"]["cart"]
    assert terms["propensity_source"] == "response_model:contextual"
    assert terms["propensity"] == pytest.approx(0.1, abs=0.1)  # a small cart: rarely


def test_a_feedback_response_names_its_decision() -> None:
    t = noon()
    pb = pb_with()
    d = decide(cart_state(t), t + 31 * MIN, Trigger("timer"), None, Inputs(pb))
    assert d.action is not None
    did = d.action.decision_id
    shown, _ = on_feedback(d.state, "impression", did, t + 32 * MIN, pb) or (None, [])
    assert shown is not None
    _, out = on_feedback(shown, "click", did, t + 40 * MIN, pb) or (None, [])
    assert next((o.kind, o.success, o.decision_id) for o in out) == ("response", True, did)


def test_the_worlds_response_follows_the_moment() -> None:
    w, p = situation_weights(11), person("w-00001", 11)
    cart = "abandoned_cart_reminder"
    assert respond_p(p, cart, {"cart_value": 250.0}, w) > respond_p(p, cart, {"cart_value": 5.0}, w)
    churn = "churn_save"
    lapsed = respond_p(p, churn, {"days_since_last_order": 50.0, "lifetime_orders": 1.0}, w)
    assert lapsed > respond_p(p, churn, {"days_since_last_order": 1.0, "lifetime_orders": 1.0}, w)
    assert respond_p(p, cart, None, w) == p.respond[cart]  # no moment: their own
    assert situation_weights(11) == w != situation_weights(12)  # drawn per world


def test_the_world_offers_choices_and_every_policy_is_reproducible(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert WorldConfig().playbook == WORLD_PLAYBOOK and len(load_file(WORLD_PLAYBOOK).actions) >= 6
    # a small world has few outcomes: the models are used after 3 (playbook) and 5
    small = tmp_path / "world.yaml"
    small.write_text(WORLD_PLAYBOOK.read_text().replace("min_responses: 50", "min_responses: 3"))
    monkeypatch.setattr("pipeline.response.CONTEXT_MIN", 5)
    cfg = WorldConfig(customers=60, days=3.0, seed=5, playbook=small)
    results = {p: run(p, cfg).to_dict() for p in ("baton", "baton_beta", "static", "oracle")}
    for name, r in results.items():
        assert r["sent"] > 0 and r["responses"] > 0, name
        assert r == run(name, cfg).to_dict(), f"{name} is not reproducible"
    # several actions allowed when one is chosen (a one-e-mail-a-day cap makes it a choice)
    assert results["static"]["candidates_per_action"] > 1.3
    # the contextual and the Beta-only learner see the same world but decide differently
    assert results["baton"]["by_action"] != results["baton_beta"]["by_action"] or (
        results["baton"]["reward"] != results["baton_beta"]["reward"]
    )
    beta = dataclasses.replace(cfg, contextual=False)
    assert run("baton", beta).to_dict() == results["baton_beta"] | {"policy": "baton"}
