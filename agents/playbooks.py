"""The playbook registry of a decide worker: the playbook in force, hot-reloaded.

A worker starts with ``BATON_PLAYBOOK_FILE`` (or the default playbook) and then follows
the compacted ``playbook`` topic from the beginning, without a consumer group, like the
model registry. Each message must be signed with ``BATON_PLAYBOOK_SIGNING_KEY`` (HMAC,
as model snapshots are: ``baton playbook publish`` signs), then it is validated and
compiled exactly as ``baton playbook validate`` does; an unsigned, tampered or invalid
playbook is refused with a log line and a counter, and the one in force stays.
Switching is one assignment, so a decision sees one playbook.
"""

from __future__ import annotations

import logging

import orjson

from agents.metrics import Metrics
from agents.settings import Settings
from agents.topics import follow
from pipeline.models import SnapshotError, verify
from pipeline.playbook import Playbook, PlaybookError, load

__all__ = ["PlaybookRegistry"]

log = logging.getLogger(__name__)


class PlaybookRegistry:
    """The current playbook; ``follow()`` keeps it up to date from the topic."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.key = settings.playbook_signing_key.get_secret_value().encode()
        self.current: Playbook = settings.playbook()
        self.caught_up = False  # the playbook topic read to its end (readiness)
        self._installed()

    def _installed(self) -> None:
        self.metrics.playbook_info.clear()
        self.metrics.playbook_info.labels(self.current.version).set(1)
        log.info(
            "playbook %s in force (%d actions)", self.current.version, len(self.current.actions)
        )

    def load(self, raw: bytes | None, at: float | None = None) -> bool:
        """Validate and install one message from the playbook topic (published at ``at``);
        False if refused."""
        if not raw:
            return False
        try:
            doc = verify(raw, self.key)
        except SnapshotError as exc:
            self.metrics.playbooks_refused.inc()
            log.warning(
                "refused playbook from the topic (%s); keeping %s", exc, self.current.version
            )
            return False
        try:
            pb = load(
                orjson.dumps(doc), source="playbook topic", params=self.settings.playbook_params
            )
        except PlaybookError as exc:
            self.metrics.playbooks_refused.inc()
            log.warning(
                "refused playbook from the topic; keeping %s:\n%s", self.current.version, exc
            )
            return False
        self.current = pb  # one assignment: atomic for the decide agent
        self.metrics.playbooks_loaded.inc()
        self._installed()
        return True

    async def follow(self) -> None:
        """Read the playbook topic from the beginning, forever (a worker background task)."""
        await follow(self.settings, "playbook", self.load, self._caught_up)

    def _caught_up(self) -> None:
        self.caught_up = True
