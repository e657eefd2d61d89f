"""The simulator is seeded and its good messages are valid events."""

from __future__ import annotations

from collections import Counter

from pipeline.events import DecodeConfig, Decoder, Event, Rejected
from pipeline.simulator import SimConfig, Simulator


def run(seed: int, seconds: int = 120) -> list[tuple[bytes, bytes]]:
    sim = Simulator(SimConfig(customers=50, seed=seed, bad_share=0.05), start=1e9)
    return [(m.key, m.value) for t in range(seconds) for m in sim.due(1e9 + t)]


def test_same_seed_same_stream() -> None:
    assert run(3) == run(3)
    assert run(3) != run(4)


def test_messages_decode_as_labelled() -> None:
    dec = Decoder(DecodeConfig())
    sim = Simulator(SimConfig(customers=50, seed=1, bad_share=0.05), start=1e9)
    kinds: Counter[str] = Counter()
    for t in range(300):
        for m in sim.due(1e9 + t):
            out = dec.decode(m.value, 1e9 + t)
            if m.expected_reason is None:
                assert isinstance(out, Event)
                kinds[out.event_type] += 1
            else:
                assert isinstance(out, Rejected) and out.reason == m.expected_reason
    assert {"page_view", "product_view", "add_to_cart", "purchase"} <= set(kinds)
