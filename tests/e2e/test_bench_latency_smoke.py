"""The paced latency benchmark (a separate pacer process, every probe timed, the worst
second) and the comparison with an earlier commit run end to end at a tiny size. They
never assert a speed: the figures are read from their output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def run(kafka, *args: str) -> None:
    env = {**os.environ, "BATON_KAFKA_BOOTSTRAP": kafka.bootstrap}
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, timeout=600
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()[-3000:]


def test_latency_bench_times_every_probe(kafka, tmp_path: Path) -> None:
    out, png = tmp_path / "latency.json", tmp_path / "latency.png"
    run(
        kafka,
        *("bench.latency", "--events", "400", "--rates", "50", "--shares"),
        *("--seconds", "2", "--peers", "quix", "--json", str(out), "--png", str(png)),
    )
    r = json.loads(out.read_text())
    assert r["50/s probes"] == 20, r  # one in five of 100 events
    assert r["quix 50/s probes"] == 20 and r["50/s p99_vs_quix"] > 0, r  # the peer, paced alike
    assert 0 < r["50/s p50_ms"] <= r["50/s p99_ms"] <= r["50/s max_ms"]
    assert r["50/s worst_second_p99_ms"] >= r["50/s p99_ms"] * 0.5
    # CPU per paced event, Baton's and the peer's, each from its own process(es)
    assert r["50/s cpu_us_per_event"] > 0 and r["quix 50/s cpu_us_per_event"] > 0, r
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_versions_bench_runs_an_earlier_commit(kafka, tmp_path: Path) -> None:
    out = tmp_path / "versions.json"
    run(
        kafka,
        *("bench.versions", "--ref", "HEAD", "--events", "300", "--rounds", "1"),
        *("--latency-seconds", "1", "--json", str(out)),
    )
    r = json.loads(out.read_text())
    assert r["before_events_per_s"] > 0 and r["after_events_per_s"] > 0
    assert r["before_latency_samples"] > 0 and r["after_latency_samples"] > 0


def test_soak_prints_memory_and_latency_every_window(kafka, tmp_path: Path) -> None:
    """The soak's short form (``make soak`` runs ten minutes at half the worker's
    capacity, a line every 30 s): half a minute, a line every 15 s, at a fixed 500
    events/s, as a backlog this small drains too fast to measure a capacity by. Figures
    are read, not asserted against a speed; a worker that exits fails the run."""
    out = tmp_path / "soak.json"
    run(kafka, "bench.soak", "--minutes", "0.5", "--every", "15", "--events", "3000",
        "--rate", "500", "--json", str(out))  # fmt: skip
    r = json.loads(out.read_text())
    assert len(r["windows"]) >= 2, r
    for w in r["windows"]:
        assert w["rss_mb"] > 0 and w["probes"] > 0
        assert 0 < w["p50_ms"] <= w["p99_ms"] <= w["max_ms"]
    print(f"soak: {[(w['t_s'], w['rss_mb'], w['p99_ms']) for w in r['windows']]}")
