"""Small worker parts: the web pages (/metrics, /health) and the timer's due list."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["DueList", "add_pages"]


@dataclass
class DueList:
    """Customers whose decision falls due later: a heap with lazy deletion."""

    heap: list[tuple[float, bytes]] = field(default_factory=list)
    when: dict[bytes, float] = field(default_factory=dict)

    def set(self, key: bytes, due: float | None) -> None:
        if due is None:
            self.when.pop(key, None)
        elif self.when.get(key) != due:
            self.when[key] = due
            heapq.heappush(self.heap, (due, key))

    def pop_due(self, now: float) -> list[bytes]:
        out = []
        while self.heap and self.heap[0][0] <= now:
            due, key = heapq.heappop(self.heap)
            if self.when.get(key) == due:
                del self.when[key]
                out.append(key)
        return out


def add_pages(app: faust.App, registry: CollectorRegistry) -> None:
    """``/metrics`` (Prometheus text format) and ``/health`` (200 once partitions are
    assigned and no rebalance is running, else 503)."""

    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(web: Any, request: Any) -> Any:
        ready = bool(app.assignor.assigned_actives()) and not app.rebalancing
        return web.json(
            {"ready": ready, "rebalancing": app.rebalancing}, status=200 if ready else 503
        )

    app.page("/metrics")(metrics)
    app.page("/health")(health)
