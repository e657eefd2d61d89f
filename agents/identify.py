"""The identify flow: events and feedback keyed by anonymous id, through the identity table.

Reads ``identity-events`` with the ``identities`` table (anonymous id -> customer): links
on login, routes to the customer, asks for the anonymous state to be merged
(``pipeline.step.identify``); an erasure's ``unlink`` removes the link.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson

from agents.metrics import Metrics
from agents.outbox import Outbox, Recorder
from pipeline.messages import parse
from pipeline.step import identify

__all__ = ["Identify"]


class Identify:
    """Steps the identity table (``one`` per message)."""

    def __init__(
        self,
        identities: MutableMapping[bytes, bytes],
        record: Recorder,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identities, self.record, self.metrics, self.clock = identities, record, metrics, clock

    def one(self, ev: Any, out: Outbox) -> None:
        anon = ev.key
        link = self.identities.get(anon)
        r = identify(anon, link.decode() if link else None, parse(orjson.loads(ev.value)))
        if r.write and r.link is None:
            del self.identities[anon]
        elif r.write and r.link is not None:
            self.identities[anon] = r.link.encode()
        if r.linked:
            self.metrics.links.inc()
        out.extend((s.topic, s.key, s.value) for s in r.sends)
        out.extend(self.record.dead(d.key, d.raw, d.why, d.src, self.clock()) for d in r.dead)
