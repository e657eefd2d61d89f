"""The learning loop on a real broker: sessions that buy and sessions that lapse become
labelled examples; the learner learns them, publishes signed snapshots and the quality
of the scores served, and the running worker loads them (its model version follows the
examples learned)."""

from __future__ import annotations

import asyncio
import math
import time

import orjson
import pytest

from agents.demo import scrape, stop_worker
from pipeline.evaluation import auc
from pipeline.simulator import event_doc
from tests.kafkaio import produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_examples_learner_snapshot_reload(kafka, prefix, start_worker) -> None:
    worker = start_worker(BATON_SNAPSHOT_EVERY="20", BATON_SNAPSHOT_INTERVAL_S="2")
    now, topic = time.time(), f"{prefix}events.clickstream"
    msgs = []
    for i in range(40):
        cid, buys = f"l{i:02d}", i % 2 == 0
        t0 = now - 7200 + i
        item = {"product_id": "p", "price": 20.0 + i, "category": "lamps"}
        kinds = ["product_view", "add_to_cart", "product_view"]
        msgs += [
            (
                topic,
                cid.encode(),
                orjson.dumps(event_doc(f"{cid}-{k}", kind, t0 + 60 * k, cid, item)),
            )
            for k, kind in enumerate(kinds)
        ]
        if buys:
            last = event_doc(f"{cid}-buy", "purchase", t0 + 300, cid, {"order_value": 20.0})
        else:  # comes back an hour later: a new session, the old one lapsed unbought
            last = event_doc(f"{cid}-back", "page_view", t0 + 3600, cid, {"url": "/"})
        msgs.append((topic, cid.encode(), orjson.dumps(last)))
    await produce(kafka.bootstrap, msgs)

    # 20 sessions x 3 points labelled true, 20 x 3 false (+ the returning visits' points,
    # closed by the timer as their new session idles out)
    # and each returning visitor settles churn for its first session: it came back
    def enough(rs: list) -> bool:
        keys = [r.key for r in rs]
        return keys.count(b"purchase") >= 140 and keys.count(b"churn") >= 20

    examples = await read_until(
        kafka.bootstrap, [f"{prefix}training-examples"], enough, timeout=90, grace=2
    )
    # the actions sent are announced for the response learner (keyed response, no feedback)
    announced = [orjson.loads(r.value) for r in examples if r.key == b"response"]
    assert all(d["kind"] == "decision" for d in announced)
    examples = [r for r in examples if r.key != b"response"]
    docs = [orjson.loads(r.value) for r in examples]
    purchase = [d for d in docs if d["intent"] == "purchase"]
    churn = [d for d in docs if d["intent"] == "churn"]
    assert len(purchase) == 140 and sum(d["y"] for d in purchase) == 60
    assert len(churn) == 20 and not any(d["y"] for d in churn)
    assert {r.key for r in examples} == {b"purchase", b"churn"}
    assert all(
        d["labelled_at"] >= d["predicted_at"] and d["intent"] == r.key.decode()
        for d, r in zip(docs, examples, strict=True)
    )

    version = (("intent", "purchase"),)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = scrape(worker.web_port)
        if m.get("baton_model_version", {}).get(version) == 140:
            break
        await asyncio.sleep(0.3)
    m = scrape(worker.web_port)
    assert m["baton_model_version"][version] == 140, worker.log_tail()
    assert m["baton_training_examples_total"][(("intent", "purchase"), ("label", "true"))] == 60

    def gauge(name: str) -> dict[str, float]:
        return {
            dict(k)["metric"]: v
            for k, v in m[name].items()
            if dict(k)["intent"] == "purchase"  # churn saw one class only: its AUC is NaN
        }

    training = gauge("baton_model_training_quality")
    assert 0.0 <= training["roc_auc"] <= 1.0 and training["log_loss"] > 0
    # the exported quality is that of the scores served, as the examples carry them:
    # here the points were mostly made before any model was loaded (no served score)
    served = [(d["served"], d["y"]) for d in purchase if "served" in d]
    quality = gauge("baton_model_quality")
    print(f"{len(served)} of {len(purchase)} purchase examples had a served score")
    if len({y for _, y in served}) == 2:
        expected = auc([p for p, _ in served], [y for _, y in served])
        assert quality["roc_auc"] == pytest.approx(expected, abs=1e-9)
    else:
        assert math.isnan(quality["roc_auc"]), "no served pair of both labels: no AUC"

    # a restarted worker starts from the last snapshot, not from scratch: it loads
    # version 140, and its learner goes on from there
    stop_worker(worker.proc)
    again = start_worker(BATON_SNAPSHOT_EVERY="3", BATON_SNAPSHOT_INTERVAL_S="2")
    await until_version(again.web_port, 140)
    buyer = [
        orjson.dumps(event_doc(f"z-{k}", kind, now - 600 + k, "z", {"product_id": "p"}))
        for k, kind in enumerate(["product_view", "add_to_cart", "product_view", "purchase"])
    ]
    await produce(kafka.bootstrap, [(topic, b"z", raw) for raw in buyer])
    await until_version(again.web_port, 143)

    # sessions decided with version 143 loaded: each point keeps the score it served, and
    # the exported quality is the ROC-AUC of those scores (computed here independently)
    wave = []
    for i in range(12):
        cid, t0 = f"w{i:02d}", now - 5000 + 10 * i
        item = {"product_id": f"q{i % 3}", "price": 5.0 + 7 * i, "category": "lamps"}
        kinds = ["product_view", "add_to_cart"][: 1 + i % 2] + ["product_view"] * (i % 3)
        evs = [event_doc(f"{cid}-{k}", kd, t0 + 30 * k, cid, item) for k, kd in enumerate(kinds)]
        if i % 3 == 0:
            evs.append(event_doc(f"{cid}-buy", "purchase", t0 + 200, cid, {"order_value": 5.0}))
        else:  # comes back later: the session lapsed
            evs.append(event_doc(f"{cid}-back", "page_view", t0 + 3600, cid, {"url": "/"}))
        wave += [(topic, cid.encode(), orjson.dumps(e)) for e in evs]
    await produce(kafka.bootstrap, wave)
    later = await read_until(
        kafka.bootstrap,
        [f"{prefix}training-examples"],
        lambda rs: sum(1 for r in rs if r.key == b"purchase" and b'"w' in r.value) >= 12,
        timeout=60,
        grace=4,  # the returning visits' own points, closed by the timer
    )
    # what the restarted worker's learner learned: every purchase example after those of
    # the first phase (some of which may have been served too, if a snapshot was loaded
    # while the backlog was still being read)
    first = {(r.partition, r.offset) for r in examples}
    after = [r for r in later if r.key == b"purchase" and (r.partition, r.offset) not in first]
    docs = [orjson.loads(r.value) for r in after]
    mine = [d for d in docs if d["customer_id"].startswith("w")]
    assert {d.get("model_version") for d in mine} == {143}, "every point scored by 143"
    assert {d.get("model_version") for d in docs if d["customer_id"] == "z"} == {140}
    assert {d["customer_id"][0] for d in docs} == {"z", "w"}
    served = [(d["served"], d["y"]) for d in docs]  # z's points, by 140, and this wave's
    assert {y for _, y in served} == {True, False} and len(served) == len(mine) + 3
    await until_version(again.web_port, 143 + len(mine))
    m = scrape(again.web_port)
    exported = m["baton_model_quality"][(("intent", "purchase"), ("metric", "roc_auc"))]
    expected = auc([p for p, _ in served], [y for _, y in served])
    print(f"served ROC-AUC {expected:.3f} over {len(served)} examples; exported {exported:.3f}")
    assert exported == pytest.approx(expected, abs=1e-9)


async def until_version(port: int, version: int, timeout: float = 60.0) -> None:
    key = (("intent", "purchase"),)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scrape(port).get("baton_model_version", {}).get(key) == version:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(
        f"purchase model version never reached {version}: {scrape(port).get('baton_model_version')}"
    )
