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

__all__ = ["broker", "on_broker", "report", "save"]


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
