"""Privacy: what an ``erase_request`` does to a customer, as a pure function.

The stream layer deletes the customer's state (a tombstone reaches the changelog, so
compaction removes every earlier value) and publishes the confirmation built here to
the audit topic. The confirmation carries ids and times only, nothing personal.

    >>> from pipeline.events import Event
    >>> ev = Event("e9", "erase_request", 10.0, "c1", None, {})
    >>> rec = erasure_record(ev, now=12.5, had_state=True)
    >>> (rec["customer_id"], rec["state_deleted"], rec["requested_at"])
    ('c1', True, '1970-01-01T00:00:10.000Z')
"""

from __future__ import annotations

from typing import Any

from pipeline.events import Event, format_time
from pipeline.state import CustomerState

__all__ = ["ERASE", "erasure_record", "expired"]

ERASE = "erase_request"


def erasure_record(
    event: Event, now: float, had_state: bool, unlinked: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The audit confirmation of an erasure (``schemas/audit.v1.json``); ``unlinked``
    counts the anonymous ids whose links to the customer were removed."""
    return {
        "schema_version": 1,
        "kind": "erasure",
        "customer_id": event.key,
        "request_event_id": event.event_id,
        "requested_at": format_time(event.event_time),
        "erased_at": format_time(now),
        "state_deleted": had_state,
        "stores": ["customers", "identities"] if unlinked else ["customers"],
        "anonymous_ids_unlinked": len(unlinked),
    }


def expired(state: CustomerState, now: float, retention_s: float) -> bool:
    """True when the customer has been idle (by event time) for longer than the retention.

    >>> expired(CustomerState("c1", 0.0, 100.0), now=200.0, retention_s=50.0)
    True
    """
    return now - state.last_seen > retention_s
