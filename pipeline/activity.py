"""Recent behaviour, kept small in the customer's state, for the intent features.

``Activity`` remembers the last events of the last 15 minutes (at most 16: time, type,
product), the products viewed with their view counts (the latest 20), the products
carted (the latest 10), the mean price of what was viewed and the latest price seen.
``next_activity`` folds one event into it; ``activity_features`` turns it into the
features ``pipeline.features`` documents (repeat views, viewed or carted before, pace,
price against the customer's usual, local hour and weekday).

    >>> from pipeline.events import Event
    >>> a = Activity()
    >>> for i, kind in enumerate(["product_view", "product_view", "add_to_cart"]):
    ...     a = next_activity(a, Event(str(i), kind, 60.0 * i, "c", None,
    ...                                {"product_id": "p", "price": 10.0}))
    >>> f = {}
    >>> activity_features(f, a, None, now=120.0)
    >>> f["product_views_15m"], f["product_carted"], f["events_5m"], f["price_vs_usual"]
    (2.0, 1.0, 3.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.events import Event
from pipeline.localtime import local_time

__all__ = ["Activity", "activity_features", "next_activity"]

WINDOW_S, RECENT_MAX, VIEWED_MAX, CARTED_MAX = 900.0, 16, 20, 10
CAP_S = 3600.0


@dataclass(frozen=True, slots=True)
class Activity:
    recent: tuple[tuple[float, str, str], ...] = ()  # (time, type, product or "")
    viewed: tuple[tuple[str, int], ...] = ()  # (product, views), most recent last
    carted: tuple[str, ...] = ()  # most recent last
    price_sum: float = 0.0  # over product views with a price
    price_n: int = 0
    last_price: float = 0.0  # of the latest event with a price (0 = none yet)
    previous_at: float = 0.0  # time of the event before the latest (0 = none)
    last_at: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Activity:
        if not d:
            return cls()
        return cls(
            tuple((float(t), str(k), str(p)) for t, k, p in d.get("recent", ())),
            tuple((str(p), int(n)) for p, n in d.get("viewed", ())),
            tuple(d.get("carted", ())),
            d.get("price_sum", 0.0),
            d.get("price_n", 0),
            d.get("last_price", 0.0),
            d.get("previous_at", 0.0),
            d.get("last_at", 0.0),
        )


def next_activity(a: Activity, event: Event) -> Activity:
    """Fold one event in (a late event counts, but moves no clock back)."""
    t, kind, props = event.event_time, event.event_type, event.properties
    product = str(props.get("product_id") or "")
    recent = tuple(r for r in a.recent if r[0] > t - WINDOW_S)
    recent = (*recent, (t, kind, product))[-RECENT_MAX:]
    viewed, price_sum, price_n = a.viewed, a.price_sum, a.price_n
    price = props.get("price")
    if kind == "product_view" and product:
        n = next((c for p, c in viewed if p == product), 0) + 1
        viewed = (*((p, c) for p, c in viewed if p != product), (product, n))[-VIEWED_MAX:]
        if isinstance(price, int | float) and price > 0:
            price_sum, price_n = price_sum + float(price), price_n + 1
    carted = a.carted
    if kind == "add_to_cart" and product:
        carted = (*(p for p in carted if p != product), product)[-CARTED_MAX:]
    late = t < a.last_at
    return Activity(
        recent,
        viewed,
        carted,
        price_sum,
        price_n,
        float(price) if isinstance(price, int | float) and price > 0 else a.last_price,
        a.previous_at if late else a.last_at,
        a.last_at if late else t,
    )


def activity_features(f: dict[str, float], a: Activity, timezone: str | None, now: float) -> None:
    """The activity features of ``a`` at ``now`` (see ``pipeline.features.FEATURES``)."""
    if a.recent:
        f["events_5m"] = float(sum(1 for r in a.recent if r[0] > now - 300.0))
        f["events_15m"] = float(sum(1 for r in a.recent if r[0] > now - WINDOW_S))
        product = a.recent[-1][2]
        if product:
            views = sum(1 for r in a.recent if r[1] == "product_view" and r[2] == product)
            f["product_views_15m"] = float(views)
            f["product_views_ever"] = float(next((c for p, c in a.viewed if p == product), 0))
            f["product_carted"] = 1.0 if product in a.carted else 0.0
    if a.previous_at:
        f["log_seconds_since_previous"] = math.log1p(
            min(CAP_S, max(0.0, a.last_at - a.previous_at))
        )
    if a.price_n and a.last_price:
        f["price_vs_usual"] = min(10.0, a.last_price / (a.price_sum / a.price_n))
    local = local_time(now, timezone)
    angle = 2 * math.pi * (local.hour + local.minute / 60) / 24
    f["hour_sin"], f["hour_cos"] = round(math.sin(angle), 6), round(math.cos(angle), 6)
    f["weekend"] = 1.0 if local.weekday() >= 5 else 0.0
