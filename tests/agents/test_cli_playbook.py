"""``baton playbook validate``: exit code and located problems."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from agents.cli import main
from pipeline.playbook import DEFAULT_PATH
from tests.unit.test_playbook import GOOD


def test_cli_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["playbook", "validate", str(DEFAULT_PATH)])
    assert ok.exit_code == 0 and "11 actions" in ok.output, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("session.events", "sesion.events"))
    out = runner.invoke(main, ["playbook", "validate", str(bad)])
    assert out.exit_code == 1
    assert f"{bad}:8: actions[0].eligible: unknown variable(s) sesion" in out.output
