"""Baton's stream wiring: the Faust app, settings, metrics, topics, local broker, CLI."""

from __future__ import annotations

from agents.app import Baton, create_app
from agents.settings import Settings

__all__ = ["Baton", "Settings", "create_app"]
