"""A lean handler between Faust's fetch loop and the streams.

For every fetched message, Faust 0.15.3's per-partition handler (``ConductorCompiler``)
awaits two coroutines (the flow control and the producer buffer's size, read through its
settings) and builds a set and a list, to learn what is nearly always true: one stream
reads the topic, the flow runs, the producer's buffer is under its limit and the
stream's buffer has room. ``install`` gives the conductor a handler that checks those
four things directly and then puts the event on the stream's queue itself; in every
other case Faust's own handler runs, with its waits. Installed by the Baton app (not at
import): the benchmark's minimal Faust agent keeps Faust's own handler.

Faust's fetch loop itself (``Consumer._drain_messages``: four tasks raced per message)
is Faust's. A replacement with one race per fetch saved ~30 µs per event, but a
recovery could then wait forever for a changelog record it had fetched (the SIGKILL
test, after the dead worker's session expired mid-recovery: 3 runs in 3 once the state
changelog was sent at commits); it was taken out (see the README, Rebalancing).
"""

from __future__ import annotations

from typing import Any

from faust.exceptions import KeyDecodeError, ValueDecodeError
from faust.transport.conductor import ConductorCompiler

__all__ = ["install"]

_original_build = ConductorCompiler.build


def install() -> None:
    """Use the lean handler in every Faust conductor of this process."""
    ConductorCompiler.build = _build  # type: ignore[method-assign]


def uninstall() -> None:
    """Faust's own handler again (tests)."""
    ConductorCompiler.build = _original_build  # type: ignore[method-assign]


def _build(self: Any, conductor: Any, tp: Any, channels: Any) -> Any:
    """Faust's handler of one partition's messages, with a lean path for the case that
    is nearly always true: one stream reads the topic, the flow runs, the producer's
    buffer is below its limit and the stream's buffer has room. Faust's handler awaits
    two coroutines and builds a set and a list for every message to check the same; it
    still handles every other case."""
    slow = _original_build(self, conductor, tp, channels)
    app = conductor.app
    if app.conf.producer_threaded:
        return slow
    flow_stopped = app.flow_control._suspend.is_set
    buffer, consumer = app.producer.buffer, app.consumer
    limit, on_full = buffer.max_messages, app.sensors.on_topic_buffer_full

    def on_pressure_high() -> None:  # as Faust's: this partition stops being fetched
        on_full(tp)
        consumer.on_buffer_full(tp)

    def on_pressure_drop() -> None:
        consumer.on_buffer_drop(tp)

    async def on_message(message: Any) -> None:
        if len(channels) != 1 or flow_stopped() or len(buffer.pending._queue) > limit:
            return await slow(message)  # type: ignore[no-any-return]
        for chan in channels:
            queue = chan.queue
            if queue.full():
                return await slow(message)  # type: ignore[no-any-return]
            message.incref(1)
            try:
                event = await chan.decode(message, propagate=True)
            except KeyDecodeError as exc:
                message.ack(consumer, n=1)
                await chan.on_key_decode_error(exc, message)
                return None
            except ValueDecodeError as exc:
                message.ack(consumer, n=1)
                await chan.on_value_decode_error(exc, message)
                return None
            queue.put_nowait_enhanced(
                event, on_pressure_high=on_pressure_high, on_pressure_drop=on_pressure_drop
            )
        return None

    return on_message
