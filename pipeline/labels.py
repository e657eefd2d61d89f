"""Delayed labels for the purchase intent: prediction points wait in the customer's
state until their session's outcome is known, then become training examples.

At every event of a session before a purchase, the features of that moment are kept
as a pending point (the latest ``pending_points``). A purchase labels them true; the
session's end labels them false, whether seen on the next event (a new session began)
or by the timer once the session has been idle for the gap (``label_timeout``).

    >>> from pipeline.events import Event
    >>> from pipeline.state import StateConfig, apply
    >>> cfg = LabelConfig()
    >>> s, ex = None, []
    >>> for i, kind in enumerate(["product_view", "add_to_cart", "purchase"]):
    ...     ev = Event(str(i), kind, 10.0 * i, "c1", None, {"product_id": "p", "price": 5.0})
    ...     after = apply(s, ev, StateConfig()).state
    ...     s, new = label_event(s, after, ev, cfg)
    ...     ex += new
    >>> [(e.y, e.predicted_at) for e in ex]
    [(True, 0.0), (True, 10.0)]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pipeline.events import Event
from pipeline.features import features
from pipeline.state import CustomerState, Point

__all__ = ["Example", "LabelConfig", "label_due", "label_event", "label_timeout"]


@dataclass(frozen=True, slots=True)
class LabelConfig:
    session_gap_s: float = 1800.0
    pending_points: int = 5


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled training example for an intent model."""

    intent: str
    customer_id: str
    x: dict[str, float]
    y: bool
    predicted_at: float
    labelled_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "customer_id": self.customer_id,
            "x": self.x,
            "y": self.y,
            "predicted_at": self.predicted_at,
            "labelled_at": self.labelled_at,
        }


def _examples(state: CustomerState, points: tuple[Point, ...], y: bool, t: float) -> list[Example]:
    return [Example("purchase", state.customer_id, dict(x), y, pt, t) for pt, x in points]


def label_event(
    before: CustomerState | None, after: CustomerState, event: Event, cfg: LabelConfig
) -> tuple[CustomerState, list[Example]]:
    """Labels that ``event`` settles, and the pending points after it."""
    out: list[Example] = []
    pending = before.pending if before is not None else ()
    old = before.session.id if before is not None and before.session else None
    if pending and after.session is not None and after.session.id != old:
        out += _examples(after, pending, False, event.event_time)  # that session ended
        pending = ()
    if event.event_type == "purchase":
        out += _examples(after, pending, True, event.event_time)
        pending = ()
    elif after.session is not None and not after.session.purchased:
        point = (event.event_time, features(after, event.event_time))
        pending = (*pending, point)[-cfg.pending_points :]
    return replace(after, pending=pending), out


def label_due(state: CustomerState, cfg: LabelConfig) -> float | None:
    """When the timer must close the session's pending points, if any."""
    if not state.pending or state.session is None:
        return None
    return state.session.last_event_at + cfg.session_gap_s


def label_timeout(
    state: CustomerState, now: float, cfg: LabelConfig
) -> tuple[CustomerState, list[Example]]:
    """False labels for a session idle past the gap (no purchase came)."""
    due = label_due(state, cfg)
    if due is None or now <= due:
        return state, []
    return replace(state, pending=()), _examples(state, state.pending, False, now)
