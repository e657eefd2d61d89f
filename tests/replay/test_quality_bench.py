"""The decision-quality benchmark runs at a tiny size and reports sane figures."""

from __future__ import annotations

import json
from pathlib import Path

from bench.quality import main


def test_quality_bench_smoke(tmp_path: Path) -> None:
    out, png = tmp_path / "q.json", tmp_path / "q.png"
    assert main(["--customers", "40", "--days", "2", "--json", str(out), "--png", str(png)]) == 0
    r = json.loads(out.read_text())["results"]
    assert set(r) == {"baton", "oracle", "static", "random", "control"}
    assert r["control"]["sent"] == 0 and r["control"]["reward"] == 0
    for name, x in r.items():
        assert x["events"] > 0 and x["shown"] <= x["sent"] and x["responses"] <= x["shown"]
        assert len(x["cumulative_reward"]) == 2 * 24 + 2, name
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
