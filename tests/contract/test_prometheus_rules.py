"""The Prometheus rules in deploy/ are valid and compute what the Python side computes:
``promtool test rules`` checks the lift and its confidence interval against
``pipeline.response.lift`` on the same counts (promtool is the real Prometheus tool;
``deploy/setup.sh`` installs it, and a missing promtool fails this test)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

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


def _alert(name: str, summary_labels: dict[str, str], **labels: str) -> dict[str, Any]:
    """An expected firing alert: its labels, and its annotations as rendered."""
    rule = next(
        r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
        if r.get("alert") == name
    )  # fmt: skip
    notes = dict(rule["annotations"])
    for key, value in summary_labels.items():
        notes["summary"] = notes["summary"].replace(f"{{{{ $labels.{key} }}}}", value)
    return {"exp_labels": {**rule["labels"], **labels}, "exp_annotations": notes}


# (alert, input series, eval time, the labels it fires with, or None: it must stay quiet)
ALERT_CASES: list[tuple[str, dict[str, str], str, dict[str, str] | None]] = [
    ("BatonWorkerDown", {'up{job="baton",instance="w1"}': "0x10"}, "5m",
     {"job": "baton", "instance": "w1"}),
    ("BatonWorkerDown", {'up{job="baton",instance="w1"}': "1x10"}, "5m", None),
    ("BatonWorkerNotReady", {'baton_ready{instance="w1"}': "0x10"}, "8m", {"instance": "w1"}),
    ("BatonWorkerNotReady", {'baton_ready{instance="w1"}': "0x3 1x7"}, "8m", None),
    ("BatonConsumerLagGrowing",
     {'baton_consumer_lag{topic="t",partition="0",instance="w1"}': "0+200x40"}, "25m",
     {"topic": "t"}),
    ("BatonConsumerLagGrowing",
     {'baton_consumer_lag{topic="t",partition="0",instance="w1"}': "5000x40"}, "25m", None),
    ("BatonActionLatencyHigh", {
        'baton_receive_to_action_seconds_bucket{trigger="event",le="0.5"}': "0+10x30",
        'baton_receive_to_action_seconds_bucket{trigger="event",le="1"}': "0+100x30",
        'baton_receive_to_action_seconds_bucket{trigger="event",le="+Inf"}': "0+100x30",
    }, "20m", {}),
    ("BatonActionLatencyHigh", {
        'baton_receive_to_action_seconds_bucket{trigger="event",le="0.5"}': "0+100x30",
        'baton_receive_to_action_seconds_bucket{trigger="event",le="1"}': "0+100x30",
        'baton_receive_to_action_seconds_bucket{trigger="event",le="+Inf"}': "0+100x30",
    }, "20m", None),
    ("BatonNoActions", {'baton_events_processed_total{type="page_view"}': "0+600x60"}, "40m", {}),
    ("BatonNoActions", {
        'baton_events_processed_total{type="page_view"}': "0+600x60",
        'baton_actions_total{action="a"}': "0+6x60",
    }, "40m", None),
    ("BatonDeadLettersHigh", {
        'baton_messages_received_total{topic="t"}': "0+600x30",
        'baton_deadletters_total{reason="malformed_json"}': "0+60x30",
    }, "20m", {}),
    ("BatonDeadLettersHigh", {
        'baton_messages_received_total{topic="t"}': "0+600x30",
        'baton_deadletters_total{reason="malformed_json"}': "0+6x30",
    }, "20m", None),
    ("BatonPartitionsRepaired", {'baton_stalled_partitions_total{topic="t"}': "0 0 1x5"}, "3m",
     {"topic": "t"}),
    ("BatonPartitionsRepaired", {'baton_source_gaps_total{topic="t"}': "0 0 1x5"}, "3m",
     {"topic": "t"}),
    ("BatonPartitionsRepaired", {'baton_stalled_partitions_total{topic="t"}': "0 1x40"}, "30m",
     None),
    ("BatonSendErrors", {'baton_send_errors_total{instance="w1"}': "0 0 3x5"}, "3m",
     {"instance": "w1"}),
    ("BatonSendErrors", {'baton_send_errors_total{instance="w1"}': "0x10"}, "3m", None),
    ("BatonFetchErrors", {'baton_fetch_errors_total{instance="w1"}': "0 0 1x5"}, "3m",
     {"instance": "w1"}),
    ("BatonFetchErrors", {'baton_fetch_errors_total{instance="w1"}': "0 1x40"}, "30m", None),
    ("BatonModelQualityDrop",
     {'baton_model_quality{intent="purchase",metric="roc_auc"}': "0.8x20 0.7x60"}, "60m",
     {"intent": "purchase"}),
    ("BatonModelQualityDrop",
     {'baton_model_quality{intent="purchase",metric="roc_auc"}': "0.8x20 0.78x60"}, "60m", None),
    ("BatonModelSnapshotStale", {
        'baton_model_snapshot_timestamp_seconds{intent="purchase"}': "0x300",
        'baton_training_examples_total{intent="purchase",label="true"}': "0+10x300",
    }, "4h", {"intent": "purchase"}),
    ("BatonModelSnapshotStale", {  # a quiet shop: no examples, no new snapshot needed
        'baton_model_snapshot_timestamp_seconds{intent="purchase"}': "0x300",
        'baton_training_examples_total{intent="purchase",label="true"}': "0x300",
    }, "4h", None),
    ("BatonPlaybookRefused", {"baton_playbooks_refused_total": "0 0 1x5"}, "3m", {}),
    ("BatonModelSnapshotsRefused",
     {'baton_model_snapshots_refused_total{reason="bad_signature"}': "0 1x5"}, "3m",
     {"reason": "bad_signature"}),
    ("BatonModelSnapshotsRefused",
     {'baton_model_snapshots_refused_total{reason="older"}': "0 1x5"}, "3m", None),
]  # fmt: skip


def test_every_alert_fires_when_it_should_and_only_then(tmp_path: Path) -> None:
    """``promtool test rules``: each alert fires on the series it watches, and stays quiet
    on the nearby case that must not page (a flat lag, a quiet shop, old snapshots)."""
    alerts = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"]
              for r in g["rules"] if "alert" in r]  # fmt: skip
    firing = {name for name, _, _, labels in ALERT_CASES if labels is not None}
    assert firing == set(alerts), "every alert has a firing case"
    tests = []
    for name, series, at, labels in ALERT_CASES:
        expected = [] if labels is None else [_alert(name, labels, **labels)]
        tests.append(
            {
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": expected}],
            }
        )
    path = tmp_path / "alerts.test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "tests": tests}))
    res = promtool("test", "rules", str(path))
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_alert_has_a_runbook() -> None:
    """Each alert links to its own section of docs/operations.md, and the section is
    there (what it means, what to look at, what to do)."""
    doc = (RULES.parents[2] / "docs" / "operations.md").read_text()
    headings = {line[4:].strip() for line in doc.splitlines() if line.startswith("### ")}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                name = rule["alert"]
                assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
                assert name in headings, f"no runbook for {name}"
