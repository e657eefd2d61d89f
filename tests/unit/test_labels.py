"""Delayed labels: purchase -> true, session end (next session or timeout) -> false."""

from __future__ import annotations

import orjson

from pipeline.evaluation import auc, log_loss
from pipeline.events import Event
from pipeline.fold import apply
from pipeline.labels import LabelConfig, label_due, label_event, label_timeout
from pipeline.learning import Learner
from pipeline.state import CustomerState, StateConfig

CFG, SCFG = LabelConfig(session_gap_s=100, pending_points=2), StateConfig(session_gap_s=100)


def run(kinds_times: list[tuple[str, float]]) -> tuple[CustomerState, list]:
    s, out = None, []
    for i, (kind, t) in enumerate(kinds_times):
        ev = Event(str(i), kind, t, "c1", None, {"product_id": "p", "price": 1.0})
        after = apply(s, ev, SCFG).state
        s, ex = label_event(s, after, ev, CFG)
        out += ex
    assert s is not None
    return s, out


def test_new_session_labels_the_old_one_false_and_keeps_the_latest_points() -> None:
    s, ex = run(
        [("product_view", 0), ("product_view", 10), ("add_to_cart", 20), ("page_view", 500)]
    )
    purchase = [(e.y, e.predicted_at, e.labelled_at) for e in ex if e.intent == "purchase"]
    assert purchase == [(False, 10, 500), (False, 20, 500)]
    # the return also settles churn for the first session's start: not churned
    churn = [(e.y, e.predicted_at) for e in ex if e.intent == "churn"]
    assert churn == [(False, 0)]
    assert [t for t, _ in s.pending] == [500]


def test_no_points_after_a_purchase_in_the_same_session() -> None:
    s, ex = run([("product_view", 0), ("purchase", 5), ("product_view", 10)])
    assert [e.y for e in ex] == [True]
    assert s.pending == ()


def test_timeout_closes_an_idle_session() -> None:
    s, _ = run([("product_view", 0), ("add_to_cart", 30)])
    assert label_due(s, CFG) == 130
    same, none = label_timeout(s, 130, CFG)
    assert none == [] and same is s
    closed, ex = label_timeout(s, 131, CFG)
    assert [e.y for e in ex] == [False, False] and closed.pending == ()
    assert label_due(closed, CFG) == CFG.support_horizon_s  # the session-start point waits


def test_learner_snapshots_by_count_and_by_time() -> None:
    ln = Learner("purchase", every=3, interval_s=10.0)
    assert not ln.snapshot_due(0.0)  # nothing learned
    ln.learn({"a": 1.0}, True)
    assert ln.snapshot_due(100.0)  # interval passed since the (initial) last snapshot
    ln.take_snapshot(100.0)
    ln.learn({"a": 0.0}, False)
    assert not ln.snapshot_due(105.0) and ln.snapshot_due(111.0)
    ln.learn({"a": 1.0}, True)
    ln.learn({"a": 0.0}, False)
    assert ln.snapshot_due(106.0)  # three since the last snapshot
    m = ln.training_metrics()
    assert 0.0 <= m["roc_auc"] <= 1.0 and m["log_loss"] > 0
    assert all(v != v for v in ln.metrics().values()), "nothing served: NaN, not a guess"


def test_served_quality_is_measured_on_the_served_scores() -> None:
    ln = Learner("purchase", every=100, interval_s=60.0)
    served = [(0.9, True), (0.8, False), (0.3, True), (0.1, False), (0.6, True)]
    for p, y in served:
        ln.learn({"a": float(y)}, y, served=p)  # the feature gives the label away
    m = ln.metrics()
    assert m["roc_auc"] == auc([p for p, _ in served], [y for _, y in served])
    assert m["log_loss"] == log_loss([p for p, _ in served], [y for _, y in served])
    assert 0.0 <= m["calibration_error"] <= 1.0
    assert ln.training_metrics()["roc_auc"] != m["roc_auc"]


def test_points_keep_the_served_score_and_version() -> None:
    s, ex = None, []
    for i, kind in enumerate(["product_view", "add_to_cart", "purchase"]):
        ev = Event(str(i), kind, 10.0 * i, "c1", None, {"product_id": "p", "price": 5.0})
        after = apply(s, ev, StateConfig()).state
        s, new = label_event(s, after, ev, CFG, served={"purchase": (0.1 * (i + 1), 7)})
        ex += new
        if i == 1:  # two points waiting, each with its served score: kept across JSON
            assert [p[2:] for p in s.pending] == [(0.1, 7), (0.2, 7)]
            assert CustomerState.from_dict(orjson.loads(orjson.dumps(s.to_dict()))) == s
    assert [(e.served, e.model_version) for e in ex] == [(0.1, 7), (0.2, 7)]
    assert ex[0].to_dict()["served"] == 0.1


def test_support_and_churn_horizons() -> None:
    cfg = LabelConfig(session_gap_s=100, support_horizon_s=1000, churn_horizon_s=5000)
    s, ex = None, []
    for i, (kind, t) in enumerate([("page_view", 0), ("chat", 500), ("page_view", 2000)]):
        ev = Event(str(i), kind, t, "c1", None, {})
        after = apply(s, ev, SCFG).state
        s, new = label_event(s, after, ev, cfg)
        ex += new
    assert s is not None
    got = [(e.intent, e.y, e.predicted_at) for e in ex if e.intent != "purchase"]
    # the chat at 500 (a new session) is within 1000 of the session start at 0, and a
    # return; the visit at 2000 is a return for the chat's session
    assert got == [("support", True, 0), ("churn", False, 0), ("churn", False, 500)]
    assert [t for t, _ in s.support_points] == [500, 2000]
    assert [t for t, _ in s.churn_points] == [2000]
    later, ex2 = label_timeout(s, 7001.0, cfg)
    assert sorted((e.intent, e.y) for e in ex2) == [
        ("churn", True),
        ("purchase", False),
        ("support", False),
        ("support", False),
    ]
    assert later.support_points == later.churn_points == () and label_due(later, cfg) is None


def test_points_are_stored_as_rows_and_older_named_points_still_label() -> None:
    """Prediction points keep their features as a row (FEATURES order); a state stored
    before rows (named features) loads, and its points become the same examples."""
    import orjson

    from pipeline.features import named

    cfg, s = LabelConfig(), None
    for i, kind in enumerate(["product_view", "product_view", "add_to_cart"]):
        ev = Event(str(i), kind, 10.0 * i, "c1", None, {"product_id": "p", "price": 5.0})
        after = apply(s, ev, StateConfig()).state
        s, _ = label_event(s, after, ev, cfg)
    assert s is not None and len(s.pending) == 3
    raw = orjson.dumps(s.to_dict())
    assert CustomerState.from_dict(orjson.loads(raw)) == s, "rows survive the round trip"
    old = orjson.loads(raw)
    old["pending"] = [[t, named(x)] for t, x in old["pending"]]  # as stored before rows
    assert len(orjson.dumps(old)) > len(raw)
    buy = Event("9", "purchase", 40.0, "c1", None, {"order_value": 5.0})
    for stored in (raw, orjson.dumps(old)):
        before = CustomerState.from_dict(orjson.loads(stored))
        _, ex = label_event(before, apply(before, buy, StateConfig()).state, buy, cfg)
        assert [e.x for e in ex] == [named(x) for _, x in s.pending]
        assert all(e.y and "session_events" in e.x for e in ex)
