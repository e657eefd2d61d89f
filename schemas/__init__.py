"""Versioned JSON Schema contracts for every message that crosses a Baton topic.

The files beside this module are the contract; channel services in any language code
against them. This module only finds and loads them.

    >>> load("event.v1")["title"]
    'Customer event (clickstream or service), version 1'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_DIR", "load", "names"]

SCHEMA_DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    """Names of every schema document shipped, e.g. ``event.v1``."""
    return sorted(p.name.removesuffix(".json") for p in SCHEMA_DIR.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    """Load one schema document by name (``event.v1``)."""
    with (SCHEMA_DIR / f"{name}.json").open(encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc
