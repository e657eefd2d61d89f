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


def test_an_action_is_answered_in_the_moment_it_was_decided_in() -> None:
    """With its decision example seen, an action's clicks follow the world's response in
    that moment (``respond_p``): a cart reminder is clicked more often on a full cart."""
    player = ChannelPlayer(Settings(), seed=3)

    def clicks(cart_value: float, first: int) -> int:
        n = 0
        for i in range(first, first + 600):
            a = action(i, channel="sms")
            player.decided(
                {"kind": "decision", "decision_id": a["decision_id"], "action": a["action"],
                 "x": {"cart_value": cart_value, "session_events": 2.0}, "base": 0.3}
            )  # fmt: skip
            n += sum(1 for _, d in player.feedback(a, now=1e9) if b'"click"' in d)
        return n

    full, empty = clicks(250.0, 0), clicks(0.0, 10_000)
    assert player.in_moment == 1200 and len(player.contexts) == 0
    assert full > 1.5 * empty, (full, empty)
    player.feedback(action(99_999), now=1e9)  # never announced: the customer's own rate
    assert player.in_moment == 1200
