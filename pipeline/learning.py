"""The learner: labelled examples in, model quality measured, snapshots out.

Model quality (``metrics``) is measured on the scores the workers **served**: each
example carries the score served at its prediction point and the version of the model
that served it, frozen when it was served. Those pairs, over the last ``window``
examples, give ROC-AUC, PR-AUC, log-loss and the calibration error. This is what a
channel saw. The learner also scores each example with its own model just before
learning it (``training_metrics``, test-then-train): a session's examples arrive
together once their label is known, so each is scored by a model that has just learned
its siblings, and that number reads higher than what was served (found on a real
clickstream: 0.75 against 0.53). It is kept, named as what it is.

``snapshot_due`` says when to publish: every ``every`` examples, or after
``interval_s`` seconds if anything was learned.

    >>> ln = Learner("purchase", every=2, interval_s=60.0)
    >>> ln.learn({"cart_value": 9.0}, True, served=0.8); ln.learn({"cart_value": 0.0}, False)
    >>> ln.snapshot_due(now=1.0), ln.model.version, len(ln.served)
    (True, 2, 1)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.evaluation import auc, average_precision, calibration_error, log_loss
from pipeline.models import IntentModel

__all__ = ["Learner", "served_quality"]


def served_quality(served: Sequence[tuple[float, bool]]) -> dict[str, float]:
    """ROC-AUC, PR-AUC, log-loss and the calibration error of (score served, label)
    pairs (NaN until there is a pair with each label).

    >>> q = served_quality([(0.9, True), (0.2, False), (0.6, True), (0.4, False)])
    >>> q["roc_auc"], q["pr_auc"]
    (1.0, 1.0)
    """
    scores, labels = [p for p, _ in served], [y for _, y in served]
    nan = float("nan")
    return {
        "roc_auc": auc(scores, labels),
        "pr_auc": average_precision(scores, labels),
        "log_loss": log_loss(scores, labels) if labels else nan,
        "calibration_error": calibration_error(scores, labels),
    }


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
        self.served: deque[tuple[float, bool]] = deque(maxlen=window)
        self.pairs: deque[tuple[float, bool]] = deque(maxlen=window)
        self.loss_sum, self.seen = 0.0, 0
        self._since, self._last = 0, 0.0

    def learn(self, x: Mapping[str, float], y: bool, served: float | None = None) -> None:
        """Learn one example; ``served``: the score a worker served for it, if any."""
        if served is not None:
            self.served.append((served, y))
        p = self.model.predict(x)
        self.pairs.append((p, y))
        self.loss_sum -= math.log(max(p if y else 1.0 - p, 1e-6))
        self.seen += 1
        self.model.learn(x, y)
        self._since += 1

    def metrics(self) -> dict[str, float]:
        """Quality of the served scores over the window (``served_quality``)."""
        return served_quality(self.served)

    def training_metrics(self) -> dict[str, float]:
        """Test-then-train ROC-AUC and PR-AUC (over the window) and log-loss (since
        start): the learner's own model on each example just before learning it."""
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
