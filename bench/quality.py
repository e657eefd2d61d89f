"""Decision quality over a simulated run: Baton against an oracle, static rules, a
random policy and no action, in the same world (``pipeline.world``).

    .venv/bin/python -m bench.quality --customers 2000 --days 14 --json bench/results/quality.json

Every policy faces the same customers with the same hidden traits and the same
behaviour; only the actions differ, and the world answers them from its hidden
response probabilities. Prints, per policy: actions sent, shown, responses,
conversions (purchases, natural and induced), reward (the value of the actions
responded to), its share of the oracle's reward, and conversions against no action.
``--json`` writes the figures and cumulative reward per simulated hour; ``--png``
plots cumulative reward and regret (oracle's reward minus the policy's) over time.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import save
from pipeline.world import POLICIES, WorldConfig, run

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args(argv)
    cfg = WorldConfig(customers=args.customers, days=args.days, seed=args.seed)
    results: dict[str, dict[str, Any]] = {}
    for policy in POLICIES:
        t0 = time.perf_counter()
        results[policy] = run(policy, cfg).to_dict() | {
            "seconds": round(time.perf_counter() - t0, 2)
        }
    oracle, control = results["oracle"]["reward"], results["control"]["conversions"]
    head = f"{'policy':<8} {'sent':>7} {'shown':>7} {'resp':>6} {'conv':>6} {'reward':>10}"
    print(head + f" {'of oracle':>9} {'conv vs none':>12}")
    for name, r in results.items():
        share = r["reward"] / oracle if oracle else 0.0
        lift = r["conversions"] / control - 1 if control else 0.0
        r["share_of_oracle"], r["conversion_lift_vs_none"] = round(share, 4), round(lift, 4)
        print(
            f"{name:<8} {r['sent']:>7} {r['shown']:>7} {r['responses']:>6} "
            f"{r['conversions']:>6} {r['reward']:>10.1f} {share:>9.1%} {lift:>+12.1%}"
        )
    save(args.json, {"config": dataclasses.asdict(cfg), "results": results})
    if args.png is not None:
        plot(results, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
