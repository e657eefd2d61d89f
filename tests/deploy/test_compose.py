"""``compose.yaml`` is valid for Debian's ``docker-compose`` (its ``config`` command
checks the file against the Compose schema; a broken copy must fail it, so the check is
real), every file it mounts exists, and the pieces agree: Prometheus scrapes the
compose workers, Grafana is provisioned with the shipped dashboard and a Prometheus
data source. No Docker engine runs here, so nothing is started."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: run deploy/setup.sh (Debian package docker-compose)"
    cmd = [exe, "-f", str(path), "config"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=path.parent)


def resolved() -> dict:
    out = compose_config(COMPOSE)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def mounts(service: dict) -> list[tuple[str, str, bool]]:
    """A service's volumes as (source, target, is a bind mount), from either syntax."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
            out.append((source, target, source.startswith(("/", "."))))
        else:
            out.append((v["source"], v["target"], v.get("type") == "bind"))
    return out


def test_compose_file_is_valid_and_a_broken_one_is_not(tmp_path: Path) -> None:
    doc = resolved()
    services = doc["services"]
    assert {"kafka", "topics", "worker-1", "worker-2", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["worker-1"]["restart"] = {"not": "a policy"}
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    assert compose_config(tmp_path / "compose.yaml").returncode != 0


def test_workers_wait_for_the_topics_and_keep_their_state() -> None:
    services = resolved()["services"]
    assert services["topics"]["command"] == ["topics", "create"]
    for name in ("worker-1", "worker-2"):
        w = services[name]
        assert w["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert w["environment"]["BATON_STORE"] == "rocksdb"
        assert w["command"] == ["worker", "--no-create-topics"]
        assert any(t == "/var/lib/baton" and not bind for _, t, bind in mounts(w))


def test_every_mounted_file_exists() -> None:
    binds = [src for s in resolved()["services"].values() for src, _, bind in mounts(s) if bind]
    assert len(binds) >= 4
    for source in binds:
        assert Path(source).exists(), source


def test_prometheus_scrapes_the_workers_and_grafana_has_the_dashboard() -> None:
    services = resolved()["services"]
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for c in prom["scrape_configs"][0]["static_configs"] for t in c["targets"]}
    port = services["worker-1"]["environment"]["BATON_WEB_PORT"]
    assert targets == {f"worker-1:{port}", f"worker-2:{port}"}
    grafana = {t: Path(src) for src, t, _ in mounts(services["grafana"])}
    provisioning = grafana["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    boards = yaml.safe_load((provisioning / "dashboards/baton.yml").read_text())
    path = boards["providers"][0]["options"]["path"]
    assert any(t.startswith(path) and s.name == "baton-dashboard.json" for t, s in grafana.items())
