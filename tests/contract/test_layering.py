"""Dependencies point one way: schemas <- pipeline <- agents <- CLI (STYLE 2)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "schemas": {"pipeline", "agents", "faust", "aiokafka", "prometheus_client", "mode"},
    "pipeline": {"agents", "faust", "aiokafka", "prometheus_client", "mode", "os"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_inside_its_layer(package: str) -> None:
    for path in sorted((ROOT / package).glob("*.py")):
        bad = imported_roots(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_importing_the_core_loads_no_stream_layer() -> None:
    code = (
        "import sys, pipeline, pipeline.simulator, schemas; "
        "print(sorted(m for m in ('faust', 'aiokafka', 'agents', 'prometheus_client') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert out == "[]"


def test_unit_tests_do_not_import_faust() -> None:
    for path in sorted((ROOT / "tests" / "unit").glob("*.py")):
        assert not imported_roots(path) & {"faust", "aiokafka", "agents"}, path.name
