# Targets: demo, test, lint, bench, synth, lock, upgrade. `make test` installs what it needs first.
# Tests, lint, bench and CI run on one locked set (requirements/dev.txt, with hashes); users who
# `pip install ddbtrail` get pyproject.toml's ranges. See docs/development.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
LOCK := requirements/dev.txt
LOCK_ARGS := --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--custom-compile-command "make lock" --quiet

.PHONY: demo test lint bench synth lock upgrade clean

# The venv holds exactly the lock (uv pip sync removes anything else) plus ddbtrail itself,
# built with the locked hatchling.
$(STAMP): $(LOCK) requirements/build.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync -q --python $(PY) --require-hashes $(LOCK)
	$(UV) pip install -q --python $(PY) --no-deps --build-constraints requirements/build.txt -e .
	$(PY) scripts/check-lock $(LOCK)
	touch $@

demo: $(STAMP)
	$(VENV)/bin/ddbtrail demo

# The Trino suite runs in one process on one local server (docs/trino.md); it skips without
# Java 24+ unless DDBTRAIL_REQUIRE_TRINO=1 (CI).
test: $(STAMP)
	bash scripts/ensure-chromium
	bash scripts/ensure-jq
	$(PY) -m pytest -n 2 -p no:cacheprovider -m "not trino"
	$(PY) -m pytest -p no:cacheprovider -m trino

lint: $(STAMP)
	$(VENV)/bin/ruff check src handlers infra tests bench scripts/check-lock
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

synth: $(STAMP)
	CDK_OUTDIR=cdk.out $(PY) infra/app.py

# Re-resolve the locks from pyproject.toml without upgrading what still fits (after adding a
# dependency). `make upgrade` moves everything to the newest versions instead.
lock:
	uv --version >/dev/null 2>&1 || python3 -m pip install -q uv==$(UV_VERSION)
	uv pip compile pyproject.toml --extra dev -c requirements/constraints.txt $(LOCK_ARGS) -o $(LOCK)
	uv pip compile requirements/build.in $(LOCK_ARGS) -o requirements/build.txt
	uv pip compile requirements/lambda.in --generate-hashes --python-version 3.12 \
		--python-platform aarch64-manylinux_2_28 --custom-compile-command "make lock" --quiet \
		-o requirements/lambda.txt

upgrade:
	bash scripts/upgrade

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
