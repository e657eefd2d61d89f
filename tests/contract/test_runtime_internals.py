"""The runtime seam (agents.runtime): every private name of faust-streaming, mode and
aiokafka it relies on exists in the installed packages (the test names the attribute
that went missing), the functions it adapts are unchanged upstream, nothing outside
the seam touches a private name, and building an app patches nothing."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agents.runtime import drain, internals

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("faust", "mode", "aiokafka")


def _owner(spec: str) -> object:
    module, _, qualname = spec.partition(":")
    obj: object = importlib.import_module(module)
    for part in filter(None, qualname.split(".")):
        obj = getattr(obj, part)
    return obj


def _defines(owner: object, name: str) -> bool:
    """Whether a class (or module) has ``name``: as an attribute, or assigned to
    ``self.<name>`` in the source of the class or one of its bases."""
    if hasattr(owner, name):
        return True
    if not inspect.isclass(owner):
        return False
    for klass in owner.__mro__:
        if klass.__module__.split(".")[0] not in FRAMEWORKS:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if f"self.{name} =" in source or f"self.{name}:" in source:
            return True
    return False


@pytest.mark.parametrize(("owner", "name"), internals.PRIVATE, ids="{0[1]}".format)
def test_every_private_name_the_runtime_uses_exists(owner: str, name: str) -> None:
    assert _defines(_owner(owner), name), (
        f"{owner} has no {name!r} in the installed release: agents.runtime relies on it"
    )


@pytest.mark.parametrize(("owner", "name", "digest"), internals.ADAPTED, ids="{0[1]}".format)
def test_adapted_functions_are_unchanged_upstream(owner: str, name: str, digest: str) -> None:
    fn = getattr(_owner(owner), name)
    if fn is drain._drain_messages:  # installed by another test of this process
        fn = drain._original
    assert internals.source_digest(fn) == digest, (
        f"{owner}.{name} changed upstream: agents.runtime.drain adapts its body; "
        "compare the new source, adapt, and update the digest in agents.runtime.internals"
    )


def test_aiokafka_hands_the_fetch_wait_to_its_fetcher() -> None:
    """The fetch wait is set on the consumer before it starts (drain.fetched_together):
    aiokafka must still build its fetcher from those two attributes."""
    from aiokafka import AIOKafkaConsumer

    source = inspect.getsource(AIOKafkaConsumer.start)
    for arg in (
        "fetch_min_bytes=self._fetch_min_bytes",
        "fetch_max_wait_ms=self._fetch_max_wait_ms",
    ):
        assert arg in source, f"AIOKafkaConsumer.start no longer passes {arg}"


def test_the_signatures_the_runtime_calls() -> None:
    from aiokafka import AIOKafkaProducer
    from faust.stores.base import Store
    from faust.transport.consumer import Consumer

    params = {
        AIOKafkaProducer.send: ["self", "topic", "value", "key", "partition"],
        Consumer._add_gap: ["self", "tp", "offset_from", "offset_to"],
        Consumer.getmany: ["self", "timeout"],
        Store.set_persisted_offset: ["self", "tp", "offset"],
    }
    for fn, names in params.items():
        got = list(inspect.signature(fn).parameters)[: len(names)]
        assert got == names, f"{fn.__qualname__}{inspect.signature(fn)}: expected {names}"


def _private_uses(path: Path) -> list[str]:
    """Imports of private framework names, and ``x._name`` reads on anything but
    ``self`` / ``cls``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(FRAMEWORKS):
            found += [f"import {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__") or (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            ):
                continue
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_nothing_outside_the_runtime_touches_private_names() -> None:
    seam = ROOT / "agents" / "runtime"
    for path in sorted((ROOT / "agents").rglob("*.py")):
        if seam in path.parents:
            continue
        assert not _private_uses(path), (path.relative_to(ROOT), _private_uses(path))


def test_building_an_app_patches_nothing(tmp_path: Path) -> None:
    from faust.transport.consumer import Consumer

    from agents.app import create_app
    from agents.settings import Settings

    drain.uninstall()
    create_app(Settings(data_dir=tmp_path), CollectorRegistry())
    assert Consumer._drain_messages is drain._original, "create_app installed the fetch loop"
