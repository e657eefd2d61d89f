"""Per-action response models: how likely a customer is to respond to each action.

Each action has a Beta posterior (river's ``proba.Beta``) over its response rate,
updated from channel feedback: a click, accept or convert is a success; a dismissal,
or an impression that got no response before the action was superseded or expired, is
a failure. Arbitration uses the posterior mean once an action has ``min_responses``
outcomes and falls back to the intent score (or the playbook's prior) before that.
Snapshots are plain JSON, signed like the intent models (``pipeline.models.sign``).

    >>> rm = ResponseModels()
    >>> for y in (True, False, False, True): rm.learn("a", y)
    >>> (rm.outcomes("a"), round(rm.mean("a"), 3))
    (4, 0.5)
    >>> ResponseModels.from_snapshot(rm.snapshot()).mean("a") == rm.mean("a")
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from river import proba

from pipeline.models import SnapshotError

__all__ = ["FORMAT", "ResponseModels", "lift"]

FORMAT: Final = "baton.response.v1"


class ResponseModels:
    """A Beta(1, 1) prior per action, updated by each outcome."""

    def __init__(self) -> None:
        self.arms: dict[str, proba.Beta] = {}
        self.version = 0

    def learn(self, action: str, success: bool) -> None:
        arm = self.arms.get(action)
        if arm is None:
            arm = self.arms[action] = proba.Beta(1, 1)
        arm.update(bool(success))  # type: ignore[no-untyped-call]
        self.version += 1

    def outcomes(self, action: str) -> int:
        arm = self.arms.get(action)
        return 0 if arm is None else int(arm.alpha + arm.beta - 2)

    def mean(self, action: str) -> float:
        arm = self.arms.get(action)
        return 0.5 if arm is None else arm.alpha / (arm.alpha + arm.beta)

    def snapshot(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "arms": {a: [b.alpha, b.beta] for a, b in sorted(self.arms.items())},
        }

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
            rm.version = int(snap["version"])
        except SnapshotError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotError(f"malformed snapshot: {exc!r}") from exc
        return rm


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
