"""Every Prometheus metric of the worker, declared in one place (STYLE 14).

``Metrics.create(registry)`` builds them on an injected registry, so tests and several
apps in one process never collide. The pure core returns reason codes; the agents
record them here. Label sets are bounded: event types and reasons come from closed
lists in ``schemas``/``pipeline``, actions from the playbook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
)

__all__ = ["LATENCY_BUCKETS", "STAGES", "Metrics"]

# milliseconds to a minute: an SLO of tens of milliseconds and a worker minutes behind
# both land inside a bucket
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0,
)  # fmt: skip
STAGE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1)
# the stages of one message (sampled) and of one batch's send
STAGES = ("decode", "state", "decide", "send")


@dataclass(frozen=True)
class Metrics:
    received: Counter
    events: Counter
    deadletters: Counter
    actions: Counter
    event_to_action: Histogram
    receive_to_action: Histogram
    stage: Histogram
    lag: Gauge
    rebalances: Counter
    fetch_errors: Counter
    ready: Gauge
    customers: Gauge
    erasures: Counter
    expired: Counter
    links: Counter
    snapshots_loaded: Counter
    snapshots_refused: Counter
    model_version: Gauge
    snapshot_time: Gauge
    examples: Counter
    response_contexts: Counter
    model_quality: Gauge
    response_quality: Gauge
    model_training_quality: Gauge
    snapshots_published: Counter
    merges: Counter
    playbook_info: Gauge
    playbooks_loaded: Counter
    playbooks_refused: Counter
    policy_drops: Counter
    feedback: Counter
    journey_decisions: Counter
    journey_exposures: Counter
    journey_acceptances: Counter
    journey_conversions: Counter
    send_errors: Counter
    changelog_records: Counter
    held_events: Gauge
    changelog_flush: Histogram
    stalled_partitions: Counter
    batch_size: Histogram
    gc_pause: Counter
    gc_collections: Counter
    source_gaps: Counter
    source_gap_events: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "baton") -> Metrics:
        return cls(
            received=Counter(
                f"{prefix}_messages_received",
                "Raw messages read from input topics.",
                ["topic"],
                registry=registry,
            ),
            events=Counter(
                f"{prefix}_events_processed",
                "Valid events applied to customer state.",
                ["type"],
                registry=registry,
            ),
            deadletters=Counter(
                f"{prefix}_deadletters",
                "Messages sent to the dead-letter topic.",
                ["reason"],
                registry=registry,
            ),
            actions=Counter(
                f"{prefix}_actions", "Next-best actions emitted.", ["action"], registry=registry
            ),
            **_operations(registry, prefix),
            erasures=Counter(
                f"{prefix}_erasures",
                "Customers erased on request (state deleted, audit sent).",
                registry=registry,
            ),
            expired=Counter(
                f"{prefix}_customers_expired",
                "Customers deleted after being idle past the retention.",
                registry=registry,
            ),
            snapshots_loaded=Counter(
                f"{prefix}_model_snapshots_loaded",
                "Model snapshots verified and loaded.",
                ["intent"],
                registry=registry,
            ),
            snapshots_refused=Counter(
                f"{prefix}_model_snapshots_refused",
                "Model snapshots refused: bad_signature, malformed, older.",
                ["reason"],
                registry=registry,
            ),
            model_version=Gauge(
                f"{prefix}_model_version",
                "Version (examples learned) of the model in use.",
                ["intent"],
                registry=registry,
            ),
            snapshot_time=Gauge(
                f"{prefix}_model_snapshot_timestamp_seconds",
                "When the model in use was published (its snapshot's Kafka timestamp).",
                ["intent"],
                registry=registry,
            ),
            examples=Counter(
                f"{prefix}_training_examples",
                "Labelled examples learned, by intent and label.",
                ["intent", "label"],
                registry=registry,
            ),
            response_contexts=Counter(
                f"{prefix}_response_contexts",
                "Response outcomes learned, by whether their decision's features were found "
                "(joined=true: the contextual model learned it too; false: the Beta only).",
                ["joined"],
                registry=registry,
            ),
            model_quality=Gauge(
                f"{prefix}_model_quality",
                "Quality of the scores the workers served, measured when their labels were "
                "known, over the last 10,000 examples with a served score: roc_auc, pr_auc, "
                "log_loss, calibration_error (set at each snapshot); intent=response: the "
                "propensities arbitration used for the actions sent, against their outcomes.",
                ["intent", "metric"],
                registry=registry,
            ),
            response_quality=Gauge(
                f"{prefix}_response_model_quality",
                "Quality of each action's response model as served: the propensities "
                "arbitration used for the action's sends against their outcomes, over the "
                "action's last 2,000 joined outcomes (set at each response snapshot).",
                ["action", "metric"],
                registry=registry,
            ),
            model_training_quality=Gauge(
                f"{prefix}_model_training_quality",
                "Training-side (test-then-train) quality of the learner's own model, each "
                "example scored just before it is learned: reads higher than what was "
                "served (a session's examples arrive together). For data scientists.",
                ["intent", "metric"],
                registry=registry,
            ),
            snapshots_published=Counter(
                f"{prefix}_model_snapshots_published",
                "Model snapshots published by the learner.",
                ["intent"],
                registry=registry,
            ),
            links=Counter(
                f"{prefix}_identity_links",
                "Anonymous ids linked to a known customer.",
                registry=registry,
            ),
            merges=Counter(
                f"{prefix}_identity_merges",
                "Anonymous states merged into a known customer.",
                registry=registry,
            ),
            customers=Gauge(
                f"{prefix}_customers_in_state",
                "Customers held in this worker's state table.",
                registry=registry,
            ),
            **_decisioning(registry, prefix),
            send_errors=Counter(
                f"{prefix}_send_errors",
                "Messages (actions, dead letters, forwards) the producer failed to deliver.",
                registry=registry,
            ),
            changelog_records=Counter(
                f"{prefix}_changelog_records",
                "State changelog records sent (one per customer written per flush).",
                registry=registry,
            ),
            held_events=Gauge(
                f"{prefix}_held_events",
                "Events handled whose state changelog is not sent yet; acknowledged (and "
                "then committed) at the next flush, every BATON_CHANGELOG_INTERVAL_S.",
                registry=registry,
            ),
            source_gaps=Counter(
                f"{prefix}_source_gaps",
                "Ranges of a source partition found committed but never processed (after a "
                "rebalance under load), read again.",
                ["topic"],
                registry=registry,
            ),
            source_gap_events=Counter(
                f"{prefix}_source_gap_events",
                "Messages read again to fill those ranges.",
                ["topic"],
                registry=registry,
            ),
            changelog_flush=Histogram(
                f"{prefix}_changelog_flush_seconds",
                "Time to take one flush of the state changelog and hand it to the producer "
                "(the hot agents wait only while its records are taken).",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
                registry=registry,
            ),
            stalled_partitions=Counter(
                f"{prefix}_stalled_partitions",
                "Source partitions found with messages past their committed offset that "
                "nothing delivered, sought back to it (agents.runtime.stalls).",
                ["topic"],
                registry=registry,
            ),
            batch_size=Histogram(
                f"{prefix}_batch_size",
                "Events per batch taken by the ingest and decide agents.",
                buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
                registry=registry,
            ),
            gc_pause=Counter(
                f"{prefix}_gc_pause_seconds",
                "Time the worker spent in Python's cyclic garbage collector (agents.heap).",
                ["generation"],
                registry=registry,
            ),
            gc_collections=Counter(
                f"{prefix}_gc_collections",
                "Collections run by Python's cyclic garbage collector.",
                ["generation"],
                registry=registry,
            ),
        )


def _operations(registry: CollectorRegistry, prefix: str) -> dict[str, Any]:
    """Latency to the action produced, lag, rebalances, readiness, stage timings; and the
    process's memory, CPU and open files (``process_*``, prometheus_client)."""
    if registry is not REGISTRY:  # the default registry has its own
        ProcessCollector(registry=registry)
    trigger = ["trigger"]
    return {
        "event_to_action": Histogram(
            f"{prefix}_event_to_action_seconds",
            "Time from an event's own time (a timer decision: its tick) to its action "
            "acknowledged by Kafka. Grows when the worker falls behind.",
            trigger,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        "receive_to_action": Histogram(
            f"{prefix}_receive_to_action_seconds",
            "Time from the source record's Kafka timestamp (a timer decision: the tick "
            "being made) to its action acknowledged by Kafka; includes the time the record "
            "waited to be consumed.",
            trigger,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        "stage": Histogram(
            f"{prefix}_stage_seconds",
            "Time one message spends in a stage (decode, state read and write, decide; one "
            "in BATON_STAGE_SAMPLE messages timed), and one batch's send to the producer.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        ),
        "lag": Gauge(
            f"{prefix}_consumer_lag",
            "Messages of an assigned source partition not yet committed: log end offset "
            "minus committed offset.",
            ["topic", "partition"],
            registry=registry,
        ),
        "rebalances": Counter(
            f"{prefix}_rebalances",
            "Consumer group rebalances this worker took part in.",
            registry=registry,
        ),
        "fetch_errors": Counter(
            f"{prefix}_fetch_errors",
            "Fetches from Kafka that failed (a batch that cannot be decoded, a broker error) "
            "and were retried with backoff (agents.runtime.drain).",
            registry=registry,
        ),
        "ready": Gauge(
            f"{prefix}_ready",
            "1 when /readyz answers 200: the group's assignment in (possibly empty) and "
            "its tables recovered, no rebalance, playbook and model topics read to the end.",
            registry=registry,
        ),
    }


def _decisioning(registry: CollectorRegistry, prefix: str) -> dict[str, Any]:
    """Playbook, policy and journey KPI metrics. Label values are bounded by the playbook
    (action and journey ids) and by closed sets (group, step, type)."""
    aj, ajg = ["action", "journey"], ["action", "journey", "group"]
    return {
        "playbook_info": Gauge(
            f"{prefix}_playbook_info",
            "The playbook in force (value 1), by version.",
            ["version"],
            registry=registry,
        ),
        "playbooks_loaded": Counter(
            f"{prefix}_playbooks_loaded",
            "Playbooks loaded from the playbook topic.",
            registry=registry,
        ),
        "playbooks_refused": Counter(
            f"{prefix}_playbooks_refused",
            "Playbooks from the topic refused by validation (the old one stays).",
            registry=registry,
        ),
        "policy_drops": Counter(
            f"{prefix}_policy_drops",
            "Eligible candidates dropped by a contact-policy step, in emitted decisions.",
            ["step"],
            registry=registry,
        ),
        "feedback": Counter(
            f"{prefix}_feedback_received",
            "Channel feedback joined to a decision, by type.",
            ["type"],
            registry=registry,
        ),
        "journey_decisions": Counter(
            f"{prefix}_journey_decisions",
            "Decisions made, treatment (sent) and control (held out).",
            ajg,
            registry=registry,
        ),
        "journey_exposures": Counter(
            f"{prefix}_journey_exposures",
            "Actions shown to the customer (impression feedback).",
            aj,
            registry=registry,
        ),
        "journey_acceptances": Counter(
            f"{prefix}_journey_acceptances",
            "Actions clicked or accepted.",
            aj,
            registry=registry,
        ),
        "journey_conversions": Counter(
            f"{prefix}_journey_conversions",
            "Decisions followed by a purchase (or convert feedback) while they stood, "
            "treatment and control: the numerators of lift.",
            ajg,
            registry=registry,
        ),
    }
