# Each target installs what it needs first (scripts/install.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-slow bench

# DEPLOY=1 adds the deploy extra (mmdeploy, onnx, onnxruntime).
DEPLOY ?= 0

install:
	VENV=$(VENV) DEPLOY=$(DEPLOY) bash scripts/install.sh

demo: install
	$(PY) tools/demo.py

# The deploy extra too: the suite exports students to ONNX. In parallel
# over the cores, a test module to a worker (its fixtures are shared within
# it); the slowest tests are listed at the end. make test keeps within 10
# minutes on 2 cores; the longest end-to-end runs (marked slow: the demos,
# several processes, the benchmarks, each YOLO config) are make test-slow,
# which CI runs after it (.ci/run).
test:
	VENV=$(VENV) DEPLOY=1 bash scripts/install.sh
	$(PY) -m pytest tests -m "not slow" -n auto --dist loadscope --durations=30

test-slow:
	VENV=$(VENV) DEPLOY=1 bash scripts/install.sh
	$(PY) -m pytest tests -m slow -n auto --dist loadscope --durations=30

bench: install
	$(PY) benchmarks/bench_dist_loss.py
	$(PY) benchmarks/bench_train_step.py
