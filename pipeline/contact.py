"""Contact history and contact policy: may this action reach this customer, and how?

The history (``Contacts``, part of the customer state) keeps the sends of the last week,
the last dismissal and conversion per action, and the standing decision's responses.
The policy checks, in this order, and each refusal names its step:

- ``suppressed``: the customer converted on this action recently;
- ``cooldown``: sent recently (the action's ``cooldown_s``) or dismissed recently
  (``dismiss_cooldown_s``);
- ``action_cap``: the action's own caps per rolling day / week;
- then per channel, in the action's order with the customer's preferred channel first:
  ``no_consent`` (opted out, or no opt-in on a channel that needs one), ``unreachable``
  (no e-mail or phone known, no live web session, no open contact for the agent desktop),
  ``channel_cap`` (caps per channel per rolling day / week), ``quiet_hours`` (local time
  in the customer's zone). The first channel that passes is chosen; if none does, the
  action is refused with the reason of the most preferred channel.

Caps use rolling windows (24 h and 7 days), not calendar days, so they do not depend
on a time zone and cannot be gamed at midnight.

    >>> from pipeline.playbook import load
    >>> pb = load('{version: "1", actions: [{id: a, journey: j, channels: [email],'
    ...           ' content: t, eligible: "true", cooldown_s: 3600}]}')
    >>> c = Contacts().sent_one("d1", "a", "email", 100.0)
    >>> check_action(pb.actions[0], c, pb, 200.0), check_action(pb.actions[0], c, pb, 4000.0)
    ('cooldown', None)
"""

from __future__ import annotations

from pipeline.context import local_hour
from pipeline.playbook import ActionSpec, Caps, Playbook
from pipeline.state import Contacts, CustomerState

__all__ = ["check_action", "choose_channel"]

DAY, WEEK = 86400.0, 7 * 86400.0


def _over(caps: Caps, c: Contacts, now: float, **which: str) -> bool:
    day = caps.day is not None and c.count(now, DAY, **which) >= caps.day
    return day or (caps.week is not None and c.count(now, WEEK, **which) >= caps.week)


def check_action(spec: ActionSpec, c: Contacts, pb: Playbook, now: float) -> str | None:
    """The policy step that refuses ``spec`` regardless of channel, or None."""
    conv = c.converted.get(spec.id)
    if conv is not None and now - conv < spec.suppress_after_conversion_s:
        return "suppressed"
    last = max((s.at for s in c.sent if s.action == spec.id), default=None)
    if last is not None and now - last < spec.cooldown_s:
        return "cooldown"
    dismissed = c.dismissed.get(spec.id)
    if dismissed is not None and now - dismissed < pb.dismiss_cooldown_s:
        return "cooldown"
    if _over(spec.caps, c, now, action=spec.id):
        return "action_cap"
    return None


def _reachable(channel: str, s: CustomerState, now: float) -> bool:
    p = s.profile
    if channel == "email":
        return bool(p.email_hash) or not s.anonymous
    if channel == "sms":
        return bool(p.phone_hash)
    if channel == "web":
        return s.session is not None and now - s.session.last_event_at < 1800.0
    if channel == "agent":
        return s.service.open_tickets > 0 or now - s.service.last_contact_at < DAY
    return True  # push and app: the consent (an opt-in) is the reachability


def _channel_refusal(channel: str, s: CustomerState, pb: Playbook, now: float) -> str | None:
    granted = s.profile.consent.get(channel)
    if granted is False or (granted is None and channel in pb.require_consent):
        return "no_consent"
    if not _reachable(channel, s, now):
        return "unreachable"
    caps = pb.channel_caps.get(channel)
    if caps is not None and _over(caps, s.contacts, now, channel=channel):
        return "channel_cap"
    qh = pb.quiet_hours
    if qh is None or channel not in qh.channels:
        return None
    return (
        "quiet_hours"
        if qh.quiet(*local_hour(now, s.profile.timezone, qh.default_timezone))
        else None
    )
    return None


def choose_channel(
    spec: ActionSpec, s: CustomerState, pb: Playbook, now: float
) -> tuple[str | None, dict[str, str]]:
    """The first allowed channel (preferred first) and why each earlier one was refused."""
    order = list(spec.channels)
    pref = s.profile.preferred_channel
    if pref in order:
        order.remove(pref)
        order.insert(0, pref)
    refused: dict[str, str] = {}
    for ch in order:
        why = _channel_refusal(ch, s, pb, now)
        if why is None:
            return ch, refused
        refused[ch] = why
    return None, refused
