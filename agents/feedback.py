"""The feedback flow: channel feedback in, validated, routed to its customer.

Reads ``feedback`` (``schemas/feedback.v1.json``), sends rejects to the dead-letter
topic, and forwards the rest through ``identity-events``: a decision made for an
anonymous visitor who has since logged in lives with the customer (merged), so it is
joined to its decision by the worker that owns the customer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from agents.outbox import Outbox, Recorder
from pipeline.events import Decoder
from pipeline.messages import FeedbackIn, wire

__all__ = ["Feedback"]


class Feedback:
    """Validates and routes channel feedback (``one`` per message)."""

    def __init__(
        self, decoder: Decoder, record: Recorder, clock: Callable[[], float] = time.time
    ) -> None:
        self.decoder, self.record, self.clock = decoder, record, clock

    def one(self, ev: Any, out: Outbox) -> None:
        now = self.clock()
        got = self.record.edge(ev, self.decoder.decode_feedback, now, out)
        if got is None:
            return
        fb, src = got
        body = FeedbackIn(orjson.loads(ev.value), now, src)
        out.append(("identity-events", fb.customer_id.encode(), wire(body)))
