# Each target installs what it needs first (scripts/install.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test demo bench

install:
	VENV=$(VENV) bash scripts/install.sh

test: install
	$(PY) -m pytest tests

bench: install
	$(PY) benchmarks/bench_dist_loss.py
