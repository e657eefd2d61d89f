"""A seeded simulator of shoppers, for the demo, tests and benchmarks.

Each simulated customer walks a small journey (browse, view products, add to cart,
check out and buy, or leave for a while with a full cart) with think times between
events. Some start as anonymous visitors (an ``anonymous_id`` only) and log in later
(an event with both ids, then the customer id only); service systems send outage
notices, delivery updates, tickets and survey answers on the ``service`` topic. A small,
configured share of messages is malformed in known ways (``BAD_KINDS``), each with the
dead-letter reason Baton must give it; some events arrive late (event time minutes in
the past) and some twice (``note="duplicate"``: valid at the edge, a ``duplicate`` dead
letter once applied). The clock is
injected: ``due(now)`` returns what should have been produced by ``now``, so the same
seed and clock give the same stream.

    >>> sim = Simulator(SimConfig(customers=5, seed=1, bad_share=0.0), start=1_000_000.0)
    >>> out = sim.due(now=1_000_000.0)
    >>> fresh = [m for m in out if m.note is None]
    >>> len(fresh), {m.topic for m in out} <= {"clickstream", "service"}
    (5, True)
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.events import format_time

__all__ = ["BAD_KINDS", "Message", "SimConfig", "Simulator", "bad_message", "event_doc"]


@dataclass(frozen=True, slots=True)
class SimConfig:
    customers: int = 300
    seed: int = 7
    bad_share: float = 0.02
    think_s: tuple[float, float] = (0.5, 4.0)
    away_s: tuple[float, float] = (20.0, 60.0)
    leave_with_cart: float = 0.5
    anonymous_share: float = 0.3
    service_share: float = 0.05
    late_share: float = 0.02
    duplicate_share: float = 0.01


@dataclass(frozen=True, slots=True)
class Message:
    """One message to produce: ``topic`` is ``clickstream`` or ``service``."""

    topic: str
    key: bytes
    value: bytes
    expected_reason: str | None = None
    note: str | None = None


def event_doc(eid: str, kind: str, t: float, cid: str, props: dict[str, Any]) -> dict[str, Any]:
    """A valid ``event.v1`` document for customer ``cid`` at epoch time ``t``."""
    return {
        "event_id": eid,
        "schema_version": 1,
        "event_type": kind,
        "event_time": format_time(t),
        "customer_id": cid,
        "properties": props,
    }


def _good(now: float) -> dict[str, Any]:
    return event_doc("bad-base", "page_view", now, "c-bad", {"url": "/"})


def _with(**kw: Any) -> Callable[[float], bytes]:
    def make(now: float) -> bytes:
        doc = _good(now)
        doc.update(kw)
        return orjson.dumps({k: v for k, v in doc.items() if v is not None})

    return make


def _timed(offset: float) -> Callable[[float], bytes]:
    return lambda now: orjson.dumps(_good(now) | {"event_time": format_time(now + offset)})


# kind -> (maker(now) -> bytes, reason Baton must give)
BAD_KINDS: dict[str, tuple[Callable[[float], bytes], str]] = {
    "not_json": (lambda now: b"this is not json", "malformed_json"),
    "truncated": (lambda now: orjson.dumps(_good(now))[:-9], "malformed_json"),
    "invalid_utf8": (lambda now: b'{"event_id": "\xff\xfe"}', "invalid_utf8"),
    "array": (lambda now: b"[1, 2, 3]", "not_an_object"),
    "missing_id": (_with(event_id=None), "schema_violation"),
    "wrong_type": (_with(properties={"price": "cheap"}), "schema_violation"),
    "no_identity": (_with(customer_id=None), "missing_identity"),
    "unknown_type": (_with(event_type="teleport"), "unknown_event_type"),
    "future_version": (_with(schema_version=2), "unsupported_schema_version"),
    "oversized": (lambda now: orjson.dumps(_good(now) | {"pad": "x" * 70_000}), "oversized"),
    "future_time": (_timed(+7 * 86400), "future_timestamp"),
    "ancient_time": (_timed(-30 * 86400), "too_late"),
}


def bad_message(kind: str, now: float, key: bytes = b"c-bad") -> Message:
    """A malformed message of a known kind, with the reason it must be rejected for."""
    make, reason = BAD_KINDS[kind]
    return Message("clickstream", key, make(now), reason)


class Simulator:
    """Seeded population of shoppers; see module docstring."""

    def __init__(self, cfg: SimConfig, start: float = 0.0) -> None:
        self.cfg = cfg
        self._rng = random.Random(cfg.seed)
        self._seq = 0
        self._cart: dict[str, int] = {}
        # anonymous until they log in: customer -> anonymous id
        self._anon = {
            f"c-{i:05d}": f"anon-{cfg.seed}-{i:05d}"
            for i in range(cfg.customers)
            if self._rng.random() < cfg.anonymous_share
        }
        self._last: Message | None = None
        self._queue = [(start, f"c-{i:05d}") for i in range(cfg.customers)]
        heapq.heapify(self._queue)

    def due(self, now: float) -> list[Message]:
        """Every message whose time has come by ``now``."""
        out: list[Message] = []
        while self._queue and self._queue[0][0] <= now:
            t, cid = heapq.heappop(self._queue)
            out.append(self._next(cid, max(t, now - 1.0)))
            if self._last is not None and self._rng.random() < self.cfg.duplicate_share:
                last = self._last
                out.append(Message(last.topic, last.key, last.value, note="duplicate"))
        return out

    def _next(self, cid: str, t: float) -> Message:
        rng = self._rng
        if rng.random() < self.cfg.bad_share:
            self._reschedule(cid, t, away=False)
            return bad_message(rng.choice(sorted(BAD_KINDS)), t, cid.encode())
        topic, (kind, props, away) = "clickstream", self._step(cid)
        if rng.random() < self.cfg.service_share:
            topic, (kind, props), away = "service", self._service(), False
        self._seq += 1
        at = t - rng.uniform(60, 600) if rng.random() < self.cfg.late_share else t
        doc = event_doc(f"sim-{self.cfg.seed}-{self._seq}", kind, at, cid, props)
        key = self._identify(cid, doc, kind)
        self._reschedule(cid, t, away)
        self._last = Message(topic, key.encode(), orjson.dumps(doc))
        return self._last

    def _identify(self, cid: str, doc: dict[str, Any], kind: str) -> str:
        """Anonymous visitors send their anonymous id only, until a login (or a cart)
        makes them known: that event carries both ids; later ones the customer id."""
        anon = self._anon.get(cid)
        if anon is None:
            return cid
        if kind in ("add_to_cart", "login") or self._rng.random() < 0.1:
            del self._anon[cid]
            doc["anonymous_id"] = anon
            if kind != "add_to_cart":
                doc["event_type"] = "login"
                doc["properties"] = {}
            return cid
        del doc["customer_id"]
        doc["anonymous_id"] = anon
        return anon

    def _service(self) -> tuple[str, dict[str, Any]]:
        rng = self._rng
        kind = rng.choice(["outage_notice", "delivery_update", "ticket_opened", "survey_response"])
        if kind == "delivery_update":
            return kind, {"status": rng.choice(["delivered", "delayed", "failed"])}
        if kind == "survey_response":
            return kind, {"nps": rng.randint(0, 10)}
        if kind == "outage_notice":
            return kind, {"status": "major"}
        return kind, {}

    def _step(self, cid: str) -> tuple[str, dict[str, Any], bool]:
        rng, in_cart = self._rng, self._cart.get(cid, 0)
        product = f"p-{rng.randrange(200)}"
        props = {
            "product_id": product,
            "category": f"cat-{rng.randrange(12)}",
            "price": round(rng.uniform(5, 200), 2),
            "quantity": 1,
        }
        r = rng.random()
        if in_cart and r < 0.15:
            self._cart[cid] = 0
            return "purchase", {"order_value": props["price"]}, True
        if in_cart and r < 0.15 + 0.2 * self.cfg.leave_with_cart:
            return "page_view", {"url": "/exit"}, True
        if r < 0.45:
            return "page_view", {"url": f"/c/{props['category']}"}, False
        if r < 0.8:
            return "product_view", props, False
        self._cart[cid] = in_cart + 1
        return "add_to_cart", props, False

    def _reschedule(self, cid: str, t: float, away: bool) -> None:
        lo, hi = self.cfg.away_s if away else self.cfg.think_s
        heapq.heappush(self._queue, (t + self._rng.uniform(lo, hi), cid))
