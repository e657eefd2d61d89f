"""Privacy: an erase_request removes the customer from the state table (a tombstone on
the changelog, so compaction drops every earlier value) and confirms on the audit topic."""

from __future__ import annotations

import time

import jsonschema_rs
import orjson
import pytest

import schemas
from agents.demo import scrape
from pipeline.simulator import event_doc
from tests.kafkaio import latest_by_key, produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_erase_request_deletes_state_and_is_audited(kafka, prefix, start_worker) -> None:
    worker = start_worker()
    now, topic = time.time(), f"{prefix}events.clickstream"
    item = {"product_id": "p1", "price": 5.0, "quantity": 1}
    msgs = []
    for cid in ("eve", "frank"):
        msgs += [
            (
                topic,
                cid.encode(),
                orjson.dumps(event_doc(f"{cid}-{k}", "add_to_cart", now - 60 + k, cid, item)),
            )
            for k in range(3)
        ]
    await produce(kafka.bootstrap, msgs)

    # the erasure comes on another topic, which Kafka does not order against the first:
    # wait until eve's state exists, as a real erase request comes after the activity
    def all_applied(rs: list) -> bool:
        latest = latest_by_key(rs)
        return all(
            latest.get(k) and sum(orjson.loads(latest[k])["counts"].values()) == 3
            for k in (b"eve", b"frank")
        )

    await read_until(
        kafka.bootstrap, [f"{prefix}worker-customers-changelog"], all_applied, timeout=60
    )
    erase = event_doc("eve-erase", "erase_request", now, "eve", {})
    ghost = event_doc("ghost-erase", "erase_request", now, "nobody", {})
    await produce(
        kafka.bootstrap,
        [
            (f"{prefix}events.service", b"eve", orjson.dumps(erase)),
            (f"{prefix}events.service", b"nobody", orjson.dumps(ghost)),
        ],
    )

    audit = await read_until(
        kafka.bootstrap, [f"{prefix}audit"], lambda rs: len(rs) >= 2, timeout=90, grace=1
    )
    records = {r.key.decode(): orjson.loads(r.value) for r in audit}
    validator = jsonschema_rs.validator_for(schemas.load("audit.v1"), validate_formats=True)
    assert all(validator.is_valid(v) for v in records.values())
    assert (
        records["eve"]["state_deleted"] is True
        and records["eve"]["request_event_id"] == "eve-erase"
    )
    assert records["nobody"]["state_deleted"] is False

    changelog = await read_until(
        kafka.bootstrap, [f"{prefix}worker-customers-changelog"], lambda rs: False, timeout=4
    )
    latest = latest_by_key(changelog)
    assert latest[b"eve"] is None, "a tombstone is the last word on eve"
    assert b"frank" in latest and latest[b"frank"] is not None
    assert b"nobody" not in latest
    m = scrape(worker.web_port)
    assert m["baton_erasures_total"][()] == 2
