"""The simulated channel services answer like the world's customers, in feedback.v1."""

from __future__ import annotations

import jsonschema_rs
import orjson

import schemas
from agents.channels import ChannelPlayer
from agents.settings import Settings

FEEDBACK = jsonschema_rs.validator_for(schemas.load("feedback.v1"), validate_formats=True)


def action(i: int, name: str = "abandoned_cart_reminder", channel: str = "sms") -> dict:
    return {
        "decision_id": f"{i:032x}",
        "customer_id": f"c-{i}",
        "action": name,
        "channel": channel,
    }


def test_feedback_is_valid_ordered_and_deterministic() -> None:
    player = ChannelPlayer(Settings(), seed=3)
    kinds: dict[str, int] = {}
    for i in range(400):
        out = player.feedback(action(i), now=1e9)
        assert out == player.feedback(action(i), now=1e9), "seeded by the decision"
        docs = [orjson.loads(d) for _, d in out]
        assert all(FEEDBACK.is_valid(d) for d in docs)
        assert [t for t, _ in out] == sorted(t for t, _ in out)
        if docs:
            assert docs[0]["feedback_type"] == "impression"
        for d in docs:
            kinds[d["feedback_type"]] = kinds.get(d["feedback_type"], 0) + 1
    # SMS is opened 9 times in 10; some shown actions are clicked, some dismissed
    assert 320 < kinds["impression"] < 400
    assert kinds["click"] > 0 and kinds["dismiss"] > 0
