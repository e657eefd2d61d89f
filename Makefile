# Baton. `make demo` and `make test` each set everything up first (deploy/setup.sh).
.DEFAULT_GOAL := help
DURATION ?= 60

.PHONY: help setup lock docs demo test test-unit lint typecheck broker bench bench-latency bench-versions

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## install system packages, .venv and the Kafka jars (idempotent)
	@bash deploy/setup.sh

lock: setup ## pin every dependency again from pyproject.toml into requirements.lock (uv); the image's runtime subset too
	.venv/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu -o requirements.lock --quiet
	.venv/bin/uv pip compile pyproject.toml -c requirements.lock --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --generate-hashes -o deploy/requirements.runtime.lock --quiet

docs: setup ## write the generated reference pages (docs/configuration.md)
	.venv/bin/python -c 'from agents.settings import reference; print(reference(), end="")' \
	  > docs/configuration.md

demo: setup ## run the local demo (own Kafka broker, worker, simulated shoppers) for DURATION s
	.venv/bin/baton demo --duration $(DURATION)

test: setup ## run the whole test suite, broker-backed tests included
	.venv/bin/pytest

test-unit: setup ## run only the tests that need no broker
	.venv/bin/pytest -m "not broker"

lint: setup ## ruff lint and format check
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

typecheck: setup ## mypy strict on schemas/, pipeline/ and agents/
	.venv/bin/mypy

bench: setup ## run every benchmark (about 18 minutes); JSON, PNG and summary.md in bench/results
	.venv/bin/python -m bench

bench-latency: setup ## latency paced by a separate process: p50/p95/p99/max and the worst second, PNG
	.venv/bin/python -m bench.latency --rates 1000 2000 --shares 0.25 0.5 0.8 0.95 \
	  --json bench/results/latency.json --png bench/results/latency.png

REF ?= acf5ef8
bench-versions: setup ## this tree against commit REF in one run: drain rate, CPU per event, p99 at 50 %
	.venv/bin/python -m bench.versions --ref $(REF)

broker: setup ## run a local Kafka broker in the foreground
	.venv/bin/baton broker
