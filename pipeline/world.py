"""A simulated world with ground truth, to measure how good decisions are.

Each customer has hidden traits (how likely they buy, lapse or need support, a
favourite category, a taste for each action) and from them a hidden probability of
responding to each action (``Person.respond``). The moment moves it: the world's hidden
weights over what the worker observes at the decision (the cart's value, the session's
depth, orders, days since the last one, category affinity: ``respond_p``) make, say, a
cart reminder work on a full cart and a premium offer on a loyal customer. Their
behaviour (sessions of page and product views, carts, purchases, outages, deliveries,
surveys) is drawn once per customer from a seeded generator, so every policy faces the
same people. The world also plays the channel services: a sent action is shown with the
channel's open rate, answered with the customer's probability in the moment (a click,
or a dismissal), and a response to a purchase-minded action makes a purchase likely
soon after. Every draw is seeded by the world's seed and what it is about, so a run is
reproducible.

The world's playbook (``world_playbook.yaml``; ``WorldConfig.playbook`` can name the
default one) has overlapping offers of similar value under a one-e-mail-a-day cap and
per-action cool-downs, so choosing one action costs the others; static rules rank by
priors near each action's average response.

``run(policy, cfg)`` replays the world through the pure core (``apply`` and
``decide``) with one of the policies below and returns the reward over time:

- ``baton``: the playbook, learning its response models from the feedback it gets,
  each outcome with the features its decision was made on (contextual models,
  ``pipeline.response``), exploring at the playbook's rate;
- ``baton_beta``: the same with per-action Beta response models only (what the Kafka
  learner keeps today: its response examples carry no features);
- ``oracle``: the same playbook and contact policy, but arbitration knows each
  customer's true response probability in the moment and the channel's open rate;
- ``static``: the same rules with fixed priors (no learning, no exploration);
- ``random``: a uniform choice among the allowed candidates;
- ``control``: no action (everyone held out).

    >>> r = run("static", WorldConfig(customers=20, days=1.0, seed=3))
    >>> r.events > 100 and r.sent > 0 and r.reward >= 0
    True
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from pipeline.events import Event
from pipeline.features import features
from pipeline.fold import apply
from pipeline.people import (
    CATEGORIES,
    OPEN_RATE,
    Person,
    channel_answer,
    person,
    respond_p,
    situation_weights,
)
from pipeline.playbook import Playbook, load_file
from pipeline.policy import Inputs, Trigger, base_propensity, decide, due_at, on_feedback, uniform
from pipeline.response import ResponseModels
from pipeline.state import CustomerState, StateConfig

__all__ = [
    "OPEN_RATE",
    "POLICIES",
    "WORLD_PLAYBOOK",
    "Person",
    "Result",
    "WorldConfig",
    "channel_answer",
    "person",
    "respond_p",
    "run",
    "situation_weights",
]

POLICIES: Final = ("baton", "baton_beta", "oracle", "static", "random", "control")
WORLD_PLAYBOOK: Final = Path(__file__).with_name("world_playbook.yaml")
HOUR, DAY = 3600.0, 86400.0
_BUYING = frozenset(
    {
        "abandoned_cart_reminder",
        "browse_abandonment",
        "next_product_recommendation",
        "cross_sell",
        "welcome_new_customer",
        "loyalty_reward",
        "premium_offer",
    }
)


@dataclass(frozen=True, slots=True)
class WorldConfig:
    customers: int = 2000
    days: float = 14.0
    seed: int = 11
    start: float = 1_800_000_000.0  # 2027-01-15, a fixed clock
    feedback_delay_s: float = 600.0
    response_batch: int = 50  # response outcomes learned per published snapshot
    contextual: bool = True  # baton learns its response models with the decision's features
    playbook: Path = WORLD_PLAYBOOK  # or pipeline.playbook.DEFAULT_PATH


@dataclass
class Result:
    policy: str
    events: int = 0
    sent: int = 0
    shown: int = 0
    responses: int = 0
    conversions: int = 0
    reward: float = 0.0
    decisions: int = 0
    candidates: int = 0  # summed over the decisions that chose an action
    by_action: dict[str, int] = field(default_factory=dict)
    hourly_reward: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "events": self.events,
            "sent": self.sent,
            "shown": self.shown,
            "responses": self.responses,
            "conversions": self.conversions,
            "reward": round(self.reward, 2),
            "decisions": self.decisions,
            "candidates_per_action": round(self.candidates / self.sent, 2) if self.sent else 0.0,
            "by_action": dict(sorted(self.by_action.items())),
            "cumulative_reward": [round(x, 2) for x in _cumsum(self.hourly_reward)],
        }


def _cumsum(xs: list[float]) -> list[float]:
    out, total = [], 0.0
    for x in xs:
        total += x
        out.append(total)
    return out


def _person(i: int, seed: int) -> Person:
    return person(f"w-{i:05d}", seed)


def _timeline(p: Person, cfg: WorldConfig) -> list[Event]:
    """The customer's own behaviour over the run, whatever the policy does."""
    rng = random.Random(f"{cfg.seed}-life-{p.id}")
    out: list[Event] = []
    t = cfg.start + rng.uniform(0, DAY)
    end = cfg.start + cfg.days * DAY
    rate = (0.3 + 1.5 * p.buy) * (1.0 - 0.6 * p.churn)  # sessions per day
    n = 0

    def ev(kind: str, at: float, **props: object) -> None:
        nonlocal n
        n += 1
        out.append(Event(f"{p.id}-{n}", kind, at, p.id, None, props))

    while t < end:
        cart = 0.0
        for _ in range(rng.randint(2, 8)):
            t += rng.uniform(20, 120)
            cat = p.favourite if rng.random() < 0.6 else rng.choice(CATEGORIES)
            price = round(rng.uniform(5, 150), 2)
            r = rng.random()
            if r < 0.35:
                ev("page_view", t, url=f"/c/{cat}")
            elif r < 0.8:
                ev("product_view", t, product_id=f"{cat}-{rng.randrange(40)}", category=cat)
            else:
                ev(
                    "add_to_cart",
                    t,
                    product_id=f"{cat}-{rng.randrange(40)}",
                    category=cat,
                    price=price,
                )
                cart += price
        if cart and rng.random() < p.buy:
            t += rng.uniform(30, 300)
            ev("purchase", t, order_value=round(cart, 2))
        if rng.random() < 0.03:
            ev("outage_notice", t + rng.uniform(0, DAY), status="major")
        if rng.random() < 0.05:
            ev("survey_response", t + rng.uniform(0, DAY), nps=rng.randint(0, 10))
        t += rng.expovariate(rate) * DAY
    return sorted(out, key=lambda e: e.event_time)


class _Truth:
    """Arbitration input for the oracle: the customer's true expected response, in the
    moment (``respond_p``), times the channel's open rate."""

    def __init__(self, p: Person, pb: Playbook, weights: Mapping[str, Any]) -> None:
        self.p, self.weights = p, weights
        self.open = {a.id: max(OPEN_RATE[c] for c in a.channels) for a in pb.actions}

    def outcomes(self, action: str) -> int:
        return 1 << 30

    def contextual(self, action: str) -> bool:
        return True

    def mean(
        self, action: str, x: Mapping[str, float] | None = None, base: float | None = None
    ) -> float:
        return respond_p(self.p, action, x, self.weights) * self.open.get(action, 1.0)


def _playbook(policy: str, path: Path) -> Playbook:
    pb = load_file(path)
    if policy in ("oracle", "static"):
        return replace(pb, exploration_rate=0.0, control_share=0.0)
    if policy == "random":
        return replace(pb, exploration_rate=1.0, near_best=0.0, control_share=0.0)
    if policy == "control":
        return replace(pb, control_share=1.0)
    return replace(pb, control_share=0.0)


def run(policy: str, cfg: WorldConfig) -> Result:
    """Replay the world with ``policy``; see the module docstring."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known: {POLICIES}")
    pb, scfg, res = _playbook(policy, cfg.playbook), StateConfig(), Result(policy)
    people = {p.id: p for p in (_person(i, cfg.seed) for i in range(cfg.customers))}
    learned, pending = ResponseModels(), ResponseModels()
    queue: list[tuple[float, int, str, Event | None]] = []
    seq = 0
    for p in people.values():
        for e in _timeline(p, cfg):
            queue.append((e.event_time, seq, p.id, e))
            seq += 1
    heapq.heapify(queue)
    states: dict[str, CustomerState] = {}
    weights = situation_weights(cfg.seed)
    contextual = policy == "baton" and cfg.contextual
    # baton: each decision's features and base propensity, until its response is learned
    contexts: dict[str, tuple[dict[str, float], float]] = {}
    priors = {a.id: base_propensity(a, {})[0] for a in pb.actions}
    res.hourly_reward = [0.0] * (int(cfg.days * 24) + 2)
    end = cfg.start + (cfg.days + 1) * DAY

    def learn(outcomes: Any) -> None:
        nonlocal learned
        for o in outcomes:
            if o.kind == "response" and policy in ("baton", "baton_beta"):
                x, base = contexts.pop(o.decision_id, (None, None))
                pending.learn(o.action, bool(o.success), x if contextual else None, base)
                if pending.version - learned.version >= cfg.response_batch:
                    learned = ResponseModels.from_snapshot(pending.snapshot())

    while queue:
        t, _, cid, event = heapq.heappop(queue)
        if t > end:
            break
        s = states.get(cid)
        if event is None and s is None:
            continue
        if event is not None:
            if event.event_id.startswith("fb:"):
                if s is not None:
                    s, outcomes = _feedback(s, event, pb)
                    learn(outcomes)
                    states[cid] = s
                continue
            s = apply(s, event, scfg).state
            res.events += 1
            res.conversions += event.event_type == "purchase"
            trigger = Trigger("event", event.event_id)
        else:
            assert s is not None
            trigger = Trigger("timer")
        responses: Any = _Truth(people[cid], pb, weights) if policy == "oracle" else learned
        if policy == "static":
            responses = None
        x = features(s, t)
        d = decide(s, t, trigger, event, Inputs(pb, responses=responses), x=x)
        s = d.state
        learn(d.outcomes)
        res.decisions += 1
        res.candidates += len(d.action.explanation["arbitration"]) if d.action else 0
        if d.action is not None and d.action.group == "treatment":
            if contextual:
                contexts[d.action.decision_id] = (x, priors[d.action.action])
            truth = respond_p(people[cid], d.action.action, x, weights)
            seq = _answer(d.action, people[cid], truth, cfg, res, queue, seq)
        states[cid] = s
        nxt = due_at(s, pb, t)
        if nxt is not None and nxt < end:
            heapq.heappush(queue, (nxt, seq, cid, None))
            seq += 1
    return res


def _feedback(s: CustomerState, fb: Event, pb: Playbook) -> tuple[CustomerState, Any]:
    """The state with the feedback folded in, and its outcomes (the responses to learn)."""
    kind, decision = fb.event_type, str(fb.properties["decision_id"])
    done = on_feedback(s, kind, decision, fb.event_time, pb)
    return (s, ()) if done is None else done


def _answer(
    action: Any, p: Person, truth: float, cfg: WorldConfig, res: Result, queue: list[Any], seq: int
) -> int:
    """Play the channel service: show, answer (with the customer's probability in the
    moment, ``truth``), maybe buy; queue the feedback."""
    res.sent += 1
    res.by_action[action.action] = res.by_action.get(action.action, 0) + 1
    t, did = action.decided_at, action.decision_id
    delay = cfg.feedback_delay_s
    answer = channel_answer(p, action.action, action.channel, did, cfg.seed, delay, truth)
    res.shown += bool(answer)
    responded = any(kind == "click" for _, kind in answer)
    fb = [(t + dt, kind) for dt, kind in answer]
    if responded:
        res.responses += 1
        value = float(action.explanation["arbitration"][action.action]["value"])
        res.reward += value
        hour = int((t - cfg.start) // HOUR)
        if 0 <= hour < len(res.hourly_reward):
            res.hourly_reward[hour] += value
        if action.action in _BUYING and uniform(cfg.seed, did, "buy") < 0.5:
            buy = Event(
                f"{did}-buy",
                "purchase",
                t + 2 * cfg.feedback_delay_s,
                p.id,
                None,
                {"order_value": value},
            )
            heapq.heappush(queue, (buy.event_time, seq, p.id, buy))
            seq += 1
    for at, kind in fb:
        ev = Event(f"fb:{did}:{kind}", kind, at, p.id, None, {"decision_id": did})
        heapq.heappush(queue, (at, seq, p.id, ev))
        seq += 1
    return seq
