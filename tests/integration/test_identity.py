"""Identity stitching on a real broker: a visitor browses anonymously, logs in, goes on
under either id; the state gathered while anonymous is merged into the customer; an
anonymous id claimed by a second customer is dead-lettered; an erasure removes the link."""

from __future__ import annotations

import time

import orjson
import pytest

from agents.demo import scrape
from pipeline.simulator import event_doc
from tests.kafkaio import latest_by_key, produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def anon_doc(eid: str, kind: str, t: float, anon: str, cid: str | None = None, **p: object):
    d = event_doc(eid, kind, t, cid or "", p)
    if cid is None:
        del d["customer_id"]
    d["anonymous_id"] = anon
    return orjson.dumps(d)


async def test_anonymous_history_follows_the_login(kafka, prefix, start_worker) -> None:
    worker = start_worker()
    now, click = time.time(), f"{prefix}events.clickstream"
    item = {"product_id": "p1", "price": 30.0, "quantity": 1, "category": "lamps"}
    before = [
        (click, b"k-ann", anon_doc(f"a{i}", "product_view", now - 300 + i, "k-ann", **item))
        for i in range(5)
    ]
    before.append((click, b"k-ann", anon_doc("a5", "add_to_cart", now - 290, "k-ann", **item)))
    await produce(kafka.bootstrap, before)
    login = [(click, b"k-ann", anon_doc("l1", "login", now - 200, "k-ann", "ann"))]
    await produce(kafka.bootstrap, login)
    after = [
        (click, b"k-ann", anon_doc("a6", "page_view", now - 100, "k-ann", url="/")),
        (click, b"ann", orjson.dumps(event_doc("c1", "page_view", now - 50, "ann", {"url": "/"}))),
        # a second customer claims the same device: refused, with a reason
        (click, b"k-ann", anon_doc("b1", "login", now - 40, "k-ann", "bob")),
    ]
    await produce(kafka.bootstrap, after)

    def done(rs: list) -> bool:
        v = latest_by_key(rs).get(b"ann")
        return bool(v) and sum(orjson.loads(v)["counts"].values()) == 9

    changelog = await read_until(
        kafka.bootstrap, [f"{prefix}worker-customers-changelog"], done, timeout=120, grace=2
    )
    latest = latest_by_key(changelog)
    ann = orjson.loads(latest[b"ann"])
    assert ann["counts"] == {"product_view": 5, "add_to_cart": 1, "login": 1, "page_view": 2}
    assert ann["merged_from"] == ["k-ann"]
    assert [i["product_id"] for i in ann["cart"]["items"]] == ["p1"]
    assert latest.get(b"k-ann", None) is None, "no state left under the anonymous id"

    dead = await read_until(
        kafka.bootstrap, [f"{prefix}events.deadletter"], lambda rs: len(rs) >= 1, timeout=60
    )
    env = orjson.loads(dead[0].value)
    assert (env["reason"], env["event_id"]) == ("identity_conflict", "b1")

    links = await read_until(
        kafka.bootstrap, [f"{prefix}worker-identities-changelog"], lambda rs: False, timeout=3
    )
    assert latest_by_key(links) == {b"k-ann": b"ann"}

    # erasure: the customer and the link go, the audit record says so
    erase = orjson.dumps(event_doc("x1", "erase_request", now, "ann", {}))
    await produce(kafka.bootstrap, [(f"{prefix}events.service", b"ann", erase)])
    audit = await read_until(
        kafka.bootstrap, [f"{prefix}audit"], lambda rs: len(rs) >= 1, timeout=60
    )
    assert orjson.loads(audit[0].value)["anonymous_ids_unlinked"] == 1
    links = await read_until(
        kafka.bootstrap,
        [f"{prefix}worker-identities-changelog"],
        lambda rs: latest_by_key(rs).get(b"k-ann", b"") is None,
        timeout=60,
    )
    assert latest_by_key(links)[b"k-ann"] is None
    m = scrape(worker.web_port)
    assert m["baton_identity_links_total"][()] == 1
    assert m["baton_identity_merges_total"][()] == 1
