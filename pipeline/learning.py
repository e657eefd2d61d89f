"""The learner: test-then-train on labelled examples, progressive metrics, snapshots.

Each example is first scored by the current model (that score and the label feed the
progressive metrics), then learned. ``snapshot_due`` says when to publish: every
``every`` examples, or after ``interval_s`` seconds if anything was learned.

    >>> ln = Learner("purchase", every=2, interval_s=60.0)
    >>> ln.learn({"cart_value": 9.0}, True); ln.learn({"cart_value": 0.0}, False)
    >>> ln.snapshot_due(now=1.0), ln.model.version
    (True, 2)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from pipeline.evaluation import auc, average_precision
from pipeline.models import IntentModel

__all__ = ["Learner"]


class Learner:
    """One intent's learner; ``window`` bounds the pairs kept for ROC-AUC and PR-AUC."""

    def __init__(
        self,
        intent: str,
        every: int,
        interval_s: float,
        start: IntentModel | None = None,
        window: int = 10_000,
    ) -> None:
        self.model = start if start is not None else IntentModel(intent)
        self.every, self.interval_s = every, interval_s
        self.pairs: deque[tuple[float, bool]] = deque(maxlen=window)
        self.loss_sum, self.seen = 0.0, 0
        self._since, self._last = 0, 0.0

    def learn(self, x: Mapping[str, float], y: bool) -> None:
        p = self.model.predict(x)
        self.pairs.append((p, y))
        self.loss_sum -= math.log(max(p if y else 1.0 - p, 1e-6))
        self.seen += 1
        self.model.learn(x, y)
        self._since += 1

    def metrics(self) -> dict[str, float]:
        """Progressive ROC-AUC and PR-AUC (over the window) and log-loss (since start)."""
        scores, labels = [p for p, _ in self.pairs], [y for _, y in self.pairs]
        return {
            "roc_auc": auc(scores, labels),
            "pr_auc": average_precision(scores, labels),
            "log_loss": self.loss_sum / self.seen if self.seen else float("nan"),
        }

    def snapshot_due(self, now: float) -> bool:
        if self._since >= self.every:
            return True
        return self._since > 0 and now - self._last >= self.interval_s

    def take_snapshot(self, now: float) -> dict[str, Any]:
        self._since, self._last = 0, now
        return self.model.snapshot()
