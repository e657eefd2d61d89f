"""The whole per-customer flow as one pure step.

``step(state, message, inputs, now) -> Step`` takes a customer's state (None if the
customer is unknown), one internal message (``pipeline.messages``), what the worker
supplies besides the state (``StepInputs``: playbook, models, volumes, settings) and the
wall clock, and returns the new state and everything to send, count and schedule. The
stream layer reads the state, calls ``step``, writes the state back once if the step
says so, hands the messages to the producer and records the counts: it decides nothing.

Per event: the fold (duplicates found here), the delayed labels it settles, the intent
scores, the decision (eligibility, contact policy, arbitration, exploration, control
group), the outputs and the next due time. The features are computed once per event
and shared by the labels, the models and the rules.

``identify(link, message, now)`` is the same for the identity table (anonymous id ->
customer): link on login, route to the customer, ask for the anonymous state to move.

Output topics are named by their logical name (``actions``, ``holdout``,
``training-examples``, ``audit``, ``customer-events``, ``identity-events``); the stream
layer adds the prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from pipeline.events import Event, Rejected, parse_time
from pipeline.features import features
from pipeline.fold import apply
from pipeline.identity import merge, resolve
from pipeline.labels import Example, LabelConfig, label_due, label_event, label_timeout
from pipeline.messages import (
    Absorb,
    EventIn,
    Expire,
    FeedbackIn,
    MergeInto,
    Message,
    Source,
    Tick,
    Unlink,
    wire,
)
from pipeline.outcomes import Outcome, on_feedback
from pipeline.playbook import Playbook
from pipeline.policy import Action, Decision, Inputs, Trigger, base_propensity, decide, due_at
from pipeline.privacy import ERASE, erasure_record, expired
from pipeline.response import ResponseModels
from pipeline.state import CustomerState, StateConfig

__all__ = [
    "Dead",
    "IdentityStep",
    "Send",
    "Step",
    "StepConfig",
    "StepInputs",
    "due",
    "identify",
    "no_models",
    "step",
]

# features -> (intent scores, model versions); the models loaded on this worker
Scorer = Callable[[Mapping[str, float]], tuple[dict[str, float], dict[str, int]]]


def no_models(x: Mapping[str, float]) -> tuple[dict[str, float], dict[str, int]]:
    """The scorer of a worker with no model loaded yet."""
    return {}, {}


@dataclass(frozen=True, slots=True)
class StepConfig:
    state: StateConfig = field(default_factory=StateConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    retention_s: float = 400 * 86400.0


@dataclass(frozen=True, slots=True)
class StepInputs:
    """What a step needs besides the state and the message."""

    playbook: Playbook
    score: Scorer = no_models
    responses: ResponseModels | None = None
    volume: Mapping[str, int] = field(default_factory=dict)  # sent this hour, per action
    volume_share: float = 1.0  # this worker's share of global hourly limits
    config: StepConfig = field(default_factory=StepConfig)


@dataclass(frozen=True, slots=True)
class Send:
    """A message to produce: logical topic name, key, JSON value."""

    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Dead:
    """A rejected message for the dead-letter topic (the raw bytes as validated)."""

    key: bytes
    raw: bytes
    why: Rejected
    src: Source


@dataclass(frozen=True, slots=True)
class Step:
    """What one message did to a customer.

    ``write``: the state must be written back (``state`` None deletes it).
    ``reschedule``: the timer's due time for the customer becomes ``due``.
    ``counts``: facts for the metrics (``event:<type>``, ``feedback:<kind>``, ``merge``,
    ``erasure``, ``expired``)."""

    state: CustomerState | None
    write: bool = False
    decision: Decision | None = None
    sends: tuple[Send, ...] = ()
    dead: tuple[Dead, ...] = ()
    reschedule: bool = False
    due: float | None = None
    counts: tuple[str, ...] = ()


def step(
    key: bytes, state: CustomerState | None, message: Message, inputs: StepInputs, now: float
) -> Step:
    """One message on ``customer-events`` for the customer keyed ``key`` (its state, None
    if unknown), at wall-clock time ``now``."""
    if isinstance(message, EventIn):
        return _on_event(key, state, message, inputs, now)
    if isinstance(message, Tick):
        return _on_tick(key, state, message, inputs) if state is not None else Step(state)
    if isinstance(message, FeedbackIn):
        return _on_feedback(key, state, message, inputs, now)
    if isinstance(message, Expire):
        if state is not None and expired(state, message.at, inputs.config.retention_s):
            return _forget(state, (), ("expired",))
        return Step(state)
    if isinstance(message, MergeInto):
        return _merge_into(key, state, message)
    if isinstance(message, Absorb):
        return _absorb(key, state, message, inputs, now)
    raise TypeError(f"{type(message).__name__} is not a customer message")


def _on_event(
    key: bytes, state: CustomerState | None, m: EventIn, inp: StepInputs, now: float
) -> Step:
    event, cfg = m.event, inp.config
    if event.event_type == ERASE:
        return _erase(key, state, event, now)
    applied = apply(state, event, cfg.state)
    if applied.duplicate:
        why = Rejected("duplicate", "event_id already applied to this customer", event.event_id)
        dead = Dead(key, orjson.dumps(event.to_dict()), why, m.src)
        # Written again unchanged: after a crash, Faust's RocksDB store can hold a value
        # whose changelog record was never acknowledged; the event is then redelivered and
        # found duplicate, and without this write the changelog would stay one behind.
        return _commit(key, Decision(applied.state), (), inp, event.event_time, dead=(dead,))
    t = event.event_time
    x = features(applied.state, t)  # once: labels, models and rules share it
    scores = inp.score(x)  # once: kept on the new prediction points, and decided with
    served = {i: (p, scores[1][i]) for i, p in scores[0].items() if i in scores[1]}
    labelled, examples = label_event(state, applied.state, event, cfg.labels, x, served)
    decision = _decide(labelled, t, Trigger("event", event.event_id), event, inp, x, scores)
    counts = (f"event:{event.event_type}",)
    return _commit(key, decision, examples, inp, t, counts=counts, x=x, scores=scores[0])


def _decide(
    state: CustomerState,
    now: float,
    trigger: Trigger,
    event: Event | None,
    inp: StepInputs,
    x: Mapping[str, float],
    scored: tuple[dict[str, float], dict[str, int]],
) -> Decision:
    scores, versions = scored
    policy = Inputs(inp.playbook, scores, versions, inp.responses, inp.volume, inp.volume_share)
    return decide(state, now, trigger, event, policy, x)


def _on_tick(key: bytes, state: CustomerState, m: Tick, inp: StepInputs) -> Step:
    now = m.at
    labelled, examples = label_timeout(state, now, inp.config.labels)
    x = features(labelled, now)
    scored = inp.score(x)
    decision = _decide(labelled, now, Trigger("timer"), None, inp, x, scored)
    if decision.action is None and not examples and not decision.outcomes:
        return Step(state, reschedule=True, due=due(state, inp, now))
    return _commit(key, decision, examples, inp, now, x=x, scores=scored[0])


def _on_feedback(
    key: bytes, state: CustomerState | None, m: FeedbackIn, inp: StepInputs, now: float
) -> Step:
    fb = m.feedback
    joined = _join(state, fb, inp)
    if isinstance(joined, Rejected):
        dead = Dead(key, orjson.dumps(dict(fb)), joined, m.src)
        return Step(state, dead=(dead,))
    return _commit(key, joined, (), inp, now, counts=(f"feedback:{fb['feedback_type']}",))


def _join(
    state: CustomerState | None, fb: Mapping[str, Any], inp: StepInputs
) -> Decision | Rejected:
    """Join feedback to its decision: cool-downs, exposure, responses, conversion."""
    eid = fb["event_id"]
    if state is not None and eid in state.recent_ids:
        return Rejected("duplicate", "feedback event_id already applied", eid)
    at = parse_time(fb["event_time"]) or 0.0
    kind, decision = fb["feedback_type"], fb["decision_id"]
    done = None if state is None else on_feedback(state, kind, decision, at, inp.playbook)
    if done is None:
        detail = f"no decision {decision} for this customer in the last 7 days"
        return Rejected("unknown_decision", detail, eid)
    new, outcomes = done
    window = inp.config.state.dedupe_window
    new = replace(new, recent_ids=(*new.recent_ids, eid)[-window:])
    return Decision(new, None, tuple(outcomes))


def _merge_into(key: bytes, state: CustomerState | None, m: MergeInto) -> Step:
    """On the anonymous id's partition: hand the anonymous state to its customer."""
    moved = Absorb(state.to_dict() if state else None, key.decode(), m.received_at)
    send = Send("customer-events", m.customer_id.encode(), wire(moved))
    return Step(None, write=state is not None, sends=(send,), reschedule=state is not None)


def _absorb(
    key: bytes, state: CustomerState | None, m: Absorb, inp: StepInputs, now: float
) -> Step:
    """On the customer's partition: fold the anonymous state in."""
    anon = CustomerState.from_dict(m.state) if m.state else None
    merged = merge(state, anon, m.from_id, key.decode(), now, inp.config.state)
    if merged is state:
        return Step(state)
    return _commit(key, Decision(merged), (), inp, now, counts=("merge",))


def _erase(key: bytes, state: CustomerState | None, event: Event, now: float) -> Step:
    """Delete the customer and their identity links, and confirm on the audit topic."""
    unlinked = state.merged_from if state is not None else ()
    record = erasure_record(event, now, state is not None, unlinked=unlinked)
    audit = Send("audit", key, orjson.dumps(record))
    counts = (f"event:{event.event_type}", "erasure")
    if state is None:
        return Step(None, sends=(audit,), counts=counts)
    return _forget(state, (audit,), counts)


def _forget(state: CustomerState, sends: tuple[Send, ...], counts: tuple[str, ...]) -> Step:
    """Delete the state (a tombstone on the changelog) and the anonymous ids' links."""
    unlink = wire(Unlink())
    links = tuple(Send("identity-events", a.encode(), unlink) for a in state.merged_from)
    return Step(None, write=True, sends=links + sends, reschedule=True, counts=counts)


def _commit(
    key: bytes,
    decision: Decision,
    examples: list[Example] | tuple[()],
    inp: StepInputs,
    now: float,
    dead: tuple[Dead, ...] = (),
    counts: tuple[str, ...] = (),
    x: Mapping[str, float] | None = None,
    scores: Mapping[str, float] | None = None,
) -> Step:
    """Write the state once, send the action (if any) and the examples, reschedule.
    ``x`` and ``scores``: the features and intent scores the action was decided with."""
    state = decision.state
    # examples keyed by intent: one partition, so one learner, per intent
    sends = [Send("training-examples", ex.intent.encode(), _dumps(ex)) for ex in examples]
    action = decision.action
    if action is not None:
        topic = "actions" if action.group == "treatment" else "holdout"
        sends.append(Send(topic, key, orjson.dumps(action.to_dict())))
        if action.group == "treatment" and x is not None:
            sends.append(
                Send("training-examples", b"response", _context(action, x, scores or {}, inp))
            )
    sends += [Send("training-examples", b"response", r) for r in _responses(decision.outcomes)]
    when = due(state, inp, now)
    return Step(state, True, decision, tuple(sends), dead, True, when, counts)


def _dumps(ex: Example) -> bytes:
    return orjson.dumps(ex.to_dict())


def _context(
    action: Action, x: Mapping[str, float], scores: Mapping[str, float], inp: StepInputs
) -> bytes:
    """A decision example: the features, base propensity and served propensity (the one
    arbitration used) an action was sent with, for the learner to join with its outcome
    (``pipeline.response.DecisionContexts``) and to measure the propensities served."""
    spec = inp.playbook.action(action.action)
    base = base_propensity(spec, scores)[0] if spec else 0.5  # unrounded, as arbitrated
    terms = action.explanation["arbitration"].get(action.action, {})
    doc = {"kind": "decision", "decision_id": action.decision_id, "action": action.action}
    served = {"served": terms["propensity"]} if "propensity" in terms else {}
    return orjson.dumps({**doc, "x": x, "base": base, **served})


def _responses(outcomes: tuple[Outcome, ...]) -> list[bytes]:
    """The response examples for the learner (``schemas/training-example.v1.json``),
    naming their decision when it is known."""
    return [
        orjson.dumps(
            {"kind": "response", "action": o.action, "y": bool(o.success)}
            | ({"decision_id": o.decision_id} if o.decision_id else {})
        )
        for o in outcomes
        if o.kind == "response"
    ]


def due(state: CustomerState, inp: StepInputs, now: float) -> float | None:
    """When the timer must look at this customer: a decision or a label falls due."""
    dues = [d for d in (due_at(state, inp.playbook, now), label_due(state, inp.config.labels)) if d]
    return min(dues) if dues else None


@dataclass(frozen=True, slots=True)
class IdentityStep:
    """What one identity message did: the link to write (``link`` None with ``write``
    deletes it), and the messages to send."""

    link: str | None
    write: bool = False
    sends: tuple[Send, ...] = ()
    dead: tuple[Dead, ...] = ()
    linked: bool = False


def identify(anon: bytes, link: str | None, message: Message) -> IdentityStep:
    """One message on ``identity-events`` for the anonymous id ``anon`` (linked to the
    customer ``link``, if any)."""
    if isinstance(message, FeedbackIn):  # to the customer the id is linked to, if any
        to = link.encode() if link else anon
        return IdentityStep(link, sends=(Send("customer-events", to, wire(message)),))
    if isinstance(message, Unlink):
        return IdentityStep(None, write=link is not None)
    if not isinstance(message, EventIn):
        raise TypeError(f"{type(message).__name__} is not an identity message")
    r = resolve(message.event, link)
    if r.conflict is not None:
        detail = f"anonymous id already linked to customer {r.conflict!r}"
        why = Rejected("identity_conflict", detail, r.event.event_id)
        raw = orjson.dumps(message.event.to_dict())
        return IdentityStep(link, dead=(Dead(anon, raw, why, message.src),))
    routed = Send("customer-events", r.key.encode(), wire(replace(message, event=r.event)))
    if r.new_link is None:
        return IdentityStep(link, sends=(routed,))
    # the anonymous state lives on the anonymous id's partition: ask it to move first
    move = Send("customer-events", anon, wire(MergeInto(r.new_link, message.received_at)))
    return IdentityStep(r.new_link, write=True, sends=(move, routed), linked=True)
