"""A hook that runs before every offset commit of a Faust consumer.

The agents keep each customer's newest state and send its changelog record when the
offsets are committed, not after every batch (Kafka Streams' record cache, flushed on
commit): a customer with several events between two commits costs one record, one JSON
encoding and one produce, whatever the batches. What must hold is that a committed
offset never runs ahead of the changelog (a restarted or new owner recovers state from
the changelog and reads events from the committed offset): ``install`` makes Faust's
``Consumer.force_commit``, which every commit goes through (the periodic one, the one
before a rebalance's revocation, the one at shutdown), first await the app's
``before_commit`` hook, which hands the buffered records to the producer; Faust's commit
then flushes the producer before it commits the offsets it found acknowledged, which it
reads only after the hook returns.

Installed by the Baton app (not at import), like ``agents.drain``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faust.transport.consumer import Consumer

__all__ = ["HOOK", "install"]

HOOK = "baton_before_commit"  # the attribute of the Faust app that holds the hook

_original = Consumer.force_commit


async def _force_commit(self: Any, *args: Any, **kwargs: Any) -> bool:
    hook: Callable[[], Awaitable[None]] | None = getattr(self.app, HOOK, None)
    if hook is not None:
        await hook()
    result: bool = await _original(self, *args, **kwargs)
    return result


def install() -> None:
    """Run the app's ``before_commit`` hook before every commit of Faust consumers."""
    Consumer.force_commit = _force_commit  # type: ignore[method-assign]


def uninstall() -> None:
    """Faust's own commit again (tests)."""
    Consumer.force_commit = _original  # type: ignore[method-assign]
