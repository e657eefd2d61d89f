"""The model registry of a decide worker: the newest verified snapshot of each intent.

Every worker reads the whole compacted ``models`` topic (no consumer group: each worker
needs every model), from the beginning and then as it grows. A snapshot is loaded only
if its HMAC verifies with ``BATON_MODEL_SIGNING_KEY`` and its parameters are sound;
anything else is refused with a log line and a counter, and the model in use stays.
Swapping is one assignment, so a decision never sees half a model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from agents.metrics import Metrics
from agents.settings import Settings
from agents.topics import follow
from pipeline.features import features
from pipeline.models import IntentModel, SnapshotError, verify
from pipeline.response import FORMAT as RESPONSE_FORMAT
from pipeline.response import ResponseModels
from pipeline.state import CustomerState

__all__ = ["ModelRegistry"]

log = logging.getLogger(__name__)


class ModelRegistry:
    """Current model per intent; ``follow()`` keeps it up to date from the topic."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.key = settings.model_signing_key.get_secret_value().encode()
        self.models: dict[str, IntentModel] = {}
        self.responses = ResponseModels()
        self.caught_up = False  # the models topic read to its end (readiness)

    def load(self, raw: bytes | None, at: float | None = None) -> None:
        """Verify and install one message from the models topic, published at ``at`` (its
        Kafka timestamp: ``baton_model_snapshot_timestamp_seconds``)."""
        if raw is None:
            return
        try:
            snap = verify(raw, self.key)
            if snap.get("format") == RESPONSE_FORMAT:
                if self._responses(ResponseModels.from_snapshot(snap)) and at is not None:
                    self.metrics.snapshot_time.labels("response").set(at)
                return
            model = IntentModel.from_snapshot(snap)
        except SnapshotError as exc:
            reason = "bad_signature" if "signature" in str(exc) else "malformed"
            self.metrics.snapshots_refused.labels(reason).inc()
            log.warning("refused model snapshot (%s): %s", reason, exc)
            return
        current = self.models.get(model.intent)
        if current is not None and current.version > model.version:
            self.metrics.snapshots_refused.labels("older").inc()
            return
        self.models[model.intent] = model  # one assignment: atomic for the decide agent
        self.metrics.model_version.labels(model.intent).set(model.version)
        self.metrics.snapshots_loaded.labels(model.intent).inc()
        if at is not None:
            self.metrics.snapshot_time.labels(model.intent).set(at)
        log.info("loaded %s model version %d", model.intent, model.version)

    def _responses(self, rm: ResponseModels) -> bool:
        if rm.version < self.responses.version:
            self.metrics.snapshots_refused.labels("older").inc()
            return False
        self.responses = rm  # one assignment
        self.metrics.model_version.labels("response").set(rm.version)
        self.metrics.snapshots_loaded.labels("response").inc()
        return True

    def scores(self, state: CustomerState, now: float) -> tuple[dict[str, float], dict[str, int]]:
        """Intent scores and model versions (loaded models only) of a state at ``now``."""
        return self.score(features(state, now)) if self.models else ({}, {})

    def score(self, x: Mapping[str, float]) -> tuple[dict[str, float], dict[str, int]]:
        """Intent scores and model versions (loaded models only) of features ``x``."""
        if not self.models:
            return {}, {}
        models = dict(self.models)  # the follower may install a model meanwhile
        return {i: m.predict(x) for i, m in models.items()}, {
            i: m.version for i, m in models.items()
        }

    async def follow(self) -> None:
        """Read the models topic from the beginning, forever (a worker background task)."""
        await follow(self.settings, "models", self.load, self._caught_up)

    def _caught_up(self) -> None:
        self.caught_up = True
