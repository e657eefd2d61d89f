"""The ``baton`` command: worker, local broker, topics, models, playbook, demo, simulator.

Each command reads its configuration from ``BATON_*`` variables (see ``Settings``);
flags override the few things one changes per run.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from agents.settings import Settings

__all__ = ["main", "reference"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Baton: real-time next-best-action decisioning on Kafka.

    Configuration comes from BATON_* environment variables (BATON_KAFKA_BOOTSTRAP,
    BATON_TOPIC_PREFIX, ...); see docs/configuration.md.
    """


@main.command()
@click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="Create missing Baton topics before starting.",
)
def worker(create_topics: bool) -> None:
    """Run the production worker against the Kafka in BATON_KAFKA_BOOTSTRAP.

    Consumes the event topics, keeps per-customer state, emits next-best actions and
    serves /metrics, /healthz and /readyz on BATON_WEB_HOST:BATON_WEB_PORT.
    """
    from agents import heap, runtime
    from agents.app import create_app
    from agents.topics import AccessRefused, check_access
    from agents.topics import create_topics as make_topics

    settings = Settings()
    missing = runtime.missing_codecs()
    if missing:  # one compressed batch it cannot decode would stop the consumer
        click.echo(
            f"baton worker: cannot decode {', '.join(missing)} record batches: install "
            "cramjam (it is in requirements.lock; run `make setup`)",
            err=True,
        )
        sys.exit(2)
    dev = settings.dev_keys()
    if dev and not settings.allow_dev_keys:  # anyone could forge snapshots, reverse hashes
        click.echo(
            f"baton worker: {_and(dev)} still have the built-in development values; "
            "set your own (docs/operations.md), or BATON_ALLOW_DEV_KEYS=true for a local try",
            err=True,
        )
        sys.exit(2)
    try:
        asyncio.run(check_access(settings))
    except AccessRefused as exc:  # aiokafka would retry it as if the broker were down
        click.echo(
            f"baton worker: Kafka refused the authentication or TLS handshake ({exc}); "
            "check BATON_SASL_USERNAME, BATON_SASL_PASSWORD, BATON_SASL_MECHANISM and "
            "BATON_SSL_CAFILE",
            err=True,
        )
        sys.exit(2)
    if create_topics:
        asyncio.run(make_topics(settings))
    asyncio.set_event_loop(asyncio.new_event_loop())
    baton = create_app(settings)
    runtime.install(settings.fetch_wait_s)  # Baton's fetch loop, at start, not at build
    w = _worker_class()(baton.app, loglevel=settings.log_level.upper())
    heap.watch(baton.metrics)
    frozen = heap.tune(settings.gc_thresholds, settings.gc_freeze)
    logging.getLogger(__name__).info(
        "gc thresholds %s, %d objects frozen", settings.gc_thresholds, frozen
    )
    # Faust's terminal spinner, at WARNING and above, sets the root logger to DEBUG so that
    # it spins on every record: every aiokafka debug line is then built and handled (about
    # 5 % of the worker's time in a profile). A worker's output is a log, not a terminal.
    w.spinner = None
    w.execute_from_commandline()


def _and(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _worker_class() -> type:
    import faust

    from agents.logs import throttle_handlers

    class Worker(faust.Worker):
        """Faust's worker, with repeated warnings throttled once logging is set up."""

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            throttle_handlers(logger)

    return Worker


@main.command()
@click.option("--port", type=int, default=None, help="Client port (default: a free one).")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory to keep between runs (default: a temporary one).",
)
def broker(port: int | None, workdir: Path | None) -> None:
    """Run a local single-node Apache Kafka (KRaft) in the foreground on 127.0.0.1.

    Prints its bootstrap address; Ctrl-C stops it.
    """
    from agents.localkafka import LocalKafka

    kafka = LocalKafka(workdir=workdir, port=port)
    click.echo(f"starting Apache Kafka {kafka.version} (log: {kafka.log_path}) ...", err=True)
    bootstrap = kafka.start()
    click.echo(bootstrap)
    click.echo(f"export BATON_KAFKA_BOOTSTRAP={bootstrap}   # Ctrl-C to stop", err=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while kafka.proc is not None and kafka.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        kafka.cleanup()


@main.group()
def topics() -> None:
    """Manage Baton's topics on the cluster in BATON_KAFKA_BOOTSTRAP."""


@topics.command("create")
def topics_create() -> None:
    """Create every Baton topic that is missing, with partitions, retention and cleanup policy."""
    from agents.topics import TOPICS, create_topics

    settings = Settings()
    made = set(asyncio.run(create_topics(settings)))
    for t in TOPICS:
        state = "created" if settings.topic(t.name) in made else "exists"
        click.echo(f"{settings.topic(t.name):40} {state:8} {t.cleanup:8} {t.description}")


@main.group()
def models() -> None:
    """Intent model snapshots on the compacted models topic."""


@models.command("publish")
@click.argument("snapshot_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def models_publish(snapshot_file: Path) -> None:
    """Sign a model snapshot (JSON) with BATON_MODEL_SIGNING_KEY and publish it.

    Every worker verifies the signature and loads it without restarting.
    """
    import orjson

    from pipeline.models import IntentModel, sign

    settings = Settings()
    model = IntentModel.from_snapshot(orjson.loads(snapshot_file.read_bytes()))  # validates
    raw = sign(model.snapshot(), settings.model_signing_key.get_secret_value().encode())
    asyncio.run(_publish(settings, settings.topic("models"), model.intent.encode(), raw))
    click.echo(f"published {model.intent} model version {model.version}")


@main.group()
def playbook() -> None:
    """Validate and publish playbooks (actions, rules, contact policy)."""


def _load_playbook(path: Path) -> Any:
    from pipeline.playbook import PlaybookError, load_file

    try:
        return load_file(path)
    except PlaybookError as exc:
        for p in exc.problems:
            click.echo(str(p), err=True)
        click.echo(f"{path}: refused ({len(exc.problems)} problem(s))", err=True)
        sys.exit(1)


@playbook.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def playbook_validate(file: Path) -> None:
    """Check FILE against the playbook schema and compile every rule.

    Prints each problem as FILE:LINE: FIELD: REASON and exits 1 if there is any.
    """
    pb = _load_playbook(file)
    journeys = sorted({a.journey for a in pb.actions})
    click.echo(
        f"{file}: ok, version {pb.version}, {len(pb.actions)} actions, journeys: "
        + ", ".join(journeys)
    )


@playbook.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def playbook_publish(file: Path) -> None:
    """Validate FILE, sign it with BATON_PLAYBOOK_SIGNING_KEY and publish it on the
    playbook topic; every worker switches to it without restarting (and refuses it if
    its signature or the playbook does not check out there)."""
    import orjson

    from pipeline.models import sign

    pb = _load_playbook(file)
    settings = Settings()
    key = settings.playbook_signing_key.get_secret_value().encode()
    raw = sign(orjson.loads(pb.to_json()), key)  # workers refuse unsigned playbooks
    asyncio.run(_publish(settings, settings.topic("playbook"), b"playbook", raw))
    click.echo(f"published playbook {pb.version} ({len(pb.actions)} actions)")


async def _publish(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


@main.command()
@click.option("--duration", type=float, default=60.0, show_default=True, help="Seconds to run.")
@click.option("--customers", type=int, default=300, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(duration: float, customers: int, seed: int) -> None:
    """Local demo: start Kafka, topics and a worker; feed simulated shoppers; print a summary.

    Uses the Kafka in BATON_KAFKA_BOOTSTRAP if set, else starts a local broker. Stops
    everything it started at the end of --duration or on Ctrl-C.
    """
    from agents.demo import run_demo

    sys.exit(run_demo(duration=duration, customers=customers, seed=seed))


@main.command()
@click.option("--duration", type=float, default=60.0, show_default=True, help="Seconds to run.")
@click.option("--customers", type=int, default=300, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--bad-share", type=float, default=0.02, show_default=True, help="Share of malformed messages."
)
@click.option(
    "--channels/--no-channels",
    default=True,
    show_default=True,
    help="Also play the channel services: answer actions with feedback.",
)
def simulate(duration: float, customers: int, seed: int, bad_share: float, channels: bool) -> None:
    """Produce simulated shopper traffic into BATON_KAFKA_BOOTSTRAP in real time, and
    answer the actions with feedback as simulated customers would."""
    from agents.channels import ChannelPlayer
    from agents.demo import simulate as run

    async def both() -> tuple[int, ChannelPlayer]:
        settings, stop = Settings(), asyncio.Event()
        player = ChannelPlayer(settings, seed)
        task = asyncio.create_task(player.run(stop)) if channels else None
        n = await run(settings, duration, customers, seed, bad_share)
        await asyncio.sleep(3.0 if channels else 0.0)  # feedback for the last actions
        stop.set()
        if task is not None:
            await task
        return n, player

    n, player = asyncio.run(both())
    fb = " ".join(f"{k}={v}" for k, v in sorted(player.sent.items())) or "-"
    click.echo(f"produced {n} messages; feedback {fb}")


def reference() -> str:
    """``docs/configuration.md``: every setting, its variable, default and meaning, made
    from the fields of ``Settings`` (``make docs`` writes it; a test fails when it drifts)."""
    rows = [
        "# Configuration",
        "",
        "<!-- generated from agents/settings.py by `make docs`: edit the fields there -->",
        "",
        "One settings object (`agents.settings.Settings`), read once from the environment at",
        "start; nothing is read at import time. Secrets are secret types, never logged.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        d = field.default
        dev = "a development key (refused unless `BATON_ALLOW_DEV_KEYS`)"
        shown = dev if isinstance(d, SecretStr) else "-" if d is None else f"`{d}`"
        rows.append(f"| `BATON_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
