"""The worker's collector settings (agents.heap): thresholds, freeze, pauses counted."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from agents import heap
from agents.metrics import Metrics


@pytest.fixture
def collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("collector")
def test_tune_sets_thresholds_and_freezes_the_heap_built_so_far() -> None:
    class Node:
        pass

    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    gone = weakref.ref(cycle)
    del cycle  # garbage now: collected before the freeze, not kept forever
    frozen = heap.tune((10_000, 50, 100), freeze=True)
    assert gc.get_threshold() == (10_000, 50, 100)
    assert frozen == gc.get_freeze_count() > 1000
    assert gone() is None
    gc.unfreeze()
    assert heap.tune((700, 10, 10), freeze=False) == 0 and gc.get_freeze_count() == 0


def test_every_collection_and_its_pause_is_counted() -> None:
    registry = CollectorRegistry()
    callback = heap.watch(Metrics.create(registry))
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        gc.callbacks.remove(callback)
    value = registry.get_sample_value
    assert (value("baton_gc_collections_total", {"generation": "0"}) or 0) >= 1
    assert (value("baton_gc_collections_total", {"generation": "2"}) or 0) >= 1
    assert (value("baton_gc_pause_seconds_total", {"generation": "2"}) or 0) > 0
