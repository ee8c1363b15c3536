# One command to set up and run the demo, one to set up and run the tests:
#   make demo    make test
# Setup creates .venv if missing and installs the CPU build of torch 2.13.0
# *before* the package, so that pip never resolves a plain `torch`
# requirement to a multi-GB CUDA build. It is skipped when nothing changed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.skhybrid-setup

.PHONY: demo test docs setup clean

demo: setup
	$(VENV)/bin/skhybrid demo

test: setup
	$(PY) -m pytest -q

# The documentation site, examples run, in docs/_build/html (the tests build
# it too, warnings as errors, without running the examples).
docs: setup
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --disable-pip-version-check -q "torch==2.13.0"
	$(PIP) install --disable-pip-version-check -q -e ".[test,plot,audio,persistence,dask,docs]"
	touch $(STAMP)

clean:
	rm -rf skhybrid-out build src/*.egg-info .pytest_cache docs/_build docs/auto_examples \
		docs/sg_execution_times.rst
