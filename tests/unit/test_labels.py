"""Delayed labels: purchase -> true, session end (next session or timeout) -> false."""

from __future__ import annotations

from pipeline.events import Event
from pipeline.labels import LabelConfig, label_due, label_event, label_timeout
from pipeline.learning import Learner
from pipeline.state import CustomerState, StateConfig, apply

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
    assert [(e.y, e.predicted_at, e.labelled_at) for e in ex] == [
        (False, 10, 500),
        (False, 20, 500),
    ]
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
    assert label_due(closed, CFG) is None


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
    m = ln.metrics()
    assert 0.0 <= m["roc_auc"] <= 1.0 and m["log_loss"] > 0
