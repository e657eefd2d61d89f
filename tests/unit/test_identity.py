"""Identity stitching in the pure core: routing by link, and merging anonymous state."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.events import Event
from pipeline.fold import apply
from pipeline.identity import merge, resolve
from pipeline.state import CustomerState, StateConfig

CFG = StateConfig()


def ev(eid: str, kind: str, t: float, cid: str | None, anon: str | None, **p: object) -> Event:
    return Event(eid, kind, t, cid, anon, p)


def fold(events: list[Event]) -> CustomerState | None:
    s = None
    for e in events:
        s = apply(s, e, CFG).state
    return s


def test_routes() -> None:
    anon_only = ev("1", "page_view", 1, None, "k1")
    assert resolve(anon_only, None).key == "k1"
    linked = resolve(anon_only, "c1")
    assert (linked.key, linked.event.customer_id) == ("c1", "c1")
    login = ev("2", "login", 2, "c1", "k1")
    assert resolve(login, None).new_link == "c1"
    assert resolve(login, "c1").new_link is None and resolve(login, "c1").conflict is None
    assert resolve(login, "c2").conflict == "c2"


def test_merge_brings_the_anonymous_history_along() -> None:
    anon = fold(
        [
            ev("a1", "product_view", 10, None, "k1", category="hats"),
            ev("a2", "add_to_cart", 20, None, "k1", product_id="p1", price=4.0),
        ]
    )
    known = fold([ev("c1", "login", 30, "c1", "k1")])
    assert anon is not None and known is not None
    m = merge(known, anon, "k1", "c1", 99.0, CFG)
    assert m.customer_id == "c1" and m.merged_from == ("k1",)
    assert m.counts == {"product_view": 1, "add_to_cart": 1, "login": 1}
    assert [i.product_id for i in m.cart.items] == ["p1"] and m.cart.changed_at == 20
    assert (m.first_seen, m.last_seen) == (10, 30)
    assert "hats" in m.affinity
    assert merge(m, anon, "k1", "c1", 99.0, CFG) == m  # idempotent
    again = apply(m, ev("a2", "add_to_cart", 20, "c1", "k1", product_id="p1"), CFG)
    assert again.duplicate  # the anonymous events' ids came along for dedupe


def test_merge_without_anonymous_state_still_records_the_link() -> None:
    m = merge(None, None, "k9", "c9", 5.0, CFG)
    assert (m.customer_id, m.merged_from, m.total_events) == ("c9", ("k9",), 0)


kinds = st.sampled_from(["page_view", "product_view", "add_to_cart", "purchase", "chat"])


@given(st.lists(kinds, max_size=15), st.lists(kinds, max_size=15))
def test_merge_adds_counts(a: list[str], b: list[str]) -> None:
    anon = fold([ev(f"a{i}", k, i, None, "k", product_id="p") for i, k in enumerate(a)])
    known = fold([ev(f"c{i}", k, 100 + i, "c", None, product_id="p") for i, k in enumerate(b)])
    m = merge(known, anon, "k", "c", 0.0, CFG)
    assert m.total_events == len(a) + len(b)
    assert m.lifetime.orders == a.count("purchase") + b.count("purchase")


def test_merge_keeps_an_nps_of_zero() -> None:
    # the anonymous side has the later contact but no survey; the known customer said 0
    known = fold([ev("c1", "survey_response", 5, "c1", None, nps=0)])
    anon = fold([ev("a1", "chat", 10, None, "k1")])
    assert anon is not None and known is not None
    assert merge(known, anon, "k1", "c1", 20.0, CFG).service.last_nps == 0
