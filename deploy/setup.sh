#!/usr/bin/env bash
# Sets up everything Baton needs on a fresh Debian-like machine, idempotently:
#   1. system packages: Java 17 (broker), Maven (broker jars), kcat (end-to-end tests),
#      prometheus (the server and promtool, for the metrics, rules and dashboard tests),
#      mmdebstrap, buildah and podman (the image test), docker-compose (compose.yaml's
#      check);
#   2. a Python 3.11 virtualenv in .venv with Baton and its dev tools, at the versions
#      in requirements.lock (made by uv from pyproject.toml: `make lock`);
#   3. the Apache Kafka jars, from Maven Central through deploy/kafka/pom.xml (cached).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kcat >/dev/null || need+=(kcat)
command -v promtool >/dev/null || need+=(prometheus)
for tool in mmdebstrap buildah podman docker-compose; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
command -v newuidmap >/dev/null || need+=(uidmap)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

py=""
for c in python3.11 python3; do
  if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    py=$c; break
  fi
done
if [ -z "$py" ]; then
  for c in python3.12 python3; do command -v "$c" >/dev/null && { py=$c; break; }; done
fi
[ -n "$py" ] || { echo "setup: Python 3.11 is needed" >&2; exit 1; }

stamp=".venv/.baton-installed"
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv with $py and installing Baton" >&2
  "$py" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi

.venv/bin/python -c 'from agents.localkafka import ensure_jars; print("setup: kafka jars in", ensure_jars())' >&2
