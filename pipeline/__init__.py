"""Baton's pure domain core: events, customer state, decisions, simulator.

Nothing here imports Faust, a Kafka client or Prometheus, reads the environment or the
clock; the stream layer in ``agents`` injects all of that.
"""

from __future__ import annotations

from pipeline.events import DecodeConfig, Decoder, Event, Rejected
from pipeline.policy import Action, Decision, PolicyConfig, Trigger, decide, due_at
from pipeline.state import CustomerState, StateConfig, apply

__all__ = [
    "Action",
    "CustomerState",
    "Decision",
    "DecodeConfig",
    "Decoder",
    "Event",
    "PolicyConfig",
    "Rejected",
    "StateConfig",
    "Trigger",
    "apply",
    "decide",
    "due_at",
]
