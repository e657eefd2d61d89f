"""The framework's floor: a minimal Faust agent doing the baseline's job.

    python -m bench.faust_floor BOOTSTRAP TOPIC_IN TOPIC_OUT WEB_PORT DATA_DIR PARTITIONS

Consume each event (raw bytes), decode it with orjson, count it per key in a Faust
table (raw codec, so one changelog record per event), produce one message per event.
No validation, no state beyond the count, no decision: what any Faust agent pays per
event on this machine. Serves ``/metrics`` (``floor_processed_total``), ``/healthz`` and ``/readyz``
like a Baton worker, so the benchmark measures both the same way.
"""

from __future__ import annotations

import asyncio
import sys

import faust
import orjson
from prometheus_client import CollectorRegistry, Counter

from agents.web import Readiness, add_pages

__all__ = ["build"]


def build(
    bootstrap: str, topic_in: str, topic_out: str, port: int, data_dir: str, partitions: int
) -> faust.App:
    registry = CollectorRegistry()
    processed = Counter("floor_processed", "Events processed.", registry=registry)
    app = faust.App(
        f"floor-{topic_in}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=data_dir,
        topic_partitions=partitions,
        key_serializer="raw",
        value_serializer="raw",
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=port,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
    )
    source, out = app.topic(topic_in), app.topic(topic_out)
    counts = app.Table("counts", default=None, key_type=bytes, value_type=bytes)

    @app.agent(source)
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for ev in stream.events():
            doc = orjson.loads(ev.value)
            n = int(counts.get(ev.key) or b"0") + 1
            counts[ev.key] = str(n).encode()
            await out.send(key=ev.key, value=orjson.dumps({"n": n, "t": doc["event_type"]}))
            processed.inc()

    add_pages(app, registry, Readiness(app, {}))
    return app


if __name__ == "__main__":
    bootstrap, topic_in, topic_out, port, data_dir, partitions = sys.argv[1:7]
    asyncio.set_event_loop(asyncio.new_event_loop())
    floor = build(bootstrap, topic_in, topic_out, int(port), data_dir, int(partitions))
    sys.argv = [sys.argv[0], "worker", "-l", "warning"]
    w = faust.Worker(floor, loglevel="WARNING")
    w.spinner = None  # as the Baton worker (see agents/cli.py)
    w.execute_from_commandline()
