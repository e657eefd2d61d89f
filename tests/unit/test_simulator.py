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


def test_anonymous_visitors_log_in_and_service_late_duplicate_events_appear() -> None:
    dec = Decoder(DecodeConfig(max_future_s=600, max_lateness_s=7 * 86400))
    sim = Simulator(SimConfig(customers=80, seed=2, bad_share=0.0), start=1e9)
    topics: Counter[str] = Counter()
    anon_first: dict[str, str] = {}
    logins, late, dups = 0, 0, 0
    for t in range(600):
        for m in sim.due(1e9 + t):
            ev = dec.decode(m.value, 1e9 + t)
            assert isinstance(ev, Event), ev
            topics[m.topic] += 1
            dups += m.note == "duplicate"
            late += ev.event_time < 1e9 + t - 30
            if ev.anonymous_id and not ev.customer_id:
                anon_first.setdefault(ev.anonymous_id, m.key.decode())
            if ev.anonymous_id and ev.customer_id:  # some log in at once, some browse first
                logins += ev.anonymous_id in anon_first
    assert topics["service"] > 0 and topics["clickstream"] > topics["service"]
    assert len(anon_first) > 5 and logins > 5
    assert late > 0 and dups > 0
