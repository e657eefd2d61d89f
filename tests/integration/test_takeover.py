"""Fault test: two workers, one SIGKILLed; the survivor takes every partition and its
tables, with and without standby replicas (``BATON_STANDBY_REPLICAS``).

Both workers share a backlog of 20,000 events from 500 customers. One is killed; more
events follow for every customer. The survivor must end with every partition and every
customer's state exact (every event once). The takeover time, from the kill to the
survivor having processed the events that followed, is printed for each setting (it
includes the group's session timeout, 10 s here); it is a figure, not asserted.
"""

from __future__ import annotations

import asyncio
import signal
import time

import orjson
import pytest

from agents.demo import scrape
from pipeline.simulator import event_doc
from tests.integration.test_rebalance import CUSTOMERS, exact_state
from tests.kafkaio import processed, produce

pytestmark = [pytest.mark.broker, pytest.mark.slow]
BACKLOG, MORE = 40, 4


def events(prefix: str, first_k: int, per_customer: int, t0: float) -> list:
    out = []
    for k in range(first_k, first_k + per_customer):
        for i in range(CUSTOMERS):
            cid = f"s{i:03d}"
            doc = event_doc(f"{cid}-{k}", "product_view", t0 + k, cid, {"product_id": f"p{k}"})
            out.append((f"{prefix}events.clickstream", cid.encode(), orjson.dumps(doc)))
    return out


@pytest.mark.parametrize("standby", ["0", "1"])
async def test_the_survivor_takes_every_partition(kafka, prefix, start_worker, standby) -> None:
    t0, env = time.time() - 3600, {"BATON_SESSION_TIMEOUT_S": "10"}
    env["BATON_STANDBY_REPLICAS"] = standby
    first, second = start_worker(**env), start_worker(**env)
    await produce(kafka.bootstrap, events(prefix, 0, BACKLOG, t0))
    total = CUSTOMERS * BACKLOG
    deadline = time.monotonic() + 180
    while processed(first.web_port) + processed(second.web_port) < total:
        assert time.monotonic() < deadline, "the backlog was processed"
        await asyncio.sleep(0.2)
    assert processed(first.web_port) > 0 and processed(second.web_port) > 0, "both worked"
    await asyncio.sleep(4)  # a changelog flush and a commit: little is processed again
    before = processed(second.web_port)

    killed = time.monotonic()
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    await produce(kafka.bootstrap, events(prefix, BACKLOG, MORE, t0))
    deadline = time.monotonic() + 180
    while processed(second.web_port) < before + CUSTOMERS * MORE:
        assert time.monotonic() < deadline, "the survivor processed every new event"
        await asyncio.sleep(0.1)
    takeover = time.monotonic() - killed

    await exact_state(
        kafka.bootstrap, f"{prefix}worker-customers-changelog", "s", BACKLOG + MORE, timeout=120
    )

    def owned() -> set[str]:  # the lag gauge is refreshed every 5 s
        lag = scrape(second.web_port).get("baton_consumer_lag", {})
        return {dict(k)["partition"] for k in lag if dict(k)["topic"] == f"{prefix}customer-events"}

    deadline = time.monotonic() + 15
    while owned() != {"0", "1", "2", "3"} and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert owned() == {"0", "1", "2", "3"}, "the survivor owns every partition"
    print(
        f"takeover with {standby} standby replica(s): {takeover:.1f} s from the kill to "
        f"the survivor's processing every new event (session timeout 10 s); state exact"
    )
