"""The customers table wrapper: store at once, changelog once per customer per flush,
decoded states cached but never served stale.

The table here is a plain mapping; the real Faust table (both stores) and the records
sent to its changelog are exercised by the broker tests (recovery, rebalance)."""

from __future__ import annotations

import orjson

from agents.runtime.customers import Customers
from pipeline.events import Event
from pipeline.fold import apply
from pipeline.simulator import event_doc
from pipeline.state import CustomerState, StateConfig


class Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


def state(cid: str, n: int) -> CustomerState:
    s = None
    for k in range(n):
        ev = Event.from_dict(event_doc(f"{cid}-{k}", "page_view", 1e9 + k, cid, {}))
        s = apply(s, ev, StateConfig()).state
    assert s is not None
    return s


def test_one_changelog_record_per_customer_per_flush_with_the_last_value() -> None:
    t = Table()
    c = Customers(t, cache_size=10)
    for n in (1, 2, 3):
        c.put(b"a", 2, state("a", n))
    c.put(b"b", 1, state("b", 1))
    assert c.get(b"a") == state("a", 3), "the store is written at once"
    sent = c.flush()
    assert [(p, k) for p, k, _ in sent] == [(2, b"a"), (1, b"b")]
    assert sent[0][2] == t.data[b"a"]
    assert orjson.loads(sent[0][2] or b"")["counts"] == {"page_view": 3}
    c.delete(b"a", 2)
    assert c.get(b"a") is None and c.flush() == [(2, b"a", None)]
    assert c.flush() == []


def test_the_cache_is_checked_against_the_store() -> None:
    t = Table()
    c = Customers(t, cache_size=10)
    c.put(b"a", 0, state("a", 1))
    first = c.get(b"a")
    assert c.get(b"a") is first and c.hits == 2
    # the stored bytes change under it (a recovery, another writer): decoded again
    t.data[b"a"] = orjson.dumps(state("a", 4).to_dict())
    assert c.get(b"a") == state("a", 4) and c.misses == 1


def test_the_cache_is_bounded() -> None:
    t = Table()
    c = Customers(t, cache_size=3)
    for i in range(10):
        c.put(f"c{i}".encode(), 0, state(f"c{i}", 1))
    assert len(c._cache) == 3
    assert all(c.get(f"c{i}".encode()) == state(f"c{i}", 1) for i in range(10)), "misses decode"
    assert Customers(Table(), cache_size=0).get(b"x") is None


def test_live_tables_hold_the_state_and_encode_it_once_per_flush() -> None:
    t = Table()
    c = Customers(t, cache_size=10, live=True)
    for n in (1, 2, 3):
        c.put(b"a", 2, state("a", n))
    assert t.data[b"a"] == state("a", 3), "the memory store holds the state itself"
    assert c.get(b"a") is t.data[b"a"] and c.hits == 1
    sent = c.flush()
    assert [(p, k) for p, k, _ in sent] == [(2, b"a")]
    assert CustomerState.from_dict(orjson.loads(sent[0][2] or b"")) == state("a", 3)
    c.delete(b"a", 2)
    assert c.get(b"a") is None and b"a" not in t.data and c.flush() == [(2, b"a", None)]


def test_live_tables_decode_restored_bytes_once() -> None:
    t = Table()
    c = Customers(t, cache_size=10, live=True)
    t.data[b"a"] = orjson.dumps(state("a", 4).to_dict())  # as a changelog recovery writes
    assert c.peek(b"a") == state("a", 4) and type(t.data[b"a"]) is bytes, "a scan keeps bytes"
    first = c.get(b"a")
    assert first == state("a", 4) and t.data[b"a"] is first and c.misses == 1
    assert c.get(b"a") is first and c.hits == 1
    assert c.flush() == [], "decoding is not a write"


def test_live_tables_keep_only_the_recent_states_decoded() -> None:
    t = Table()
    c = Customers(t, cache_size=3, live=True)
    for i in range(10):
        c.put(f"c{i}".encode(), 0, state(f"c{i}", 1))
    decoded = [k for k, v in t.data.items() if type(v) is CustomerState]
    assert decoded == [b"c7", b"c8", b"c9"], "the rest go back to their JSON"
    assert t.data[b"c0"][:1] == b"\x04" and len(t.data[b"c0"]) < len(state("c0", 1).to_json())
    assert c.get(b"c0") == state("c0", 1) and type(t.data[b"c0"]) is CustomerState
    assert type(t.data[b"c7"]) is bytes, "reading c0 made it recent, c7 the least recent"
    c.get(b"c8")
    c.put(b"c10", 0, state("c10", 1))
    assert type(t.data[b"c8"]) is CustomerState and type(t.data[b"c9"]) is bytes
    sent = dict((k, v) for _, k, v in c.flush())
    assert len(sent) == 11
    assert sent[b"c3"][:1] == b"{", "the changelog gets the JSON, not the packed copy"
    assert all(
        CustomerState.from_dict(orjson.loads(v or b"")) == state(k.decode(), 1)
        for k, v in sent.items()
    )
