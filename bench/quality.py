"""Decision quality over a simulated run: Baton against an oracle, static rules, a
random policy and no action, in the same world (``pipeline.world``).

    .venv/bin/python -m bench.quality --customers 1000 --days 14 --seeds 5 --json q.json

Every policy faces the same customers with the same hidden traits and the same
behaviour; only the actions differ, and the world answers them from its hidden
response probabilities. Each of ``--seeds`` worlds (seeds ``--seed``, ``--seed`` + 1,
...) is run with every policy, ``--jobs`` runs at a time. Prints, per policy, over the
worlds: mean actions sent, responses and conversions (purchases, natural and induced);
the reward (the value of the actions responded to), its share of the oracle's reward,
its ratio to static rules' and conversions against no action, each as the mean with a
95 % interval (Student's t over the worlds; ratios are taken within each world).
``--playbook`` runs every policy under another playbook than the world's
(``pipeline/default_playbook.yaml``: Baton's default journeys). ``--json`` writes the
aggregates, each world's figures and mean cumulative reward per
simulated hour; ``--png`` plots cumulative reward and regret (oracle's reward minus the
policy's) over time.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from scipy import stats

from bench.common import save
from pipeline.world import POLICIES, WORLD_PLAYBOOK, WorldConfig, run

__all__ = ["main", "plot"]


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    """Cumulative reward and regret against the oracle, per simulated hour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    oracle = results["oracle"]["cumulative_reward"]
    for i, (name, r) in enumerate(results.items()):
        cum, colour = r["cumulative_reward"], f"C{i}"  # one colour per policy in both
        hours = range(len(cum))
        top.plot(hours, cum, label=name, color=colour)
        if name != "oracle":
            regret = [o - c for o, c in zip(oracle, cum, strict=True)]
            bottom.plot(hours, regret, label=name, color=colour)
    top.set_ylabel("cumulative reward")
    top.legend()
    bottom.set_ylabel("regret vs oracle")
    bottom.set_xlabel("simulated hours")
    bottom.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def interval(xs: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % interval (Student's t over the seeds) of per-seed figures.

    >>> [round(v, 3) for v in interval([1.0, 2.0, 3.0])]
    [2.0, -0.484, 4.484]
    """
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(xs) - 1)) * statistics.stdev(xs) / math.sqrt(len(xs))
    return m, m - half, m + half


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def aggregate(runs: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per policy over the seeds: mean counts, the mean reward with its 95 % interval,
    and per-seed ratios (of the oracle's reward, of static rules', conversions against
    no action) as mean and interval; cumulative reward is the seeds' mean per hour."""
    seeds = sorted(runs)
    out: dict[str, dict[str, Any]] = {}
    for name in POLICIES:
        per = [runs[s][name] for s in seeds]
        r: dict[str, Any] = {
            k: round(statistics.fmean(x[k] for x in per), 1)
            for k in ("events", "sent", "shown", "responses", "conversions")
        }
        # eligible, allowed actions when one is chosen: above 1, the choice matters
        r["candidates_per_action"] = round(
            statistics.fmean(x["candidates_per_action"] for x in per), 2
        )
        figures = {
            "reward": [x["reward"] for x in per],
            "share_of_oracle": [
                _ratio(x["reward"], runs[s]["oracle"]["reward"])
                for s, x in zip(seeds, per, strict=True)
            ],
            "vs_static": [
                _ratio(x["reward"], runs[s]["static"]["reward"])
                for s, x in zip(seeds, per, strict=True)
            ],
            "conversion_lift_vs_none": [
                _ratio(x["conversions"], runs[s]["control"]["conversions"]) - 1
                for s, x in zip(seeds, per, strict=True)
            ],
        }
        for k, xs in figures.items():
            m, lo, hi = interval(xs)
            r[k], r[f"{k}_ci95"] = round(m, 4), [round(lo, 4), round(hi, 4)]
        r["by_seed_reward"] = {s: x["reward"] for s, x in zip(seeds, per, strict=True)}
        r["cumulative_reward"] = [
            round(statistics.fmean(hour), 2)
            for hour in zip(*(x["cumulative_reward"] for x in per), strict=True)
        ]
        out[name] = r
    return out


def _one(job: tuple[str, WorldConfig]) -> tuple[str, int, dict[str, Any]]:
    policy, cfg = job
    t0 = time.perf_counter()
    r = run(policy, cfg).to_dict() | {"seconds": round(time.perf_counter() - t0, 2)}
    return policy, cfg.seed, r


def _pm(r: dict[str, Any], k: str, fmt: str) -> str:
    lo, hi = r[f"{k}_ci95"]
    if math.isnan(lo):
        return format(r[k], fmt)
    return f"{format(r[k], fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--seed", type=int, default=11, help="the first world's seed")
    ap.add_argument("--seeds", type=int, default=5, help="worlds: --seed, --seed + 1, ...")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument(
        "--playbook", type=Path, default=WORLD_PLAYBOOK,
        help="the playbook every policy runs (default: the world's; or Baton's default one)",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args(argv)
    cfgs = [
        WorldConfig(args.customers, args.days, args.seed + i, playbook=args.playbook)
        for i in range(args.seeds)
    ]
    jobs = [(policy, cfg) for cfg in cfgs for policy in POLICIES]
    runs: dict[int, dict[str, dict[str, Any]]] = {cfg.seed: {} for cfg in cfgs}
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            done = list(pool.map(_one, jobs))
    else:
        done = [_one(job) for job in jobs]
    for policy, seed, r in done:
        runs[seed][policy] = r
    results = aggregate(runs)
    print(f"{len(cfgs)} worlds (seeds {cfgs[0].seed}-{cfgs[-1].seed}), {args.customers} "
          f"customers, {args.days:g} days; mean [95 % interval] over the worlds")  # fmt: skip
    print(f"{'policy':<10} {'sent':>8} {'resp':>7} {'conv':>7}  {'reward':<26} "
          f"{'of oracle':<24} {'vs static':<24} conv vs none")  # fmt: skip
    for name, r in results.items():
        print(
            f"{name:<10} {r['sent']:>8.0f} {r['responses']:>7.0f} {r['conversions']:>7.0f}  "
            f"{_pm(r, 'reward', '.0f'):<26} {_pm(r, 'share_of_oracle', '.1%'):<24} "
            f"{_pm(r, 'vs_static', '.3f'):<24} {_pm(r, 'conversion_lift_vs_none', '+.1%')}"
        )
    config = dataclasses.asdict(cfgs[0]) | {"seeds": [c.seed for c in cfgs]}
    config["playbook"] = str(cfgs[0].playbook)
    save(args.json, {"config": config, "results": results, "runs": runs})
    if args.png is not None:
        plot(results, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
