"""The worker's flows in-process, over the in-memory runtime (``agents.runtime.memory``):
recorded streams for every default journey, identity merge, erasure, the feedback join,
duplicates and late events, each asserting the exact sequence of actions, dead letters
and training examples. No broker, no Faust worker: the same flow code the worker runs
(``test_journeys`` and friends run it on Apache Kafka)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client import CollectorRegistry

from agents.runtime.memory import InProcess
from agents.settings import Settings
from pipeline.events import format_time
from pipeline.playbook import DEFAULT_PATH
from pipeline.simulator import event_doc
from tests.journeys import default_journeys

DAY = 86400.0
T = 1_800_000_000.0  # 2027-01-15T08:00:00Z
FAST = {"cart_abandon_min": 0.05, "browse_abandon_min": 0.05}


class Shop:
    """One in-process worker with the default playbook (no exploration, no control
    group, short idle thresholds) and a clock the test moves."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        doc = yaml.safe_load(DEFAULT_PATH.read_text())
        doc["arbitration"]["exploration_rate"] = 0.0
        doc["control_group"]["share"] = 0.0
        pb = tmp_path / "pb.yaml"
        pb.write_text(yaml.safe_dump(doc))
        s = Settings(playbook_file=pb, playbook_params=FAST, max_lateness_s=200 * DAY, **settings)
        self.now, self.n = T, 0
        self.registry = CollectorRegistry()
        self.run = InProcess(s, self.registry, clock=lambda: self.now)

    def ev(
        self, cid: str, kind: str, ago: float = 0.0, topic: str = "clickstream", **p: Any
    ) -> dict[str, Any]:
        self.n += 1
        doc = event_doc(f"{cid}-{self.n}", kind, self.now - ago, cid, p)
        self.send(f"events.{topic}", cid.encode(), doc)
        return doc

    def send(self, topic: str, key: bytes, doc: Any) -> None:
        self.run.produce(topic, key, doc if isinstance(doc, bytes) else orjson.dumps(doc))

    def wait(self, seconds: float) -> None:
        """Let time pass, the timer running every 5 s as in the worker."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + 5.0)
            self.run.tick(self.now)

    def actions(self, topic: str = "actions") -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for a in self.run.values(topic):
            out.setdefault(a["customer_id"], []).append(a["action"])
        return out

    def dead(self) -> list[str]:
        return [d["reason"] for d in self.run.values("events.deadletter")]

    def examples(self) -> list[tuple[str, str, bool]]:
        """Intent and response examples (not the decision examples they join with)."""
        return [
            (e.get("intent", "response"), e.get("customer_id") or e["action"], e["y"])
            for e in self.run.values("training-examples")
            if e.get("kind") != "decision"
        ]

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def test_every_default_journey(tmp_path: Path) -> None:
    shop = Shop(tmp_path)
    s = shop.ev
    default_journeys(s)
    shop.wait(60)  # the idle thresholds (3 s) pass: the timer decides the abandoners

    welcome = "welcome_new_customer"
    assert shop.actions() == {
        "j-welcome": [welcome],
        "j-cart": [welcome, "abandoned_cart_reminder"],
        "j-browse": [welcome, "browse_abandonment"],
        "j-reco": [welcome, "next_product_recommendation", "browse_abandonment"],
        "j-support": [welcome, "proactive_support"],
        "j-loyal": ["cross_sell"] * 4 + ["loyalty_reward"],
        "j-churn": ["cross_sell", "cross_sell", "churn_save"],
        "j-xsell": [welcome, "cross_sell"],
        "j-nps": [welcome, "nps_detractor_followup"],
        "j-loan": [welcome, "next_product_recommendation", "loan_offer"],
    }
    acts = list(shop.run.values("actions"))
    for cid in ("j-cart", "j-reco"):  # in-session re-decisioning names what it replaces
        prev, new = [a for a in acts if a["customer_id"] == cid][-2:]
        assert new["supersedes"] == prev["decision_id"]
    cart = [a for a in acts if a["customer_id"] == "j-cart"][-1]
    assert cart["trigger"]["kind"] == "timer" and cart["payload"]["cart_value"] == 100.0
    assert shop.dead() == []
    # delayed labels, in the order time settled them: returns within the churn horizon
    # (false), j-xsell's cart point bought (true), sessions that ended without a
    # purchase (false); then, on the timer, horizons that passed: no contact within
    # 7 days (support false), no return within 30 (j-churn's churn true)
    assert shop.examples() == [
        *[("churn", "j-loyal", False)] * 5,
        ("churn", "j-churn", False),
        ("purchase", "j-xsell", True),
        ("purchase", "j-nps", False),
        ("churn", "j-nps", False),
        *[("purchase", "j-loan", False)] * 2,
        ("churn", "j-loan", False),
        *[("support", "j-churn", False)] * 2,
        ("churn", "j-churn", True),
        *[("support", "j-loyal", False)] * 2,
    ]
    # the cart customer buys: cross-sell supersedes the reminder, which converted
    s("j-cart", "purchase", order_value=100.0)
    assert shop.actions()["j-cart"][-2:] == ["abandoned_cart_reminder", "cross_sell"]
    conv = "baton_journey_conversions_total"
    labels = {"action": "abandoned_cart_reminder", "journey": "abandoned_cart"}
    assert shop.metric(conv, group="treatment", **labels) == 1.0
    decided = sum(len(v) for v in shop.actions().values())
    assert shop.metric("baton_actions_total", action=welcome) == 8
    assert decided == 26


def test_identity_merge_moves_the_anonymous_state(tmp_path: Path) -> None:
    shop = Shop(tmp_path)
    anon = event_doc("x-1", "add_to_cart", T, "", {"product_id": "p", "price": 30.0})
    del anon["customer_id"]
    anon["anonymous_id"] = "anon-x"
    shop.send("events.clickstream", b"anon-x", anon)
    assert shop.actions() == {"anon-x": ["welcome_new_customer"]}
    login = event_doc("x-2", "login", T + 1, "c-3", {})
    login["anonymous_id"] = "anon-x"
    shop.send("events.clickstream", b"c-3", login)
    run = shop.run
    assert run.identities == {b"anon-x": b"c-3"}
    assert run.states.get(b"anon-x") is None
    state = run.states.get(b"c-3")
    assert state is not None and state.merged_from == ("anon-x",)
    assert state.cart.value == 30.0, "the anonymous cart came along"
    assert shop.metric("baton_identity_merges_total") == 1
    assert shop.metric("baton_identity_links_total") == 1
    # the route: the anonymous events through identity-events, the merge in two steps
    kinds = [
        next(iter(sorted(d.keys() & {"event", "merge_into", "absorb"})))
        for d in run.values("customer-events")
    ]
    assert kinds == ["event", "merge_into", "event", "absorb"]
    # another customer claiming the same anonymous id is refused
    other = dict(login, event_id="x-3", customer_id="c-4")
    shop.send("events.clickstream", b"c-4", other)
    assert shop.dead() == ["identity_conflict"]


def test_erasure_deletes_state_and_links(tmp_path: Path) -> None:
    shop = Shop(tmp_path)
    anon = event_doc("e-1", "page_view", T, "", {"url": "/"})
    del anon["customer_id"]
    anon["anonymous_id"] = "anon-e"
    shop.send("events.clickstream", b"anon-e", anon)
    login = dict(event_doc("e-2", "login", T + 1, "c-e", {}), anonymous_id="anon-e")
    shop.send("events.clickstream", b"c-e", login)
    shop.ev("c-e", "erase_request")
    run = shop.run
    assert run.states.get(b"c-e") is None and run.identities == {}
    (audit,) = run.values("audit")
    assert audit["customer_id"] == "c-e" and audit["state_deleted"] is True
    assert audit["anonymous_ids_unlinked"] == 1 and audit["stores"] == ["customers", "identities"]
    assert shop.metric("baton_erasures_total") == 1
    shop.ev("c-e", "erase_request")  # again: nothing left, still confirmed
    assert [a["state_deleted"] for a in run.values("audit")] == [True, False]


def _feedback(a: dict[str, Any], kind: str, n: int, at: float) -> dict[str, Any]:
    return {
        "event_id": f"fb-{a['customer_id']}-{n}",
        "schema_version": 1,
        "feedback_type": kind,
        "event_time": format_time(at),
        "customer_id": a["customer_id"],
        "decision_id": a["decision_id"],
        "action": a["action"],
        "channel": a["channel"],
    }


def test_feedback_joins_its_decision(tmp_path: Path) -> None:
    shop = Shop(tmp_path)
    shop.ev("f-1", "outage_notice", topic="service")
    shop.ev("f-2", "survey_response", topic="service", nps=2)
    a1, a2 = (
        next(a for a in shop.run.values("actions") if a["customer_id"] == c) for c in ("f-1", "f-2")
    )
    assert (a1["action"], a2["action"]) == ("proactive_support", "nps_detractor_followup")
    unknown = dict(a1, decision_id="0" * 32)
    for a, kind, n in [
        (a1, "impression", 1),
        (a1, "click", 2),
        (a1, "click", 2),  # the same feedback again: a duplicate
        (a2, "impression", 1),
        (a2, "dismiss", 2),
        (unknown, "click", 9),
    ]:
        shop.send("feedback", a["customer_id"].encode(), _feedback(a, kind, n, T + n))
    shop.send("feedback", b"f-1", b'{"feedback_type": "click"')
    assert shop.dead() == ["duplicate", "unknown_decision", "malformed_json"]
    responses = [x for x in shop.examples() if x[0] == "response"]
    assert responses == [
        ("response", "proactive_support", True),
        ("response", "nps_detractor_followup", False),
    ]
    exposures = "baton_journey_exposures_total"
    assert shop.metric(exposures, action="proactive_support", journey="proactive_support") == 1
    assert shop.metric("baton_feedback_received_total", type="dismiss") == 1
    # the dismissed action rests: the same need, later, does not bring it back
    shop.now += 60
    shop.ev("f-2", "survey_response", topic="service", nps=1)
    shop.ev("f-2", "page_view", url="/")
    assert shop.actions()["f-2"].count("nps_detractor_followup") == 1


async def test_the_learner_joins_an_outcome_with_the_features_of_its_decision(
    tmp_path: Path,
) -> None:
    """Each action sent is announced on ``training-examples`` with its features and base
    propensity; its outcome names the decision; the learner joins the two, so the
    action's contextual model learns it (``baton_response_contexts_total``)."""
    import jsonschema_rs

    from agents.learning import Learners
    from agents.metrics import Metrics
    from agents.models import ModelRegistry
    from schemas import load

    shop = Shop(tmp_path)
    shop.ev("j-1", "outage_notice", topic="service")
    (a,) = [a for a in shop.run.values("actions") if a["customer_id"] == "j-1"]
    for kind, n in (("impression", 1), ("click", 2)):
        shop.send("feedback", b"j-1", _feedback(a, kind, n, T + n))
    docs = [e for e in shop.run.values("training-examples") if "kind" in e]
    mine = [e for e in docs if e["decision_id"] == a["decision_id"]]
    assert [(e["kind"], e["action"]) for e in mine] == [
        ("decision", "proactive_support"),
        ("response", "proactive_support"),
    ]
    decision, response = mine
    assert decision["x"]["session_events"] >= 1 and 0 < decision["base"] < 1, decision
    assert response["y"] is True
    validator = jsonschema_rs.validator_for(load("training-example.v1"))
    for doc in docs:
        validator.validate(doc)

    served = a["explanation"]["arbitration"]["proactive_support"]["propensity"]
    assert decision["served"] == served

    s, registry = Settings(snapshot_every=2), CollectorRegistry()
    metrics, topic = Metrics.create(registry), Topic()
    learners = Learners(s, metrics, ModelRegistry(s, metrics), models_topic=topic)
    orphan = {"kind": "response", "action": "proactive_support", "y": False}
    for doc in (*docs, orphan):
        await learners.one(doc)
    rm = learners.responses
    assert rm is not None and rm.outcomes("proactive_support") == 2
    assert rm.context["proactive_support"][1] == [1]  # the joined one only
    joined = "baton_response_contexts_total"
    assert registry.get_sample_value(joined, {"joined": "true"}) == 1
    assert registry.get_sample_value(joined, {"joined": "false"}) == 1
    # the response models' quality is that of the propensities served (one pair: NaN)
    assert list(learners.response_served) == [(served, True)] and topic.sent == [b"response"]
    quality = {"intent": "response", "metric": "log_loss"}
    assert registry.get_sample_value("baton_model_quality", quality) == pytest.approx(
        -math.log(served)
    )
    per_action = {"action": "proactive_support", "metric": "log_loss"}
    assert registry.get_sample_value("baton_response_model_quality", per_action) == pytest.approx(
        -math.log(served)
    )
    assert list(learners.served_by_action) == ["proactive_support"]
    assert len(learners.contexts) == len([d for d in docs if d["kind"] == "decision"]) - 1


class Topic:
    """A stand-in for the learner's models topic: the keys sent to it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append(key)


def test_duplicates_and_late_events(tmp_path: Path) -> None:
    shop = Shop(tmp_path, max_future_s=600.0)
    first = shop.ev("d-1", "page_view", url="/")
    shop.send("events.clickstream", b"d-1", first)  # the same event again
    shop.ev("d-1", "page_view", 201 * DAY, url="/old")  # older than the lateness bound
    shop.ev("d-1", "page_view", -3600, url="/future")  # an hour ahead of the clock
    shop.send("events.clickstream", b"d-1", b"")
    assert shop.dead() == ["duplicate", "too_late", "future_timestamp", "empty"]
    state = shop.run.states.get(b"d-1")
    assert state is not None and state.counts == {"page_view": 1}
    assert shop.actions() == {"d-1": ["welcome_new_customer"]}
    dup = next(shop.run.values("events.deadletter"))
    assert dup["event_id"] == first["event_id"]
    where = {"topic": "events.clickstream", "partition": shop.run.partition_of(b"d-1")}
    assert dup["source"] == {**where, "offset": 1}


def test_a_session_labels_its_prediction_points(tmp_path: Path) -> None:
    shop = Shop(tmp_path)
    for i in range(3):
        shop.ev("l-1", "product_view", 30 - i, product_id=f"p{i}", category="c")
    shop.ev("l-1", "purchase", 10, order_value=12.0)
    for i in range(2):
        shop.ev("l-2", "product_view", 30 - i, product_id=f"p{i}", category="c")
    shop.wait(1800 + 60)  # l-2's session ends without a purchase
    purchase = [x for x in shop.examples() if x[0] == "purchase"]
    assert purchase == [("purchase", "l-1", True)] * 3 + [("purchase", "l-2", False)] * 2


@pytest.mark.parametrize("partitions", [1, 4])
def test_the_route_does_not_change_the_outcome(tmp_path: Path, partitions: int) -> None:
    """Events decided on the direct path or through the re-keying hop give the same
    actions (the hop is taken when the source partition is not the key's)."""
    shop = Shop(tmp_path, partitions=partitions)
    shop.ev("r-1", "add_to_cart", 5, product_id="p", price=20.0)
    shop.wait(30)
    assert shop.actions() == {"r-1": ["welcome_new_customer", "abandoned_cart_reminder"]}


def test_action_latency_runs_to_the_action_sent(tmp_path: Path) -> None:
    """Each action sent is timed once, from its event's own time and from the source
    record's Kafka timestamp (here none: the worker's clock), to the send; a timer
    decision from its tick. With every message's stages timed, the two events are
    decoded once each and decided with the ticks."""
    shop = Shop(tmp_path, stage_sample=1)
    shop.ev("l-1", "page_view", 0.25, url="/")  # welcome, on the event
    shop.ev("l-1", "add_to_cart", product_id="p1", price=10.0, quantity=1)
    e2a, r2a = "baton_event_to_action_seconds", "baton_receive_to_action_seconds"
    assert shop.metric(f"{e2a}_count", trigger="event") == 1
    assert shop.metric(f"{e2a}_sum", trigger="event") == pytest.approx(0.25)
    assert shop.metric(f"{r2a}_count", trigger="event") == 1
    assert shop.metric(f"{r2a}_sum", trigger="event") == 0.0
    shop.wait(10)  # the cart reminder, on a tick: sent as the tick is made
    assert shop.actions() == {"l-1": ["welcome_new_customer", "abandoned_cart_reminder"]}
    assert shop.metric(f"{e2a}_count", trigger="timer") == 1
    assert shop.metric(f"{e2a}_sum", trigger="timer") == 0.0
    assert shop.metric("baton_stage_seconds_count", stage="decode") == 2
    assert shop.metric("baton_stage_seconds_count", stage="decide") >= 3


def test_received_at_is_the_records_kafka_timestamp() -> None:
    from agents.outbox import received_at
    from agents.runtime import Where

    class Msg:
        def __init__(self, timestamp: Any) -> None:
            self.timestamp = timestamp

    assert received_at(Msg(99.5), now=100.0) == 99.5
    assert received_at(Msg(101.0), now=100.0) == 100.0  # a producer clock ahead
    assert received_at(Msg(0), now=100.0) == 100.0  # no timestamp
    assert received_at(Where("t", 0, 0), now=100.0) == 100.0
