"""Types and size: mypy strict passes over schemas/, pipeline/ and agents/ (the files in
pyproject.toml), ruff finds nothing, and no module grows past ~400 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_mypy_strict_passes() -> None:
    done = subprocess.run([BIN / "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


def test_ruff_passes() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run([BIN / "ruff", *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-4000:]


def test_no_module_over_about_400_lines() -> None:
    for package in ("schemas", "pipeline", "agents"):
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            assert lines <= 420, f"{path.relative_to(ROOT)}: {lines} lines (split it)"
