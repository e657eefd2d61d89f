"""The container image, built from the project's ``Dockerfile`` with buildah and run.

No container registry is reachable here, so the base image is made the way the
Dockerfile's header says: Debian bookworm with Python 3.11 from Debian's packages by
``mmdebstrap``, imported with ``podman import`` (cached between runs under
``~/.cache/baton-image``, keyed by the command). It also trusts the CA certificates of
this machine (``/usr/local/share/ca-certificates``), as a company's base image trusts
its proxy: ``pip`` in the build goes through it to PyPI. buildah builds the Dockerfile
on it (``--isolation=chroot``, vfs storage, Docker format so the HEALTHCHECK is kept),
then ``buildah run`` runs inside the image: ``baton --help``, the user, and a worker
against the test broker that must become ready, answer its HEALTHCHECK command and
process events. ``podman run`` is not used: its runtime may not set rlimits here.
A missing tool fails the test (``deploy/setup.sh`` installs them).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from agents.demo import scrape, wait_healthy
from agents.localkafka import free_port
from pipeline.simulator import event_doc
from tests.kafkaio import produce

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.image]

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "baton-image"
CAS = Path("/usr/local/share/ca-certificates")
BASE_CMD = [  # mmdebstrap's arguments, less the output
    "--variant=apt",
    "--include=python3,python3-venv,ca-certificates",
    '--customize-hook=mkdir -p "$1/usr/local/share/ca-certificates"'
    f' && cp {CAS}/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null;'
    ' chroot "$1" update-ca-certificates',
    "--format=tar",
    "bookworm",
]


def tool(name: str) -> str:
    exe = shutil.which(name)
    assert exe, f"{name} is missing: run deploy/setup.sh (Debian package {name!r})"
    return exe


def run(*cmd: str, timeout: float = 900) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd[:6])}...: {out.stdout[-3000:]}{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def buildah() -> list[str]:
    storage = CACHE / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    flags = [f"--root={storage}", f"--runroot={CACHE / 'run'}", "--storage-driver=vfs"]
    return [tool("buildah"), *flags]


@pytest.fixture(scope="module")
def base(buildah: list[str]) -> str:
    """A bookworm + Python 3.11 image, made with mmdebstrap once per command."""
    key = hashlib.sha256(json.dumps(BASE_CMD).encode()).hexdigest()[:12]
    name = f"localhost/baton-base:{key}"
    if subprocess.run([*buildah, "inspect", name], capture_output=True).returncode == 0:
        return name
    tar = CACHE / f"base-{key}.tar"
    began = time.monotonic()
    run(tool("mmdebstrap"), *BASE_CMD, str(tar))
    podman = [tool("podman"), *buildah[1:]]
    run(*podman, "import", str(tar), name)
    tar.unlink()
    print(f"image: base {name} made by mmdebstrap in {time.monotonic() - began:.0f} s")
    return name


@pytest.fixture(scope="module")
def image(buildah: list[str], base: str) -> Iterator[str]:
    name = "localhost/baton:test"
    began = time.monotonic()
    build = [*buildah, "build", "--isolation=chroot", "--format=docker", "--layers"]
    run(*build, f"--build-arg=BASE={base}", "-t", name, "-f", str(ROOT / "Dockerfile"), str(ROOT))
    print(f"image: built {name} on {base} with buildah in {time.monotonic() - began:.0f} s")
    yield name


@pytest.fixture
def container(buildah: list[str], image: str) -> Iterator[str]:
    ctr = run(*buildah, "from", image).strip()
    yield ctr
    subprocess.run([*buildah, "rm", ctr], capture_output=True)


def test_the_image_is_built_as_documented(buildah: list[str], image: str) -> None:
    info = json.loads(run(*buildah, "inspect", image))
    config = info["Docker"]["config"]
    assert config["User"] == "10001:10001", "not root"
    assert config["Entrypoint"] == ["baton"] and config["Cmd"] == ["worker"]
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    assert "6066/tcp" in config["ExposedPorts"]


def test_baton_runs_inside_the_image(buildah: list[str], container: str) -> None:
    inside = [*buildah, "run", "--isolation=chroot", container, "--"]
    assert "Usage: baton" in run(*inside, "baton", "--help")
    assert run(*inside, "id", "-u").strip() == "10001"
    assert run(*inside, "python3", "-c", "import sys; print(sys.version[:4])").strip() == "3.11"


def test_a_worker_in_the_image_processes_events(
    buildah: list[str], container: str, kafka, prefix: str
) -> None:
    port = free_port()
    env = {
        "BATON_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "BATON_TOPIC_PREFIX": prefix,
        "BATON_WEB_PORT": str(port),
        "BATON_WEB_HOST": "127.0.0.1",
        "BATON_ALLOW_DEV_KEYS": "true",
    }
    flags = [f"--env={k}={v}" for k, v in env.items()]
    cmd = [*buildah, "run", "--isolation=chroot", *flags, container, "--", "baton", "worker"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_healthy(port, proc, timeout=120)
        health = [*buildah, "run", "--isolation=chroot", container, "--", "python3", "-c"]
        url = f"http://127.0.0.1:{port}/healthz"
        run(*health, f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2)")
        now = time.time()
        docs = [event_doc(f"i{i}", "page_view", now, f"c{i}", {"url": "/"}) for i in range(20)]
        msgs = [(f"{prefix}events.clickstream", d["customer_id"].encode(), orjson.dumps(d))
                for d in docs]  # fmt: skip
        asyncio.run(produce(kafka.bootstrap, msgs))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = sum(scrape(port).get("baton_events_processed_total", {}).values())
            if done == len(docs):
                break
            time.sleep(0.5)
        assert done == len(docs)
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print(f"--- worker in the image (tail) ---\n{out.decode(errors='replace')[-2000:]}")
