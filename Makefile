# Targets: demo, test, lint, bench, synth. `make test` installs everything it needs first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint bench synth clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/ddbtrail demo

test: $(STAMP)
	bash scripts/ensure-chromium
	$(PY) -m pytest -n 2 -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check src handlers infra tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

synth: $(STAMP)
	CDK_OUTDIR=cdk.out $(PY) infra/app.py

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
