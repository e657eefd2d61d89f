"""The bad-input corpus through the real worker on a real broker: each message lands on
the dead-letter topic with its own reason and its original bytes, a counter per reason
moves, and the worker keeps processing the good event sent after all of them."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.demo import scrape
from pipeline.events import format_time
from pipeline.simulator import event_doc
from tests.kafkaio import produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]
CORPUS = Path(__file__).resolve().parents[1] / "corpus"


async def test_corpus_dead_letters_with_reasons(kafka, prefix, start_worker) -> None:
    worker = start_worker()
    manifest: dict[str, str] = json.loads((CORPUS / "MANIFEST.json").read_text())
    now, topic = time.time(), f"{prefix}events.clickstream"
    sent, later = {}, []
    ordered = {"valid", "duplicate", "identity_conflict"}  # pairs whose order matters
    for name in sorted(manifest):  # sorted: the first of each pair goes first
        raw = (CORPUS / "bad" / name).read_bytes().replace(b"{{NOW}}", format_time(now).encode())
        sent[name] = raw
        # Kafka orders within a partition only: the pairs share a key, so a partition
        key = b"corpus-ordered" if manifest[name] in ordered else name.encode()
        (later if manifest[name] == "duplicate" else []).append((topic, key, raw))
        if manifest[name] != "duplicate":
            await produce(kafka.bootstrap, [(topic, key, raw)])
    # the duplicate once the first event's state is on the changelog: a flush coalesces a
    # customer's writes, and the check below wants the duplicate's own record
    changelog_topic = f"{prefix}worker-customers-changelog"
    await read_until(kafka.bootstrap, [changelog_topic], lambda rs: _mine(rs) != [], timeout=60)
    await produce(kafka.bootstrap, later)
    after = orjson.dumps(event_doc("after-1", "page_view", now, "corpus-after", {"url": "/"}))
    await produce(kafka.bootstrap, [(topic, b"after", after)])

    bad = {n: r for n, r in manifest.items() if r != "valid"}
    dead = await read_until(
        kafka.bootstrap,
        [f"{prefix}events.deadletter"],
        lambda rs: len(rs) >= len(bad),
        timeout=120,
        grace=2,
    )
    got = {}
    for rec in dead:
        env = orjson.loads(rec.value)
        later = env["reason"] in ("duplicate", "identity_conflict")  # keyed by customer/device
        got[env["event_id"] if later else rec.key.decode()] = env
    found_later = {"corpus-dup": "duplicate", "corpus-l2": "identity_conflict"}
    assert {k: e["reason"] for k, e in got.items() if k not in found_later} == {
        n: r for n, r in bad.items() if r not in found_later.values()
    }, worker.log_tail()
    assert {k: got[k]["reason"] for k in found_later} == found_later
    for name, env in got.items():
        if name in sent:
            assert base64.b64decode(env["raw_base64"]) == sent[name], name
        assert env["detail"] and env["source"]["topic"] == topic

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = scrape(worker.web_port)
        if sum(m.get("baton_events_processed_total", {}).values()) >= 3:
            break
    assert sum(m["baton_events_processed_total"].values()) == 3  # dup, login, "after"
    per_reason = {dict(k)["reason"]: v for k, v in m["baton_deadletters_total"].items()}
    assert per_reason == {k: float(v) for k, v in Counter(bad.values()).items()}
    assert worker.proc.poll() is None, "the worker is still running"

    # the duplicate re-wrote the unchanged state: a second, identical changelog record
    # (this is what heals a changelog left behind by a crash; see agents/app.py)
    changelog = await read_until(
        kafka.bootstrap, [changelog_topic], lambda rs: len(_mine(rs)) >= 2, timeout=30, grace=3
    )
    mine = _mine(changelog)
    assert len(mine) == 2 and mine[0] == mine[1]


def _mine(records: list[Any]) -> list[bytes]:
    """The changelog values of the customer the duplicate pair belongs to."""
    return [r.value for r in records if r.key == b"corpus-c1"]
