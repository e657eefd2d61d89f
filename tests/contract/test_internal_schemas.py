"""The internal messages agree with their schemas: every message the flows put on
``customer-events``, ``identity-events`` and ``training-examples`` in a recorded run
(every kind, every route) validates, and every typed message round-trips its wire form."""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import orjson
import pytest
from prometheus_client import CollectorRegistry

import schemas
from agents.runtime.memory import InProcess
from agents.settings import Settings
from pipeline.events import Event
from pipeline.messages import Absorb, EventIn, Expire, FeedbackIn, MergeInto, Tick, Unlink, parse
from pipeline.simulator import event_doc

T = 1_800_000_000.0


def validator(name: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(schemas.load(name), validate_formats=True)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> InProcess:
    """A run that sends every kind of internal message."""
    clock = [T]
    s = Settings(data_dir=tmp_path_factory.mktemp("d"), state_retention_s=3600.0)
    run = InProcess(s, CollectorRegistry(), clock=lambda: clock[0])
    send = lambda key, doc: run.produce("events.clickstream", key, orjson.dumps(doc))  # noqa: E731
    anon = event_doc("a-1", "add_to_cart", T, "", {"product_id": "p", "price": 3.0})
    del anon["customer_id"]
    send(b"anon-1", dict(anon, anonymous_id="anon-1"))
    send(b"c-1", dict(event_doc("a-2", "login", T, "c-1", {}), anonymous_id="anon-1"))
    send(b"c-2", event_doc("a-5", "product_view", T, "c-2", {"product_id": "q"}))
    send(b"c-2", event_doc("a-3", "purchase", T, "c-2", {"order_value": 5.0}))
    action = next(run.values("actions"))
    fb = {
        "event_id": "fb-1",
        "schema_version": 1,
        "feedback_type": "dismiss",
        "event_time": "2027-01-15T08:00:01Z",
        "customer_id": action["customer_id"],
        "decision_id": action["decision_id"],
        "action": action["action"],
        "channel": action["channel"],
    }
    run.produce("feedback", action["customer_id"].encode(), orjson.dumps(fb))
    clock[0] = T + 7200
    run.tick(T + 7200)  # ticks; c-2 idle past the retention: expire
    send(b"c-1", event_doc("a-4", "erase_request", T + 7201, "c-1", {}))  # unlinks anon-1
    return run


@pytest.mark.parametrize(
    ("topic", "schema", "kinds"),
    [
        (
            "customer-events",
            "customer-message.v1",
            {"event", "tick", "expire", "feedback", "merge_into", "absorb"},
        ),
        ("identity-events", "identity-message.v1", {"event", "feedback", "unlink"}),
        ("training-examples", "training-example.v1", {"intent", "kind"}),
    ],
)
def test_every_internal_message_sent_validates(
    recorded: InProcess, topic: str, schema: str, kinds: set[str]
) -> None:
    v, seen = validator(schema), set()
    for doc in recorded.values(topic):
        v.validate(doc)
        seen |= doc.keys() & kinds
    assert seen == kinds, f"the recorded run sends every kind on {topic}"


def test_events_inside_internal_messages_are_event_v1(recorded: InProcess) -> None:
    v = validator("event.v1")
    for topic in ("customer-events", "identity-events"):
        for doc in recorded.values(topic):
            if "event" in doc:
                v.validate(doc["event"])


def test_typed_messages_round_trip_and_validate(tmp_path: Path) -> None:
    ev = Event("e", "page_view", T, "c", None, {"url": "/"})
    src = ("baton.events.clickstream", 0, 7)
    fb = {"event_id": "f", "feedback_type": "click"}
    customer, identity = validator("customer-message.v1"), validator("identity-message.v1")
    for m in (EventIn(ev, T, src), Tick(T, T), Expire(T, T), FeedbackIn(fb, T, src),
              MergeInto("c", T), Absorb(None, "anon", T)):  # fmt: skip
        wire = orjson.loads(orjson.dumps(m.to_dict()))
        customer.validate(wire)
        assert parse(wire) == m
    wire = orjson.loads(orjson.dumps(Unlink().to_dict()))
    identity.validate(wire)
    assert parse(wire) == Unlink()
    assert not customer.is_valid(wire), "unlink travels on identity-events only"


def test_model_snapshots_on_the_topic_are_model_snapshot_v1() -> None:
    from pipeline.models import IntentModel, sign
    from pipeline.response import ResponseModels

    v = validator("model-snapshot.v1")
    m = IntentModel("purchase")
    for i in range(20):
        m.learn({"cart_value": float(i % 4), "has_cart": 1.0}, i % 4 > 1)
    rm = ResponseModels()
    for y in (True, False, False):
        rm.learn("abandoned_cart_reminder", y)
    contextual = ResponseModels()  # outcomes learned with the decision's features
    for i in range(10):
        contextual.learn("cross_sell", i % 3 == 0, {"cart_value": float(i)}, base=0.2)
    assert "context" in contextual.snapshot() and "context" not in rm.snapshot()
    for snap in (IntentModel("churn").snapshot(), m.snapshot(), rm.snapshot()):
        v.validate(orjson.loads(sign(snap, b"k")))
    v.validate(orjson.loads(sign(contextual.snapshot(), b"k")))
