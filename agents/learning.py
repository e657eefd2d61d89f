"""The learner agent's work: labelled examples in, signed model snapshots out.

Examples arrive on ``training-examples`` keyed by intent, so each intent's examples
land on one partition and one worker learns them. Response outcomes (feedback joined to
its decision) arrive there too, keyed ``response``, and update the per-action response
models, published the same way: each action sent is announced there first (a
``decision`` example with its features and base propensity), and an outcome that names
a decision still remembered (``DecisionContexts``, the last 100,000) trains the
action's contextual model as well as its Beta. A learner starts from the newest
published snapshot (as loaded by the worker's model registry), never from scratch
when one exists, and publishes to the compacted ``models`` topic, which every worker
(itself included) follows.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import faust
import orjson

from agents.metrics import Metrics
from agents.models import ModelRegistry
from agents.settings import Settings
from pipeline.learning import Learner, served_quality
from pipeline.models import IntentModel, sign
from pipeline.response import DecisionContexts, ResponseModels

__all__ = ["Learners"]

MAX_ACTIONS = 500  # actions whose response quality is exported (bounds the label set)


class Learners:
    """One ``Learner`` per intent seen on this worker's partitions."""

    def __init__(
        self, settings: Settings, metrics: Metrics, registry: ModelRegistry, models_topic: Any
    ) -> None:
        self.settings, self.metrics = settings, metrics
        self.registry, self.models_topic = registry, models_topic
        self.learners: dict[str, Learner] = {}
        self.responses: ResponseModels | None = None
        self.contexts = DecisionContexts()
        # (propensity arbitration used, outcome) of the last 10,000 joined outcomes, and
        # of each action's last 2,000 (at most MAX_ACTIONS actions tracked)
        self.response_served: deque[tuple[float, bool]] = deque(maxlen=10_000)
        self.served_by_action: dict[str, deque[tuple[float, bool]]] = {}
        self._resp_since, self._resp_last = 0, 0.0

    async def agent(self, stream: faust.StreamT[bytes]) -> None:
        """Learn labelled examples, measuring the scores served for them; publish signed
        snapshots when due."""
        async for ev in stream.events():
            await self.one(orjson.loads(ev.value))

    async def one(self, ex: dict[str, Any]) -> None:
        """One message of ``training-examples`` (``schemas/training-example.v1.json``)."""
        if self.contexts.remember(ex):  # a decision example, for the outcome to come
            return
        if ex.get("kind") == "response":
            await self._response(ex)
            return
        intent, y = ex["intent"], bool(ex["y"])
        learner = self.learners.get(intent) or self._start(intent)
        learner.learn(ex["x"], y, ex.get("served"))
        self.metrics.examples.labels(intent, str(y).lower()).inc()
        if learner.snapshot_due(time.time()):
            await self._publish(intent, learner)

    async def publish_due(self, now: float) -> None:
        """Publish every learner whose snapshot interval has passed (called by the timer)."""
        for intent, learner in list(self.learners.items()):
            if learner.snapshot_due(now):
                await self._publish(intent, learner)
        if self._resp_since and now - self._resp_last >= self.settings.snapshot_interval_s:
            await self._publish_responses(now)

    async def _response(self, ex: dict[str, Any]) -> None:
        if self.responses is None:  # start from what every worker has loaded
            self.responses = ResponseModels.from_snapshot(self.registry.responses.snapshot())
        y, context = bool(ex["y"]), self.contexts.take(ex.get("decision_id"))
        x, base, served = context if context is not None else (None, None, None)
        self.responses.learn(ex["action"], y, x, base)
        if served is not None:
            self.response_served.append((served, y))
            window = self.served_by_action.get(ex["action"])
            if window is None and len(self.served_by_action) < MAX_ACTIONS:
                window = self.served_by_action[ex["action"]] = deque(maxlen=2_000)
            if window is not None:
                window.append((served, y))
        self.metrics.response_contexts.labels(str(context is not None).lower()).inc()
        self.metrics.examples.labels("response", str(y).lower()).inc()
        self._resp_since += 1
        if self._resp_since >= self.settings.snapshot_every:
            await self._publish_responses(time.time())

    async def _publish_responses(self, now: float) -> None:
        assert self.responses is not None
        self._resp_since, self._resp_last = 0, now
        raw = sign(self.responses.snapshot(), self.registry.key)
        await self.models_topic.send(key=b"response", value=raw)
        for name, value in served_quality(self.response_served).items():
            self.metrics.model_quality.labels("response", name).set(value)
        for action, window in self.served_by_action.items():
            for name, value in served_quality(window).items():
                self.metrics.response_quality.labels(action, name).set(value)
        self.metrics.snapshots_published.labels("response").inc()

    def _start(self, intent: str) -> Learner:
        current = self.registry.models.get(intent)
        start = IntentModel.from_snapshot(current.snapshot()) if current else None
        s = self.settings
        learner = self.learners[intent] = Learner(
            intent, s.snapshot_every, s.snapshot_interval_s, start
        )
        return learner

    async def _publish(self, intent: str, learner: Learner) -> None:
        raw = sign(learner.take_snapshot(time.time()), self.registry.key)
        await self.models_topic.send(key=intent.encode(), value=raw)
        for name, value in learner.metrics().items():
            self.metrics.model_quality.labels(intent, name).set(value)
        for name, value in learner.training_metrics().items():
            self.metrics.model_training_quality.labels(intent, name).set(value)
        self.metrics.snapshots_published.labels(intent).inc()
