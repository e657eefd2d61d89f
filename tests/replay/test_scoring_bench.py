"""The per-event cost benchmark runs at a tiny size and reports positive timings."""

from __future__ import annotations

import json
from pathlib import Path

from bench.scoring import main


def test_scoring_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert main(["--events", "300", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["events"] > 250
    assert all(v > 0 for k, v in r.items() if k.endswith("_us"))
