"""The decision-quality benchmark runs at a tiny size and reports sane figures."""

from __future__ import annotations

import json
from pathlib import Path

from bench.quality import main


def test_quality_bench_smoke(tmp_path: Path) -> None:
    out, png = tmp_path / "q.json", tmp_path / "q.png"
    args = ["--customers", "40", "--days", "2", "--seeds", "3", "--jobs", "1"]
    assert main([*args, "--json", str(out), "--png", str(png)]) == 0
    doc = json.loads(out.read_text())
    runs, r = doc["runs"], doc["results"]
    assert sorted(runs) == ["11", "12", "13"] and doc["config"]["seeds"] == [11, 12, 13]
    assert set(r) == {"baton", "baton_beta", "oracle", "static", "random", "control"}
    for world in runs.values():
        assert world["control"]["sent"] == 0 and world["control"]["reward"] == 0
        for name, x in world.items():
            assert x["events"] > 0 and x["shown"] <= x["sent"] and x["responses"] <= x["shown"]
            assert len(x["cumulative_reward"]) == 2 * 24 + 2, name
    # the aggregates are the worlds' own figures: means, and intervals around them
    for name, x in r.items():
        rewards = [runs[s][name]["reward"] for s in sorted(runs)]
        assert x["by_seed_reward"] == dict(zip(sorted(runs), rewards, strict=True))
        assert abs(x["reward"] - sum(rewards) / 3) < 1e-3, name
        if name != "control":
            lo, hi = x["reward_ci95"]
            assert lo <= x["reward"] <= hi
    shares = [runs[s]["baton"]["reward"] / runs[s]["oracle"]["reward"] for s in sorted(runs)]
    assert abs(r["baton"]["share_of_oracle"] - sum(shares) / 3) < 1e-3
    assert r["oracle"]["share_of_oracle"] == 1.0 and r["static"]["vs_static"] == 1.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
