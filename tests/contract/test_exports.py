"""A small public API: every module declares ``__all__`` and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

PACKAGES = ["schemas", "pipeline", "agents"]


def modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        names.append(pkg)
        mod = importlib.import_module(pkg)
        names += [f"{pkg}.{m.name}" for m in pkgutil.iter_modules(mod.__path__)]
    return names


@pytest.mark.parametrize("name", modules())
def test_module_declares_all(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__doc__, f"{name} has a module docstring"
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{name} lacks __all__"
    assert len(exported) <= 15, f"{name} exports {len(exported)} names"
    for attr in exported:
        assert hasattr(mod, attr), f"{name}.__all__ names missing {attr}"


def test_every_metric_is_documented() -> None:
    """Each metric the worker declares has a row in docs/operations.md."""
    from prometheus_client import CollectorRegistry

    from agents.metrics import Metrics

    registry = CollectorRegistry()
    Metrics.create(registry)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    names = {m.name for m in registry.collect() if m.name.startswith("baton_")}
    types = {m.name: m.type for m in registry.collect()}
    missing = {n for n in names if f"`{n}{'_total' if types[n] == 'counter' else ''}`" not in doc}
    assert not missing, f"not in docs/operations.md: {sorted(missing)}"
