"""Simulated channel services: read the actions, answer with feedback.

For the demo and ``baton simulate``: each action on the ``actions`` topic is shown,
clicked or dismissed as the simulated world's customer would (``pipeline.world``: the
channel's open rate, the customer's hidden response probability for that action), and
the feedback goes to the ``feedback`` topic as a channel service would send it
(``feedback.v1``, keyed by customer), a few seconds later. So the whole loop runs:
decisions, exposures, responses, the response models learning, the journey KPIs.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.settings import Settings
from pipeline.events import format_time
from pipeline.world import channel_answer, person

__all__ = ["ChannelPlayer"]


class ChannelPlayer:
    """Answers every action it reads; ``sent`` counts the feedback by type."""

    def __init__(self, settings: Settings, seed: int, delay_s: float = 2.0) -> None:
        self.settings, self.seed, self.delay_s = settings, seed, delay_s
        self.sent: Counter[str] = Counter()

    def feedback(self, action: dict[str, object], now: float) -> list[tuple[float, bytes]]:
        """(when to send, feedback.v1 message) for one action."""
        cid, did = str(action["customer_id"]), str(action["decision_id"])
        p = person(cid, self.seed)
        answer = channel_answer(
            p, str(action["action"]), str(action["channel"]), did, self.seed, self.delay_s
        )
        out = []
        for i, (dt, kind) in enumerate(answer):
            at = now + min(dt, self.delay_s * (i + 1))  # the demo's clock runs in seconds
            doc = {
                "event_id": f"fb-{did}-{kind}",
                "schema_version": 1,
                "feedback_type": kind,
                "event_time": format_time(at),
                "customer_id": cid,
                "decision_id": did,
                "action": action["action"],
                "channel": action["channel"],
            }
            out.append((at, orjson.dumps(doc)))
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Answer actions until ``stop`` is set (actions from now on)."""
        s = self.settings
        consumer = AIOKafkaConsumer(
            s.topic("actions"),
            **s.client_kwargs(),
            group_id=f"{s.topic_prefix}simulated-channels",
            auto_offset_reset="latest",
        )
        producer = AIOKafkaProducer(**s.client_kwargs(), linger_ms=5)
        await consumer.start()
        await producer.start()
        pending: list[tuple[float, bytes, bytes]] = []
        try:
            while not stop.is_set():
                for msgs in (await consumer.getmany(timeout_ms=200)).values():
                    for m in msgs:
                        action = orjson.loads(m.value)
                        for at, doc in self.feedback(action, time.time()):
                            pending.append((at, m.key or b"", doc))
                pending = await self._send_due(producer, pending)
        finally:
            await producer.flush()
            await consumer.stop()
            await producer.stop()

    async def _send_due(
        self, producer: AIOKafkaProducer, pending: list[tuple[float, bytes, bytes]]
    ) -> list[tuple[float, bytes, bytes]]:
        now, later = time.time(), []
        for at, key, doc in pending:
            if at <= now:
                await producer.send(self.settings.topic("feedback"), doc, key=key)
                self.sent[orjson.loads(doc)["feedback_type"]] += 1
            else:
                later.append((at, key, doc))
        return later
