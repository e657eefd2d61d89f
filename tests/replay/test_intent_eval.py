"""The real-data evaluation runs through the pure core and reports sane numbers.
It checks the plumbing and the metrics, never a model's quality."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.intent_eval import DATA, main
from pipeline.evaluation import auc, average_precision, log_loss


def test_metrics_on_known_cases() -> None:
    assert auc([0.1, 0.2, 0.3, 0.4], [False, False, True, True]) == 1.0
    assert auc([0.5, 0.5, 0.5, 0.5], [False, True, False, True]) == 0.5
    assert average_precision([0.9, 0.8, 0.1], [True, False, True]) == (1.0 + 2 / 3) / 2
    assert math.isclose(log_loss([0.5, 0.5], [True, False]), math.log(2))


def test_evaluation_runs_on_the_shared_datasets(tmp_path: Path) -> None:
    assert (DATA / "uci-online-shoppers").is_dir(), "../shared/datasets is beside the repo"
    out = tmp_path / "eval.json"
    assert main(["--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [r["data"].split()[0] for r in results] == ["rees46", "rees46", "uci-online-shoppers"]
    assert results[2]["sessions"] == 12330 and results[1]["events"] == 17434
    for r in results:
        for row in r["rows"]:
            assert 0.0 <= row["roc_auc"] <= 1.0 and 0.0 <= row["pr_auc"] <= 1.0
            assert row["points"] > 1000
