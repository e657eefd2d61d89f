"""The decide flow: read a customer message, step the customer, write the state, send.

``Decider.handle`` does all the work for one message synchronously: read the state,
run the pure step (``pipeline.step``), write the state once, and return what to send.
With no await between the read and the write, the two flows that call it (decide, and
ingest on its direct path) can never interleave on one customer and lose an update.
What the step returns is recorded here as metrics: journey KPIs, policy drops, the
hourly volume, dead letters by reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from agents.metrics import Metrics
from agents.models import ModelRegistry
from agents.outbox import Outbox, Recorder, Timed
from agents.playbooks import PlaybookRegistry
from agents.runtime import StateStore
from agents.web import DueList
from pipeline.messages import EventIn, Message, Tick, parse
from pipeline.policy import Action, Outcome
from pipeline.step import Step, StepConfig, StepInputs, step

__all__ = ["Decider"]

_NOT_POLICY = frozenset({"not_eligible"})
_COUNTS = {"merge": "merges", "erasure": "erasures", "expired": "expired"}


class Decider:
    """Steps one customer per message and records what the step did."""

    def __init__(
        self,
        states: StateStore,
        due: DueList,
        metrics: Metrics,
        record: Recorder,
        models: ModelRegistry,
        playbooks: PlaybookRegistry,
        share: Callable[[], float],
        config: StepConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.states, self.due, self.metrics = states, due, metrics
        self.models, self.playbooks, self.share, self.config = models, playbooks, share, config
        self.record, self.clock = record, clock
        self.volume: dict[tuple[int, str], int] = {}  # (event-time hour, action) -> sent

    def one(self, ev: Any, out: Outbox) -> None:
        """A message read from ``customer-events`` (a Faust event or its twin)."""
        out.extend(self.handle(ev.key, ev.message.partition, parse(orjson.loads(ev.value))))

    def handle(self, key: bytes, partition: int, message: Message) -> Outbox:
        """One message for the customer ``key`` on ``partition``."""
        now = self.clock()
        inputs = self.inputs(_time_of(message, now))
        if self.record.sampled():
            result = self._timed(key, partition, message, inputs, now)
        else:
            result = step(key, self.states.get(key), message, inputs, now)
            self._write(key, partition, result)
        return self._outputs(result, message, now)

    def _write(self, key: bytes, partition: int, result: Step) -> None:
        if result.write:
            if result.state is None:
                self.states.delete(key, partition)
            else:
                self.states.put(key, partition, result.state)
        if result.reschedule:
            self.due.set(key, result.due)

    def _timed(
        self, key: bytes, partition: int, message: Message, inputs: StepInputs, now: float
    ) -> Step:
        """``handle``'s work with each stage timed (``baton_stage_seconds``)."""
        stage, clock = self.record.stage, time.perf_counter
        t0 = clock()
        state = self.states.get(key)
        t1 = clock()
        result = step(key, state, message, inputs, now)
        t2 = clock()
        self._write(key, partition, result)
        t3 = clock()
        stage["state"].observe(t1 - t0 + t3 - t2)
        stage["decide"].observe(t2 - t1)
        return result

    def inputs(self, at: float) -> StepInputs:
        """The playbook in force, the models, the volume sent in the hour of ``at``."""
        hour = int(at // 3600)
        volume = {a: n for (h, a), n in self.volume.items() if h == hour}
        return StepInputs(
            self.playbooks.current,
            self.models.score,
            self.models.responses,
            volume,
            self.share(),
            self.config,
        )

    def _outputs(self, result: Step, message: Message, now: float) -> Outbox:
        out: Outbox = [(s.topic, s.key, s.value) for s in result.sends]
        out += [self.record.dead(d.key, d.raw, d.why, d.src, now) for d in result.dead]
        for fact in result.counts:
            self._count(fact)
        decision = result.decision
        if decision is not None:
            if decision.action is not None:
                self._sent(decision.action)
                if decision.action.group == "treatment":
                    _time_actions(out, message, decision.action.trigger.kind, now)
            self._outcomes(decision.outcomes)
        return out

    def _count(self, fact: str) -> None:
        m = self.metrics
        kind, _, label = fact.partition(":")
        if kind == "event":
            self.record.event(label)
        elif kind == "feedback":
            m.feedback.labels(label).inc()
        else:
            getattr(m, _COUNTS[kind]).inc()

    def _sent(self, action: Action) -> None:
        """Count an emitted decision: policy drops, and this hour's volume if it was sent.

        Global hourly limits are approximated per worker: each may send its share
        (partitions owned / partitions) of the limit, counted in the event-time hour."""
        m = self.metrics
        for why in action.explanation["dropped"].values():
            if why not in _NOT_POLICY:
                m.policy_drops.labels(why).inc()
        if action.group != "treatment":  # held-out decisions are not actions sent
            return
        self.record.action(action.action)
        hour = int(action.decided_at // 3600)
        self.volume = {k: v for k, v in self.volume.items() if k[0] >= hour - 1}
        self.volume[(hour, action.action)] = self.volume.get((hour, action.action), 0) + 1

    def _outcomes(self, outcomes: tuple[Outcome, ...]) -> None:
        """Journey KPIs (response examples are the step's sends)."""
        m = self.metrics
        for o in outcomes:
            if o.kind == "decision":
                m.journey_decisions.labels(o.action, o.journey, o.group).inc()
            elif o.kind == "conversion":
                m.journey_conversions.labels(o.action, o.journey, o.group).inc()
            elif o.kind == "exposure":
                m.journey_exposures.labels(o.action, o.journey).inc()
            elif o.kind == "acceptance":
                m.journey_acceptances.labels(o.action, o.journey).inc()


def _time_actions(out: Outbox, message: Message, trigger: str, now: float) -> None:
    """Mark the actions in ``out`` with the times their latency runs from."""
    event_at = _time_of(message, now)
    received = getattr(message, "received_at", now)
    for i, entry in enumerate(out):
        if entry[0] == "actions":
            out[i] = Timed.of(entry, event_at, received, trigger)


def _time_of(message: Message, now: float) -> float:
    """The time a message is decided at: its event's time, a tick's, else the clock's."""
    if isinstance(message, EventIn):
        return message.event.event_time
    return message.at if isinstance(message, Tick) else now
