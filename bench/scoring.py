"""Cost per event of the pure core's steps, and of scoring the intent models.

    .venv/bin/python -m bench.scoring --events 20000

Replays simulated events through decode -> apply -> labels -> decide (the default
playbook: CEL rules, contact policy, arbitration), timing each step,
then times features + predict for each intent model (trained on the replay's labels),
so one can see what scoring every event would add to deciding. Prints µs per event
(median of 5 passes); ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import report
from pipeline.events import DecodeConfig, Decoder, Event
from pipeline.features import features
from pipeline.fold import apply
from pipeline.labels import LabelConfig, label_event
from pipeline.models import INTENTS, IntentModel
from pipeline.playbook import DEFAULT_PATH, load_file
from pipeline.policy import Inputs, Trigger, decide
from pipeline.simulator import SimConfig, Simulator
from pipeline.state import CustomerState, StateConfig

__all__ = ["main"]


def per_event_us(fn: Callable[[], int], passes: int = 5) -> float:
    runs = []
    for _ in range(passes):
        t0 = time.perf_counter()
        n = fn()
        runs.append((time.perf_counter() - t0) / max(1, n) * 1e6)
    return round(statistics.median(runs), 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sim, t0 = Simulator(SimConfig(customers=500, seed=3, bad_share=0.0), start=1e9), 1e9
    raw: list[bytes] = []
    second = 0
    while len(raw) < args.events:
        second += 1
        raw += [m.value for m in sim.due(t0 + second)]
    raw = raw[: args.events]
    dec, scfg, lcfg = Decoder(DecodeConfig()), StateConfig(), LabelConfig()
    inputs = Inputs(load_file(DEFAULT_PATH))  # the default playbook: 11 actions
    now = t0 + second
    events = [e for e in (dec.decode(r, now) for r in raw) if isinstance(e, Event)]
    states: dict[str, CustomerState] = {}
    after: list[CustomerState] = []
    for e in events:
        s = apply(states.get(e.key), e, scfg).state
        states[e.key] = s
        after.append(s)
    models = {i: IntentModel(i) for i in INTENTS}
    for s, e in zip(after, events, strict=True):
        for m in models.values():
            m.learn(features(s, e.event_time), e.event_type == "purchase")

    def replay(step: str) -> int:
        st: dict[str, CustomerState] = {}
        for e in events:
            before = st.get(e.key)
            a = apply(before, e, scfg).state
            if step in ("labels", "decide"):
                a, _ = label_event(before, a, e, lcfg)
            if step == "decide":
                a = decide(a, e.event_time, Trigger("event", e.event_id), e, inputs).state
            st[e.key] = a
        return len(events)

    result = {
        "events": len(events),
        "decode_us": per_event_us(lambda: sum(1 for r in raw if dec.decode(r, now))),
        "apply_us": per_event_us(lambda: replay("apply")),
        "apply_labels_us": per_event_us(lambda: replay("labels")),
        "apply_labels_decide_us": per_event_us(lambda: replay("decide")),
        "state_to_json_us": per_event_us(lambda: sum(1 for s in after if s.to_dict())),
        "features_us": per_event_us(
            lambda: sum(1 for s, e in zip(after, events, strict=True) if features(s, e.event_time))
        ),
        "score_3_intents_us": per_event_us(
            lambda: sum(
                1
                for s, e in zip(after, events, strict=True)
                if [m.predict(x) for x in [features(s, e.event_time)] for m in models.values()]
            )
        ),
    }
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
