"""The Prometheus rules in deploy/ are valid and compute what the Python side computes:
``promtool test rules`` checks the lift and its confidence interval against
``pipeline.response.lift`` on the same counts (promtool is the real Prometheus tool;
``deploy/setup.sh`` installs it, and a missing promtool fails this test)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from pipeline.response import lift

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "baton-rules.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: run deploy/setup.sh (Debian package 'prometheus')"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_rules_are_valid() -> None:
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr


def test_lift_and_interval_match_the_python_side(tmp_path: Path) -> None:
    conv_t, n_t, conv_c, n_c = 120, 1000, 80, 1000
    diff, low, high = lift(conv_t, n_t, conv_c, n_c)
    labels = 'action="abandoned_cart_reminder",journey="abandoned_cart"'
    series = []
    # two workers' counters, summed by the rules
    for worker, share in (("w1", 0.6), ("w2", 0.4)):
        for group, conv, n in (("treatment", conv_t, n_t), ("control", conv_c, n_c)):
            lab = f'{labels},group="{group}",instance="{worker}"'
            series.append(
                {"series": f"baton_journey_decisions_total{{{lab}}}", "values": f"{n * share:g}x5"}
            )
            series.append(
                {
                    "series": f"baton_journey_conversions_total{{{lab}}}",
                    "values": f"{conv * share:g}x5",
                }
            )
    out = {"labels": "{" + labels + "}"}

    def expect(name: str, value: float) -> dict:
        return {
            "expr": f"round({name} * 1e6)",
            "eval_time": "2m",
            "exp_samples": [{"labels": out["labels"], "value": round(value * 1e6)}],
        }

    spec = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    expect("baton:journey_lift:diff", diff),
                    expect("baton:journey_lift:ci95_low", low),
                    expect("baton:journey_lift:ci95_high", high),
                ],
            }
        ],
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(spec))
    res = promtool("test", "rules", str(path))
    assert res.returncode == 0, res.stdout + res.stderr
