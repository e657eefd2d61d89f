"""Per-action response models: how likely a customer is to respond to each action.

Each action has a Beta posterior (river's ``proba.Beta``) over its response rate,
updated from channel feedback: a click, accept or convert is a success; a dismissal,
or an impression that got no response before the action was superseded or expired, is
a failure. Arbitration uses the model once an action has ``min_responses`` outcomes and
falls back to the intent score (or the playbook's prior) before that.

An outcome learned with the features the decision was made on (``x``) and the base
propensity it had then (``base``: the intent score the action names, or its prior) also
trains the action's **contextual** model: a river ``StandardScaler |
LogisticRegression`` over the features and the logit of the base propensity, so the
response is predicted for this customer in this situation, and the intent score is an
input the model weighs rather than something it replaces. Once an action's contextual
model has learned ``CONTEXT_MIN`` outcomes, ``mean(action, x, base)`` is its
prediction; before that, and whenever no features are given, it is the Beta mean.
Snapshots are plain JSON, signed like the intent models (``pipeline.models.sign``).

    >>> rm = ResponseModels()
    >>> for y in (True, False, False, True): rm.learn("a", y)
    >>> (rm.outcomes("a"), round(rm.mean("a"), 3))
    (4, 0.5)
    >>> ResponseModels.from_snapshot(rm.snapshot()).mean("a") == rm.mean("a")
    True
    >>> for i in range(400):  # responds when the cart is full, whatever the base
    ...     rm.learn("b", i % 2 == 1, {"cart_value": float(i % 2)}, base=0.1)
    >>> full, empty = rm.mean("b", {"cart_value": 1.0}, 0.1), rm.mean("b", {"cart_value": 0.0}, 0.1)
    >>> full > 0.7 > 0.3 > empty, rm.mean("b") == 0.5
    (True, True)
    >>> ResponseModels.from_snapshot(rm.snapshot()).mean("b", {"cart_value": 1.0}, 0.1) == full
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson
from river import compose, proba

from pipeline.models import (
    Linear,
    SnapshotError,
    load_logit_params,
    logit_params,
    logit_pipeline,
)

__all__ = [
    "CONTEXT_LR",
    "CONTEXT_MIN",
    "FORMAT",
    "DecisionContexts",
    "ResponseModels",
    "base_logit",
    "lift",
]

FORMAT: Final = "baton.response.v1"
CONTEXT_MIN: Final = 50  # outcomes an action's contextual model learns before it is used
CONTEXT_LR: Final = 0.05  # its SGD learning rate
_EPS: Final = 1e-4


def base_logit(p: float) -> float:
    """The logit of a base propensity, clipped away from 0 and 1.

    >>> base_logit(0.5), round(base_logit(0.0), 2)
    (0.0, -9.21)
    """
    q = min(1.0 - _EPS, max(_EPS, p))
    return math.log(q / (1.0 - q))


class ResponseModels:
    """A Beta(1, 1) prior per action, updated by each outcome; and per action a
    contextual model, trained by the outcomes learned with their features."""

    def __init__(self) -> None:
        self.arms: dict[str, proba.Beta] = {}
        self.context: dict[str, tuple[compose.Pipeline, list[int]]] = {}  # model, [learned]
        self._linear: dict[str, Linear] = {}  # compiled contextual models (``Linear``)
        self.version = 0

    def learn(
        self,
        action: str,
        success: bool,
        x: Mapping[str, float] | None = None,
        base: float | None = None,
    ) -> None:
        """One outcome of ``action``; with the decision's features ``x`` and its base
        propensity ``base``, the contextual model learns it too."""
        arm = self.arms.get(action)
        if arm is None:
            arm = self.arms[action] = proba.Beta(1, 1)
        arm.update(bool(success))  # type: ignore[no-untyped-call]
        if x is not None:
            entry = self.context.get(action)
            if entry is None:
                entry = self.context[action] = (logit_pipeline(CONTEXT_LR), [0])
            entry[0].learn_one(_row(x, base), bool(success))
            entry[1][0] += 1
            self._linear.pop(action, None)
        self.version += 1

    def outcomes(self, action: str) -> int:
        arm = self.arms.get(action)
        return 0 if arm is None else int(arm.alpha + arm.beta - 2)

    def contextual(self, action: str) -> bool:
        """Whether ``mean(action, x, base)`` uses the contextual model."""
        entry = self.context.get(action)
        return entry is not None and entry[1][0] >= CONTEXT_MIN

    def mean(
        self, action: str, x: Mapping[str, float] | None = None, base: float | None = None
    ) -> float:
        """The response probability: the contextual model's for features ``x`` (and the
        base propensity ``base``) once it has learned enough, else the Beta mean."""
        if x is not None and self.contextual(action):
            linear = self._linear.get(action)
            if linear is None:
                model = self.context[action][0]
                linear = self._linear[action] = Linear.of(model, apart="base_logit")
            return linear.prob(x, base_logit(0.5 if base is None else base))
        arm = self.arms.get(action)
        return 0.5 if arm is None else arm.alpha / (arm.alpha + arm.beta)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "arms": {a: [b.alpha, b.beta] for a, b in sorted(self.arms.items())},
        }
        if self.context:
            out["context"] = {
                a: {"learned": n[0], **logit_params(m)}
                for a, (m, n) in sorted(self.context.items())
            }
        return out

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> ResponseModels:
        """Rebuild from ``snapshot()`` data; ``SnapshotError`` if it is not one."""
        try:
            if snap["format"] != FORMAT:
                raise SnapshotError(f"format {snap['format']!r} is not {FORMAT}")
            rm = cls()
            for action, (a, b) in snap["arms"].items():
                if not (isinstance(a, int) and isinstance(b, int) and a >= 1 and b >= 1):
                    raise SnapshotError(f"bad Beta parameters for {action!r}: {a}, {b}")
                rm.arms[str(action)] = proba.Beta(a, b)
            for action, d in snap.get("context", {}).items():
                model = logit_pipeline(CONTEXT_LR)
                load_logit_params(model, d)
                rm.context[str(action)] = (model, [int(d["learned"])])
            rm.version = int(snap["version"])
        except SnapshotError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotError(f"malformed snapshot: {exc!r}") from exc
        return rm


class DecisionContexts:
    """The features, base propensity and served propensity of each recent decision, by
    decision id, so the learner can join an outcome to the situation it was decided in
    (the worker sends a ``decision`` example for each action it sends, then a
    ``response`` example naming the decision when the outcome is known). Bounded: past
    ``size`` decisions the oldest is forgotten, and its outcome then trains the action's
    Beta only. The features are kept as their JSON (~0.8 KB a decision with 36 features;
    parsed, 2-3 KB), so the default 100,000 hold about 75 MB.

    >>> j = DecisionContexts(size=2)
    >>> j.add("d1", {"cart_value": 1.0}, 0.2); j.add("d2", {}, 0.1); j.add("d3", {}, 0.3, 0.4)
    >>> j.take("d1"), j.take("d3"), j.take("d3"), len(j)
    (None, ({}, 0.3, 0.4), None, 1)
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._by_id: dict[str, tuple[bytes, float, float | None]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(
        self, decision_id: str, x: Mapping[str, float], base: float, served: float | None = None
    ) -> None:
        """Remember a decision; ``served``: the propensity arbitration used for it."""
        by_id = self._by_id
        # copied to an allocation of its size: orjson's bytes keep the buffer they grew in
        by_id[decision_id] = (memoryview(orjson.dumps(x)).tobytes(), base, served)
        if len(by_id) > self.size:  # dicts keep insertion order: the oldest goes
            del by_id[next(iter(by_id))]

    def remember(self, example: Mapping[str, Any]) -> bool:
        """Keep a message of ``training-examples`` if it is a ``decision`` example
        (``schemas/training-example.v1.json``); whether it was one."""
        if example.get("kind") != "decision":
            return False
        x, base, served = example["x"], float(example["base"]), example.get("served")
        self.add(example["decision_id"], x, base, served)
        return True

    def take(
        self, decision_id: str | None
    ) -> tuple[Mapping[str, float], float, float | None] | None:
        """The decision's (features, base propensity, served propensity), forgotten once
        taken."""
        found = None if decision_id is None else self._by_id.pop(decision_id, None)
        return None if found is None else (orjson.loads(found[0]), found[1], found[2])


def _row(x: Mapping[str, float], base: float | None) -> dict[str, float]:
    return {**x, "base_logit": base_logit(0.5 if base is None else base)}


def lift(
    conv_t: int, n_t: int, conv_c: int, n_c: int, z: float = 1.96
) -> tuple[float, float, float]:
    """Difference of conversion rates, treatment minus control, with a normal-approximation
    confidence interval (Wald, 95 % by default): ``(lift, low, high)``.

    >>> [round(v, 4) for v in lift(120, 1000, 80, 1000)]
    [0.04, 0.0138, 0.0662]
    """
    if n_t == 0 or n_c == 0:
        return (math.nan, math.nan, math.nan)
    pt, pc = conv_t / n_t, conv_c / n_c
    se = math.sqrt(pt * (1 - pt) / n_t + pc * (1 - pc) / n_c)
    return (pt - pc, pt - pc - z * se, pt - pc + z * se)
