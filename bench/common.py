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


def trained_models(events: list[bytes], seed: int = 3) -> dict[str, Any]:
    """An ``IntentModel`` per intent, trained on the pure core's replay of ``events``
    (a benchmark's own traffic, so the scores it serves are in the range it was trained
    for: a model trained on other traffic extrapolates to scores near 1), each point
    the state's features after an event, with made-up labels at plausible rates (a
    third of the points with a cart will buy, 2 % contact service, 5 % churn), so a
    benchmark's worker scores every event as a deployed one does without its rules
    firing on every customer. Returns intent -> model."""
    import random
    import time

    from pipeline.events import DecodeConfig, Decoder, Event
    from pipeline.features import features
    from pipeline.fold import apply
    from pipeline.models import INTENTS, IntentModel
    from pipeline.state import CustomerState, StateConfig

    rng, dec, cfg = random.Random(seed), Decoder(DecodeConfig()), StateConfig()
    now = time.time()
    models = {i: IntentModel(i) for i in INTENTS}
    states: dict[str, CustomerState] = {}
    for raw in events:
        e = dec.decode(raw, now)
        if not isinstance(e, Event):
            continue
        s = states[e.key] = apply(states.get(e.key), e, cfg).state
        x = features(s, e.event_time)
        models["purchase"].learn(x, bool(s.cart.items) and rng.random() < 1 / 3)
        models["support"].learn(x, rng.random() < 0.02)
        models["churn"].learn(x, rng.random() < 0.05)
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
