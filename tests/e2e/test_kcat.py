"""End to end with a third-party client: Debian's kcat (librdkafka) produces JSON events
into the input topic and reads the resulting actions back from the actions topic."""

from __future__ import annotations

import shutil
import subprocess
import time

import orjson
import pytest

from pipeline.simulator import event_doc

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def kcat() -> str:
    path = shutil.which("kcat")
    assert path, "kcat is installed by deploy/setup.sh (apt-get install kcat)"
    return path


def consume(
    bootstrap: str, topic: str, count: int, fmt: str = "%k\t%s\n", timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Read ``count`` messages of ``topic`` from the beginning with kcat (waits for them)."""
    args = ["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-c", str(count), "-f", fmt]
    return subprocess.run([kcat(), *args], capture_output=True, timeout=timeout)


def test_kcat_in_actions_out(kafka, prefix, start_worker) -> None:
    start_worker()
    now = time.time()
    lines = []
    for cid, idle_min in (("alice", 45), ("bob", 31), ("carol", 1)):
        item = {"product_id": "p1", "price": 20.0, "quantity": 2}
        doc = event_doc(f"{cid}-1", "add_to_cart", now - idle_min * 60, cid, item)
        lines.append(f"{cid}|".encode() + orjson.dumps(doc))
    lines.append(b"mallory|{not json")
    subprocess.run(
        [kcat(), "-P", "-b", kafka.bootstrap, "-t", f"{prefix}events.clickstream", "-K", "|"],
        input=b"\n".join(lines) + b"\n",
        check=True,
        timeout=60,
    )

    done = consume(kafka.bootstrap, f"{prefix}actions", 2)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    got = {}
    for line in out.strip().splitlines():
        key, value = line.split("\t", 1)
        got[key] = orjson.loads(value)
    assert set(got) == {"alice", "bob"}  # carol's cart is only a minute old
    assert all(a["action"] == "abandoned_cart_reminder" for a in got.values())
    assert got["alice"]["payload"]["cart_value"] == 40.0

    done = consume(kafka.bootstrap, f"{prefix}events.deadletter", 1, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    dead = done.stdout.decode()
    key, value = dead.strip().split("\t", 1)
    assert key == "mallory" and orjson.loads(value)["reason"] == "malformed_json"
