"""The timer flow: ticks for customers with something due, expiry checks, snapshots.

A tick goes through ``customer-events``, so a customer who simply leaves is decided
too, by the worker that owns the partition, through the same single-writer path. After
each rebalance (which covers a restart), and every ``BATON_RESCAN_INTERVAL_S``, the due
list is rebuilt from the local table and customers idle past the retention are asked to
expire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from agents.decide import Decider
from agents.metrics import Metrics
from agents.outbox import Outbox
from agents.runtime import StateStore
from agents.web import DueList
from pipeline.messages import Expire, Tick, wire
from pipeline.privacy import expired
from pipeline.step import due

__all__ = ["Sweep"]


class Sweep:
    """What the timer sends each interval (``run``), given whether the worker is
    rebalancing and which assignment generation it is on."""

    def __init__(
        self,
        states: StateStore,
        dues: DueList,
        decider: Decider,
        metrics: Metrics,
        retention_s: float,
        rescan_interval_s: float,
    ) -> None:
        self.states, self.dues, self.decider, self.metrics = states, dues, decider, metrics
        self.retention_s, self.rescan_interval_s = retention_s, rescan_interval_s
        self._last_rescan, self._scanned_at = 0.0, -1

    async def run(
        self,
        send: Callable[[Outbox], Awaitable[None]],
        rebalancing: bool,
        generation: int,
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        passed = now - self._last_rescan >= self.rescan_interval_s
        if not rebalancing and (passed or self._scanned_at != generation):
            self._scanned_at, self._last_rescan = generation, now
            body = wire(Expire(now, now))
            await send([("customer-events", key, body) for key in await self.rescan(now)])
        tick = wire(Tick(now, now))
        await send([("customer-events", key, tick) for key in self.dues.pop_due(now)])

    async def rescan(self, now: float) -> list[bytes]:
        """Rebuild the due list from the table and return the customers idle past the
        retention, to expire. It reads the whole local table, so it yields to the event
        loop every few hundred customers."""
        keys, idle = self.states.keys(), []
        inputs = self.decider.inputs(now)
        for i, key in enumerate(keys):
            if i % 500 == 499:
                await asyncio.sleep(0)
            state = self.states.peek(key)
            if state is not None:
                # customers seen in the last day get idle thresholds that passed while no
                # worker owned them checked once more; older ones only future ones
                since = state.last_seen if now - state.last_seen < 86400.0 else now
                self.dues.set(key, due(state, inputs, since))
                if expired(state, now, self.retention_s):
                    idle.append(key)
        self.metrics.customers.set(len(keys))
        return idle
