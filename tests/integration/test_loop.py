"""The whole loop on a real Apache Kafka broker with the real worker process.

A few thousand events from 800 customers in four scripted journeys, plus one malformed
message in ten (every known kind) and re-sent duplicates. Asserts that every valid
event is counted in state (read back from the table's changelog topic), every bad one
is on the dead-letter topic with its reason and original bytes, exactly the expected
actions arrive once each, and /metrics agrees and passes ``promtool check metrics``.
"""

from __future__ import annotations

import base64
import subprocess
import time
import urllib.request
from collections import Counter

import jsonschema_rs
import orjson
import pytest

import schemas
from agents.demo import scrape
from pipeline.simulator import BAD_KINDS, bad_message, event_doc
from tests.kafkaio import latest_by_key, produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]
MIN = 60.0
ABANDONED_CART = "abandoned_cart_reminder"


def ev(eid: str, kind: str, t: float, cid: str, **props: object) -> dict[str, object]:
    return event_doc(eid, kind, t, cid, props)


def journey(i: int, now: float) -> tuple[str, list[tuple[str, dict[str, object]]], float | None]:
    """Customer i's events (topic kind, event) and the cart time a reminder is due for."""
    cid, n = f"c{i:04d}", i % 4
    e = lambda k, kind, dt, **p: ev(f"{cid}-{k}", kind, now + dt, cid, **p)  # noqa: E731
    item = {"product_id": f"p{i % 50}", "price": 10.0 + i % 7, "quantity": 1}
    if n == 0:  # leaves the cart, comes back 35 min later: reminded on that event
        evs = [
            e(1, "add_to_cart", -40 * MIN, **item),
            e(2, "page_view", -35 * MIN, url="/"),
            e(3, "product_view", -20 * MIN, **item),
            e(4, "page_view", -5 * MIN, url="/x"),
        ]
        return cid, [("clickstream", x) for x in evs], -40 * MIN
    if n == 1:  # buys: nothing to remind
        evs = [
            e(1, "add_to_cart", -10 * MIN, **item),
            e(2, "product_view", -8 * MIN, **item),
            e(3, "purchase", -5 * MIN, order_value=item["price"]),
        ]
        return cid, [("clickstream", x) for x in evs], None
    if n == 2:  # cart too fresh; also talks to support
        evs = [
            ("clickstream", e(1, "page_view", -3 * MIN, url="/")),
            ("clickstream", e(2, "add_to_cart", -2 * MIN, **item)),
            ("service", e(3, "chat", -1 * MIN)),
        ]
        return cid, evs, None
    # n == 3: leaves with a full cart and never returns: the timer reminds
    evs = [e(1, "product_view", -50 * MIN, **item), e(2, "add_to_cart", -45 * MIN, **item)]
    return cid, [("clickstream", x) for x in evs], -45 * MIN


async def test_loop_on_real_kafka(kafka, prefix, start_worker) -> None:
    worker = start_worker()
    now = time.time()
    msgs, valid, expected_actions = [], Counter(), {}
    for i in range(800):
        cid, evs, cart_dt = journey(i, now)
        for topic, doc in evs:
            msgs.append((f"{prefix}events.{topic}", cid.encode(), orjson.dumps(doc)))
            valid[cid] += 1
        if cart_dt is not None:
            expected_actions[cid] = ABANDONED_CART
    kinds = sorted(BAD_KINDS)
    bad = [bad_message(kinds[j % len(kinds)], now, f"bad{j}".encode()) for j in range(288)]
    dups = [msgs[j * 7] for j in range(24)]  # the same events again, later
    expected_dead = Counter(m.expected_reason for m in bad) + Counter({"duplicate": len(dups)})
    all_msgs = msgs + [(f"{prefix}events.clickstream", m.key, m.value) for m in bad]
    await produce(kafka.bootstrap, all_msgs)
    await produce(kafka.bootstrap, dups)

    n_dead = sum(expected_dead.values())
    dead = await read_until(
        kafka.bootstrap,
        [f"{prefix}events.deadletter"],
        lambda rs: len(rs) >= n_dead,
        timeout=180,
        grace=1,
    )
    actions = await read_until(
        kafka.bootstrap,
        [f"{prefix}actions"],
        lambda rs: len(rs) >= len(expected_actions),
        timeout=120,
        grace=3,
    )
    assert len(msgs) + len(bad) + len(dups) >= 2700, "a few thousand events"

    # dead letters: each with its reason, the original bytes and where it came from
    envelopes = [orjson.loads(r.value) for r in dead]
    dl_schema = jsonschema_rs.validator_for(schemas.load("deadletter.v1"))
    assert all(dl_schema.is_valid(e) for e in envelopes)
    assert Counter(e["reason"] for e in envelopes) == expected_dead, worker.log_tail()
    raw_bad = Counter(
        base64.b64decode(e["raw_base64"]) for e in envelopes if e["reason"] != "duplicate"
    )
    assert raw_bad == Counter(m.value for m in bad)
    assert all(e["source"]["topic"].startswith(prefix) for e in envelopes)

    # actions: exactly the expected decisions, once each, valid against the contract
    docs = [orjson.loads(r.value) for r in actions]
    action_schema = jsonschema_rs.validator_for(schemas.load("action.v1"))
    assert all(action_schema.is_valid(d) for d in docs)
    got = {d["customer_id"]: d["action"] for d in docs}
    assert len(docs) == len(got), "one action per customer, no repeats"
    assert got == expected_actions
    assert {r.key.decode() for r in actions} == set(expected_actions)
    # journey 3 never comes back: only the timer can remind it. Journey 0 is reminded by
    # its return event, or by the timer if a tick gets between its events (both fine)
    by_journey = {(int(d["customer_id"][1:]) % 4, d["trigger"]["kind"]) for d in docs}
    assert {k for j, k in by_journey if j == 3} == {"timer"}
    assert {j for j, _ in by_journey} == {0, 3}

    # state: every valid event counted, read back from the table's changelog topic
    changelog = await read_until(
        kafka.bootstrap, [f"{prefix}worker-customers-changelog"], lambda rs: False, timeout=5
    )
    state = {k.decode(): orjson.loads(v) for k, v in latest_by_key(changelog).items()}
    counted = {cid: sum(s["counts"].values()) for cid, s in state.items()}
    assert counted == dict(valid)

    # metrics agree, and pass the real Prometheus linter
    m = scrape(worker.web_port)
    assert sum(m["baton_events_processed_total"].values()) == sum(valid.values())
    by_reason = {dict(k)["reason"]: v for k, v in m["baton_deadletters_total"].items()}
    assert by_reason == {k: float(v) for k, v in expected_dead.items()}
    assert m["baton_actions_total"][(("action", ABANDONED_CART),)] == len(expected_actions)
    # every action sent is timed once Kafka acknowledged it, from the event and the source
    for name in ("baton_event_to_action_seconds_count", "baton_receive_to_action_seconds_count"):
        assert sum(m[name].values()) == len(expected_actions), name
    assert m["baton_stage_seconds_count"][(("stage", "send"),)] > 0
    assert m["process_resident_memory_bytes"][()] > 0
    assert "baton_rebalances_total" in m and "baton_consumer_lag" in m
    for url, status in (("healthz", 200), ("readyz", 200)):
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/{url}") as r:
            assert r.status == status
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/metrics") as r:
        text = r.read()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
