"""Fixtures shared by every test level.

Broker-backed tests get a real Apache Kafka (KRaft, one node) started once per session
on 127.0.0.1 by ``agents.localkafka``; each test gets its own topic prefix, so tests
never see each other's data. A broker that cannot start fails the test: it never skips.
Set BATON_TEST_BOOTSTRAP to use a broker you started yourself.
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Broker:
    bootstrap: str


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if os.environ.get("BATON_TEST_BOOTSTRAP"):
        yield Broker(os.environ["BATON_TEST_BOOTSTRAP"])
        return
    from agents.localkafka import LocalKafka

    broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except Exception as exc:  # fail loudly, with the reason: never skip
        pytest.fail(f"local Kafka broker did not start: {exc}", pytrace=False)
    yield Broker(broker.bootstrap)
    broker.cleanup()


@pytest.fixture
def prefix() -> str:
    """A fresh topic prefix (and so consumer group and changelog names) for this test."""
    return f"t{uuid.uuid4().hex[:10]}."


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    web_port: int
    log: Path
    env: dict[str, str]

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


PLAYBOOKS = Path(__file__).with_name("playbooks")


@pytest.fixture
def start_worker(kafka: Broker, prefix: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProc]]:
    """Start real ``baton worker`` processes on the session broker; stopped at teardown."""
    from agents.demo import start_worker, stop_worker, wait_healthy
    from agents.localkafka import free_port

    started: list[WorkerProc] = []
    lock = threading.Lock()

    def spawn(overrides: dict[str, str]) -> WorkerProc:
        port = free_port()
        env = {
            **os.environ,
            "BATON_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "BATON_TOPIC_PREFIX": prefix,
            "BATON_WEB_PORT": str(port),
            "BATON_DATA_DIR": str(tmp_path / f"data{len(started)}"),
            "BATON_TIMER_INTERVAL_S": "1",
            "BATON_LOG_LEVEL": "info",
            # the loop's tests assume the abandoned-cart journey alone; the journey tests
            # pass the default playbook
            "BATON_PLAYBOOK_FILE": str(PLAYBOOKS / "cart.yaml"),
            **overrides,
        }
        w = WorkerProc(
            start_worker(env, tmp_path / f"worker{len(started)}.log"),
            port,
            tmp_path / f"worker{len(started)}.log",
            env,
        )
        started.append(w)
        return w

    def start(**overrides: str) -> WorkerProc:
        with lock:  # tests may start workers from threads, to start them together
            w = spawn(overrides)
        port = w.web_port
        try:
            wait_healthy(port, w.proc, timeout=120)
        except Exception as exc:
            pytest.fail(f"worker did not become ready: {exc}\n{w.log_tail()}", pytrace=False)
        return w

    yield start
    for w in started:
        stop_worker(w.proc)
        print(f"--- {w.log} (tail) ---\n{w.log_tail(30)}")
