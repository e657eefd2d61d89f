"""The Kubernetes manifests in ``deploy/kubernetes`` are valid, offline.

Core resources are checked strictly (unknown fields refused) by ``kubernetes-validate``
against the schemas it ships, for the oldest and the newest Kubernetes it knows of
here. The PodMonitor and PrometheusRule are checked against the
``openAPIV3Schema`` of the Prometheus operator's own CRDs (v0.85.0, from the Go module
proxy, checked by sha256 and cached in ``.cache/``), which is what the API server
applies. A broken copy of each must fail, so the checks are real. The probes, the
volume, the user and the rules must also be the ones the docs promise.
"""

from __future__ import annotations

import hashlib
import io
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import jsonschema_rs
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
OPERATOR = "v0.85.0"
OPERATOR_SHA256 = "0bdb88ed823d0f2e86cf909638439b6ad1da744a228172c7411d9987527dc5d1"
OPERATOR_ZIP = (
    f"https://proxy.golang.org/github.com/prometheus-operator/prometheus-operator/@v/{OPERATOR}.zip"
)
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def manifests() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = {}
    for name in [*kustomization["resources"], "secret.example.yaml"]:
        doc = yaml.safe_load((K8S / name).read_text())
        docs[doc["kind"]] = doc
    return docs


@pytest.fixture(scope="module")
def crds() -> dict[str, Any]:
    """The v1 schema of each of the operator's CRDs, by kind."""
    cache = ROOT / ".cache" / f"prometheus-operator-{OPERATOR}.zip"
    if not cache.exists():
        cache.parent.mkdir(exist_ok=True)
        with urllib.request.urlopen(OPERATOR_ZIP, timeout=120) as r:
            cache.write_bytes(r.read())
    body = cache.read_bytes()
    assert hashlib.sha256(body).hexdigest() == OPERATOR_SHA256, "not the operator's release"
    out = {}
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        base = f"github.com/prometheus-operator/prometheus-operator@{OPERATOR}/example"
        for plural in ("podmonitors", "prometheusrules"):
            crd = yaml.safe_load(
                z.read(f"{base}/prometheus-operator-crd/monitoring.coreos.com_{plural}.yaml")
            )
            (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
            out[crd["spec"]["names"]["kind"]] = v1["schema"]["openAPIV3Schema"]
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_core_resources_are_valid(version: str) -> None:
    docs = manifests()
    for kind in ("ConfigMap", "Secret", "Service", "StatefulSet", "PodDisruptionBudget"):
        kubernetes_validate.validate(docs[kind], version, strict=True)
    broken = docs["StatefulSet"]
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_operator_resources_match_their_crds(crds: dict[str, Any]) -> None:
    docs = manifests()
    for kind in ("PodMonitor", "PrometheusRule"):
        validator = jsonschema_rs.validator_for(crds[kind])
        errors = [e.message for e in validator.iter_errors(docs[kind])]
        assert errors == [], f"{kind}: {errors}"
    broken = docs["PodMonitor"]
    broken["spec"]["podMetricsEndpoints"] = "metrics"
    assert not jsonschema_rs.validator_for(crds["PodMonitor"]).is_valid(broken)


def test_probes_volume_and_user_are_the_documented_ones() -> None:
    sts = manifests()["StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker["ports"][0]["containerPort"] == 6066
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    config = manifests()["ConfigMap"]["data"]
    assert mounts[claim["metadata"]["name"]] == config["BATON_DATA_DIR"]
    assert config["BATON_STORE"] == "rocksdb"
    secrets = {e["valueFrom"]["secretKeyRef"]["key"] for e in worker["env"]}
    assert secrets == set(manifests()["Secret"]["stringData"])
    assert manifests()["Service"]["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == manifests()["Service"]["metadata"]["name"]


def test_the_prometheus_rule_is_the_shipped_rules_file() -> None:
    """``make manifests`` writes it; editing only one of the two fails here."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "baton-rules.yml").read_text())
    assert manifests()["PrometheusRule"]["spec"]["groups"] == rules["groups"]
    monitor = manifests()["PodMonitor"]["spec"]
    assert monitor["jobLabel"] == "app.kubernetes.io/name"
    selector = monitor["selector"]["matchLabels"]["app.kubernetes.io/name"]
    assert selector == "baton", 'job="baton", as the rules and the dashboard expect'
