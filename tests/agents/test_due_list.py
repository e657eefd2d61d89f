"""The timer's due list: the customers due by a time, each once, with its latest due
time, and a heap that stays within twice the customers it holds."""

from __future__ import annotations

import random

from agents.web import DueList


def test_only_the_latest_due_time_counts_and_the_heap_stays_bounded() -> None:
    rnd, due = random.Random(7), DueList()
    latest: dict[bytes, float] = {}
    for i in range(50_000):  # every event moves its customer's due time
        key = f"c{rnd.randrange(500)}".encode()
        t = 1000.0 + i * 0.01 + rnd.random() * 100
        due.set(key, t)
        latest[key] = t
        if i % 97 == 0:  # some customers need no timer any more
            due.set(key, None)
            latest.pop(key)
        assert len(due.heap) <= 2 * len(due.when) + 1025
    now = 1300.0
    got = due.pop_due(now)
    assert sorted(got) == sorted(k for k, t in latest.items() if t <= now)
    assert len(got) == len(set(got)), "each customer once"
    rest = due.pop_due(float("inf"))
    assert sorted(rest) == sorted(k for k, t in latest.items() if t > now)
    assert due.when == {} and due.pop_due(float("inf")) == []
