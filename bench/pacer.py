"""A load generator in its own process: events at a fixed rate, probes stamped with their
send time (used by ``bench.latency``).

    python -m bench.pacer BOOTSTRAP TOPIC RATE SECONDS CUSTOMERS RUN_ID [PROBE_EVERY]

Sends ``RATE`` x ``SECONDS`` ~400-byte clickstream events to ``TOPIC`` (keyed by
customer, Kafka's default partitioner, as most producers do), paced every 5 ms. One
event in ``PROBE_EVERY`` is a probe: a new customer's first page view, which always gets
a decision; its id carries the wall-clock time it was handed to the producer
(``lat-RUN_ID-N-<ns>``), so the consumer can time it without talking to this process.
The others go to ``CUSTOMERS`` returning customers (the throughput run's mix). Prints
the rate achieved.
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiokafka import AIOKafkaProducer

from bench.throughput import KINDS, event

__all__ = ["main", "pace"]


async def pace(
    bootstrap: str,
    topic: str,
    rate: float,
    seconds: float,
    customers: int,
    run_id: str,
    probe_every: int = 5,
) -> float:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await p.start()
    total, j = max(1, int(rate * seconds)), 0
    try:
        t0 = time.perf_counter()
        while j < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while j < due:
                if j % probe_every == 0:
                    cid = f"lat-{run_id}-{j}"
                    doc = event(j, "page_view", time.time(), cid)
                    eid = f"b-{j}-page_view".encode()
                    doc = doc.replace(eid, f"{cid}-{time.time_ns()}".encode(), 1)
                else:
                    cid = f"c-{j % customers}"
                    doc = event(j + 10**9, KINDS[j % len(KINDS)], time.time(), cid)
                await p.send(topic, doc, key=cid.encode())
                j += 1
            await asyncio.sleep(0.005)
        await p.flush()
        return total / (time.perf_counter() - t0)
    finally:
        await p.stop()


def main(argv: list[str] | None = None) -> int:
    a = argv if argv is not None else sys.argv[1:]
    probe_every = int(a[6]) if len(a) > 6 else 5
    achieved = asyncio.run(pace(a[0], a[1], float(a[2]), float(a[3]), int(a[4]), a[5], probe_every))
    print(f"{achieved:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
