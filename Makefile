# shiftzoo. The two commands of the README:
#   make demo   trains the default shift network and its depthwise twin on the bundled digits and
#               prints the comparison (about a minute on 2 cores)
#   make test   runs the test suite
# Each installs what it needs first: into the active virtual environment, or into .venv (created
# here, with PYTHON) when none is active. PyTorch is the CPU build TORCH names. Nothing is
# recompiled when nothing changed (ninja keeps the objects in build/).
PYTHON ?= python3
TORCH ?= torch==2.13.0

ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.shiftzoo-installed

.PHONY: install demo test bench clean

$(PY):
	@$(PYTHON) -m venv $(VENV) || { echo "make: '$(PYTHON) -m venv $(VENV)' failed: install Python's venv module (Debian/Ubuntu: apt install python3-venv) or activate a virtual environment first" >&2; exit 1; }

# Dependencies and the editable install: again only when the packaging files change.
$(INSTALLED): setup.py pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade setuptools wheel ninja $(TORCH)
	MAX_JOBS=$${MAX_JOBS:-2} $(PY) -m pip install --no-build-isolation -e ".[test]"
	touch $(INSTALLED)

# Brings the compiled extension up to date (only what changed is recompiled).
install: $(INSTALLED)
	MAX_JOBS=$${MAX_JOBS:-2} $(PY) setup.py --quiet build_ext --inplace

demo: install
	$(PY) -m shiftzoo train

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m shiftzoo bench

clean:
	rm -rf build dist *.egg-info shiftzoo/_C*.so backends/generated .venv
