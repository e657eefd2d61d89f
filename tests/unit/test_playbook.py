"""Playbooks: validation with located, readable errors; rules compiled once; the CLI."""

from __future__ import annotations

import pytest

from pipeline.playbook import PlaybookError, load

GOOD = """\
version: "1"
parameters: {n: 2}
actions:
  - id: a
    journey: j
    channels: [email]
    content: t
    eligible: "session.events >= params.n"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        load(text, source="pb.yaml")
    return [str(p) for p in info.value.problems]


def test_good_playbook_compiles_and_parameters_can_be_overridden() -> None:
    pb = load(GOOD)
    rule = pb.actions[0].eligible
    assert rule.execute({"session": {"events": 2.0}, "params": pb.parameters}) is True
    tuned = load(GOOD, params={"n": 5})
    assert tuned.parameters == {"n": 5.0} and tuned.version != pb.version


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("session.events >=", "not a valid CEL expression"),
        ("sesion.events > 1.0", "unknown variable(s) sesion"),
        ("session.events + 1.0", "must yield a bool"),
        ("session.events > 'x'", "fails on a sample customer"),
        ("f.nps < 7.0", "fails on a sample customer"),  # absent feature: use has(f.nps)
    ],
)
def test_rule_problems_name_line_field_and_reason(rule: str, reason: str) -> None:
    text = GOOD.replace("session.events >= params.n", rule.replace('"', "'"))
    (p,) = problems(text)
    assert p.startswith("pb.yaml:8: actions[0].eligible: "), p
    assert reason in p, p


def test_schema_problems_are_all_reported_with_lines() -> None:
    text = GOOD.replace("channels: [email]", "channels: [email, fax]").replace(
        "content: t", "content: t\n    weight: -1\n    colour: red"
    )
    got = problems(text)
    assert any(p.startswith("pb.yaml:6: actions[0].channels[1]: ") for p in got), got
    assert any(p.startswith("pb.yaml:8: actions[0].weight: ") for p in got), got
    assert any("'colour' was unexpected" in p for p in got), got


def test_duplicate_ids_and_bad_zone_and_yaml_errors() -> None:
    dup = GOOD + GOOD.split("actions:\n")[1]
    assert any("duplicate action id" in p for p in problems(dup))
    quiet = '{start: "21:00", end: "08:00", default_timezone: Mars/Base}'
    zone = GOOD + f"contact_policy: {{quiet_hours: {quiet}}}\n"
    assert any("unknown time zone" in p for p in problems(zone))
    (p,) = problems("version: [\n")
    assert p.startswith("pb.yaml:") and "(document)" in p


def test_safe_expressions_only() -> None:
    """CEL has no access to Python: an attempt to reach it is just an unknown variable."""
    text = GOOD.replace("session.events >= params.n", "__import__('os').system('true') == 0")
    (p,) = problems(text)
    assert "fails on a sample customer: Undefined variable or function: '__import__'" in p, p
