"""A simulated world with ground truth, to measure how good decisions are.

Each customer has hidden traits (how likely they buy, lapse or need support, a
favourite category, consent, a time zone) and a hidden probability of responding to
each action of the default playbook. Their behaviour (sessions of page and product
views, carts, purchases, outages, deliveries, surveys) is drawn once per customer from
a seeded generator, so every policy faces the same people. The world also plays the
channel services: a sent action is shown with the channel's open rate, answered with
the customer's hidden response probability (a click, or a dismissal), and a response
to a purchase-minded action makes a purchase likely soon after. Every draw is seeded by
the world's seed and what it is about, so a run is reproducible.

``run(policy, cfg)`` replays the world through the pure core (``apply`` and
``decide``) with one of the policies below and returns the reward over time:

- ``baton``: the default playbook, learning per-action response models from the
  feedback it gets, exploring at the playbook's rate;
- ``oracle``: the same playbook and contact policy, but arbitration knows each
  customer's true response probability and the channel's open rate;
- ``static``: the same rules with fixed priors (no learning, no exploration);
- ``random``: a uniform choice among the allowed candidates;
- ``control``: no action (everyone held out).

    >>> r = run("static", WorldConfig(customers=20, days=1.0, seed=3))
    >>> r.events > 100 and r.sent > 0 and r.reward >= 0
    True
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from pipeline.events import Event
from pipeline.fold import apply
from pipeline.playbook import DEFAULT_PATH, Playbook, load_file
from pipeline.policy import Inputs, Trigger, decide, due_at, on_feedback, uniform
from pipeline.response import ResponseModels
from pipeline.state import CustomerState, StateConfig

__all__ = [
    "OPEN_RATE",
    "POLICIES",
    "Person",
    "Result",
    "WorldConfig",
    "channel_answer",
    "person",
    "run",
]

POLICIES: Final = ("baton", "oracle", "static", "random", "control")
HOUR, DAY = 3600.0, 86400.0
OPEN_RATE: Final = {"email": 0.5, "sms": 0.9, "push": 0.6, "web": 0.9, "app": 0.7, "agent": 0.95}
CATEGORIES: Final = ("shoes", "books", "electronics", "garden", "toys", "beauty", "finance.loans")
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


@dataclass(frozen=True, slots=True)
class Person:
    """Hidden truth about one customer."""

    id: str
    buy: float
    churn: float
    favourite: str
    respond: Mapping[str, float]


@dataclass
class Result:
    policy: str
    events: int = 0
    sent: int = 0
    shown: int = 0
    responses: int = 0
    conversions: int = 0
    reward: float = 0.0
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


def person(customer_id: str, seed: int) -> Person:
    """The hidden truth about a customer, drawn from the seed and the id alone."""
    rng = random.Random(f"{seed}-person-{customer_id}")
    buy = min(0.9, rng.betavariate(2, 6))
    churn = rng.betavariate(2, 5)
    favourite = rng.choice(CATEGORIES)
    taste = {a: math.exp(rng.gauss(0, 0.5)) for a in _BASE}
    respond = {a: min(0.95, f(buy, churn, favourite) * taste[a]) for a, f in _BASE.items()}
    return Person(customer_id, buy, churn, favourite, respond)


# hidden response probability of each default action, from the customer's traits
_BASE: Final[dict[str, Callable[[float, float, str], float]]] = {
    "welcome_new_customer": lambda b, c, fav: 0.05 + 0.1 * b,
    "abandoned_cart_reminder": lambda b, c, fav: 0.05 + 0.35 * b,
    "browse_abandonment": lambda b, c, fav: 0.03 + 0.15 * b,
    "proactive_support": lambda b, c, fav: 0.35,
    "next_product_recommendation": lambda b, c, fav: 0.02 + 0.25 * b,
    "loyalty_reward": lambda b, c, fav: 0.3,
    "churn_save": lambda b, c, fav: 0.1 + 0.3 * c,
    "cross_sell": lambda b, c, fav: 0.03 + 0.1 * b,
    "nps_detractor_followup": lambda b, c, fav: 0.4,
    "loan_offer": lambda b, c, fav: 0.25 if fav.startswith("finance") else 0.01,
    "premium_offer": lambda b, c, fav: 0.04 + 0.1 * b,
}


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
    """Arbitration input for the oracle: the customer's true expected response."""

    def __init__(self, p: Person, pb: Playbook) -> None:
        self.p = p
        self.open = {a.id: max(OPEN_RATE[c] for c in a.channels) for a in pb.actions}

    def outcomes(self, action: str) -> int:
        return 1 << 30

    def mean(self, action: str) -> float:
        return self.p.respond.get(action, 0.0) * self.open.get(action, 1.0)


def _playbook(policy: str) -> Playbook:
    pb = load_file(DEFAULT_PATH)
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
    pb, scfg, res = _playbook(policy), StateConfig(), Result(policy)
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
    res.hourly_reward = [0.0] * (int(cfg.days * 24) + 2)
    end = cfg.start + (cfg.days + 1) * DAY
    while queue:
        t, _, cid, event = heapq.heappop(queue)
        if t > end:
            break
        s = states.get(cid)
        if event is None and s is None:
            continue
        if event is not None:
            if event.event_id.startswith("fb:"):
                s = _feedback(s, event, pb) if s is not None else s
                if s is not None:
                    states[cid] = s
                continue
            s = apply(s, event, scfg).state
            res.events += 1
            res.conversions += event.event_type == "purchase"
            trigger = Trigger("event", event.event_id)
        else:
            assert s is not None
            trigger = Trigger("timer")
        responses: Any = _Truth(people[cid], pb) if policy == "oracle" else learned
        if policy == "static":
            responses = None
        d = decide(s, t, trigger, event, Inputs(pb, responses=responses))
        s = d.state
        for o in d.outcomes:
            if o.kind == "response" and policy == "baton":
                pending.learn(o.action, bool(o.success))
                if pending.version - learned.version >= cfg.response_batch:
                    learned = ResponseModels.from_snapshot(pending.snapshot())
        if d.action is not None and d.action.group == "treatment":
            seq = _answer(d.action, people[cid], cfg, res, queue, seq)
        states[cid] = s
        nxt = due_at(s, pb, t)
        if nxt is not None and nxt < end:
            heapq.heappush(queue, (nxt, seq, cid, None))
            seq += 1
    return res


def _feedback(s: CustomerState, fb: Event, pb: Playbook) -> CustomerState:
    kind, decision = fb.event_type, str(fb.properties["decision_id"])
    done = on_feedback(s, kind, decision, fb.event_time, pb)
    return s if done is None else done[0]


def channel_answer(
    p: Person, action: str, channel: str, decision_id: str, seed: int, delay_s: float = 600.0
) -> list[tuple[float, str]]:
    """What the customer does with an action, as the channel service reports it:
    ``[(seconds after the decision, feedback type)]``. Shown at the channel's open rate;
    then a click with the customer's hidden response probability, else a dismissal for
    three in ten (most people ignore what they skip). Seeded by the decision id.

    >>> channel_answer(person("c-1", 1), "loyalty_reward", "sms", "d" * 32, 1)[0]
    (60.0, 'impression')
    """
    if uniform(seed, decision_id, "open") >= OPEN_RATE.get(channel, 0.5):
        return []  # never seen: no feedback at all
    out = [(60.0, "impression")]
    if uniform(seed, decision_id, "respond") < p.respond.get(action, 0.0):
        out.append((delay_s, "click"))
    elif uniform(seed, decision_id, "dismiss") < 0.3:
        out.append((delay_s, "dismiss"))
    return out


def _answer(
    action: Any, p: Person, cfg: WorldConfig, res: Result, queue: list[Any], seq: int
) -> int:
    """Play the channel service: show, answer, maybe buy; queue the feedback."""
    res.sent += 1
    res.by_action[action.action] = res.by_action.get(action.action, 0) + 1
    t, did = action.decided_at, action.decision_id
    answer = channel_answer(p, action.action, action.channel, did, cfg.seed, cfg.feedback_delay_s)
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
