# The two commands a newcomer needs: `make demo` and `make test` (each sets up what it needs first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TM_VENV := .venv-tm
PIP_FLAGS ?= --disable-pip-version-check -q

.PHONY: help setup tex tm test demo bench mutation clean

help:
	@echo "make demo   set up (venv, packages, Debian TeX) and build the demo book (HTML + PDF)"
	@echo "make test   set up and run every test (unit, property, notebook execution, book build)"
	@echo "make bench  integration benchmark on a freshly simulated realistic run"
	@echo "make mutation  mutation scores of the analysis core (mutmut; MUTATION_SAMPLE=0 runs every mutant, hours)"

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-report.txt requirements-test.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) -r requirements-report.txt -r requirements-test.txt
	$(BIN)/pip install $(PIP_FLAGS) --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (s2book)" >/dev/null
	touch $(STAMP)

# Tektronix's own reader (tm_data_types) needs numpy<2, so it lives in its own venv; used by the interop test.
tm: $(TM_VENV)/.installed

$(TM_VENV)/.installed:
	test -x $(TM_VENV)/bin/python || $(PYTHON) -m venv $(TM_VENV)
	$(TM_VENV)/bin/pip install $(PIP_FLAGS) tm_data_types==0.5.0
	touch $@

tex:
	bash scripts/install-debian.sh

test: setup tm tex
	$(BIN)/python -m pytest

demo: setup tex
	$(BIN)/s2book demo

bench: setup
	$(BIN)/python benchmarks/bench_integration.py --jobs 1
	$(BIN)/python benchmarks/bench_integration.py --jobs 2

# Mutation testing (scripts/mutation.py, config in pyproject.toml [tool.mutmut]): one mutmut child under nice
# (the machine is shared); a fixed-seed sample of MUTATION_SAMPLE reached mutants per module, 0 = all of them.
# Writes mutation-scores.md; mutmut's working copy is mutants/ (git-ignored, reused between runs).
MUTATION_SAMPLE ?= 40
mutation: setup
	$(BIN)/pip install $(PIP_FLAGS) -r requirements-mutation.txt
	nice -n 10 $(BIN)/python scripts/mutation.py --sample $(MUTATION_SAMPLE) --seed 13

clean:
	rm -rf _build demo book/runs .pytest_cache build
