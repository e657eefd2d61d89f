"""One check suite over every registered model (STYLE 10), and the feature contract."""

from __future__ import annotations

import random

import orjson
import pytest

from pipeline.events import Event
from pipeline.features import FEATURES, features
from pipeline.fold import apply
from pipeline.models import INTENTS, IntentModel, SnapshotError
from pipeline.state import StateConfig

REGISTRY = [IntentModel(i) for i in INTENTS] + [IntentModel("purchase", lr=0.01, l2=0.001)]


def stream(seed: int, n: int = 300) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {"cart_value": rng.uniform(0, 100), "session_events": float(rng.randrange(20))}
        if rng.random() < 0.3:
            x[f"rare_{rng.randrange(5)}"] = 1.0
        out.append((x, x["cart_value"] + rng.gauss(0, 20) > 60))
    return out


def fitted(model: IntentModel, seed: int = 1) -> IntentModel:
    m = model.clone()
    for x, y in stream(seed):
        m.learn(x, y)
    return m


@pytest.mark.parametrize("model", REGISTRY, ids=lambda m: f"{m.intent}-lr{m.lr}-l2{m.l2}")
class TestModelContract:
    def test_probabilities(self, model: IntentModel) -> None:
        m = fitted(model)
        ps = [m.predict(x) for x, _ in stream(2, 50)]
        assert all(0.0 <= p <= 1.0 for p in ps)
        assert len(set(ps)) > 1

    def test_deterministic(self, model: IntentModel) -> None:
        a, b = fitted(model), fitted(model)
        assert [a.predict(x) for x, _ in stream(3, 30)] == [b.predict(x) for x, _ in stream(3, 30)]

    def test_clone_is_fresh_with_same_settings(self, model: IntentModel) -> None:
        m = fitted(model)
        c = m.clone()
        assert (c.intent, c.lr, c.l2, c.seed, c.version) == (m.intent, m.lr, m.l2, m.seed, 0)
        assert c.predict({"cart_value": 90.0}) == 0.5

    def test_unknown_and_missing_features(self, model: IntentModel) -> None:
        m = fitted(model)
        assert 0.0 <= m.predict({}) <= 1.0
        assert 0.0 <= m.predict({"never_seen": 3.0, "cart_value": 50.0}) <= 1.0
        m.learn({"brand_new": 1.0}, True)  # a new feature mid-stream is fine

    def test_learns_the_signal(self, model: IntentModel) -> None:
        m = fitted(model)
        assert m.predict({"cart_value": 95.0}) > m.predict({"cart_value": 5.0})

    def test_predicts_what_river_predicts(self, model: IntentModel) -> None:
        """``predict`` is the folded ``Linear`` form; river's pipeline is the reference:
        rare, missing, never-seen and extreme features, and after every learn."""
        m = model.clone()
        probe = [x for x, _ in stream(6, 40)] + [
            {},
            {"never_seen": 3.0},
            {"cart_value": 1e6},
            {"cart_value": -1e6, "session_events": 2.0},
        ]
        for i, (x, y) in enumerate(stream(7, 200)):
            if i % 20 == 0:
                for q in probe:
                    river = m.pipeline.predict_proba_one(dict(q)).get(True, 0.5)
                    assert m.predict(q) == pytest.approx(river, abs=1e-12), (i, q)
            m.learn(x, y)

    def test_snapshot_round_trip_is_exact(self, model: IntentModel) -> None:
        m = fitted(model)
        snap = orjson.loads(orjson.dumps(m.snapshot()))  # through JSON, as on a topic
        r = IntentModel.from_snapshot(snap)
        probe = [x for x, _ in stream(4, 40)]
        assert [r.predict(x) for x in probe] == [m.predict(x) for x in probe]
        assert r.version == m.version
        for x, y in stream(5, 40):  # and they go on learning alike
            m.learn(x, y)
            r.learn(x, y)
        assert [r.predict(x) for x in probe] == [m.predict(x) for x in probe]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(format="pickle"),
        lambda s: s.pop("weights"),
        lambda s: s["weights"].update(cart_value="NaN"),
        lambda s: s.update(intercept=float("inf")),
        lambda s: s.update(intent="world_domination"),
        lambda s: s["scaler"].update(counts=[1, 2]),
    ],
)
def test_bad_snapshots_are_refused(mutate) -> None:
    snap = fitted(REGISTRY[0]).snapshot()
    mutate(snap)
    with pytest.raises((SnapshotError, ValueError)):
        IntentModel.from_snapshot(snap)


def test_features_are_documented_and_complete() -> None:
    cfg, t = StateConfig(), 1_000_000.0
    evs = [
        ("product_view", {"product_id": "p", "category": "c"}),
        ("search", {"query": "q"}),
        ("add_to_cart", {"product_id": "p", "price": 3.0}),
        ("purchase", {"order_value": 3.0}),
        ("add_to_cart", {"product_id": "q", "price": 2.0}),
        ("ticket_opened", {}),
        ("outage_notice", {}),
        ("delivery_update", {"status": "failed"}),
        ("survey_response", {"nps": 9}),
        ("page_view", {}),
    ]
    s = None
    for i, (kind, props) in enumerate(evs):
        s = apply(s, Event(str(i), kind, t + i, "c1", None, props), cfg).state
    s = apply(s, Event("late", "page_view", t + 4000, "c1", None, {}), cfg).state  # new session
    again = Event("again", "product_view", t + 4001, "c1", None, {"product_id": "p", "price": 4.0})
    s = apply(s, again, cfg).state
    assert s is not None
    f = features(s, t + 4002)
    assert set(f) == set(FEATURES)
    assert all(isinstance(v, float) for v in f.values())
    sparse = features(apply(None, Event("x", "page_view", t, "c2", None, {}), cfg).state, t)
    assert set(sparse) <= set(FEATURES)


# the order prediction points store their feature rows in (pipeline.features.NAMES): a
# state written today must read the same tomorrow, so features are only ever appended
STORED_ORDER = [
    "session_events",
    "session_pages",
    "session_minutes",
    "session_products",
    "session_categories",
    "session_searches",
    "has_cart",
    "cart_items",
    "cart_value",
    "cart_idle_min",
    "log_views",
    "log_carts",
    "log_searches",
    "lifetime_orders",
    "log_lifetime_value",
    "days_since_first_seen",
    "days_since_last_order",
    "previous_sessions",
    "previous_sessions_bought",
    "open_tickets",
    "days_since_contact",
    "days_since_outage",
    "delivery_problem_7d",
    "nps",
    "top_affinity",
]


def test_feature_rows_keep_their_order() -> None:
    from pipeline.features import NAMES

    assert list(NAMES[: len(STORED_ORDER)]) == STORED_ORDER, "append features, never reorder"
