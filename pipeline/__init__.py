"""Baton's pure domain core: events, customer state, decisions, simulator.

Nothing here imports Faust, a Kafka client or Prometheus, reads the environment or the
clock; the stream layer in ``agents`` injects all of that.
"""

from __future__ import annotations

from pipeline.events import DecodeConfig, Decoder, Event, Rejected
from pipeline.fold import apply
from pipeline.playbook import Playbook
from pipeline.playbook import load as load_playbook
from pipeline.policy import Action, Decision, Inputs, Trigger, decide
from pipeline.state import CustomerState, StateConfig

__all__ = [
    "Action",
    "CustomerState",
    "Decision",
    "DecodeConfig",
    "Decoder",
    "Event",
    "Inputs",
    "Playbook",
    "Rejected",
    "StateConfig",
    "Trigger",
    "apply",
    "decide",
    "load_playbook",
]
