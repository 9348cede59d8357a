# Two entry points on a fresh machine: `make run` (the law catalogue, writing the report)
# and `make test`. Both create the virtual environment first. torch is installed on its
# own, pinned to the CPU build, before the package: a bare `torch` requirement would pull
# several GB of CUDA packages.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUDGET ?= standard

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/learnmech check --budget $(BUDGET) --report report.html

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/trainer.py

clean:
	rm -rf $(VENV) report.html learnmech.sqlite
