"""The peers a team would pick instead of Baton, each running the reference job.

    python -m bench.peers quix|confluent BOOTSTRAP TOPIC_IN TOPIC_OUT N [--river] [--dir D]

The job (the issue's): consume each event (JSON), keep per-customer state (a count, the
last event type and time), produce one output per event carrying the trigger's event id.
With ``--river`` each event is also scored and learned by a river ``StandardScaler |
LogisticRegression`` (the shape of Baton's intent models) over eight features of the
event and the state: an online model per event.

- ``quix``: Quix Streams, the state in its RocksDB store with a changelog topic (its
  defaults: at-least-once, a commit every 5 s);
- ``confluent``: a hand-written confluent-kafka (librdkafka) loop, the state in a dict.

With ``N`` > 0 the job stops after N events and prints one JSON line: events/s and CPU
µs per event (the whole process, librdkafka's threads included), from the first event
processed to the N-th. With ``N`` = 0 it runs until SIGTERM (``bench.latency`` paces
it).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

__all__ = ["main"]

Step = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def job(river: bool) -> Step:
    """The per-event step: (event, the customer's state, updated in place) -> output."""
    model: Any = None
    if river:
        from river import linear_model, preprocessing

        # the shape of Baton's intent models (pipeline/models.py), on fewer features
        model = preprocessing.StandardScaler() | linear_model.LogisticRegression()

    def step(doc: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        kind, at = doc["event_type"], datetime.fromisoformat(doc["event_time"]).timestamp()
        n = state.get("n", 0) + 1
        since = at - state.get("last_at", at)
        state.update(n=n, last=kind, last_at=at)
        out: dict[str, Any] = {"trigger": {"event_id": doc["event_id"]}, "n": n, "last": kind}
        if model is not None:
            price = (doc.get("properties") or {}).get("price") or 0.0
            hour = (at % 86400.0) / 3600.0
            x = {
                "events": math.log1p(n),
                "since": math.log1p(max(0.0, since)),
                "price": price,
                "page_view": float(kind == "page_view"),
                "product_view": float(kind == "product_view"),
                "add_to_cart": float(kind == "add_to_cart"),
                "hour_sin": math.sin(hour * math.pi / 12),
                "hour_cos": math.cos(hour * math.pi / 12),
            }
            out["score"] = model.predict_proba_one(x).get(True, 0.0)
            model.learn_one(x, kind == "add_to_cart")
        return out

    return step


class Meter:
    """Events/s and CPU per event from the first event to the ``n``-th."""

    def __init__(self, n: int) -> None:
        self.n, self.count = n, 0
        self.t0 = self.c0 = 0.0

    def tick(self) -> bool:
        """Count one event; True once the n-th is done."""
        if self.count == 0:
            self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.count += 1
        return self.n > 0 and self.count >= self.n

    def report(self) -> None:
        wall = time.perf_counter() - self.t0
        cpu = time.process_time() - self.c0
        eps = self.count / wall if wall > 0 else float("nan")
        us = cpu / self.count * 1e6
        figures = {"events": self.count, "events_per_s": eps, "cpu_us_per_event": us}
        print(orjson.dumps(figures).decode(), flush=True)


def quix(
    bootstrap: str, topic_in: str, topic_out: str, n: int, river: bool, state_dir: str
) -> None:
    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    source = app.topic(topic_in, key_deserializer="bytes", value_deserializer="json")
    sink = app.topic(topic_out, key_serializer="bytes", value_serializer="json")
    step, meter = job(river), Meter(n)

    def apply(doc: dict[str, Any], state: Any) -> dict[str, Any]:
        mine = {k: state.get(k) for k in ("n", "last", "last_at") if state.exists(k)}
        out = step(doc, mine)
        for k, v in mine.items():
            state.set(k, v)
        if meter.tick():
            meter.report()
            app.stop()
        return out

    sdf = app.dataframe(source)
    sdf = sdf.apply(apply, stateful=True)
    sdf.to_topic(sink)
    app.run()


def confluent(bootstrap: str, topic_in: str, topic_out: str, n: int, river: bool) -> None:
    from confluent_kafka import Consumer, Producer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ck-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    consumer.subscribe([topic_in])
    step, meter = job(river), Meter(n)
    states: dict[bytes, dict[str, Any]] = {}
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    try:
        while running[0]:
            for m in consumer.consume(num_messages=1000, timeout=0.2):
                if m.error():
                    continue
                key = m.key() or b""
                out = step(orjson.loads(m.value()), states.setdefault(key, {}))
                producer.produce(topic_out, orjson.dumps(out), key)
                producer.poll(0)
                if meter.tick():
                    producer.flush()
                    meter.report()
                    return
    finally:
        producer.flush(10)
        consumer.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("peer", choices=["quix", "confluent"])
    ap.add_argument("bootstrap")
    ap.add_argument("topic_in")
    ap.add_argument("topic_out")
    ap.add_argument("n", type=int)
    ap.add_argument("--river", action="store_true")
    ap.add_argument("--dir", default="quix-state")
    a = ap.parse_args(argv)
    if a.peer == "quix":
        quix(a.bootstrap, a.topic_in, a.topic_out, a.n, a.river, a.dir)
    else:
        confluent(a.bootstrap, a.topic_in, a.topic_out, a.n, a.river)
    return 0


if __name__ == "__main__":
    sys.exit(main())
