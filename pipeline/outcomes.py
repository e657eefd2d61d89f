"""Outcomes of decisions that need no new decision: conversions, responses, feedback.

``settle`` attributes a purchase to the standing decision and closes an expired one that
was shown; ``unanswered`` records that a shown action got no response; ``on_feedback``
folds channel feedback (impression, click, accept, dismiss, convert) into the state.
Each returns the new state and the ``Outcome`` records to count or learn from.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.events import Event
from pipeline.playbook import Playbook
from pipeline.state import CustomerState, LastAction
from pipeline.values import evolve

__all__ = ["Outcome", "on_feedback", "settle", "unanswered"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Something to count or learn: decision, exposure, acceptance, conversion, response."""

    kind: str
    action: str
    journey: str
    group: str = "treatment"
    success: bool | None = None
    decision_id: str | None = None  # a response's decision (its features, for learning)


def settle(
    state: CustomerState, now: float, event: Event | None
) -> tuple[CustomerState, list[Outcome]]:
    """Attribute a purchase to the standing decision; close an expired one that was shown."""
    la, out = state.last_action, list[Outcome]()
    if la is None:
        return state, out
    if event is not None and event.event_type == "purchase" and la.expires_at > now:
        state, conv = _convert(state, la, now)
        out += conv
    if la.expires_at <= now:
        state, out2 = unanswered(state, la, "expired")
        out += out2
    return state, out


def _convert(
    state: CustomerState, la: LastAction, now: float
) -> tuple[CustomerState, list[Outcome]]:
    if la.converted:
        return state, []
    c = state.contacts
    if la.group == "treatment":
        c = evolve(c, converted={**c.converted, la.action: now})
    state = evolve(state, last_action=evolve(la, converted=True), contacts=c)
    return state, [Outcome("conversion", la.action, la.journey, la.group)]


def unanswered(
    state: CustomerState, la: LastAction, why: str
) -> tuple[CustomerState, list[Outcome]]:
    """A shown action that got no response before it ended is a failure for its model."""
    sent = state.contacts.find(la.decision_id)
    if sent is None or not sent.shown or sent.response is not None:
        return state, []
    state = _respond(state, la.decision_id, why)
    return state, [
        Outcome("response", la.action, la.journey, success=False, decision_id=la.decision_id)
    ]


def _respond(state: CustomerState, decision: str, response: str) -> CustomerState:
    c = state.contacts
    sent = tuple(evolve(s, response=response) if s.decision_id == decision else s for s in c.sent)
    return evolve(state, contacts=evolve(c, sent=sent))


def on_feedback(
    state: CustomerState, kind: str, decision: str, at: float, pb: Playbook
) -> tuple[CustomerState, list[Outcome]] | None:
    """Fold channel feedback into the state; None if the decision is unknown here."""
    sent = state.contacts.find(decision)
    if sent is None:
        return None
    spec = pb.action(sent.action)
    journey = spec.journey if spec else ""
    out: list[Outcome] = []
    la = state.last_action
    standing = la if la is not None and la.decision_id == decision else None
    if kind == "impression":
        c = state.contacts
        shown = tuple(evolve(s, shown=True) if s.decision_id == decision else s for s in c.sent)
        return evolve(state, contacts=evolve(c, sent=shown)), [
            Outcome("exposure", sent.action, journey)
        ]
    first = sent.response is None
    state = _respond(state, decision, kind) if first else state
    if first:
        success = kind != "dismiss"
        out.append(Outcome("response", sent.action, journey, success=success, decision_id=decision))
    if kind in ("click", "accept"):
        out.append(Outcome("acceptance", sent.action, journey))
    elif kind == "dismiss":
        c = state.contacts
        state = evolve(state, contacts=evolve(c, dismissed={**c.dismissed, sent.action: at}))
        if standing is not None:  # the channel took it down: decide afresh on the next event
            state = evolve(
                state, last_action=evolve(standing, expires_at=min(standing.expires_at, at))
            )
    elif kind == "convert" and standing is not None:
        state, conv = _convert(state, standing, at)
        out += conv
    return state, out
