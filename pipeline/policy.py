"""The next best action for one customer: a pure function of state, event, time and inputs.

``decide`` runs the playbook's policy in this order, and every candidate that falls
out is named in the explanation with the step that dropped it:

1. eligibility: each action's CEL rule over the rule context (``not_eligible``,
   ``rule_error``);
2. contact policy (``pipeline.contact``): ``suppressed``, ``cooldown``, ``action_cap``,
   ``volume_limit`` (global hourly limit; each worker may use its share of it, the share
   of partitions it owns), then a channel: ``no_consent``, ``unreachable``,
   ``channel_cap``, ``quiet_hours``;
3. arbitration: priority = propensity x value x weight; the propensity comes from the
   action's response model once it has ``min_responses`` outcomes (its contextual
   model's prediction for this customer's features and base propensity once that has
   learned enough, ``pipeline.response``), else from the intent score named by the
   action, else from its prior (the base propensity);
4. exploration: with probability ``exploration_rate`` a uniformly drawn candidate among
   the near-best (priority >= ``near_best`` x the best) replaces the best (epsilon-greedy,
   so the probability of the choice is exact and recorded for off-policy evaluation);
   every draw is seeded by the customer and the trigger, so a replay decides the same;
5. control group: a stable hash of the customer puts ``control_share`` of customers in a
   holdout; their decisions are recorded (group ``control``) but not sent;
6. channel: the first allowed channel of the action, the customer's preferred one first.

A decision is emitted only when the chosen action differs from the standing one; a
standing action that is still eligible and near-best is kept, so exploration does not
flip what a channel shows on every event. The new action names the one it supersedes.

    >>> from pipeline.playbook import load
    >>> from pipeline.state import Cart, CartItem, CustomerState
    >>> pb = load('''{version: "1", actions: [{id: cart, journey: cart, channels: [email],
    ...   content: t, eligible: "cart.items > 0.0 && cart.idle_min >= 1.0"}]}''')
    >>> s = CustomerState("c1", 0.0, 0.0, cart=Cart((CartItem("p1", 1, 9.5),), 100.0))
    >>> decide(s, 120.0, Trigger("timer"), None, Inputs(pb)).action is None
    True
    >>> d = decide(s, 160.0, Trigger("timer"), None, Inputs(pb))
    >>> (d.action.action, d.action.channel, d.action.payload["content"])
    ('cart', 'email', 't')
    >>> decide(d.state, 170.0, Trigger("timer"), None, Inputs(pb)).action is None  # standing
    True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from pipeline.contact import check_action, choose_channel
from pipeline.context import rule_context
from pipeline.events import Event, format_time
from pipeline.outcomes import Outcome, on_feedback, settle, unanswered
from pipeline.playbook import ActionSpec, Playbook
from pipeline.response import ResponseModels
from pipeline.state import CustomerState, LastAction
from pipeline.values import evolve

__all__ = [
    "Action",
    "Decision",
    "Inputs",
    "Outcome",
    "Trigger",
    "base_propensity",
    "decide",
    "due_at",
    "in_control",
    "on_feedback",
    "uniform",
]


@dataclass(frozen=True, slots=True)
class Trigger:
    """What caused this decision: an event (with its id) or the timer (with its time)."""

    kind: str
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the worker supplies besides the state: playbook, models, volume so far."""

    playbook: Playbook
    scores: Mapping[str, float] = field(default_factory=dict)
    model_versions: Mapping[str, int] = field(default_factory=dict)
    responses: ResponseModels | None = None
    volume: Mapping[str, int] = field(default_factory=dict)
    volume_share: float = 1.0


@dataclass(frozen=True, slots=True)
class Action:
    decision_id: str
    customer_id: str
    action: str
    journey: str
    channel: str | None
    group: str
    decided_at: float
    expires_at: float
    supersedes: str | None
    trigger: Trigger
    explanation: dict[str, Any]
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The wire form, as in ``schemas/action.v1.json``."""
        return {
            "decision_id": self.decision_id,
            "schema_version": 1,
            "customer_id": self.customer_id,
            "action": self.action,
            "journey": self.journey,
            "channel": self.channel,
            "group": self.group,
            "decided_at": format_time(self.decided_at),
            "expires_at": format_time(self.expires_at),
            "supersedes": self.supersedes,
            "trigger": {"kind": self.trigger.kind, "event_id": self.trigger.event_id},
            "explanation": self.explanation,
            "payload": self.payload,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    state: CustomerState
    action: Action | None = None
    outcomes: tuple[Outcome, ...] = ()


@dataclass(frozen=True, slots=True)
class _Candidate:
    spec: ActionSpec
    channel: str
    propensity: float
    source: str
    value: float

    @property
    def priority(self) -> float:
        return self.propensity * self.value * self.spec.weight

    def terms(self) -> dict[str, Any]:
        return {
            "propensity": round(self.propensity, 6),
            "propensity_source": self.source,
            "value": round(self.value, 4),
            "weight": self.spec.weight,
            "priority": round(self.priority, 6),
            "channel": self.channel,
        }


def uniform(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) from ``parts`` (seeded dice for replays)."""
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def _timer_basis(state: CustomerState, pb: Playbook, now: float) -> str:
    """A timer decision's basis: when its customer fell due (the latest idle recheck or
    expiry at or before ``now``) and the decision standing then, not the clock. A worker
    that decides again after a crash (the first decision sent, its state not yet in the
    changelog) gives the same decision the same id; the clock is the basis only when
    nothing fell due (a label's horizon)."""
    la = state.last_action
    dues = [state.last_seen + d for d in pb.recheck_after_idle_s if state.last_seen + d <= now]
    if la is not None and la.expires_at <= now:
        dues.append(la.expires_at)
    return f"due:{max(dues) if dues else now!r}|{la.decision_id if la is not None else ''}"


def decision_id(customer_id: str, action: str, basis: str) -> str:
    """Deterministic id: the same decision, redelivered or replayed, has the same id."""
    text = f"{customer_id}|{action}|{basis}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def in_control(customer_id: str, pb: Playbook) -> bool:
    """Whether the customer is in the holdout: stable for a salt, ``control_share`` of all."""
    return pb.control_share > 0 and uniform(pb.control_salt, customer_id) < pb.control_share


def _live(state: CustomerState, now: float) -> LastAction | None:
    la = state.last_action
    return la if la is not None and la.expires_at > now else None


def due_at(state: CustomerState, pb: Playbook, now: float) -> float | None:
    """When the timer should decide this customer again (idle thresholds, expiry), or None."""
    dues = [state.last_seen + d for d in pb.recheck_after_idle_s if state.last_seen + d > now]
    la = state.last_action
    if la is not None and la.expires_at > now:
        dues.append(la.expires_at)
    return min(dues) if dues else None


def _run(program: Any, native: Any, ctx: Mapping[str, Any], in_cel: Callable[[], Any]) -> Any:
    """A rule's result: its native translation (pipeline.rules) when it has one and that
    does not raise, else CEL's (whose errors propagate)."""
    if native is not None:
        try:
            return native(ctx)
        except Exception:  # an error case: CEL's own rules for errors decide
            pass
    return program.execute(in_cel())


def _eligible(spec: ActionSpec, ctx: Mapping[str, Any], in_cel: Callable[[], Any]) -> str | None:
    try:
        ok = _run(spec.eligible, spec.native_eligible, ctx, in_cel)
    except Exception:  # a rule that errors on this customer (the runtime raises several types)
        return "rule_error"
    return None if ok is True else "not_eligible"


def base_propensity(spec: ActionSpec, scores: Mapping[str, float]) -> tuple[float, str]:
    """An action's propensity before its response model: the intent score it names,
    else its prior."""
    if spec.intent in scores:
        return scores[spec.intent], f"intent:{spec.intent}"
    return spec.prior, "prior"


def _propensity(spec: ActionSpec, inp: Inputs, x: Mapping[str, float] | None) -> tuple[float, str]:
    base, source = base_propensity(spec, inp.scores)
    rm = inp.responses
    if rm is not None and rm.outcomes(spec.id) >= inp.playbook.min_responses:
        if x is not None and rm.contextual(spec.id):  # this customer, this situation
            return rm.mean(spec.id, x, base), "response_model:contextual"
        return rm.mean(spec.id), "response_model"
    return base, source


def _value(spec: ActionSpec, ctx: Mapping[str, Any], in_cel: Callable[[], Any]) -> float:
    if spec.value_expr is None:
        return spec.value
    try:
        return max(0.0, float(_run(spec.value_expr, spec.native_value, ctx, in_cel)))
    except Exception:  # fall back to the static value rather than drop the action
        return spec.value


def _volume_ok(spec: ActionSpec, inp: Inputs) -> bool:
    if spec.hourly_limit is None:
        return True
    return inp.volume.get(spec.id, 0) < math.ceil(spec.hourly_limit * inp.volume_share)


def _candidates(
    state: CustomerState,
    now: float,
    ctx: Mapping[str, Any],
    in_cel: Callable[[], Any],
    inp: Inputs,
    x: Mapping[str, float] | None = None,
) -> tuple[list[_Candidate], dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
    pb, standing = inp.playbook, _live(state, now)
    cands, matched, dropped, refused = [], {}, {}, {}
    for spec in pb.actions:
        why = _eligible(spec, ctx, in_cel)
        if why is None:
            matched[spec.id] = spec.rule
            keep = standing is not None and standing.action == spec.id
            why = None if keep else check_action(spec, state.contacts, pb, now)
            if why is None and not keep and not _volume_ok(spec, inp):
                why = "volume_limit"
        if why is None:
            channel, refused[spec.id] = choose_channel(spec, state, pb, now)
            if channel is None:
                why = next(iter(refused[spec.id].values()))
            else:
                p, source = _propensity(spec, inp, x)
                value = _value(spec, ctx, in_cel)
                cands.append(_Candidate(spec, channel, p, source, value))
        if why is not None:
            dropped[spec.id] = why
    return cands, matched, dropped, {k: v for k, v in refused.items() if v}


def _explore(
    cands: list[_Candidate], pb: Playbook, seed: tuple[object, ...]
) -> tuple[_Candidate, list[_Candidate], bool, float]:
    """(chosen, near-best set, explored, probability the policy chose it)."""
    ranked = sorted(cands, key=lambda c: (-c.priority, c.spec.id))
    best = ranked[0]
    near = [c for c in ranked if c.priority >= pb.near_best * best.priority]
    eps = pb.exploration_rate if len(near) > 1 else 0.0
    explore = eps > 0 and uniform(*seed, "explore") < eps
    chosen = near[int(uniform(*seed, "pick") * len(near))] if explore else best
    p = (1 - eps) * (chosen is best) + eps / len(near) if eps else 1.0
    return chosen, near, explore, p


def _payload(spec: ActionSpec, state: CustomerState, ctx: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"content": spec.content}
    if "cart" in spec.payload:
        out["items"] = [
            {"product_id": i.product_id, "quantity": i.quantity, "price": i.price}
            for i in state.cart.items
        ]
        out["cart_value"] = state.cart.value
    if "top_category" in spec.payload:
        out["category"] = ctx["affinity"]["top"]
    if "recent_products" in spec.payload and state.session is not None:
        out["products"] = list(state.session.products)
    if "service" in spec.payload:
        sv = ctx["service"]
        out["service"] = {
            k: sv[k] for k in ("open_tickets", "outage_days", "delivery_problem_days")
        }
    return out


def _in_cel(ctx: Mapping[str, Any], pb: Playbook) -> Callable[[], Any]:
    """The context as CEL values, built on first use: once per decision, not per rule,
    with only the variables the rules read (the conversion is most of what CEL costs),
    and not at all when every rule ran natively."""
    built: list[Any] = []

    def get() -> Any:
        if not built:
            reads = pb.reads.items()
            built.append(
                cel.Context(
                    {
                        k: ctx[k] if f is None else {x: ctx[k][x] for x in f if x in ctx[k]}
                        for k, f in reads
                    }
                )
            )
        return built[0]

    return get


def decide(
    state: CustomerState,
    now: float,
    trigger: Trigger,
    event: Event | None,
    inp: Inputs,
    x: Mapping[str, float] | None = None,
) -> Decision:
    """Pick the next best action for ``state`` at ``now``; ``action`` is None if unchanged.
    ``x``: the state's features at ``now``, if already computed."""
    pb = inp.playbook
    state, outcomes = settle(state, now, event)
    ctx = rule_context(state, now, event, inp.scores, with_features="f" in pb.reads, x=x)
    ctx["params"] = pb.parameters
    x = x if x is not None else (ctx["f"] or None)
    cands, matched, dropped, refused = _candidates(state, now, ctx, _in_cel(ctx, pb), inp, x)
    if not cands:
        return Decision(state, None, tuple(outcomes))
    basis = trigger.event_id if trigger.event_id is not None else _timer_basis(state, pb, now)
    chosen, near, explored, p = _explore(cands, pb, (state.customer_id, basis))
    standing = _live(state, now)
    if standing is not None and any(c.spec.id == standing.action for c in near):
        return Decision(state, None, tuple(outcomes))  # unchanged: keep what is shown
    spec, control = chosen.spec, in_control(state.customer_id, pb)
    group = "control" if control else "treatment"
    prev = state.last_action
    if prev is not None:
        state, closed = unanswered(state, prev, "superseded")
        outcomes += closed
    action = Action(
        decision_id=decision_id(state.customer_id, spec.id, basis),
        customer_id=state.customer_id,
        action=spec.id,
        journey=spec.journey,
        channel=None if control else chosen.channel,
        group=group,
        decided_at=now,
        expires_at=now + spec.ttl_s,
        supersedes=standing.decision_id if standing is not None else None,
        trigger=trigger,
        explanation={
            "playbook_version": pb.version,
            "rules_matched": matched,
            "dropped": dropped,
            "channels_refused": refused,
            "arbitration": {c.spec.id: c.terms() for c in cands},
            "near_best": [c.spec.id for c in near],
            "explored": explored,
            "probability": round(p, 6),
            "exploration_rate": pb.exploration_rate,
            "scores": {k: round(v, 6) for k, v in inp.scores.items()},
            "model_versions": dict(inp.model_versions),
        },
        payload=_payload(spec, state, ctx),
    )
    la = LastAction(
        action.decision_id,
        spec.id,
        now,
        action.expires_at,
        state.cart.changed_at,
        action.channel,
        spec.journey,
        group,
    )
    contacts = state.contacts
    if not control:
        contacts = contacts.sent_one(action.decision_id, spec.id, chosen.channel, now)
    state = evolve(state, last_action=la, contacts=contacts)
    outcomes.append(Outcome("decision", spec.id, spec.journey, group))
    return Decision(state, action, tuple(outcomes))
