"""Every message of the bad-input corpus (tests/corpus) gets its own reason in the core."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipeline.events import DecodeConfig, Decoder, Event, Rejected, format_time
from pipeline.fold import apply
from pipeline.state import StateConfig

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MANIFEST: dict[str, str] = json.loads((CORPUS / "MANIFEST.json").read_text())


def load(name: str, now: float) -> bytes:
    """A corpus message with ``{{NOW}}`` set to the given time."""
    return (CORPUS / "bad" / name).read_bytes().replace(b"{{NOW}}", format_time(now).encode())


def test_corpus_is_large_and_covers_every_edge_reason() -> None:
    assert len(MANIFEST) >= 30
    assert len(set(MANIFEST.values())) >= 14


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_message_gets_its_reason(name: str) -> None:
    now, want = time.time(), MANIFEST[name]
    out = Decoder(DecodeConfig()).decode(load(name, now), now)
    if want in ("valid", "duplicate", "identity_conflict"):  # found after decoding
        assert isinstance(out, Event)
    else:
        assert isinstance(out, Rejected) and out.reason == want, out


def test_duplicate_is_caught_by_the_reducer() -> None:
    now, dec = time.time(), Decoder(DecodeConfig())
    first = dec.decode(load("36-duplicate-first.bin", now), now)
    second = dec.decode(load("37-duplicate-second.bin", now), now)
    assert isinstance(first, Event) and isinstance(second, Event)
    state = apply(None, first, StateConfig()).state
    assert apply(state, second, StateConfig()).duplicate
