# Each target installs what it needs first (scripts/install.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test bench

install:
	VENV=$(VENV) bash scripts/install.sh

demo: install
	$(PY) tools/demo.py

# In parallel over the cores, a test module to a worker (its fixtures are
# shared within it); the slowest tests are listed at the end.
test: install
	$(PY) -m pytest tests -n auto --dist loadscope --durations=30

bench: install
	$(PY) benchmarks/bench_dist_loss.py
	$(PY) benchmarks/bench_train_step.py
