"""Compressed record batches, as librdkafka (Debian's kcat), the Java client and Kafka
Connect commonly send them: every codec Kafka supports is consumed, the worker produces
with the codec it is given, and a worker that could not decode one refuses to start."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from agents.runtime import CODECS
from pipeline.simulator import event_doc
from tests.e2e.test_kcat import consume, kcat

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_every_codec_is_consumed(kafka, prefix, start_worker) -> None:
    """One batch per codec, each a customer's cart left 40 minutes ago; then an
    uncompressed event, which must still be processed. The worker produces lz4."""
    worker = start_worker(BATON_PRODUCER_COMPRESSION="lz4")
    now = time.time()
    for codec in (*CODECS, "none"):
        item = {"product_id": "p1", "price": 10.0, "quantity": 1}
        doc = event_doc(f"{codec}-1", "add_to_cart", now - 40 * 60, f"c-{codec}", item)
        topic = f"{prefix}events.clickstream"
        subprocess.run(
            [kcat(), "-P", "-b", kafka.bootstrap, "-t", topic, "-z", codec, "-K", "|"],
            input=f"c-{codec}|".encode() + orjson.dumps(doc) + b"\n",
            check=True,
            timeout=60,
        )
    out = consume(kafka.bootstrap, f"{prefix}actions", len(CODECS) + 1, "%k\n")
    assert out.returncode == 0, (out.stderr.decode(), worker.log_tail())
    got = sorted(out.stdout.decode().split())
    assert got == sorted(f"c-{c}" for c in (*CODECS, "none")), worker.log_tail()
    assert worker.proc.poll() is None, "the worker is still running"
    assert "UnsupportedCodecError" not in worker.log.read_text()


def test_a_worker_without_the_codec_library_refuses_to_start(tmp_path: Path) -> None:
    """With cramjam hidden (an import of it fails), the worker names the codecs it
    could not decode and exits non-zero, before it joins any group."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "cramjam.py").write_text("raise ImportError('hidden by the test')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env |= {"PYTHONPATH": str(shadow), "BATON_KAFKA_BOOTSTRAP": "127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "worker"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert b"cannot decode snappy, lz4, zstd record batches" in done.stderr


def test_a_tombstone_is_dead_lettered_and_the_stream_goes_on(kafka, prefix, start_worker) -> None:
    """kcat sends a record with a null value (``-Z``: an empty value as NULL), then a
    valid event: the tombstone is dead-lettered as ``null_value``, the event decided."""
    worker = start_worker()
    topic = f"{prefix}events.clickstream"
    item = {"product_id": "p1", "price": 10.0, "quantity": 1}
    doc = event_doc("after-1", "add_to_cart", time.time() - 40 * 60, "c-after", item)
    subprocess.run(
        [kcat(), "-P", "-b", kafka.bootstrap, "-t", topic, "-Z", "-K", "|"],
        input=b"c-tomb|\n" + b"c-after|" + orjson.dumps(doc) + b"\n",
        check=True,
        timeout=60,
    )
    dead = consume(kafka.bootstrap, f"{prefix}events.deadletter", 1, "%k %s\n")
    key, value = dead.stdout.decode().strip().split(" ", 1)
    assert key == "c-tomb" and orjson.loads(value)["reason"] == "null_value", worker.log_tail()
    acted = consume(kafka.bootstrap, f"{prefix}actions", 1, "%k %s\n")
    assert acted.stdout.decode().startswith("c-after "), worker.log_tail()


@pytest.mark.parametrize("keyless", ["deadletter", "route"])
def test_a_record_without_a_key(kafka, prefix, start_worker, keyless: str) -> None:
    """kcat without ``-K`` sends a record with no key. By default it is dead-lettered as
    ``missing_key`` and the keyed event after it is decided; with ``BATON_KEYLESS=route``
    the keyless event is re-keyed by its body's customer id and decided."""
    worker = start_worker(BATON_KEYLESS=keyless)
    topic = f"{prefix}events.clickstream"
    item = {"product_id": "p1", "price": 10.0, "quantity": 1}
    when = time.time() - 40 * 60
    for cid, key in (("c-nokey", None), ("c-key", "c-key")):
        line = orjson.dumps(event_doc(f"{cid}-1", "add_to_cart", when, cid, item))
        args = ["-K", "|"] if key else []
        subprocess.run(
            [kcat(), "-P", "-b", kafka.bootstrap, "-t", topic, *args],
            input=(f"{key}|".encode() if key else b"") + line + b"\n",
            check=True,
            timeout=60,
        )
    if keyless == "deadletter":
        dead = consume(kafka.bootstrap, f"{prefix}events.deadletter", 1, "%s\n")
        envelope = orjson.loads(dead.stdout.decode().strip())
        assert envelope["reason"] == "missing_key", worker.log_tail()
        assert b"c-nokey" in base64.b64decode(envelope["raw_base64"])
        want = ["c-key"]
    else:
        want = ["c-key", "c-nokey"]
    acted = consume(kafka.bootstrap, f"{prefix}actions", len(want), "%k\n")
    assert sorted(acted.stdout.decode().split()) == want, worker.log_tail()


def test_a_worker_with_the_development_keys_refuses_to_start() -> None:
    """Without BATON_ALLOW_DEV_KEYS, the built-in keys stop the worker at once, naming
    them (anyone could forge model snapshots with them); with real keys it goes on to
    connect (here, to nothing: it fails later, for another reason)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env["BATON_KAFKA_BOOTSTRAP"] = "127.0.0.1:9"
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "worker"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2 and time.monotonic() - began < 30
    every = b"BATON_PII_HASH_KEY, BATON_MODEL_SIGNING_KEY and BATON_PLAYBOOK_SIGNING_KEY still"
    assert every in done.stderr
    env |= {"BATON_PII_HASH_KEY": "k" * 32, "BATON_MODEL_SIGNING_KEY": "m" * 32}
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "worker"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2 and b": BATON_PLAYBOOK_SIGNING_KEY still" in done.stderr
