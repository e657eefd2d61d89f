"""The worker's garbage collector: tuned for a heap of long-lived customer states.

A worker keeps tens of thousands of customer states (with the memory store, as
objects) and replaces parts of one on every event. CPython's cyclic collector scans its
whole tracked heap in a full collection, which it runs whenever the objects promoted
since the last one exceed a quarter of the heap: with the default thresholds
(700, 10, 10) that cost a worker deciding evenly spread traffic about 25 µs of CPU per
event, 15 % of its time, for states that hold no reference cycles (they are freed by
reference counting the moment a newer version replaces them).

``tune(thresholds, freeze)`` therefore

- freezes what exists once the app is built (modules, Faust's and the playbook's
  objects): the collector stops scanning them. Frozen objects are still freed by
  reference counting; only cycles among them would wait for ``gc.unfreeze``;
- raises the thresholds (default ``10000, 50, 100``): young collections every 10,000
  allocations net, and full ones ten times rarer, still bounded by CPython's own rule.

Every collection's pause is counted in ``baton_gc_pause_seconds_total`` and
``baton_gc_collections_total`` (by generation), so an SRE sees what the collector
costs.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

from agents.metrics import Metrics

__all__ = ["tune", "watch"]


def tune(thresholds: Sequence[int], freeze: bool) -> int:
    """Set the collector's thresholds and (optionally) freeze today's heap; returns the
    number of objects frozen."""
    if thresholds:
        gc.set_threshold(*thresholds)
    if not freeze:
        return 0
    gc.collect()  # what is garbage now is not frozen forever
    gc.freeze()
    return gc.get_freeze_count()


def watch(metrics: Metrics) -> Any:
    """Count every collection and its pause in the worker's metrics; returns the
    callback (``gc.callbacks.remove`` it to stop)."""
    started = [0.0]
    pauses = [metrics.gc_pause.labels(str(g)) for g in range(3)]
    counts = [metrics.gc_collections.labels(str(g)) for g in range(3)]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        g = info["generation"]
        pauses[g].inc(time.perf_counter() - started[0])
        counts[g].inc()

    gc.callbacks.append(callback)
    return callback
