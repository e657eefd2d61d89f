"""The README's first command, shortened: the demo starts its own broker and worker,
prints a live summary with actions, and stops everything it started."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_demo_runs_and_prints_actions() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env["BATON_PLAYBOOK_PARAMS"] = '{"cart_abandon_min": 0.08}'
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "demo", "--duration", "20", "--customers", "150"],
        env=env,
        capture_output=True,
        timeout=300,
    )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()[-3000:]
    assert "starting local Apache Kafka" in out
    summary = re.search(r"^sent (\d+) messages; actions: (.*); dead letters: (.*)$", out, re.M)
    assert summary, out
    assert int(summary.group(1)) > 150
    reminders = re.search(r"abandoned_cart_reminder=(\d+)", summary.group(2))
    assert reminders and int(reminders.group(1)) > 0, out
    assert '"rules_matched"' in out and '"playbook_version": "default-1+' in out
    # the simulated channels answered, and the loop closed: exposures, responses learned
    fb = re.search(r"^feedback from the simulated channels: .*impression=(\d+)", out, re.M)
    assert fb and int(fb.group(1)) > 0, out
    moment = re.search(r"\((\d+) actions answered in the moment they were decided in\)", out)
    assert moment and int(moment.group(1)) > 0, out  # the players read the decision examples
    kpis = re.search(r"^journeys: decisions treatment=(\d+) .* exposures=(\d+)", out, re.M)
    assert kpis and int(kpis.group(1)) > 0 and int(kpis.group(2)) > 0, out
    assert "stopped worker and broker" in out
    # nothing left running
    left = subprocess.run(["pgrep", "-f", "baton-demo-.*server.properties"], capture_output=True)
    assert left.returncode == 1, left.stdout
