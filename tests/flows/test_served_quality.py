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
from tests.flows.test_flows import Shop

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
