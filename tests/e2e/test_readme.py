"""The README's quickstart, as written: its broker command in one process, its client
block in bash (the port swapped for a free one); kcat reads the welcome and then the
abandoned-cart reminder. The two commands at the top are what CI runs (`.ci/run` runs
`make test`) and what `test_demo` runs."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from agents.localkafka import free_port

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def block(marker: str) -> str:
    start = README.index(f"<!-- quickstart:{marker} -->")
    body = README.index("```sh\n", start) + len("```sh\n")
    return README[body : README.index("```", body)]


def test_the_readme_stays_a_front_page() -> None:
    assert len(README.splitlines()) <= 220
    assert "make demo" in README and "make test" in README
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / link).exists(), link
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_quickstart_runs(tmp_path: Path) -> None:
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env |= {"BATON_WEB_PORT": str(free_port()), "BATON_DATA_DIR": str(tmp_path)}
    broker_cmd = block("broker").strip().replace("19092", port).split()
    assert broker_cmd[:2] == [".venv/bin/baton", "broker"]
    broker_cmd += ["--dir", str(tmp_path / "kafka")]
    broker = subprocess.Popen(broker_cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE)
    try:
        assert broker.stdout is not None
        deadline = time.monotonic() + 120
        line = b""
        while port.encode() not in line and time.monotonic() < deadline:
            line = broker.stdout.readline()
        assert port.encode() in line, "the broker printed its address"
        client = block("client").replace("19092", port)
        done = subprocess.run(
            ["bash", "-c", client], cwd=ROOT, env=env, capture_output=True, timeout=180
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
    finally:
        broker.terminate()
        broker.wait(timeout=60)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(b"c-1 ")]
    actions = [orjson.loads(ln.split(b" ", 1)[1]) for ln in lines]
    assert [a["action"] for a in actions] == ["welcome_new_customer", "abandoned_cart_reminder"]
    reminder = actions[1]
    assert reminder["customer_id"] == "c-1" and reminder["channel"] == "email"
    assert reminder["trigger"]["kind"] == "timer"
    assert reminder["supersedes"] == actions[0]["decision_id"]
