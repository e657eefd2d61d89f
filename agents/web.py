"""Small worker parts: the web pages (/metrics, /healthz, /readyz) and the timer's due list."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["DueList", "Readiness", "add_pages"]


@dataclass
class DueList:
    """Customers whose decision falls due later: a heap with lazy deletion, rebuilt
    from ``when`` once it holds twice the live entries. Every event moves its customer's
    due time (the idle recheck counts from the last event), and a replaced entry stays
    in the heap until its time comes: without the rebuild the heap held one entry per
    event over the recheck horizon (30 minutes at 1,000 events/s: 1.8 million)."""

    heap: list[tuple[float, bytes]] = field(default_factory=list)
    when: dict[bytes, float] = field(default_factory=dict)

    def set(self, key: bytes, due: float | None) -> None:
        if due is None:
            self.when.pop(key, None)
        elif self.when.get(key) != due:
            self.when[key] = due
            heapq.heappush(self.heap, (due, key))
            if len(self.heap) > 2 * len(self.when) + 1024:
                self.heap = [(d, k) for k, d in self.when.items()]
                heapq.heapify(self.heap)

    def pop_due(self, now: float) -> list[bytes]:
        out = []
        while self.heap and self.heap[0][0] <= now:
            due, key = heapq.heappop(self.heap)
            if self.when.get(key) == due:
                del self.when[key]
                out.append(key)
        return out


@dataclass
class Readiness:
    """Whether a worker should be counted on: what ``/readyz`` checks, and why not.

    ``followers``: the registries reading the playbook and model topics (each with a
    ``caught_up`` flag)."""

    app: Any
    followers: dict[str, Any]

    def problems(self) -> list[str]:
        app, recovery = self.app, self.app.tables.recovery
        followers = self.followers.items()
        why = [f"{n} topic not read to its end" for n, f in followers if not f.caught_up]
        if app.rebalancing:
            why.append("rebalancing")
        # set once the group's assignment is in and its tables are recovered; an empty
        # assignment (more workers than partitions) is one: the worker is a hot spare
        if recovery.in_recovery or not recovery.completed.is_set():
            why.append("partitions not assigned and recovered yet")
        return why


def add_pages(
    app: faust.App, registry: CollectorRegistry, ready: Readiness, gauge: Any = None
) -> None:
    """``/metrics`` (Prometheus text format); ``/healthz`` (liveness: 200 while the
    worker's event loop answers, a rebalance included); ``/readyz`` (readiness: 200 once
    the group's assignment is in (possibly empty) and its tables are recovered, with no
    rebalance running and the playbook and model topics read to their end, else 503 with
    the reasons); ``/health``, the same as ``/readyz``
    (kept for earlier deployments)."""

    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"alive": True})

    async def readyz(web: Any, request: Any) -> Any:
        why = ready.problems()
        if gauge is not None:
            gauge.set(0 if why else 1)
        body = {"ready": not why, "rebalancing": bool(app.rebalancing), "problems": why}
        return web.json(body, status=503 if why else 200)

    app.page("/metrics")(metrics)
    app.page("/healthz")(healthz)
    app.page("/readyz")(readyz)
    app.page("/health")(readyz)
