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

Each point keeps the score the worker served at that moment and the version of the
model that served it (``served``), and its example carries both: model quality is
measured on what was served, frozen when it was served, never re-scored later by a
model that has since learned the point's siblings (``pipeline.learning``).

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

__all__ = ["Example", "LabelConfig", "Served", "label_due", "label_event", "label_timeout"]

# intent -> (the score served, the version of the model that served it)
Served = Mapping[str, tuple[float, int]]

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
    served: float | None = None  # the score served at predicted_at, if a model served one
    model_version: int | None = None  # the version of the model that served it

    def to_dict(self) -> dict[str, Any]:
        out = {
            "intent": self.intent,
            "customer_id": self.customer_id,
            "x": self.x,
            "y": self.y,
            "predicted_at": self.predicted_at,
            "labelled_at": self.labelled_at,
        }
        if self.served is not None:
            out |= {"served": self.served, "model_version": self.model_version}
        return out


def _examples(
    state: CustomerState, points: tuple[Point, ...], y: bool, t: float, intent: str = "purchase"
) -> list[Example]:
    return [_example(intent, state.customer_id, p, y, t) for p in points]


def _example(intent: str, customer: str, p: Point, y: bool, t: float) -> Example:
    if len(p) == 4:
        return Example(intent, customer, named(p[1]), y, p[0], t, p[2], p[3])
    return Example(intent, customer, named(p[1]), y, p[0], t)


def _point(t: float, x: Any, intent: str, served: Served | None) -> Point:
    got = served.get(intent) if served else None
    return (t, x) if got is None else (t, x, got[0], got[1])


def label_event(
    before: CustomerState | None,
    after: CustomerState,
    event: Event,
    cfg: LabelConfig,
    x: Mapping[str, float] | None = None,
    served: Served | None = None,
) -> tuple[CustomerState, list[Example]]:
    """Labels that ``event`` settles, and the waiting points after it; ``x``: the
    features of ``after`` at the event's time, if already computed; ``served``: the
    scores served for them, kept on the new points."""
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
        point = _point(event.event_time, row(x), "purchase", served)
        pending = (*pending, point)[-cfg.pending_points :]
    labelled, more = _horizons(before, evolve(after, pending=pending), event, old, cfg, x, served)
    return labelled, out + more


def _horizons(
    before: CustomerState | None,
    after: CustomerState,
    event: Event,
    old_session: str | None,
    cfg: LabelConfig,
    x: Mapping[str, float],
    served: Served | None,
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
        features_row = row(x)  # one row, shared by both points
        support = (*support, _point(t, features_row, "support", served))[-cfg.horizon_points :]
        churn = (*churn, _point(t, features_row, "churn", served))[-cfg.horizon_points :]
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
            min((p[0] + cfg.support_horizon_s for p in state.support_points), default=None),
            min((p[0] + cfg.churn_horizon_s for p in state.churn_points), default=None),
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
