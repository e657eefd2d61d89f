"""SASL_SSL with SCRAM-SHA-512 against an Apache Kafka broker configured by the test.

The test makes the broker's certificate with the JDK's ``keytool`` (a self-signed one
for 127.0.0.1, exported as the clients' CA file), and the broker adds the SCRAM user
when its storage is formatted. A worker with the settings ``docs/operations.md``
documents connects over SASL_SSL, becomes ready and decides an event; a worker with a
wrong password exits non-zero within seconds with a clear error, never hangs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from agents.demo import start_worker, stop_worker, wait_healthy
from agents.localkafka import LocalKafka, SaslSsl, free_port
from pipeline.simulator import event_doc
from tests.kafkaio import produce, read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PASSWORD = "baton-scram-secret"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, Path]]:
    keytool = shutil.which("keytool")
    assert keytool, "keytool (the JDK's) is needed: deploy/setup.sh installs Java 17"
    tmp = tmp_path_factory.mktemp("secure")
    store, ca = tmp / "broker.p12", tmp / "ca.pem"
    subprocess.run(
        [keytool, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
         "-validity", "2", "-dname", "CN=127.0.0.1", "-ext", "SAN=IP:127.0.0.1",
         "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit",
         "-keypass", "changeit"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    subprocess.run(
        [keytool, "-exportcert", "-rfc", "-alias", "broker", "-keystore", str(store),
         "-storepass", "changeit", "-file", str(ca)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    secure = SaslSsl(free_port(), store, "changeit", (("baton", PASSWORD),))
    broker = LocalKafka(tmp / "kafka", secure=secure)
    broker.start()
    yield broker, ca
    broker.cleanup()


def worker_env(broker: LocalKafka, ca: Path, tmp: Path, password: str) -> dict[str, str]:
    assert broker.secure is not None
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("BATON_")},
        "BATON_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker.secure.port}",
        "BATON_SECURITY_PROTOCOL": "SASL_SSL",
        "BATON_SASL_MECHANISM": "SCRAM-SHA-512",
        "BATON_SASL_USERNAME": "baton",
        "BATON_SASL_PASSWORD": password,
        "BATON_SSL_CAFILE": str(ca),
        "BATON_TOPIC_PREFIX": "sec.",
        "BATON_WEB_PORT": str(free_port()),
        "BATON_DATA_DIR": str(tmp / "data"),
    }


def test_a_worker_connects_over_sasl_ssl_with_scram(secure_broker, tmp_path: Path) -> None:
    broker, ca = secure_broker
    env = worker_env(broker, ca, tmp_path, PASSWORD)
    proc = start_worker(env, tmp_path / "worker.log")
    try:
        wait_healthy(int(env["BATON_WEB_PORT"]), proc, timeout=120)
        doc = event_doc("s-1", "page_view", time.time(), "c-secure", {"url": "/"})
        # the test's own client uses the PLAINTEXT listener; the worker, SASL_SSL only
        asyncio.run(
            produce(broker.bootstrap, [("sec.events.clickstream", b"c-secure", orjson.dumps(doc))])
        )
        got = asyncio.run(
            read_until(broker.bootstrap, ["sec.actions"], lambda rs: len(rs) >= 1, timeout=60)
        )
        assert [r.key for r in got] == [b"c-secure"]
    finally:
        stop_worker(proc)
    log = (tmp_path / "worker.log").read_text()
    assert PASSWORD not in log, "the password is never logged"


def test_a_wrong_password_fails_fast_and_clearly(secure_broker, tmp_path: Path) -> None:
    broker, ca = secure_broker
    env = worker_env(broker, ca, tmp_path, "not-the-password")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "worker"],
        env={**env, "BATON_ALLOW_DEV_KEYS": "true"},
        capture_output=True,
        timeout=120,
    )
    took = time.monotonic() - began
    out = (done.stdout + done.stderr).decode(errors="replace")
    print(f"wrong password: exit {done.returncode} after {took:.1f} s")
    assert done.returncode != 0, out[-3000:]
    assert took < 30, f"took {took:.0f} s"
    assert "authentication" in out.lower(), out[-3000:]
    assert "not-the-password" not in out
