"""Every benchmark in one command, results as JSON and PNG, and the benchmarks' summary.

    .venv/bin/python -m bench            # about 18 minutes on 2 cores
    .venv/bin/python -m bench --quick    # seconds-sized: checks that everything runs

One local Apache Kafka broker (or ``BATON_KAFKA_BOOTSTRAP``) serves the broker-backed
benchmarks in turn: throughput with its two floors and its peers, latency and scaling
(``bench.throughput``), memory as the state grows to 100,000 customers
(``bench.memory``); then the pure ones: the core's cost per event (``bench.scoring``)
and decision quality against an oracle, static rules, random and no action
(``bench.quality``). Writes
``OUT/{throughput,memory,scoring,quality}.json``, ``OUT/throughput.png`` (events/s and
latency percentiles), ``OUT/quality.png`` (cumulative reward and regret) and
``OUT/summary.md`` (the table docs/benchmarks.md shows). Numbers, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import memory, quality, scoring, throughput
from bench.common import broker
from bench.throughput import PEERS, peer_name

__all__ = ["main", "plot_throughput", "summary"]

FULL = {
    "throughput": ["--events", "50000"],
    "memory": ["--sizes", "10000", "100000"],
    "scoring": ["--events", "20000"],
    "quality": ["--customers", "1000", "--days", "14"],
}
QUICK = {
    "throughput": [
        *("--events", "600", "--rounds", "1"),
        *("--latency-seconds", "1", "--latency-scale", "0.05"),
    ],
    "memory": ["--sizes", "100", "200"],
    "scoring": ["--events", "300"],
    "quality": ["--customers", "40", "--days", "1", "--seeds", "2"],
}


def plot_throughput(r: dict[str, Any], path: Path) -> None:
    """Events/s of the floors and Baton (log scale), and latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    names = ["aiokafka loop", "Faust floor", "Baton, 1 worker", "Baton, 2 workers"]
    keys = [
        "baseline_aiokafka_events_per_s",
        "faust_floor_events_per_s",
        "baton_events_per_s",
        "baton_2_workers_events_per_s",
    ]
    values = [r.get(k, 0) for k in keys]
    bars = left.bar(names, values, color=["C7", "C1", "C0", "C9"])
    left.bar_label(bars, labels=[f"{v:,}" for v in values])
    left.set_yscale("log")
    left.set_ylabel("events/s (log scale)")
    left.set_title(f"throughput, {r['events']:,} events")
    left.tick_params(axis="x", labelrotation=15)
    for i, tag in enumerate(("at_50pct", "at_80pct")):
        ps = [r[f"latency_{tag}_p{q}_ms"] for q in (50, 95, 99)]
        label = f"{tag[3:5]} % load ({r[f'latency_{tag}_rate_per_s']:,}/s)"
        right.bar([x + 0.38 * i for x in range(3)], ps, width=0.38, label=label)
    right.set_xticks([x + 0.19 for x in range(3)], ["p50", "p95", "p99"])
    right.set_ylabel("event produced -> action consumed, ms")
    right.set_title("latency")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(
    t: dict[str, Any], m: list[dict[str, Any]], s: dict[str, Any], q: dict[str, Any]
) -> str:
    """The benchmarks' summary table, in Markdown."""
    floor = t["faust_floor_events_per_s"]
    rows = [
        ("plain aiokafka loop (Python floor)", f"{t['baseline_aiokafka_events_per_s']:,} events/s"),
        ("minimal Faust agent (framework floor)", f"{floor:,} events/s"),
        (
            "one Baton worker, full pipeline",
            f"{t['baton_events_per_s']:,} events/s ({t['baton_vs_faust_floor']} x the Faust floor)",
        ),
    ]
    if "baton_cpu_us_per_event" in t:
        rows.append(
            (
                "CPU per event: aiokafka loop / Faust floor / Baton",
                f"{t['baseline_aiokafka_cpu_us_per_event']} / {t['faust_floor_cpu_us_per_event']}"
                f" / {t['baton_cpu_us_per_event']} µs (Baton {t['baton_vs_faust_floor_cpu']} x"
                " the floor's events per CPU second)",
            )
        )
    if "baton_2_workers_events_per_s" in t:
        rows.append(
            (
                "two Baton workers, one group",
                f"{t['baton_2_workers_events_per_s']:,} events/s ({t['scaling_2_vs_1']} x one)",
            )
        )
    for tag in ("at_50pct", "at_80pct"):
        ps = " / ".join(f"{t[f'latency_{tag}_p{x}_ms']}" for x in (50, 95, 99))
        rate = t[f"latency_{tag}_rate_per_s"]
        rows.append((f"latency {tag[3:5]} % ({rate:,}/s): p50 / p95 / p99", f"{ps} ms"))
    for row in m:
        rows.append(
            (
                f"`{row['store']}` store at {row['customers']:,} customers",
                f"{row['rss_mb']} MB RSS, {row['rss_kb_per_customer_added']} KB per customer"
                f" added, {row['cpu_us_per_event']} µs CPU per event"
                + (f", {row['rocksdb_disk_mb']} MB on disk" if row.get("rocksdb_disk_mb") else ""),
            )
        )
    for tag in (peer_name(*p) for p in PEERS if f"{peer_name(*p)}_events_per_s" in t):
        rows.append(
            (
                f"peer: {tag.replace('_', ' + ')} (reference job)",
                f"{t[f'{tag}_events_per_s']:,} events/s, {t[f'{tag}_cpu_us_per_event']} µs CPU"
                f" per event (Baton {t[f'baton_vs_{tag}']} x its events/s)",
            )
        )
    rows.append(
        (
            "pure core per event: decode / fold + labels + decide / state to JSON",
            f"{s['decode_us']} / {s['apply_labels_decide_us']} / {s['state_to_json_us']} µs",
        )
    )
    res = q["results"]
    shares = ", ".join(
        f"{name} {r['share_of_oracle']:.1%}" for name, r in res.items() if name != "control"
    )
    rows.append(("decision quality, reward as share of the oracle", shares))
    lift = res["baton"]["conversion_lift_vs_none"]
    rows.append(("conversions, Baton vs no action", f"{lift:+.1%}"))
    return "| figure | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--quick", action="store_true", help="tiny sizes: seconds, not minutes")
    args = ap.parse_args(argv)
    sizes, out = QUICK if args.quick else FULL, args.out
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="baton-bench-all-"))
    with broker(workdir) as bootstrap:
        os.environ["BATON_KAFKA_BOOTSTRAP"] = bootstrap  # one broker for both
        throughput.main([*sizes["throughput"], "--json", str(out / "throughput.json")])
        memory.main(
            [*sizes["memory"], "--json", str(out / "memory.json"), "--png", str(out / "memory.png")]
        )
    scoring.main([*sizes["scoring"], "--json", str(out / "scoring.json")])
    quality.main(
        [*sizes["quality"], "--json", str(out / "quality.json"), "--png", str(out / "quality.png")]
    )
    t, m, s, q = (json.loads((out / f"{n}.json").read_text()) for n in FULL)
    plot_throughput(t, out / "throughput.png")
    table = summary(t, m, s, q)
    (out / "summary.md").write_text(table)
    print(f"\n{table}\nresults in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
