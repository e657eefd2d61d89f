"""Every benchmark runs end to end at a tiny size (`python -m bench --quick`) and reports
sane values. It never asserts a speed: speed is read from its output, not judged by a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_every_bench_runs_in_one_command(kafka, tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = {**os.environ, "BATON_KAFKA_BOOTSTRAP": kafka.bootstrap}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()[-3000:]

    r = json.loads((out / "throughput.json").read_text())
    assert r["events"] == 600
    assert r["baseline_aiokafka_events_per_s"] > 0 and r["baton_events_per_s"] > 0
    assert r["faust_floor_events_per_s"] > 0 and r["baton_2_workers_events_per_s"] > 0
    for tag in ("at_50pct", "at_80pct"):
        assert r[f"latency_{tag}_samples"] > 0, r
        assert 0 < r[f"latency_{tag}_p50_ms"] <= r[f"latency_{tag}_p99_ms"]
    assert r["worker_rss_mb_after"] > 0
    assert r["faust_floor_cpu_us_per_event"] >= 0 and r["baton_cpu_us_per_event"] >= 0

    for tag in ("confluent", "confluent_river", "quix", "quix_river"):
        assert r[f"{tag}_events_per_s"] > 0 and r[f"{tag}_cpu_us_per_event"] > 0, tag
        assert r[f"baton_vs_{tag}"] > 0

    rows = json.loads((out / "memory.json").read_text())
    assert [(r["store"], r["customers"]) for r in rows] == [
        ("memory", 100), ("memory", 200), ("rocksdb", 100), ("rocksdb", 200)
    ]  # fmt: skip
    assert all(r["state_bytes_mean"] > 100 and r["cpu_us_per_event"] > 0 for r in rows)
    assert rows[-1]["rocksdb_disk_mb"] > 0

    s = json.loads((out / "scoring.json").read_text())
    assert 0 < s["decode_us"] < s["apply_labels_decide_us"]
    q = json.loads((out / "quality.json").read_text())["results"]
    assert q["oracle"]["share_of_oracle"] == 1.0 and q["control"]["sent"] == 0

    for png in ("throughput.png", "quality.png", "memory.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    table = (out / "summary.md").read_text()
    assert "minimal Faust agent" in table and "share of the oracle" in table
    assert "CPU per event" in table and "peer: quix + river" in table
