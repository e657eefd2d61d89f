"""The throughput benchmark runs end to end at a tiny size and reports sane values.
It never asserts a speed: speed is read from its output, not judged by a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_throughput_bench_smoke(kafka, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    env = {**os.environ, "BATON_KAFKA_BOOTSTRAP": kafka.bootstrap}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.throughput",
            "--events",
            "600",
            "--latency-seconds",
            "1",
            "--latency-scale",
            "0.05",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()[-3000:]
    r = json.loads(out.read_text())
    assert r["events"] == 600
    assert r["baseline_aiokafka_events_per_s"] > 0 and r["baton_events_per_s"] > 0
    assert r["faust_floor_events_per_s"] > 0 and r["baton_2_workers_events_per_s"] > 0
    for tag in ("at_50pct", "at_80pct"):
        assert r[f"latency_{tag}_samples"] > 0, r
        assert 0 < r[f"latency_{tag}_p50_ms"] <= r[f"latency_{tag}_p99_ms"]
    assert r["worker_rss_mb_after"] > 0


def test_memory_bench_smoke(kafka, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    env = {**os.environ, "BATON_KAFKA_BOOTSTRAP": kafka.bootstrap}
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--customers", "150", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()[-3000:]
    rows = {r["store"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"memory", "rocksdb"}
    assert all(r["customers"] == 150 and r["state_bytes_mean"] > 100 for r in rows.values())
    assert rows["rocksdb"]["rocksdb_disk_mb_per_100k_customers"] > 0
