"""Debian's Prometheus server scrapes a real worker, with the configuration, rules and
dashboard that ``deploy/`` ships (only the scrape target and intervals replaced).

First known traffic: PromQL over Prometheus's HTTP API must count every valid event
once, every bad one by its reason, and see the lag return to zero. Then simulated
shoppers with channel feedback for half a minute: every rule evaluates without error,
and every query of every panel of ``deploy/grafana/baton-dashboard.json`` parses, names
only metrics the worker exports or rules the project ships, and returns data. A missing
``prometheus`` binary fails the test (``deploy/setup.sh`` installs it).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from agents.channels import ChannelPlayer
from agents.demo import DEMO_DEFAULTS, scrape, simulate
from agents.localkafka import free_port
from agents.settings import Settings
from pipeline.playbook import DEFAULT_PATH
from pipeline.simulator import BAD_KINDS, bad_message, event_doc
from tests.kafkaio import produce

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "baton-dashboard.json"


class Prometheus:
    """A Prometheus server on loopback and its HTTP API."""

    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [data["result"]]

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait(self, what: str, ok: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            time.sleep(1.0)
        pytest.fail(f"Prometheus: {what} not seen in {timeout:.0f} s", pytrace=False)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    exe = shutil.which("prometheus")
    assert exe, "prometheus is missing: run deploy/setup.sh (Debian package 'prometheus')"
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> Prometheus:
        conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        conf["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
        conf["rule_files"] = [str(DEPLOY / "prometheus" / f) for f in conf["rule_files"]]
        (job,) = conf["scrape_configs"]
        job["static_configs"] = [{"targets": [target]}]
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(conf))
        port, log = free_port(), tmp_path / "prometheus.log"
        cmd = [exe, f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
        cmd += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        with log.open("wb") as out:
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        prom = Prometheus(f"http://127.0.0.1:{port}", procs[-1], log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return prom
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"Prometheus did not start:\n{log.read_text()}", pytrace=False)

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def known_traffic(prefix: str, now: float) -> tuple[list[Any], int, Counter[str]]:
    """300 valid events from 100 customers and 60 bad messages of every kind."""
    msgs, valid = [], 0
    for i in range(100):
        cid = f"p{i:03d}"
        for k, kind in enumerate(("page_view", "product_view", "add_to_cart")):
            props = {"product_id": "x1", "price": 5.0, "quantity": 1} if k else {"url": "/"}
            doc = event_doc(f"{cid}-{k}", kind, now - 60 + k, cid, props)
            msgs.append((f"{prefix}events.clickstream", cid.encode(), orjson.dumps(doc)))
            valid += 1
    kinds = sorted(BAD_KINDS)
    bad = [bad_message(kinds[j % len(kinds)], now, f"bad{j}".encode()) for j in range(60)]
    msgs += [(f"{prefix}events.clickstream", m.key, m.value) for m in bad]
    return msgs, valid, Counter(m.expected_reason for m in bad)


def metric_names(expr: str) -> set[str]:
    """The metric and rule names a PromQL expression reads: its identifiers, less label
    matchers, ranges, grouping labels, functions (a name before a parenthesis) and
    keywords."""
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    found = re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?", expr)
    return {m.group(0) for m in found if not m.group(1)} - {"and", "or", "unless", "bool"}


def exported(port: int) -> set[str]:
    """Every metric family the worker exports (histograms' series names included)."""
    names = set()
    for name in scrape(port):
        names.add(name)
        names.add(re.sub(r"_(bucket|count|sum|total|created)$", "", name))
    return names


def shipped_rules() -> set[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "baton-rules.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


async def shoppers(settings: Settings, seconds: float) -> int:
    """Simulated shoppers in real time, and channels answering the actions."""
    stop = asyncio.Event()
    channels = ChannelPlayer(settings, seed=7, delay_s=0.5)
    player = asyncio.create_task(channels.run(stop))
    sent = await simulate(settings, seconds, customers=400, seed=11, bad_share=0.05)
    await asyncio.sleep(3.0)
    stop.set()
    await player
    return sent


def test_prometheus_scrapes_alerts_and_dashboard_queries(
    kafka, prefix, start_worker, prometheus
) -> None:
    worker = start_worker(
        **DEMO_DEFAULTS,
        BATON_PLAYBOOK_FILE=str(DEFAULT_PATH),  # every journey, a control group
        BATON_SNAPSHOT_EVERY="20",
        BATON_SNAPSHOT_INTERVAL_S="2",
        BATON_STAGE_SAMPLE="1",
    )
    prom = prometheus(f"127.0.0.1:{worker.web_port}")
    prom.wait("the worker up", lambda: prom.scalar('up{job="baton"}') == 1.0, 30)

    msgs, valid, dead = known_traffic(prefix, time.time())
    asyncio.run(produce(kafka.bootstrap, msgs))
    prom.wait(
        f"{valid} events processed",
        lambda: prom.scalar("sum(baton_events_processed_total)") == valid,
        90,
    )
    by_reason = lambda: {  # noqa: E731
        r["metric"]["reason"]: int(float(r["value"][1]))
        for r in prom.query("sum by (reason) (baton_deadletters_total)")
    }
    prom.wait(f"dead letters {dict(dead)}", lambda: by_reason() == dead, 30)
    received = prom.scalar("sum(baton_messages_received_total)")
    assert received == len(msgs), "every message read once"
    prom.wait("the lag back to zero", lambda: prom.scalar("sum(baton_consumer_lag)") == 0.0, 60)
    assert prom.scalar("baton_ready") == 1.0
    assert prom.scalar("sum(baton_rebalances_total)") >= 1.0

    # shoppers and channels: every journey KPI, feedback, labels, model snapshots
    settings = Settings(kafka_bootstrap=kafka.bootstrap, topic_prefix=prefix)
    sent = asyncio.run(shoppers(settings, 25.0))
    assert sent > 500

    rules = prom.get("/api/v1/rules")["groups"]
    bad_rules = [(r["name"], r.get("lastError")) for g in rules for r in g["rules"]]
    assert [r for r in bad_rules if r[1]] == [], "every rule evaluates"
    assert len(bad_rules) == sum(len(g["rules"]) for g in yaml.safe_load(
        (DEPLOY / "prometheus" / "baton-rules.yml").read_text())["groups"])  # fmt: skip
    firing = {a["labels"]["alertname"] for a in prom.get("/api/v1/alerts")["alerts"]}
    assert not firing & {"BatonWorkerDown", "BatonSendErrors", "BatonModelSnapshotsRefused"}

    known = exported(worker.web_port) | shipped_rules() | {"up"}
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [(p["title"], t["expr"]) for p in panels for t in p["targets"]]
    for title, expr in queries:
        unknown = metric_names(expr) - known
        assert not unknown, f"panel {title!r} reads {unknown}, which nothing exports"

    def empty() -> list[tuple[str, str]]:
        return [(t, e) for t, e in queries if not prom.query(e)]

    deadline = time.monotonic() + 60
    while empty() and time.monotonic() < deadline:
        time.sleep(2)
    assert empty() == [], f"panels without data:\n{worker.log_tail(20)}"
    print(f"prometheus: {len(queries)} panel queries with data, {len(bad_rules)} rules ok")
