"""The decisioning side of the decide agent: inputs to the policy, feedback, outcomes.

``Journeys`` holds what a decision needs besides the customer's state (the playbook in
force, the intent and response models, the volume sent this hour) and turns what the
pure policy returns into metrics (journey KPIs, policy drops) and response examples for
the learner. It owns no table: the decide agent reads and writes the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from agents.metrics import Metrics
from agents.models import ModelRegistry
from agents.playbooks import PlaybookRegistry
from pipeline.events import Rejected, parse_time
from pipeline.policy import Action, Decision, Inputs, Outcome, on_feedback
from pipeline.state import CustomerState

__all__ = ["Journeys"]

_NOT_POLICY = frozenset({"not_eligible"})


class Journeys:
    """Policy inputs, feedback joins and outcome recording for one worker."""

    def __init__(
        self,
        metrics: Metrics,
        models: ModelRegistry,
        playbooks: PlaybookRegistry,
        share: Callable[[], float],
        dedupe_window: int,
    ) -> None:
        self.metrics, self.models, self.playbooks = metrics, models, playbooks
        self.share, self.dedupe_window = share, dedupe_window
        self.volume: dict[tuple[int, str], int] = {}

    def inputs(self, state: CustomerState, now: float) -> Inputs:
        scores, versions = self.models.scores(state, now)
        hour = int(now // 3600)
        volume = {a: n for (h, a), n in self.volume.items() if h == hour}
        pb, responses = self.playbooks.current, self.models.responses
        return Inputs(pb, scores, versions, responses, volume, self.share())

    def sent(self, action: Action) -> None:
        """Count an emitted decision: policy drops, and this hour's volume if it was sent.

        Global hourly limits are approximated per worker: each may send its share
        (partitions owned / partitions) of the limit, counted in the event-time hour."""
        for step in action.explanation["dropped"].values():
            if step not in _NOT_POLICY:
                self.metrics.policy_drops.labels(step).inc()
        if action.group == "treatment":
            hour = int(action.decided_at // 3600)
            self.volume = {k: v for k, v in self.volume.items() if k[0] >= hour - 1}
            self.volume[(hour, action.action)] = self.volume.get((hour, action.action), 0) + 1

    def feedback(self, state: CustomerState | None, fb: dict[str, Any]) -> Decision | Rejected:
        """Join feedback to its decision: cool-downs, exposure, responses, conversion."""
        eid = fb["event_id"]
        if state is not None and eid in state.recent_ids:
            return Rejected("duplicate", "feedback event_id already applied", eid)
        at = parse_time(fb["event_time"]) or 0.0
        pb = self.playbooks.current
        kind, decision = fb["feedback_type"], fb["decision_id"]
        done = None if state is None else on_feedback(state, kind, decision, at, pb)
        if done is None:
            detail = f"no decision {decision} for this customer in the last 7 days"
            return Rejected("unknown_decision", detail, eid)
        self.metrics.feedback.labels(kind).inc()
        new, outcomes = done
        new = replace(new, recent_ids=(*new.recent_ids, eid)[-self.dedupe_window :])
        return Decision(new, None, tuple(outcomes))

    def outcomes(self, outcomes: tuple[Outcome, ...]) -> list[bytes]:
        """Record journey KPIs; return the response examples to send to the learner."""
        m, examples = self.metrics, []
        for o in outcomes:
            if o.kind == "decision":
                m.journey_decisions.labels(o.action, o.journey, o.group).inc()
            elif o.kind == "conversion":
                m.journey_conversions.labels(o.action, o.journey, o.group).inc()
            elif o.kind == "exposure":
                m.journey_exposures.labels(o.action, o.journey).inc()
            elif o.kind == "acceptance":
                m.journey_acceptances.labels(o.action, o.journey).inc()
            elif o.kind == "response":
                ex = {"kind": "response", "action": o.action, "y": bool(o.success)}
                examples.append(orjson.dumps(ex))
        return examples
