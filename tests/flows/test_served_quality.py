"""Model quality is the quality of the scores served (issue 18).

A stream of sessions runs through the worker's flows in-process with model v1 loaded;
before any of their labels is known, a different model v2 is loaded (as a learner's
new snapshot would be). Every example must carry the score v1 served and v1's version,
and the quality the learner exports (``Learner.metrics``, what ``baton_model_quality``
shows) must equal the ROC-AUC computed here independently, by scoring each example's
prediction-time features with v1. The training-side number is another one.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline.evaluation import auc
from pipeline.learning import Learner
from pipeline.models import IntentModel, sign
from tests.flows.test_flows import Shop, Topic

MIN = 60.0


def trained(seed: int, n: int) -> IntentModel:
    """A purchase model that has learned ``n`` made-up examples."""
    rng, model = random.Random(seed), IntentModel("purchase", seed=seed)
    for _ in range(n):
        cart = rng.choice([0.0, 1.0])
        x = {"has_cart": cart, "session_events": rng.randint(1, 8), "cart_value": 20 * cart}
        model.learn(x, rng.random() < 0.2 + 0.5 * cart)
    return model


def test_exported_quality_is_what_the_served_scores_achieve(tmp_path: Path) -> None:
    shop = Shop(tmp_path, session_gap_s=10 * MIN)
    key = shop.run.settings.model_signing_key.get_secret_value().encode()
    v1, v2 = trained(1, 300), trained(2, 900)
    shop.run.models.load(sign(v1.snapshot(), key))
    rng = random.Random(7)
    buyers = set()
    for i in range(60):  # each: a few views, maybe a cart; a third will buy
        cid = f"s{i}"
        for k in range(rng.randint(1, 4)):
            shop.ev(cid, "product_view", product_id=f"p{k}", price=10.0 + k, category="c")
        if rng.random() < 0.5:
            shop.ev(cid, "add_to_cart", product_id="p0", price=10.0, quantity=1)
        if rng.random() < 0.35:
            buyers.add(cid)
    assert shop.examples() == [], "no label is known yet"
    shop.run.models.load(sign(v2.snapshot(), key))  # a newer model, before the labels
    for cid in sorted(buyers):
        shop.ev(cid, "purchase", order_value=10.0)
    shop.wait(15 * MIN)  # the other sessions end without a purchase

    examples = [e for e in shop.run.values("training-examples") if e.get("intent") == "purchase"]
    assert {e["customer_id"] for e in examples if e["y"]} == buyers
    assert len(examples) > 60 and any(not e["y"] for e in examples)
    assert {e["model_version"] for e in examples} == {v1.version}
    for e in examples:  # the score v1 served at the point, not v2's
        assert e["served"] == pytest.approx(v1.predict(e["x"]), abs=1e-12)
        assert e["served"] != pytest.approx(v2.predict(e["x"]), abs=1e-9)

    learner = Learner("purchase", every=10_000, interval_s=1e9, start=v2)
    for e in examples:
        learner.learn(e["x"], e["y"], e.get("served"))
    independent = auc([v1.predict(e["x"]) for e in examples], [e["y"] for e in examples])
    assert learner.metrics()["roc_auc"] == pytest.approx(independent, abs=1e-12)
    assert learner.training_metrics()["roc_auc"] != pytest.approx(independent, abs=1e-6)
    print(
        f"served ROC-AUC {independent:.3f} over {len(examples)} examples; training-side "
        f"{learner.training_metrics()['roc_auc']:.3f}"
    )


def test_points_without_a_model_carry_no_served_score(tmp_path: Path) -> None:
    shop = Shop(tmp_path)
    shop.ev("n-1", "product_view", product_id="p", price=5.0, category="c")
    shop.ev("n-1", "purchase", order_value=5.0)
    (example,) = [e for e in shop.run.values("training-examples") if e.get("intent")]
    assert "served" not in example and "model_version" not in example
    learner = Learner("purchase", every=10, interval_s=60.0)
    learner.learn(example["x"], example["y"], example.get("served"))
    assert len(learner.served) == 0 and len(learner.pairs) == 1


async def test_each_response_model_is_measured_on_its_own_sends() -> None:
    """Two actions: one whose served propensities rank its responders, one whose
    propensities rank them backwards. Each action's gauge must equal the ROC-AUC of
    its own (served, outcome) pairs, computed here; the pooled gauge mixes both."""
    from prometheus_client import CollectorRegistry

    from agents.learning import Learners
    from agents.metrics import Metrics
    from agents.models import ModelRegistry
    from agents.settings import Settings

    s, registry = Settings(snapshot_every=1_000_000), CollectorRegistry()
    learners = Learners(
        s,
        Metrics.create(registry),
        ModelRegistry(s, Metrics.create(CollectorRegistry())),
        models_topic=Topic(),
    )
    rng, pairs = random.Random(3), {"good": [], "bad": []}
    for i in range(400):
        action = "good" if i % 2 else "bad"
        served = rng.uniform(0.05, 0.6)
        y = rng.random() < (served if action == "good" else 0.65 - served)
        pairs[action].append((served, y))
        decision = {
            "kind": "decision",
            "decision_id": f"d{i}",
            "action": action,
            "x": {"session_events": 1.0},
            "base": 0.3,
            "served": served,
        }
        await learners.one(decision)
        await learners.one({"kind": "response", "decision_id": f"d{i}", "action": action, "y": y})
    await learners.publish_due(1e12)
    gauge = "baton_response_model_quality"
    for action, got in pairs.items():
        want = auc([p for p, _ in got], [y for _, y in got])
        value = registry.get_sample_value(gauge, {"action": action, "metric": "roc_auc"})
        assert value == pytest.approx(want, abs=1e-12), action
    pooled = registry.get_sample_value(
        "baton_model_quality", {"intent": "response", "metric": "roc_auc"}
    )
    every = pairs["good"] + pairs["bad"]
    assert pooled == pytest.approx(auc([p for p, _ in every], [y for _, y in every]))
    good, bad = (
        registry.get_sample_value(gauge, {"action": a, "metric": "roc_auc"})
        for a in ("good", "bad")
    )
    assert good is not None and bad is not None and good > 0.6 > 0.4 > bad
    print(f"response ROC-AUC: good {good:.3f}, bad {bad:.3f}, pooled {pooled:.3f}")
