"""Simulated channel services: read the actions, answer with feedback.

For the demo and ``baton simulate``: each action on the ``actions`` topic is shown,
clicked or dismissed as the simulated world's customer would (``pipeline.world``: the
channel's open rate, the customer's hidden response probability for that action in the
moment it was decided, ``respond_p``), and the feedback goes to the ``feedback`` topic
as a channel service would send it (``feedback.v1``, keyed by customer), a few seconds
later. So the whole loop runs: decisions, exposures, responses, the response models
learning, the journey KPIs.

The moment is what the worker saw: the player reads the ``decision`` examples on
``training-examples`` (the features each action was sent with, as the learner joins
them) and holds each action ``SETTLE_S`` for its example to arrive. An action whose
example it never saw is answered with the customer's own probability.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.settings import Settings
from pipeline.events import format_time
from pipeline.response import DecisionContexts
from pipeline.world import channel_answer, person, respond_p, situation_weights

__all__ = ["SETTLE_S", "ChannelPlayer"]

SETTLE_S = 0.5  # an action waits this long for its decision example


class ChannelPlayer:
    """Answers every action it reads; ``sent`` counts the feedback by type."""

    def __init__(self, settings: Settings, seed: int, delay_s: float = 2.0) -> None:
        self.settings, self.seed, self.delay_s = settings, seed, delay_s
        self.sent: Counter[str] = Counter()
        self.weights = situation_weights(seed)
        self.contexts = DecisionContexts(size=50_000)
        self.in_moment = 0  # actions answered in the moment they were decided in

    def decided(self, example: dict[str, Any]) -> None:
        """A message of ``training-examples``: remember a decision's features."""
        self.contexts.remember(example)

    def feedback(self, action: dict[str, object], now: float) -> list[tuple[float, bytes]]:
        """(when to send, feedback.v1 message) for one action."""
        cid, did = str(action["customer_id"]), str(action["decision_id"])
        p, name = person(cid, self.seed), str(action["action"])
        context = self.contexts.take(did)
        respond = None if context is None else respond_p(p, name, context[0], self.weights)
        self.in_moment += context is not None
        answer = channel_answer(
            p, name, str(action["channel"]), did, self.seed, self.delay_s, respond
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
        actions = s.topic("actions")
        consumer = AIOKafkaConsumer(
            actions,
            s.topic("training-examples"),
            **s.client_kwargs(),
            group_id=f"{s.topic_prefix}simulated-channels",
            auto_offset_reset="latest",
        )
        producer = AIOKafkaProducer(**s.client_kwargs(), linger_ms=5)
        await consumer.start()
        await producer.start()
        pending: list[tuple[float, bytes, bytes]] = []
        held: list[tuple[float, bytes, dict[str, object]]] = []  # (read at, key, action)
        try:
            while not stop.is_set():
                for tp, msgs in (await consumer.getmany(timeout_ms=100)).items():
                    for m in msgs:
                        doc = orjson.loads(m.value)
                        if tp.topic == actions:
                            held.append((time.time(), m.key or b"", doc))
                        else:
                            self.decided(doc)
                now = time.time()
                for _, key, action in (h for h in held if now - h[0] >= SETTLE_S):
                    pending += [(at, key, doc) for at, doc in self.feedback(action, now)]
                held = [h for h in held if now - h[0] < SETTLE_S]
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
