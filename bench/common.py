"""What the benchmarks share: a broker to run on, and where the figures go."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from agents.localkafka import LocalKafka

__all__ = ["broker", "on_broker", "report", "save", "trained_models"]


@contextlib.contextmanager
def broker(workdir: Path) -> Iterator[str]:
    """BATON_KAFKA_BOOTSTRAP if set, else a local Apache Kafka started (and stopped) here."""
    if os.environ.get("BATON_KAFKA_BOOTSTRAP"):
        yield os.environ["BATON_KAFKA_BOOTSTRAP"]
        return
    kafka = LocalKafka(workdir / "kafka")
    try:
        yield kafka.start()
    finally:
        kafka.cleanup()


def trained_models(examples: int = 3_000, seed: int = 3) -> dict[str, Any]:
    """An ``IntentModel`` per intent, trained on the pure core's replay of simulated
    shoppers (features of each state after its event; purchase, and for the other
    intents an event-type proxy), so a benchmark's worker scores every event as a
    deployed one does. Returns intent -> model."""
    from pipeline.events import DecodeConfig, Decoder, Event
    from pipeline.features import features
    from pipeline.fold import apply
    from pipeline.models import INTENTS, IntentModel
    from pipeline.simulator import SimConfig, Simulator
    from pipeline.state import CustomerState, StateConfig

    t0 = 1e9
    sim, dec, cfg = (
        Simulator(SimConfig(customers=300, seed=seed), start=t0),
        Decoder(DecodeConfig()),
        StateConfig(),
    )
    models = {i: IntentModel(i) for i in INTENTS}
    states: dict[str, CustomerState] = {}
    label = {
        "purchase": {"purchase"},
        "churn": {"page_view"},
        "support": {"ticket_opened", "chat", "call"},
    }
    second, learned = 0, 0
    while learned < examples and second < 100_000:
        second += 1
        for m in sim.due(t0 + second):
            e = dec.decode(m.value, t0 + second)
            if not isinstance(e, Event):
                continue
            s = states[e.key] = apply(states.get(e.key), e, cfg).state
            x = features(s, e.event_time)
            for intent, model in models.items():
                model.learn(x, e.event_type in label[intent])
            learned += 1
    return models


def save(path: Path | None, result: Any) -> None:
    """Write the figures as JSON, if a path was given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))


def report(result: dict[str, Any], path: Path | None) -> None:
    """Print one figure a line, name then value, and save them if a path was given."""
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    save(path, result)


def on_broker(
    run: Callable[[argparse.Namespace, str, Path], Awaitable[dict[str, Any]]],
    args: argparse.Namespace,
    prefix: str,
) -> int:
    """Run a broker-backed benchmark in a fresh work folder, print and save its figures
    (``args.json``)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    with broker(workdir) as bootstrap:
        result = asyncio.run(run(args, bootstrap, workdir))
    report(result, args.json)
    return 0
