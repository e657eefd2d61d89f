"""Personal data on a real broker: a third-party producer (kcat) sends a signup with an
e-mail address and a phone number through the identity path, a profile update through
the re-keying hop, and a broken message holding both; then every topic Baton wrote
(internal topics, changelogs, actions, the dead-letter topic) and the worker's log are
read whole: the values appear nowhere, only their hashes and ``[redacted]``."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import orjson
import pytest

from agents.runtime import Partitioner
from pipeline.simulator import event_doc
from tests.e2e.test_kcat import consume, kcat

pytestmark = [pytest.mark.broker, pytest.mark.slow]

EMAIL, PHONE = "Ann.Smith@Example.org", "+33 6 12 34 56 78"
SECRETS = (b"ann.smith", b"Ann.Smith", b"12 34 56", b"612345678")


def produce(bootstrap: str, topic: str, key: str, value: bytes, partition: int) -> None:
    args = ["-P", "-b", bootstrap, "-t", topic, "-K", "|", "-p", str(partition)]
    line = key.encode() + b"|" + value + b"\n"
    subprocess.run([kcat(), *args], input=line, check=True, timeout=60)


def read_all(bootstrap: str, topic: str) -> bytes:
    args = ["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-f", "%k %s\n"]
    return subprocess.run([kcat(), *args], capture_output=True, timeout=60, check=True).stdout


def test_no_topic_baton_writes_holds_an_address_or_a_number(kafka, prefix, start_worker) -> None:
    worker = start_worker()
    source, now = f"{prefix}events.clickstream", time.time()
    before = now - 50 * 60  # the cart below is idle only if nothing came after it
    hop = (Partitioner(4)(b"c-p") + 1) % 4  # not the key's own partition: the hop
    signup = event_doc("s-1", "signup", before, "", {"email": EMAIL, "phone": PHONE})
    del signup["customer_id"]
    signup["anonymous_id"] = "anon-p"
    produce(kafka.bootstrap, source, "anon-p", orjson.dumps(signup), 0)
    update = event_doc("u-1", "profile_updated", before, "c-p", {"email": EMAIL, "phone": PHONE})
    produce(kafka.bootstrap, source, "c-p", orjson.dumps(update), hop)
    broken = b'{"event_type": "signup", "properties": {"email": "ann.smith@x.org", "phone": "6'
    produce(kafka.bootstrap, source, "c-p", broken, hop)
    cart = {"product_id": "p1", "price": 10.0, "quantity": 1}
    later = event_doc("u-2", "add_to_cart", now - 40 * 60, "c-p", cart)
    produce(kafka.bootstrap, source, "c-p", orjson.dumps(later), hop)

    acted = consume(kafka.bootstrap, f"{prefix}actions", 1, "%k\n")
    assert acted.stdout.decode().split() == ["c-p"], worker.log_tail()
    dead = consume(kafka.bootstrap, f"{prefix}events.deadletter", 1, "%s\n")
    envelope = orjson.loads(dead.stdout)
    assert envelope["reason"] == "malformed_json" and envelope["raw_kept"] == "redacted"
    assert base64.b64decode(envelope["raw_base64"]) == broken.replace(
        b'"ann.smith@x.org"', b'"[redacted]"'
    ).replace(b'"6', b'"[redacted]"')

    listing = subprocess.run(
        [kcat(), "-L", "-J", "-b", kafka.bootstrap], capture_output=True, check=True, timeout=60
    )
    topics = sorted(t["topic"] for t in json.loads(listing.stdout)["topics"])
    written = [t for t in topics if prefix in t and t != source]
    deadline, contents = time.monotonic() + 60, {}
    while time.monotonic() < deadline:  # until the state of both customers is on a changelog
        contents = {t: read_all(kafka.bootstrap, t) for t in written}
        changelogs = b"".join(v for t, v in contents.items() if "customers-changelog" in t)
        if b"c-p " in changelogs and b"anon-p " in changelogs:
            break
        time.sleep(1)
    print({t.removeprefix(prefix): len(v.splitlines()) for t, v in contents.items()})
    assert b"c-p " in changelogs and b"anon-p " in changelogs, worker.log_tail()
    assert any("identity-events" in t and v for t, v in contents.items())
    assert any("customer-events" in t and b'"u-1"' in v for t, v in contents.items())
    for topic, value in contents.items():
        assert not any(s in value for s in SECRETS), topic
    assert b'"email_hash"' in changelogs and b'"phone_hash"' in changelogs
    assert not any(s in worker.log.read_bytes() for s in SECRETS), "nor the worker's log"
