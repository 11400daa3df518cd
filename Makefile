# shiftzoo: `make install` builds and installs, `make test` runs the test suite (installing first),
# `make bench` runs the speed comparison. PYTHON picks the interpreter.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install test bench clean

install:
	$(PIP) install torch==2.13.0 ninja einops pyyaml pytest numpy
	MAX_JOBS=$${MAX_JOBS:-2} $(PIP) install --no-build-isolation -e .

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) benchmarks/bench_shift.py

clean:
	rm -rf build dist *.egg-info shiftzoo/_C*.so backends/generated
