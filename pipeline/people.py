"""The world's people: hidden traits, the hidden response to each action in the moment,
and how they answer an action on a channel (``pipeline.world`` runs them; the Kafka-side
channel simulator, ``agents.channels``, answers with ``channel_answer`` too).

A customer's own response probability to each action (``Person.respond``) comes from
their traits; the moment moves it (``respond_p``): the world's hidden weights over what
the worker observes at the decision (``pipeline.features``), drawn per world seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pipeline.policy import uniform

__all__ = [
    "CATEGORIES",
    "OPEN_RATE",
    "Person",
    "channel_answer",
    "person",
    "respond_p",
    "situation_weights",
]

OPEN_RATE: Final = {"email": 0.5, "sms": 0.9, "push": 0.6, "web": 0.9, "app": 0.7, "agent": 0.95}
CATEGORIES: Final = ("shoes", "books", "electronics", "garden", "toys", "beauty", "finance.loans")


@dataclass(frozen=True, slots=True)
class Person:
    """Hidden truth about one customer."""

    id: str
    buy: float
    churn: float
    favourite: str
    respond: Mapping[str, float]


def person(customer_id: str, seed: int) -> Person:
    """The hidden truth about a customer, drawn from the seed and the id alone."""
    rng = random.Random(f"{seed}-person-{customer_id}")
    buy = min(0.9, rng.betavariate(2, 6))
    churn = rng.betavariate(2, 5)
    favourite = rng.choice(CATEGORIES)
    taste = {a: math.exp(rng.gauss(0, 0.5)) for a in _BASE}
    respond = {a: min(0.95, f(buy, churn, favourite) * taste[a]) for a, f in _BASE.items()}
    return Person(customer_id, buy, churn, favourite, respond)


def _situation(x: Mapping[str, float]) -> dict[str, float]:
    """What the hidden response reads of the moment, from features the worker observes
    (``pipeline.features``), each bounded: the cart's value (per 100, up to 3), the
    session's depth (events per 6, up to 2), loyalty (orders per 3, up to 2), lapse
    (days since the last order per 30, up to 2) and category affinity (per 10, up to 2).
    """
    return {
        "cart": min(x.get("cart_value", 0.0), 300.0) / 100.0,
        "depth": min(x.get("session_events", 0.0), 12.0) / 6.0,
        "loyal": min(x.get("lifetime_orders", 0.0), 6.0) / 3.0,
        "lapsed": min(x.get("days_since_last_order", 0.0), 60.0) / 30.0,
        "affine": min(x.get("top_affinity", 0.0), 20.0) / 10.0,
    }


# how the moment moves each action's response (log-odds-like, multiplicative on the
# customer's own probability); each world draws its weights around these
_SITUATION: Final[dict[str, dict[str, float]]] = {
    "welcome_new_customer": {"depth": 1.0},
    "abandoned_cart_reminder": {"cart": 1.0, "depth": -0.8},
    "browse_abandonment": {"depth": 1.0, "cart": -1.0},
    "proactive_support": {},
    "next_product_recommendation": {"affine": 1.2, "depth": 0.6, "loyal": -0.8},
    "loyalty_reward": {"loyal": 0.8, "lapsed": -1.0},
    "churn_save": {"lapsed": 1.4, "loyal": -0.5},
    "cross_sell": {"loyal": 1.0, "cart": -0.6},
    "nps_detractor_followup": {},
    "loan_offer": {"affine": 0.8},
    "premium_offer": {"loyal": 1.2, "affine": 0.8, "depth": -0.6},
}


def situation_weights(seed: int) -> dict[str, dict[str, float]]:
    """This world's hidden weights of the moment on each action's response."""
    rng = random.Random(f"{seed}-situation")
    return {
        a: {k: w + rng.gauss(0.0, 0.2) for k, w in sorted(ws.items())}
        for a, ws in _SITUATION.items()
    }


def respond_p(
    p: Person, action: str, x: Mapping[str, float] | None, weights: Mapping[str, Any]
) -> float:
    """The customer's true probability of responding to ``action`` now: their own
    (``Person.respond``) moved by the moment (``x``, the worker's features at the
    decision) through the world's hidden ``weights``.

    >>> w = situation_weights(1)
    >>> full = respond_p(person("c-1", 1), "abandoned_cart_reminder", {"cart_value": 250.0}, w)
    >>> full > respond_p(person("c-1", 1), "abandoned_cart_reminder", {"cart_value": 5.0}, w)
    True
    """
    base = p.respond.get(action, 0.0)
    if x is None or not base:
        return base
    z = _situation(x)
    lift = math.exp(sum(w * z[k] for k, w in weights.get(action, {}).items()))
    return min(0.95, base * lift)


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


def channel_answer(
    p: Person,
    action: str,
    channel: str,
    decision_id: str,
    seed: int,
    delay_s: float = 600.0,
    respond: float | None = None,
) -> list[tuple[float, str]]:
    """What the customer does with an action, as the channel service reports it:
    ``[(seconds after the decision, feedback type)]``. Shown at the channel's open rate;
    then a click with the customer's hidden response probability (``respond``, their
    probability in the moment, if known: ``respond_p``), else a dismissal for three in
    ten (most people ignore what they skip). Seeded by the decision id.

    >>> channel_answer(person("c-1", 1), "loyalty_reward", "sms", "d" * 32, 1)[0]
    (60.0, 'impression')
    """
    if uniform(seed, decision_id, "open") >= OPEN_RATE.get(channel, 0.5):
        return []  # never seen: no feedback at all
    out = [(60.0, "impression")]
    if uniform(seed, decision_id, "respond") < (
        p.respond.get(action, 0.0) if respond is None else respond
    ):
        out.append((delay_s, "click"))
    elif uniform(seed, decision_id, "dismiss") < 0.3:
        out.append((delay_s, "dismiss"))
    return out
