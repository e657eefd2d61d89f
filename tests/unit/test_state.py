"""The customer-state reducer: idempotence, sessions, cart, serialisation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.events import Event
from pipeline.fold import apply
from pipeline.state import CustomerState, StateConfig

CFG = StateConfig(session_gap_s=1800, dedupe_window=64)
KINDS = ["page_view", "product_view", "add_to_cart", "remove_from_cart", "purchase", "chat"]

events = st.builds(
    Event,
    event_id=st.text(alphabet="abcdef0123456789", min_size=1, max_size=6),
    event_type=st.sampled_from(KINDS),
    event_time=st.floats(min_value=1e9, max_value=1e9 + 86400, allow_nan=False),
    customer_id=st.just("c1"),
    anonymous_id=st.none(),
    properties=st.fixed_dictionaries(
        {
            "product_id": st.sampled_from(["p1", "p2", "p3"]),
            "price": st.floats(0, 500, allow_nan=False),
            "quantity": st.integers(1, 5),
        }
    ),
)


def fold(evs: list[Event]) -> CustomerState | None:
    state = None
    for e in evs:
        state = apply(state, e, CFG).state
    return state


@given(st.lists(events, min_size=1, max_size=30))
def test_an_event_applied_twice_counts_once(evs: list[Event]) -> None:
    once = fold(evs)
    assert once is not None
    for e in evs[-10:]:  # redelivery of recent events (at-least-once)
        again = apply(once, e, CFG)
        assert again.duplicate and again.state == once


@given(st.lists(events, min_size=1, max_size=30))
def test_serialisation_round_trips(evs: list[Event]) -> None:
    state = fold(evs)
    assert state is not None
    assert CustomerState.from_dict(state.to_dict()) == state


@given(st.lists(events, min_size=1, max_size=30, unique_by=lambda e: e.event_id))
def test_counts_add_up(evs: list[Event]) -> None:
    state = fold(evs)
    assert state is not None and state.total_events == len(evs)


def ev(eid: str, kind: str, t: float, **props: object) -> Event:
    return Event(eid, kind, t, "c1", None, props)


def test_session_breaks_after_the_inactivity_gap() -> None:
    s = fold([ev("1", "page_view", 0), ev("2", "page_view", 1799), ev("3", "page_view", 3598)])
    assert s is not None and s.session is not None
    assert (s.session.events, s.session.started_at) == (3, 0)
    s2 = apply(s, ev("4", "page_view", 3598 + 1801), CFG).state
    assert s2.session is not None and s2.session.events == 1 and s2.session.id != s.session.id


def test_late_event_counts_but_does_not_move_the_clock_back() -> None:
    s = fold([ev("1", "page_view", 100), ev("2", "page_view", 50)])
    assert s is not None and s.session is not None
    assert (s.last_seen, s.session.last_event_at, s.session.events) == (100, 100, 2)


def test_cart_add_remove_purchase() -> None:
    s = fold(
        [
            ev("1", "add_to_cart", 1, product_id="a", price=2.0, quantity=2),
            ev("2", "add_to_cart", 2, product_id="b", price=5.0),
            ev("3", "remove_from_cart", 3, product_id="a", quantity=1),
        ]
    )
    assert s is not None
    assert [(i.product_id, i.quantity) for i in s.cart.items] == [("a", 1), ("b", 1)]
    assert (s.cart.value, s.cart.changed_at) == (7.0, 3)
    s = apply(s, ev("4", "remove_from_cart", 4, product_id="a", quantity=5), CFG).state
    assert [i.product_id for i in s.cart.items] == ["b"]
    s = apply(s, ev("5", "purchase", 5, order_value=5.0), CFG).state
    assert s.cart.items == () and s.counts["purchase"] == 1


def test_dedupe_window_is_bounded() -> None:
    small = StateConfig(dedupe_window=3)
    s = None
    for i in range(10):
        s = apply(s, ev(str(i), "page_view", i), small).state
    assert s is not None and s.recent_ids == ("7", "8", "9")


def test_recency_lifetime_and_service() -> None:
    s = fold(
        [
            ev("1", "add_to_cart", 10, product_id="a", price=20.0, quantity=2),
            ev("2", "purchase", 20),  # no order_value: the cart's value
            ev("3", "purchase", 30, order_value=15.5),
            ev("4", "ticket_opened", 40),
            ev("5", "chat", 50),
            ev("6", "ticket_resolved", 60),
            ev("7", "outage_notice", 70),
            ev("8", "delivery_update", 80, status="failed"),
            ev("9", "delivery_update", 90, status="delivered"),
            ev("10", "survey_response", 100, nps=3),
        ]
    )
    assert s is not None
    assert (s.lifetime.orders, s.lifetime.value) == (2, 55.5)
    assert s.last_at["purchase"] == 30 and s.last_at["delivery_update"] == 90
    sv = s.service
    assert (sv.open_tickets, sv.last_contact_at, sv.last_outage_at) == (0, 50, 70)
    assert (sv.last_delivery_problem_at, sv.last_nps, sv.last_csat) == (80, 3, None)


def test_category_affinity_decays_by_half_life() -> None:
    cfg = StateConfig(affinity_half_life_s=100.0)
    s = apply(None, ev("1", "add_to_cart", 0, category="shoes", product_id="a"), cfg).state
    s = apply(s, ev("2", "product_view", 100, category="hats"), cfg).state
    assert s.affinity == {"shoes": 1.5, "hats": 1.0}  # 3.0 halved once, plus a new view
    s = apply(s, ev("3", "product_view", 300, category="hats"), cfg).state
    assert s.affinity == {"hats": 1.25, "shoes": 0.375}
    assert list(s.affinity) == ["hats", "shoes"]


def test_affinity_keeps_the_top_categories() -> None:
    cfg = StateConfig(affinity_top=3)
    s = None
    for i in range(6):
        s = apply(s, ev(str(i), "product_view", i, category=f"c{i}"), cfg).state
    assert s is not None and len(s.affinity) == 3


def test_session_remembers_what_it_touched_and_keeps_previous_sessions() -> None:
    cfg = StateConfig(session_gap_s=100, session_recent=2, previous_sessions=2)
    s = None
    for i, (kind, props) in enumerate(
        [
            ("page_view", {}),
            ("product_view", {"product_id": "a", "category": "x"}),
            ("product_view", {"product_id": "b", "category": "y"}),
            ("search", {"query": "lamp"}),
            ("product_view", {"product_id": "a", "category": "x"}),
            ("purchase", {}),
        ]
    ):
        s = apply(s, ev(str(i), kind, i, **props), cfg).state
    assert s is not None and s.session is not None
    cur = s.session
    assert (cur.events, cur.pages, cur.purchased) == (6, 1, True)
    assert (cur.products, cur.categories, cur.searches) == (("b", "a"), ("y", "x"), ("lamp",))
    for k, t in enumerate((200, 400, 600)):  # three more sessions
        s = apply(s, ev(f"n{k}", "page_view", t), cfg).state
    assert [p.started_at for p in s.previous_sessions] == [200, 400]
    assert s.session is not None and s.session.started_at == 600
    assert CustomerState.from_dict(s.to_dict()) == s


def test_evolve_is_replace_for_every_value_class() -> None:
    """``pipeline.values.evolve`` (the core's fast copy) gives what ``dataclasses.replace``
    gives, field for field, for the state and every class nested in it."""
    from dataclasses import fields, replace

    from pipeline.state import Cart, Contacts, Lifetime, Service, Session
    from pipeline.values import evolve

    samples = [
        CustomerState("c", 1.0, 2.0, counts={"page_view": 3}, anonymous=True),
        Session("s", 1.0, 2.0, 3),
        Cart(),
        Service(),
        Lifetime(),
        Contacts(),
    ]
    for obj in samples:
        for f in fields(obj):  # type: ignore[arg-type]
            marker = object()
            got, want = evolve(obj, **{f.name: marker}), replace(obj, **{f.name: marker})  # type: ignore[type-var]
            assert type(got) is type(want)
            assert all(getattr(got, g.name) is getattr(want, g.name) for g in fields(obj))  # type: ignore[arg-type]
        assert evolve(obj) == obj and evolve(obj) is not obj


def test_to_json_writes_what_to_dict_does_for_every_simulated_state() -> None:
    """The worker writes states with ``to_json``; it must say exactly what ``to_dict``
    says, for states with sessions, carts, points, contacts and standing actions."""
    import types

    import orjson

    from pipeline.events import DecodeConfig, Decoder
    from pipeline.labels import LabelConfig, label_event
    from pipeline.playbook import DEFAULT_PATH, load_file
    from pipeline.policy import Inputs, Trigger, decide
    from pipeline.profile import Profile
    from pipeline.simulator import SimConfig, Simulator
    from pipeline.values import evolve

    sim, t0 = Simulator(SimConfig(customers=60, seed=5, bad_share=0.0), start=1e9), 1e9
    dec, inputs, lcfg = Decoder(DecodeConfig()), Inputs(load_file(DEFAULT_PATH)), LabelConfig()
    states: dict[str, CustomerState] = {}
    seen = {"pending": 0, "contacts": 0, "last_action": 0, "cart": 0}
    for second in range(1, 400):
        for m in sim.due(t0 + second):
            e = dec.decode(m.value, t0 + second)
            if not isinstance(e, Event):
                continue
            before = states.get(e.key)
            s = apply(before, e, CFG).state
            s, _ = label_event(before, s, e, lcfg)
            s = decide(s, e.event_time, Trigger("event", e.event_id), e, inputs).state
            states[e.key] = s
            assert orjson.loads(s.to_json()) == orjson.loads(orjson.dumps(s.to_dict()))
            assert CustomerState.from_dict(orjson.loads(s.to_json())) == s
            seen["pending"] += bool(s.pending)
            seen["contacts"] += bool(s.contacts.sent)
            seen["last_action"] += s.last_action is not None
            seen["cart"] += bool(s.cart.items)
    assert all(n > 20 for n in seen.values()), seen
    odd = evolve(
        next(iter(states.values())),
        profile=Profile(consent=types.MappingProxyType({"email": True})),
        counts=types.MappingProxyType({"page_view": 2}),
    )
    assert orjson.loads(odd.to_json()) == orjson.loads(orjson.dumps(odd.to_dict()))
