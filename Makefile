# Everything a fresh machine needs: python3 (>=3.11) and make. The venv bootstraps itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export K2_HOME ?= $(CURDIR)/.k2
export DAGSTER_HOME ?= $(K2_HOME)/dagster

.PHONY: venv demo test lint ui bench browser compose clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

# The one install step, from uv.lock: developers and CI get the dev tools; docker/Dockerfile runs
# `make venv EXTRAS=` for the image, so the image holds exactly the locked runtime packages.
EXTRAS ?= dev
$(VENV)/.synced: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --inexact $(addprefix --extra ,$(EXTRAS)) --python $(BIN)/python
	touch $@

venv: $(VENV)/.synced

demo: venv
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/k2 demo

# The UI test drives Debian's chromium (Playwright's own browser download cannot work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The deploy tests validate docker/compose.yaml with Debian's docker-compose (1.29 needs no Docker engine for that).
compose:
	@command -v docker-compose >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

test: venv browser compose
	$(BIN)/ruff check k2_lakehouse k2_lakehouse_tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check k2_lakehouse k2_lakehouse_tests benchmarks
	$(BIN)/mypy

# dagster dev runs the schedules and sensors too; runs queue one at a time (an embedded store admits one process).
ui: venv
	$(BIN)/python -m k2_lakehouse.instance
	$(BIN)/dagster dev -w workspace.yaml

# Every figure the README quotes; each script prints its own table (tens of minutes: cost_growth builds an
# 8M-trade hour and a year of sensor history).
bench: venv
	for b in warm_ingest_and_seal cold_offload cold_offload_s3 offload_step offload_run cost_growth cold_maintenance staleness_sensor deploy_resources spark_cluster; do $(BIN)/python -W ignore benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(K2_HOME) $(VENV)
