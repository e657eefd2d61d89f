"""Model snapshots through Kafka: a signed snapshot published to the models topic is
loaded by a running worker without a restart and stamps its decisions; a tampered or
malformed one is refused with a counter, and the model in use stays."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from agents.demo import scrape
from agents.settings import Settings
from pipeline.models import IntentModel, sign
from pipeline.simulator import event_doc
from tests.kafkaio import produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def trained(n: int) -> IntentModel:
    m = IntentModel("purchase")
    for i in range(n):
        m.learn({"cart_value": float(i % 50), "has_cart": 1.0}, i % 50 > 30)
    return m


async def until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


def gauge(port: int, name: str, labels: tuple = ()) -> float | None:
    return scrape(port).get(name, {}).get(labels)


async def test_snapshot_hot_reload_and_tamper_refusal(
    kafka, prefix, start_worker, tmp_path
) -> None:
    worker = start_worker()
    model = trained(400)
    snap_file = tmp_path / "purchase.json"
    snap_file.write_text(json.dumps(model.snapshot()))
    env = {**worker.env}
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "models", "publish", str(snap_file)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"version 400" in done.stdout
    version = (("intent", "purchase"),)
    await until(lambda: gauge(worker.web_port, "baton_model_version", version) == 400)

    # a decision after the load carries the model's version and score
    now = time.time()
    cart = event_doc("m1", "add_to_cart", now - 2700, "mo", {"product_id": "p", "price": 45.0})
    await produce(kafka.bootstrap, [(f"{prefix}events.clickstream", b"mo", orjson.dumps(cart))])
    actions = await read_until(
        kafka.bootstrap, [f"{prefix}actions"], lambda rs: len(rs) >= 1, timeout=60
    )
    explanation = orjson.loads(actions[0].value)["explanation"]
    assert explanation["model_versions"] == {"purchase": 400}
    assert 0.0 < explanation["scores"]["purchase"] < 1.0

    # tampered (wrong key) and malformed (NaN weight, right key) snapshots are refused
    right = Settings().model_signing_key.get_secret_value().encode()
    newer = trained(500).snapshot()
    bad_weights = {**newer, "weights": {"cart_value": "NaN"}}
    await produce(
        kafka.bootstrap,
        [
            (f"{prefix}models", b"purchase", sign(newer, b"not-the-key")),
            (f"{prefix}models", b"purchase", sign(bad_weights, right)),
        ],
    )
    await until(
        lambda: (
            sum(scrape(worker.web_port).get("baton_model_snapshots_refused_total", {}).values())
            >= 2
        )
    )
    refused = {
        dict(k)["reason"]: v
        for k, v in scrape(worker.web_port)["baton_model_snapshots_refused_total"].items()
    }
    assert refused == {"bad_signature": 1.0, "malformed": 1.0}
    # the refused version 500 never took; the worker's own learner may have published
    # 401 meanwhile (the test customer's lapsed session is a labelled example)
    assert gauge(worker.web_port, "baton_model_version", version) in (400, 401)
    assert "refused model snapshot (bad_signature)" in worker.log.read_text()
