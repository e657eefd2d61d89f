"""The JSON Schema files are the contract; the Python side agrees with them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import jsonschema_rs
import orjson
import pytest

import schemas
from pipeline.events import REASONS, Event
from pipeline.playbook import DEFAULT_PATH, load, load_file
from pipeline.policy import Inputs, Trigger, decide
from pipeline.state import Cart, CartItem, CustomerState


@pytest.mark.parametrize("name", schemas.names())
def test_schema_is_valid_draft_2020_12_and_examples_validate(name: str) -> None:
    doc = schemas.load(name)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(doc)
    validator = jsonschema_rs.validator_for(doc, validate_formats=True)
    assert doc["examples"], "every schema carries at least one example"
    for example in doc["examples"]:
        validator.validate(example)


def test_every_event_field_the_code_reads_is_in_the_schema() -> None:
    props = schemas.load("event.v1")["properties"]
    fields = {f.name for f in dataclasses.fields(Event)}
    assert fields <= set(props)
    ev = Event("e", "page_view", 0.0, "c", "a", {"url": "/"})
    jsonschema_rs.validator_for(schemas.load("event.v1"), validate_formats=True).validate(
        ev.to_dict()
    )


def test_action_wire_form_matches_schema_exactly() -> None:
    doc = schemas.load("action.v1")
    cart = Cart((CartItem("p", 1, 5.0),), 1e9)
    s = CustomerState("c", 1e9, 1e9, cart=cart)
    d = decide(s, 1e9 + 3600, Trigger("timer"), None, Inputs(load_file(DEFAULT_PATH)))
    assert d.action is not None
    a = d.action
    assert set(a.to_dict()) == set(doc["properties"])
    jsonschema_rs.validator_for(doc, validate_formats=True).validate(a.to_dict())


def test_deadletter_reasons_are_the_core_reasons() -> None:
    enum = schemas.load("deadletter.v1")["properties"]["reason"]["enum"]
    assert list(enum) == list(REASONS)


def test_event_types_in_schema_cover_both_topics() -> None:
    types = set(schemas.load("event.v1")["properties"]["event_type"]["enum"])
    assert {"page_view", "add_to_cart", "purchase", "login"} <= types
    assert {"ticket_opened", "outage_notice", "survey_response", "consent_changed"} <= types


def test_every_event_type_has_an_example_that_the_core_accepts() -> None:
    from pipeline.events import DecodeConfig, Decoder, parse_time

    doc = schemas.load("event.v1")
    types = set(doc["properties"]["event_type"]["enum"])
    assert {e["event_type"] for e in doc["examples"]} == types
    dec = Decoder(DecodeConfig())
    for example in doc["examples"]:
        now = parse_time(example["event_time"]) or 0.0
        assert isinstance(dec.decode(orjson.dumps(example), now), Event), example


PROPERTY_READ = re.compile(r"""(?:props|properties)(?:\.get\(|\[)\s*"([a-z_]+)\"""")


def test_every_property_the_core_reads_is_in_the_schema() -> None:
    declared = set(schemas.load("event.v1")["properties"]["properties"]["properties"])
    read: set[str] = set()
    for path in (Path(__file__).resolve().parents[2] / "pipeline").glob("*.py"):
        # the simulators write events (world.py also carries its own feedback in them)
        if path.name not in ("simulator.py", "world.py"):
            read |= set(PROPERTY_READ.findall(path.read_text()))
    assert read, "the pattern finds the reads"
    assert read <= declared, sorted(read - declared)


def test_playbook_examples_compile() -> None:
    """The schema's example playbook is not only valid JSON Schema but a working playbook."""
    for doc in schemas.load("playbook.v1")["examples"]:
        assert load(orjson.dumps(doc)).actions
