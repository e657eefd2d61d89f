"""The decision policy: each step, the explanation, supersession, feedback, and the
invariants (property tests): never ineligible, never past a cap, never in quiet hours,
never without consent, never to the control group."""

from __future__ import annotations

from dataclasses import replace

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from pipeline.context import local_hour, rule_context
from pipeline.events import Event
from pipeline.fold import apply
from pipeline.playbook import DEFAULT_PATH, load, load_file
from pipeline.policy import Inputs, Trigger, decide, decision_id, due_at, in_control, on_feedback
from pipeline.response import ResponseModels
from pipeline.state import CustomerState, StateConfig

ACTION = jsonschema_rs.validator_for(schemas.load("action.v1"), validate_formats=True)
CFG = StateConfig()
T0 = 1_700_000_000.0  # 2023-11-14 22:13 UTC
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0

BASE = """
version: "t"
parameters: {cart_min: 30}
recheck_after_idle_s: ["params.cart_min * 60.0"]
contact_policy:
  require_consent: [sms, push]
  channel_caps: {email: {day: 2, week: 4}}
  quiet_hours: {start: "21:00", end: "08:00", channels: [sms, push, email]}
arbitration: {exploration_rate: 0.0, near_best: 0.8, min_responses: 3}
actions:
  - {id: cart, journey: cart, channels: [email, sms], content: t/cart, intent: purchase,
     eligible: "cart.items > 0.0 && cart.idle_min >= params.cart_min", value_expr: "cart.value",
     payload: [cart], caps: {day: 1, week: 2}, cooldown_s: 3600}
  - {id: reco, journey: reco, channels: [web], content: t/reco, value: 2.0, weight: 0.5,
     eligible: "trigger == 'event' && affinity.top_score >= 1.0", ttl_s: 600, cooldown_s: 0,
     caps: {day: 50}, payload: [top_category]}
  - {id: care, journey: care, channels: [sms, email], content: t/care, value: 50.0, prior: 0.5,
     eligible: "service.outage_days < 1.0", payload: [service]}
"""


def pb_with(**changes: object):
    pb = load(BASE)
    return replace(pb, **changes)


def ev(
    eid: str, kind: str, t: float, cid: str = "c1", anon: bool = False, **props: object
) -> Event:
    return Event(eid, kind, t, None if anon else cid, cid if anon else None, props)


def fold(*events: Event) -> CustomerState:
    s = None
    for e in events:
        s = apply(s, e, CFG).state
    assert s is not None
    return s


def noon(day: int = 0) -> float:
    """12:00 UTC on a day after T0 (outside the quiet hours)."""
    return (T0 // DAY + 1 + day) * DAY + 12 * HOUR


def on(s: CustomerState, e: Event, pb, **inputs: object):
    """Decide on event ``e`` (already folded into ``s``)."""
    return decide(s, e.event_time, Trigger("event", e.event_id), e, Inputs(pb, **inputs))


def cart_state(t: float) -> CustomerState:
    return fold(ev("e1", "add_to_cart", t, product_id="p", price=4.0, quantity=3))


def test_eligibility_arbitration_and_explanation() -> None:
    t = noon()
    s = cart_state(t)
    pb = pb_with()
    assert decide(s, t + 29 * MIN, Trigger("timer"), None, Inputs(pb)).action is None
    d = decide(s, t + 31 * MIN, Trigger("timer"), None, Inputs(pb, scores={"purchase": 0.2}))
    a = d.action
    assert a is not None and (a.action, a.channel, a.group) == ("cart", "email", "treatment")
    assert ACTION.is_valid(a.to_dict()), list(ACTION.iter_errors(a.to_dict()))
    x = a.explanation
    assert x["rules_matched"] == {"cart": "cart.items > 0.0 && cart.idle_min >= params.cart_min"}
    assert x["dropped"] == {"reco": "not_eligible", "care": "not_eligible"}
    terms = x["arbitration"]["cart"]
    assert (terms["propensity"], terms["propensity_source"], terms["value"]) == (
        0.2,
        "intent:purchase",
        12.0,
    )
    assert terms["priority"] == pytest.approx(0.2 * 12.0)
    assert (x["explored"], x["probability"], x["playbook_version"]) == (False, 1.0, pb.version)
    assert a.payload == {
        "content": "t/cart",
        "items": [{"product_id": "p", "quantity": 3, "price": 4.0}],
        "cart_value": 12.0,
    }
    # a timer decision's id: when the customer fell due (idle 30 min) and what stood then
    assert a.decision_id == decision_id("c1", "cart", f"due:{t + 30 * MIN!r}|")
    assert d.state.contacts.sent[-1].decision_id == a.decision_id


def test_higher_priority_supersedes_and_expiry_ends_standing() -> None:
    t = noon()
    e1 = ev("e1", "product_view", t, category="shoes")
    pb = pb_with()
    d1 = on(fold(e1), e1, pb)
    assert d1.action is not None and d1.action.action == "reco" and d1.action.channel == "web"
    # the same session goes on: same best action, nothing new is emitted
    e2 = ev("e2", "product_view", t + MIN, category="shoes")
    s2 = apply(d1.state, e2, CFG).state
    assert on(s2, e2, pb).action is None
    # an outage notice makes proactive care the best: it supersedes the recommendation
    e3 = ev("e3", "outage_notice", t + 2 * MIN)
    d3 = on(apply(s2, e3, CFG).state, e3, pb)
    assert d3.action is not None and d3.action.action == "care"
    assert d3.action.supersedes == d1.action.decision_id
    assert d3.action.channel == "email"  # sms needs an opt-in here
    assert d3.action.explanation["channels_refused"] == {"care": {"sms": "no_consent"}}
    # the timer looks again when the customer has been idle 30 min, then at expiry
    assert due_at(d3.state, pb, t + 2 * MIN) == t + 32 * MIN
    assert due_at(d3.state, pb, t + 33 * MIN) == d3.action.expires_at
    assert due_at(d3.state, pb, d3.action.expires_at) is None


def test_contact_policy_steps_are_named() -> None:
    t = noon()
    pb = pb_with()
    s = cart_state(t)
    d = decide(s, t + 31 * MIN, Trigger("timer"), None, Inputs(pb))
    assert d.action is not None
    # standing expired early (dismissed); the cool-down then keeps it away
    gone = on_feedback(d.state, "dismiss", d.action.decision_id, t + 32 * MIN, pb)
    assert gone is not None
    s2, outcomes = gone
    assert [(o.kind, o.success) for o in outcomes] == [("response", False)]
    d2 = decide(s2, t + 40 * MIN, Trigger("timer"), None, Inputs(pb))
    assert d2.action is None
    # consent withdrawn for e-mail, sms never granted: nothing can reach the customer
    s3 = apply(s, ev("c", "consent_changed", t + MIN, channel="email", granted=False), CFG).state
    d3 = decide(s3, t + 31 * MIN, Trigger("timer"), None, Inputs(pb))
    assert d3.action is None


def test_quiet_hours_use_the_customers_time_zone() -> None:
    t = noon()  # 12:00 UTC = 21:00 in Tokyo: quiet there
    pb = pb_with()
    s = cart_state(t - 31 * MIN)
    tokyo = apply(s, ev("p", "profile_updated", t - 31 * MIN, timezone="Asia/Tokyo"), CFG).state
    assert decide(tokyo, t, Trigger("timer"), None, Inputs(pb)).action is None
    assert decide(s, t, Trigger("timer"), None, Inputs(pb)).action is not None


def test_control_group_is_recorded_not_sent() -> None:
    pb = pb_with(control_share=0.5)
    ids = [f"c{i}" for i in range(400)]
    control = [c for c in ids if in_control(c, pb)]
    assert 150 < len(control) < 250, "about half"
    assert control == [c for c in ids if in_control(c, pb)], "stable"
    t = noon()
    s = replace(cart_state(t), customer_id=control[0])
    d = decide(s, t + 31 * MIN, Trigger("timer"), None, Inputs(pb))
    assert d.action is not None and d.action.group == "control" and d.action.channel is None
    assert ACTION.is_valid(d.action.to_dict())
    assert d.state.contacts.sent == ()
    # a purchase while it stands is a control conversion: the baseline of lift
    buy = ev("b", "purchase", t + 40 * MIN, cid=control[0])
    s2 = apply(d.state, buy, CFG).state
    d2 = decide(s2, t + 40 * MIN, Trigger("event", "b"), buy, Inputs(pb))
    assert [(o.kind, o.group) for o in d2.outcomes] == [("conversion", "control")]


def test_feedback_exposure_acceptance_and_response_model() -> None:
    t = noon()
    pb = pb_with()
    d = decide(cart_state(t), t + 31 * MIN, Trigger("timer"), None, Inputs(pb))
    assert d.action is not None
    did = d.action.decision_id
    s, o1 = on_feedback(d.state, "impression", did, t + 32 * MIN, pb) or (None, [])
    s, o2 = on_feedback(s, "click", did, t + 33 * MIN, pb) or (None, [])
    s, o3 = on_feedback(s, "convert", did, t + 34 * MIN, pb) or (None, [])
    assert [o.kind for o in o1 + o2 + o3] == [
        "exposure",
        "response",
        "acceptance",
        "conversion",
    ]
    assert o2[0].success is True
    assert on_feedback(s, "click", "0" * 32, t, pb) is None  # unknown decision
    # the response model replaces the intent score once it has min_responses outcomes
    rm = ResponseModels()
    for y in (True, True, False):
        rm.learn("cart", y)
    d2 = decide(cart_state(t), t + 31 * MIN, Trigger("timer"), None, Inputs(pb, responses=rm))
    assert d2.action is not None
    terms = d2.action.explanation["arbitration"]["cart"]
    assert (terms["propensity_source"], terms["propensity"]) == ("response_model", 0.6)


def test_a_timer_decision_made_again_keeps_its_id() -> None:
    """A worker killed after a timer decision was sent but before its state reached the
    changelog decides again from the older state, later: the same decision, the same
    id. The next decision, from the new state, gets another."""
    t, pb = noon(), pb_with()
    s = cart_state(t)
    first = decide(s, t + 31 * MIN, Trigger("timer"), None, Inputs(pb))
    again = decide(s, t + 47 * MIN, Trigger("timer"), None, Inputs(pb))
    assert first.action is not None and again.action is not None
    assert again.action.decision_id == first.action.decision_id
    later = decide(first.state, t + 25 * HOUR, Trigger("timer"), None, Inputs(pb))
    assert later.action is not None and later.action.decision_id != first.action.decision_id


def test_shown_but_unanswered_is_a_failure_when_superseded() -> None:
    t = noon()
    pb = pb_with()
    e1 = ev("e1", "product_view", t, category="shoes")
    d1 = on(fold(e1), e1, pb)
    assert d1.action is not None
    shown, _ = on_feedback(d1.state, "impression", d1.action.decision_id, t, pb) or (None, [])
    e2 = ev("e2", "outage_notice", t + MIN)
    d2 = on(apply(shown, e2, CFG).state, e2, pb)
    assert ("response", "reco", False) in [(o.kind, o.action, o.success) for o in d2.outcomes]


def test_exploration_probabilities_are_exact() -> None:
    pb = pb_with(exploration_rate=0.5, near_best=0.0)
    t = noon()
    e1, e2 = ev("e1", "product_view", t, category="shoes"), ev("e2", "outage_notice", t)
    s = fold(e1, e2)
    seen = {}
    for i in range(300):
        d = decide(s, t, Trigger("event", f"x{i}"), e2, Inputs(pb))
        assert d.action is not None
        x = d.action.explanation
        seen[d.action.action] = (
            x["explored"] or seen.get(d.action.action, (False, 0))[0],
            x["probability"],
        )
    assert set(seen) == {"care", "reco"}
    assert seen["care"][1] == pytest.approx(0.75) and seen["reco"][1] == pytest.approx(0.25)


def test_volume_limit_uses_the_workers_share() -> None:
    pb = pb_with()
    spec = replace(pb.actions[0], hourly_limit=10)
    pb = replace(pb, actions=(spec, *pb.actions[1:]))
    t = noon()
    s = cart_state(t)
    inp = Inputs(pb, volume={"cart": 5}, volume_share=0.5)
    d = decide(s, t + 31 * MIN, Trigger("timer"), None, inp)
    assert d.action is None
    assert decide(s, t + 31 * MIN, Trigger("timer"), None, replace(inp, volume={"cart": 4})).action


def test_default_playbook_compiles_every_journey() -> None:
    pb = load_file(DEFAULT_PATH)
    journeys = {a.journey for a in pb.actions}
    assert journeys >= {
        "welcome",
        "abandoned_cart",
        "browse_abandonment",
        "proactive_support",
        "recommendation",
        "loyalty",
        "churn_save",
        "cross_sell",
        "nps_followup",
        "content_interest",
    }


# -- property tests ------------------------------------------------------------------------
KINDS = [
    "page_view",
    "product_view",
    "add_to_cart",
    "purchase",
    "outage_notice",
    "consent_changed",
    "profile_updated",
]
ZONES = ["UTC", "Asia/Tokyo", "America/New_York", "Europe/Paris"]


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    cid = draw(st.sampled_from(["a", "b", "c", "d", "e", "f"]))
    t, out = T0, []
    for i in range(draw(st.integers(1, 25))):
        t += draw(st.sampled_from([0.0, 30.0, 5 * MIN, 31 * MIN, 3 * HOUR, 11 * HOUR]))
        kind = draw(st.sampled_from(KINDS))
        props: dict[str, object] = {}
        if kind in ("product_view", "add_to_cart"):
            props = {"product_id": "p", "price": 5.0, "category": "shoes"}
        elif kind == "consent_changed":
            props = {
                "channel": draw(st.sampled_from(["email", "sms"])),
                "granted": draw(st.booleans()),
            }
        elif kind == "profile_updated":
            props = {"timezone": draw(st.sampled_from(ZONES))}
        out.append(ev(f"{cid}{i}", kind, t, cid=cid, **props))
    return out


PLAYBOOKS = [
    pb_with(),
    pb_with(control_share=0.5, exploration_rate=0.3, near_best=0.1),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from(PLAYBOOKS), st.booleans())
def test_policy_invariants(history: list[Event], pb, with_timer: bool) -> None:
    s: CustomerState | None = None
    for e in history:
        s = apply(s, e, CFG).state
        moments = [(e.event_time, Trigger("event", e.event_id), e)]
        if with_timer:
            moments.append((e.event_time + 31 * MIN, Trigger("timer"), None))
        for now, trig, event in moments:
            ctx = rule_context(s, now, event, {})
            ctx["params"] = pb.parameters
            d = decide(s, now, trig, event, Inputs(pb))
            s = d.state
            a = d.action
            if a is None:
                continue
            spec = next(x for x in pb.actions if x.id == a.action)
            assert spec.eligible.execute(ctx) is True, "never an ineligible action"
            if in_control(s.customer_id, pb):
                assert a.group == "control" and a.channel is None, "never to the control group"
                assert s.contacts.sent == ()
                continue
            ch = a.channel
            assert ch in spec.channels
            consent = s.profile.consent.get(ch)
            assert consent is not False and (consent or ch not in pb.require_consent)
            qh = pb.quiet_hours
            if ch in qh.channels:
                assert not qh.quiet(*local_hour(now, s.profile.timezone, qh.default_timezone))
            c = s.contacts
            for window, cap in ((DAY, spec.caps.day), (7 * DAY, spec.caps.week)):
                assert cap is None or c.count(now, window, action=a.action) <= cap
            ccaps = pb.channel_caps.get(ch)
            if ccaps is not None:
                assert ccaps.day is None or c.count(now, DAY, channel=ch) <= ccaps.day
                assert ccaps.week is None or c.count(now, 7 * DAY, channel=ch) <= ccaps.week


@given(histories())
@settings(max_examples=50, deadline=None)
def test_decisions_are_deterministic(history: list[Event]) -> None:
    """The same history decides the same actions with the same ids (replay, redelivery)."""
    pb = PLAYBOOKS[1]

    def run() -> list[tuple[str, str]]:
        s, out = None, []
        for e in history:
            s = apply(s, e, CFG).state
            d = decide(s, e.event_time, Trigger("event", e.event_id), e, Inputs(pb))
            s = d.state
            if d.action is not None:
                out.append((d.action.decision_id, d.action.action))
        return out

    assert run() == run()
