"""A local, single-node Apache Kafka broker in KRaft mode, for the demo and the tests.

The jars come from Maven Central through ``deploy/kafka/pom.xml`` (``mvn
dependency:copy-dependencies``, cached under ``.cache/kafka/<version>``); the broker runs
on the machine's Java and binds to 127.0.0.1 on free ports. A single node needs what a
cluster gets from its size: combined broker and controller roles, a controller
listener, and replication factor 1 / min ISR 1 for the internal topics (or consumer
groups and transactions hang).

    with LocalKafka() as kafka:
        print(kafka.bootstrap)
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["KAFKA_VERSION", "BrokerError", "LocalKafka", "SaslSsl", "ensure_jars", "free_port"]

KAFKA_VERSION = "4.4.0"
ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kafka"


class BrokerError(RuntimeError):
    """The local broker could not be prepared or started. The message names the log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cache_dir() -> Path:
    return Path(os.environ.get("BATON_CACHE_DIR", ROOT / ".cache"))


def ensure_jars(version: str = KAFKA_VERSION) -> Path:
    """Resolve the broker's jars with Maven once; later calls reuse the cache."""
    libs = _cache_dir() / "kafka" / version / "libs"
    if (libs / f"kafka_2.13-{version}.jar").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is needed to fetch the Kafka jars; install it (apt-get install maven)"
        )
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(DEPLOY / "pom.xml"),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BrokerError(
            f"mvn failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    tmp.rename(libs)
    return libs


@dataclass(frozen=True)
class SaslSsl:
    """A second, SASL_SSL listener with SCRAM-SHA-512 (the PLAINTEXT one stays for the
    broker itself): its port, a PKCS12 keystore with the broker's certificate, and the
    SCRAM users added when the storage is formatted."""

    port: int
    keystore: Path
    password: str
    users: tuple[tuple[str, str], ...]

    def properties(self) -> list[str]:
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return [
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
            f"ssl.keystore.location={self.keystore}",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.password={self.password}",
            f"ssl.key.password={self.password}",
        ]

    def format_args(self) -> list[str]:
        return [f"--add-scram=SCRAM-SHA-512=[name={u},password={p}]" for u, p in self.users]


def _properties(
    data: Path, port: int, cport: int, secure: SaslSsl | None = None, node: int = 1
) -> str:
    """Node 1 is broker and controller (``cport`` its controller port); another node is a
    broker only, whose controller is node 1 on ``cport``."""
    listeners = f"PLAINTEXT://127.0.0.1:{port}"
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if secure is not None:
        listeners += f",SASL_SSL://127.0.0.1:{secure.port}"
        protocols += ",SASL_SSL:SASL_SSL"
    own = f"{listeners},CONTROLLER://127.0.0.1:{cport}" if node == 1 else listeners
    return "\n".join(
        [
            f"process.roles={'broker,controller' if node == 1 else 'broker'}",
            f"node.id={node}",
            f"controller.quorum.voters=1@127.0.0.1:{cport}",
            f"listeners={own}",
            f"advertised.listeners={listeners}",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map={protocols}",
            "inter.broker.listener.name=PLAINTEXT",
            *(secure.properties() if secure is not None else []),
            f"log.dirs={data}",
            "num.partitions=4",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.check.interval.ms=60000",
            "",
        ]
    )


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class LocalKafka:
    """One Kafka broker process; ``start()`` returns its bootstrap address. With
    ``joins``, a broker-only node (``node`` > 1) of the cluster whose controller is that
    started node: a cluster of several brokers on loopback (the fault tests)."""

    def __init__(
        self,
        workdir: Path | None = None,
        version: str = KAFKA_VERSION,
        heap: str = "768m",
        port: int | None = None,
        secure: SaslSsl | None = None,
        joins: LocalKafka | None = None,
        node: int = 1,
    ) -> None:
        if (joins is None) != (node == 1):
            raise ValueError("node 1 is the controller; every other node joins one")
        self.secure, self.node = secure, node
        self.cport: int = joins.cport if joins is not None else free_port()
        self.cluster: str = joins.cluster if joins is not None else _cluster_id()
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="baton-kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.version = version
        self.heap = heap
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    def _java(self, libs: Path, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java is needed to run the local Kafka broker (Java 17+)")
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def start(self, timeout: float = 90.0) -> str:
        """Format the storage (first time), start the broker, wait until it serves."""
        libs = ensure_jars(self.version)
        data = self.workdir / "data"
        config = self.workdir / "server.properties"
        config.write_text(_properties(data, self.port, self.cport, self.secure, self.node))
        if not (data / "meta.properties").exists():
            self._format(libs, config)
        with self.log_path.open("ab") as log:
            since = log.tell()  # the log is appended to across restarts
            self.proc = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(timeout, since)
        return self.bootstrap

    def _format(self, libs: Path, config: Path) -> None:
        # "--cluster-id=" form: a random id may start with "-", which argparse takes for a flag
        cmd = self._java(
            libs,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={self.cluster}",
            f"--config={config}",
            *(self.secure.format_args() if self.secure is not None else []),
        )
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"storage format failed: {done.stdout}{done.stderr}")

    def _wait_ready(self, timeout: float, since: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BrokerError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            if b"Kafka Server started" in self.log_path.read_bytes()[since:]:
                return
            time.sleep(0.2)
        self.stop()
        raise BrokerError(f"broker not ready after {timeout:.0f}s; see {self.log_path}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); remove its files if we made the dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
