"""Delayed labels: prediction points wait in the customer's state until their outcome
is known, then become training examples for the intent models.

- purchase: at every event of a session before a purchase, the features of that moment
  are kept (the latest ``pending_points``). A purchase labels them true; the session's
  end labels them false, seen on the next event (a new session began) or by the timer
  once the session has been idle for the gap (``label_timeout``).
- support: the features at the start of each session (the latest ``horizon_points``)
  are labelled true when a ticket, call or chat follows within ``support_horizon_s``,
  false when the horizon passes without one.
- churn: the same session-start points are labelled false when the customer starts
  another session within ``churn_horizon_s``, true when the horizon passes without one.

    >>> from pipeline.events import Event
    >>> from pipeline.fold import apply
    >>> from pipeline.state import StateConfig
    >>> cfg = LabelConfig()
    >>> s, ex = None, []
    >>> for i, kind in enumerate(["product_view", "add_to_cart", "purchase"]):
    ...     ev = Event(str(i), kind, 10.0 * i, "c1", None, {"product_id": "p", "price": 5.0})
    ...     after = apply(s, ev, StateConfig()).state
    ...     s, new = label_event(s, after, ev, cfg)
    ...     ex += new
    >>> [(e.intent, e.y, e.predicted_at) for e in ex]
    [('purchase', True, 0.0), ('purchase', True, 10.0)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.events import Event
from pipeline.features import features, named, row
from pipeline.state import CustomerState, Point
from pipeline.values import evolve

__all__ = ["Example", "LabelConfig", "label_due", "label_event", "label_timeout"]

_CONTACTS = frozenset({"ticket_opened", "call", "chat"})


@dataclass(frozen=True, slots=True)
class LabelConfig:
    session_gap_s: float = 1800.0
    pending_points: int = 5
    horizon_points: int = 3
    support_horizon_s: float = 7 * 86400.0
    churn_horizon_s: float = 30 * 86400.0


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


def _examples(
    state: CustomerState, points: tuple[Point, ...], y: bool, t: float, intent: str = "purchase"
) -> list[Example]:
    return [Example(intent, state.customer_id, named(x), y, pt, t) for pt, x in points]


def label_event(
    before: CustomerState | None,
    after: CustomerState,
    event: Event,
    cfg: LabelConfig,
    x: Mapping[str, float] | None = None,
) -> tuple[CustomerState, list[Example]]:
    """Labels that ``event`` settles, and the waiting points after it; ``x``: the
    features of ``after`` at the event's time, if already computed."""
    if x is None:
        x = features(after, event.event_time)
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
        point = (event.event_time, row(x))
        pending = (*pending, point)[-cfg.pending_points :]
    labelled, more = _horizons(before, evolve(after, pending=pending), event, old, cfg, x)
    return labelled, out + more


def _horizons(
    before: CustomerState | None,
    after: CustomerState,
    event: Event,
    old_session: str | None,
    cfg: LabelConfig,
    x: Mapping[str, float],
) -> tuple[CustomerState, list[Example]]:
    """Support and churn points: settle what this event settles, add a session-start point."""
    t, out = event.event_time, []
    support = before.support_points if before is not None else ()
    churn = before.churn_points if before is not None else ()
    if event.event_type in _CONTACTS and support:
        within = tuple(p for p in support if p[0] < t <= p[0] + cfg.support_horizon_s)
        out += _examples(after, within, True, t, "support")
        support = tuple(p for p in support if p not in within)
    new_session = after.session is not None and after.session.id != old_session
    if new_session and churn:
        came_back = tuple(p for p in churn if p[0] < t <= p[0] + cfg.churn_horizon_s)
        out += _examples(after, came_back, False, t, "churn")
        churn = tuple(p for p in churn if p not in came_back)
    if new_session:
        point = (t, row(x))
        support = (*support, point)[-cfg.horizon_points :]
        churn = (*churn, point)[-cfg.horizon_points :]
    return evolve(after, support_points=support, churn_points=churn), out


def _session_due(state: CustomerState, cfg: LabelConfig) -> float | None:
    if not state.pending or state.session is None:
        return None
    return state.session.last_event_at + cfg.session_gap_s


def label_due(state: CustomerState, cfg: LabelConfig) -> float | None:
    """When the timer must next settle a label: a session idles out or a horizon ends."""
    dues = [
        d
        for d in (
            _session_due(state, cfg),
            min((t + cfg.support_horizon_s for t, _ in state.support_points), default=None),
            min((t + cfg.churn_horizon_s for t, _ in state.churn_points), default=None),
        )
        if d is not None
    ]
    return min(dues) if dues else None


def label_timeout(
    state: CustomerState, now: float, cfg: LabelConfig
) -> tuple[CustomerState, list[Example]]:
    """Labels that the passing of time settles: an idle session did not buy, no contact
    came within the support horizon, no return came within the churn horizon."""
    out: list[Example] = []
    due = _session_due(state, cfg)
    if due is not None and now > due:
        out += _examples(state, state.pending, False, now)
        state = evolve(state, pending=())
    support_over = tuple(p for p in state.support_points if now > p[0] + cfg.support_horizon_s)
    churn_over = tuple(p for p in state.churn_points if now > p[0] + cfg.churn_horizon_s)
    if not (support_over or churn_over):
        return state, out
    out += _examples(state, support_over, False, now, "support")
    out += _examples(state, churn_over, True, now, "churn")
    return evolve(
        state,
        support_points=tuple(p for p in state.support_points if p not in support_over),
        churn_points=tuple(p for p in state.churn_points if p not in churn_over),
    ), out
