"""requirements.lock (made by uv, installed by deploy/setup.sh) pins every dependency
that pyproject.toml names, at a version the specifier allows, and faust-streaming
exactly (agents.runtime relies on its private names)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_lock_pins_every_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = _locked()
    for text in declared:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} vs {req}"


def test_the_framework_is_pinned_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "faust-streaming==0.15.3" in project["dependencies"]


def test_the_installed_versions_are_the_locked_ones() -> None:
    from importlib.metadata import version

    pins = _locked()
    for name in ("faust-streaming", "mode-streaming", "aiokafka", "river", "orjson"):
        assert version(name) == pins[name], name


def test_the_images_lock_is_the_runtime_part_of_the_lock() -> None:
    """deploy/requirements.runtime.lock (the image's, with hashes) pins the same versions
    as requirements.lock, for every runtime dependency and nothing of the dev tools."""
    pins, runtime = _locked(), {}
    for line in (ROOT / "deploy" / "requirements.runtime.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            runtime[canonicalize_name(name)] = version.split()[0]
    assert all(pins[name] == version for name, version in runtime.items())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        assert canonicalize_name(Requirement(text).name) in runtime, text
    assert not {"pytest", "mypy", "ruff"} & set(runtime)
    assert "--hash=sha256:" in (ROOT / "deploy" / "requirements.runtime.lock").read_text()
