"""Every default journey through a real worker on Apache Kafka: the right action
appears, then is superseded as the customer goes on; feedback is joined to its decision;
the control group is held out; a playbook is hot-reloaded (and a bad one refused).

The default playbook runs as shipped, except exploration and the control group, which
are switched off (in a copy) so each journey's action is determined, and the idle
thresholds, which are shortened through BATON_PLAYBOOK_PARAMS."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema_rs
import orjson
import pytest
import yaml

import schemas
from agents.demo import scrape
from agents.settings import Settings
from pipeline.events import format_time
from pipeline.models import sign
from pipeline.playbook import DEFAULT_PATH, load_file
from pipeline.simulator import event_doc
from tests.journeys import default_journeys
from tests.kafkaio import produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DAY = 86400.0
ACTION = jsonschema_rs.validator_for(schemas.load("action.v1"))
FAST = '{"cart_abandon_min": 0.05, "browse_abandon_min": 0.05}'


def playbook_file(tmp_path: Path, name: str = "pb.yaml", **changes: object) -> Path:
    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    doc["arbitration"]["exploration_rate"] = 0.0
    doc["control_group"]["share"] = 0.0
    for k, v in changes.items():
        doc[k] = v
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


class Shop:
    """Events for one test, each customer with its own clock offset."""

    def __init__(self, prefix: str, now: float) -> None:
        self.prefix, self.now, self.msgs, self.n = prefix, now, [], 0

    def ev(self, cid: str, kind: str, ago: float = 0.0, topic: str = "clickstream", **p: object):
        self.n += 1
        doc = event_doc(f"{cid}-{self.n}", kind, self.now - ago, cid, p)
        self.msgs.append((f"{self.prefix}events.{topic}", cid.encode(), orjson.dumps(doc)))


def kpi(action: str, journey: str, group: str) -> tuple[tuple[str, str], ...]:
    return (("action", action), ("group", group), ("journey", journey))


def by_customer(records) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out.setdefault(r.key.decode(), []).append(orjson.loads(r.value))
    return out


def waiter(expect: dict[str, Callable[[list[str]], bool]]):
    def done(records) -> bool:
        got = by_customer(records)
        return all(ok([a["action"] for a in got.get(c, [])]) for c, ok in expect.items())

    return done


def ends_with(*names: str) -> Callable[[list[str]], bool]:
    return lambda seq: seq[-len(names) :] == list(names)


async def test_default_journeys_on_kafka(kafka, prefix, start_worker, tmp_path) -> None:
    pb = playbook_file(tmp_path)
    worker = start_worker(
        BATON_PLAYBOOK_FILE=str(pb),
        BATON_PLAYBOOK_PARAMS=FAST,
        BATON_MAX_LATENESS_S=str(200 * DAY),
    )
    shop = Shop(prefix, time.time())
    s = shop.ev
    default_journeys(s)
    await produce(kafka.bootstrap, shop.msgs)

    expect = {
        "j-welcome": ends_with("welcome_new_customer"),
        "j-cart": ends_with("welcome_new_customer", "abandoned_cart_reminder"),
        "j-browse": ends_with("browse_abandonment"),
        "j-reco": ends_with("next_product_recommendation", "browse_abandonment"),
        "j-support": ends_with("proactive_support"),
        "j-loyal": lambda seq: "loyalty_reward" in seq,
        "j-churn": ends_with("churn_save"),
        "j-xsell": ends_with("cross_sell"),
        "j-nps": ends_with("nps_detractor_followup"),
        "j-loan": ends_with("loan_offer"),
    }
    actions = await read_until(
        kafka.bootstrap, [f"{prefix}actions"], waiter(expect), timeout=90, grace=2
    )
    got = by_customer(actions)
    for cid, ok in expect.items():
        assert ok([a["action"] for a in got.get(cid, [])]), (cid, got.get(cid), worker.log_tail())
    for seq in got.values():
        for a in seq:
            assert ACTION.is_valid(a), a
            assert a["group"] == "treatment" and a["explanation"]["playbook_version"]
    # in-session re-decisioning: each new action names the one it replaces
    cart = got["j-cart"]
    assert cart[-1]["supersedes"] == cart[-2]["decision_id"]
    assert cart[-1]["trigger"]["kind"] == "timer" and cart[-1]["payload"]["cart_value"] == 100.0
    reco = got["j-reco"]
    assert reco[-1]["supersedes"] == reco[-2]["decision_id"]
    assert reco[-2]["channel"] == "web" and reco[-2]["payload"]["category"] == "shoes"
    support = got["j-support"][-1]
    assert support["channel"] == "email"  # agent: no open contact; sms: no opt-in
    assert support["explanation"]["channels_refused"]["proactive_support"] == {
        "agent": "unreachable",
        "sms": "no_consent",
    }

    # the cart customer buys: cross-sell supersedes the reminder, and the reminder
    # converted (a treatment conversion for the abandoned-cart journey)
    shop.msgs.clear()
    shop.now = time.time()
    s("j-cart", "purchase", order_value=100.0)
    await produce(kafka.bootstrap, shop.msgs)
    expect["j-cart"] = ends_with("abandoned_cart_reminder", "cross_sell")
    actions = await read_until(
        kafka.bootstrap, [f"{prefix}actions"], waiter(expect), timeout=60, grace=1
    )
    cart = by_customer(actions)["j-cart"]
    assert cart[-1]["supersedes"] == cart[-2]["decision_id"]
    m = scrape(worker.web_port)
    conv = m["baton_journey_conversions_total"]
    key = (
        ("action", "abandoned_cart_reminder"),
        ("group", "treatment"),
        ("journey", "abandoned_cart"),
    )
    assert conv[key] == 1.0
    decided = m["baton_journey_decisions_total"]
    assert sum(decided.values()) == sum(len(v) for v in by_customer(actions).values())


async def test_feedback_joins_its_decision(kafka, prefix, start_worker, tmp_path) -> None:
    worker = start_worker(
        BATON_PLAYBOOK_FILE=str(playbook_file(tmp_path)),
        BATON_PLAYBOOK_PARAMS=FAST,
        BATON_SNAPSHOT_EVERY="2",
    )
    shop = Shop(prefix, time.time())
    shop.ev("f-1", "outage_notice", topic="service")
    shop.ev("f-2", "survey_response", topic="service", nps=2)
    # an anonymous visitor gets a decision, then logs in as f-3 (their state merges)
    anon = event_doc("x-1", "page_view", time.time(), "", {"url": "/"})
    del anon["customer_id"]
    anon["anonymous_id"] = "anon-x"
    shop.msgs.append((f"{prefix}events.clickstream", b"anon-x", orjson.dumps(anon)))
    await produce(kafka.bootstrap, shop.msgs)
    actions = await read_until(
        kafka.bootstrap, [f"{prefix}actions"], lambda rs: len({r.key for r in rs}) >= 3, timeout=60
    )
    a1, a2, a3 = (by_customer(actions)[c][-1] for c in ("f-1", "f-2", "anon-x"))
    login = event_doc("x-2", "login", time.time(), "f-3", {})
    login["anonymous_id"] = "anon-x"
    await produce(kafka.bootstrap, [(f"{prefix}events.clickstream", b"f-3", orjson.dumps(login))])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if scrape(worker.web_port).get("baton_identity_merges_total", {}).get((), 0) >= 1:
            break
        time.sleep(0.5)

    def fb(a: dict, kind: str, n: int, **extra: object) -> tuple[str, bytes, bytes]:
        doc = {
            "event_id": f"fb-{a['customer_id']}-{n}",
            "schema_version": 1,
            "feedback_type": kind,
            "event_time": format_time(time.time()),
            "customer_id": a["customer_id"],
            "decision_id": a["decision_id"],
            "action": a["action"],
            "channel": a["channel"],
            **extra,
        }
        return (f"{prefix}feedback", a["customer_id"].encode(), orjson.dumps(doc))

    unknown = dict(a1, decision_id="0" * 32)
    msgs = [
        fb(a1, "impression", 1),
        fb(a1, "click", 2),
        fb(a1, "click", 2),  # the same feedback again: a duplicate
        fb(a2, "impression", 1),
        fb(a2, "dismiss", 2),
        fb(unknown, "click", 9),
        fb(a3, "impression", 1),  # keyed by the anonymous id: joined with f-3's state
        (f"{prefix}feedback", b"f-1", b'{"feedback_type": "click"'),
    ]
    await produce(kafka.bootstrap, msgs)
    dead = await read_until(
        kafka.bootstrap,
        [f"{prefix}events.deadletter"],
        lambda rs: len(rs) >= 3,
        timeout=60,
        grace=1,
    )
    reasons = sorted(orjson.loads(r.value)["reason"] for r in dead)
    assert reasons == ["duplicate", "malformed_json", "unknown_decision"]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = scrape(worker.web_port)
        if m.get("baton_model_version", {}).get((("intent", "response"),), 0) >= 2:
            break
        time.sleep(0.5)
    ps, nps = ("proactive_support", "proactive_support"), ("nps_detractor_followup", "nps_followup")
    assert m["baton_journey_exposures_total"][(("action", ps[0]), ("journey", ps[1]))] == 1
    assert m["baton_journey_exposures_total"][(("action", nps[0]), ("journey", nps[1]))] == 1
    assert m["baton_journey_acceptances_total"][(("action", ps[0]), ("journey", ps[1]))] == 1
    assert m["baton_feedback_received_total"][(("type", "dismiss"),)] == 1
    welcome = (("action", "welcome_new_customer"), ("journey", "welcome"))
    assert m["baton_journey_exposures_total"][welcome] == 1
    # one success (the click) and one failure (the dismissal) reached the response models,
    # which were published, verified and loaded
    assert m["baton_training_examples_total"][(("intent", "response"), ("label", "true"))] == 1
    assert m["baton_training_examples_total"][(("intent", "response"), ("label", "false"))] == 1
    assert m["baton_model_version"][(("intent", "response"),)] == 2
    # each joined with the features its decision was sent with: the contextual models
    assert m["baton_response_contexts_total"][(("joined", "true"),)] == 2

    # the dismissed action rests: the same need, later, does not bring it back
    shop.msgs.clear()
    shop.now = time.time()
    shop.ev("f-2", "survey_response", topic="service", nps=1)
    shop.ev("f-2", "page_view", url="/")
    await produce(kafka.bootstrap, shop.msgs)
    time.sleep(3)
    again = await read_until(kafka.bootstrap, [f"{prefix}actions"], lambda rs: False, timeout=3)
    assert [a["action"] for a in by_customer(again)["f-2"]].count("nps_detractor_followup") == 1


async def test_control_group_is_held_out(kafka, prefix, start_worker, tmp_path) -> None:
    pb = playbook_file(tmp_path, control_group={"share": 1.0, "salt": "all"})
    worker = start_worker(BATON_PLAYBOOK_FILE=str(pb), BATON_PLAYBOOK_PARAMS=FAST)
    shop = Shop(prefix, time.time())
    shop.ev("h-1", "add_to_cart", 5, product_id="p", price=50.0)
    await produce(kafka.bootstrap, shop.msgs)
    held = await read_until(
        kafka.bootstrap,
        [f"{prefix}holdout"],
        lambda rs: any(b"abandoned_cart_reminder" in r.value for r in rs),
        timeout=60,
        grace=1,
    )
    doc = orjson.loads(held[-1].value)
    assert (doc["action"], doc["group"], doc["channel"]) == (
        "abandoned_cart_reminder",
        "control",
        None,
    )
    assert ACTION.is_valid(doc)
    shop.msgs.clear()
    shop.now = time.time()
    shop.ev("h-1", "purchase", order_value=50.0)
    await produce(kafka.bootstrap, shop.msgs)
    key = (
        ("action", "abandoned_cart_reminder"),
        ("group", "control"),
        ("journey", "abandoned_cart"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = scrape(worker.web_port)
        if m.get("baton_journey_conversions_total", {}).get(key):
            break
        time.sleep(0.5)
    assert m["baton_journey_conversions_total"][key] == 1.0
    sent = await read_until(kafka.bootstrap, [f"{prefix}actions"], lambda rs: False, timeout=2)
    assert sent == [], "nothing reaches a channel for the control group"


async def test_playbook_hot_reload(kafka, prefix, start_worker, tmp_path) -> None:
    worker = start_worker(BATON_PLAYBOOK_FILE=str(playbook_file(tmp_path)))
    env = dict(worker.env)
    new = playbook_file(tmp_path, "v2.yaml", version="v2")
    out = subprocess.run(
        [sys.executable, "-m", "agents.cli", "playbook", "publish", str(new)],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert b"published playbook v2+" in out.stdout

    def version() -> str:
        m = scrape(worker.web_port)
        live = [dict(k)["version"] for k, v in m.get("baton_playbook_info", {}).items() if v == 1]
        return live[0] if live else ""

    deadline = time.monotonic() + 30
    while not version().startswith("v2+") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert version().startswith("v2+")
    # refused by the worker, v2 staying in force: a valid playbook unsigned, one signed
    # with another key, and a signed one that does not validate
    valid = orjson.loads(load_file(new).to_json()) | {"version": "v3"}
    key = Settings().playbook_signing_key.get_secret_value().encode()  # the worker's
    bad = [
        orjson.dumps(valid),
        sign(valid, b"not-this-deployment's-key"),
        sign({"version": "v3", "actions": [{"id": "x"}]}, key),
    ]
    await produce(kafka.bootstrap, [(f"{prefix}playbook", b"playbook", b) for b in bad])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if scrape(worker.web_port).get("baton_playbooks_refused_total", {}).get((), 0) == 3:
            break
        time.sleep(0.5)
    assert scrape(worker.web_port)["baton_playbooks_refused_total"][()] == 3
    assert version().startswith("v2+")
    log = worker.log.read_text()
    assert log.count("refused playbook from the topic (unreadable signed message") == 1
    assert log.count("refused playbook from the topic (bad signature") == 1
    assert "refused playbook from the topic; keeping v2+" in log  # the one that fails to load
    # decisions now carry v2
    shop = Shop(prefix, time.time())
    shop.ev("v-1", "page_view", url="/")
    await produce(kafka.bootstrap, shop.msgs)
    acts = await read_until(
        kafka.bootstrap, [f"{prefix}actions"], lambda rs: len(rs) >= 1, timeout=30
    )
    assert orjson.loads(acts[0].value)["explanation"]["playbook_version"].startswith("v2+")
