# Each target installs what it needs first (scripts/install.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test bench

install:
	VENV=$(VENV) bash scripts/install.sh

demo: install
	$(PY) tools/demo.py

test: install
	$(PY) -m pytest tests

bench: install
	$(PY) benchmarks/bench_dist_loss.py
	$(PY) benchmarks/bench_train_step.py
