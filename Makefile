# cocoer: common tasks. `make help` lists them.
#
# Python environment: the active virtual environment when there is one ($VIRTUAL_ENV or
# $CONDA_PREFIX); otherwise the project's own `.venv/` in this folder, created on first use
# from `python3` (override with `make setup BASE_PYTHON=python3.12`).
BASE_PYTHON ?= python3
ifneq ($(strip $(VIRTUAL_ENV)$(CONDA_PREFIX)),)
PYTHON ?= python
VENV_DEP :=
else
PYTHON ?= $(CURDIR)/.venv/bin/python
VENV_DEP := $(CURDIR)/.venv/bin/python
endif
BIN = $(dir $(shell command -v $(PYTHON) 2>/dev/null || echo $(PYTHON)))
# The lock of the tested environment (every package pinned; `make lock` regenerates it).
LOCK ?= requirements/lock.txt
# Installer: pip (default) or uv (a pip package, installed into the environment first).
INSTALLER ?= pip
RUN_DIR ?= logs/smoke

.DEFAULT_GOAL := help
.PHONY: help setup install lock venv smoke test test-slow test-all test-cluster test-gpu lint typecheck format bench bench-train bench-gpu params clean citation

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(CURDIR)/.venv/bin/python:
	$(BASE_PYTHON) -m venv $(CURDIR)/.venv

venv: $(VENV_DEP) ## create the project's .venv (only when no environment is active)

install: $(VENV_DEP) ## install the locked environment + cocoer (editable); no dependency resolution
ifeq ($(INSTALLER),uv)
	$(PYTHON) -m pip install uv==$$(sed -n 's/^uv==//p' $(LOCK))
	$(PYTHON) -m uv pip install --python $(PYTHON) --no-deps -r $(LOCK)
	$(PYTHON) -m uv pip install --python $(PYTHON) --no-deps -e .
else
	$(PYTHON) -m pip install --no-deps -r $(LOCK)
	$(PYTHON) -m pip install --no-deps -e .
endif
	$(PYTHON) -m cocoer.utils.envcheck $(LOCK)

lock: ## regenerate requirements/lock.txt from pyproject.toml (Linux x86_64, Python 3.11)
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --override requirements/overrides.txt \
	  -o $(LOCK)

setup: install smoke ## fresh machine: install, generate data, train + test the smoke experiment

smoke: ## generate the synthetic EMOTIC-layout data, train the tiny model, test it, print mAP
	COCOER_ROOT=$(CURDIR) $(BIN)cocoer-train experiment=smoke hydra.run.dir=$(RUN_DIR)/$$(date +%Y-%m-%d_%H-%M-%S)

test: ## the test suite (what CI runs); slow and GPU tests excluded
	$(PYTHON) -m pytest -q -n 2 --dist loadfile

test-slow: ## only the slow tests, and the fuzz suite with its long profile
	$(PYTHON) -m pytest -q -m slow
	HYPOTHESIS_PROFILE=slow $(PYTHON) -m pytest -q tests/safety/test_fuzz.py

test-all: ## every test but the cluster ones, slow ones included (GPU ones skip without a GPU)
	$(PYTHON) -m pytest -q -m "not cluster"

test-cluster: ## sweeps on a one-node SLURM cluster started here (root; installs slurm-wlm, munge)
	$(PYTHON) -m pytest -q -p no:xdist -m cluster tests/cluster

test-gpu: ## the GPU tests (CUDA, bf16, qpth, the windows cache and compile on the GPU); needs a GPU
	$(PYTHON) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'make test-gpu: no CUDA device')"
	$(PYTHON) -m pytest -q -m gpu

citation: ## validate CITATION.cff with cffconvert (installed in a throwaway environment)
	rm -rf $(CURDIR)/.cffvenv && $(BASE_PYTHON) -m venv $(CURDIR)/.cffvenv
	$(CURDIR)/.cffvenv/bin/pip install -q cffconvert==2.0.0
	$(CURDIR)/.cffvenv/bin/cffconvert --validate -i CITATION.cff
	rm -rf $(CURDIR)/.cffvenv

lint: ## ruff lint + format check + mypy
	$(BIN)ruff check src tests benchmarks
	$(BIN)ruff format --check src tests benchmarks
	$(BIN)mypy src/cocoer

typecheck: ## mypy over src/cocoer
	$(BIN)mypy src/cocoer

format: ## ruff autofix + format
	$(BIN)ruff check --fix src tests benchmarks
	$(BIN)ruff format src tests benchmarks

bench: ## benchmarks: workspace vs reference/qpth, model forward, data loading
	$(PYTHON) benchmarks/workspace_speed.py
	$(PYTHON) benchmarks/data_speed.py

bench-train: ## training throughput of the paper model on this CPU, B = 1, 2, 4; 3 min idle (benchmarks/results/train_throughput.json)
	$(PYTHON) benchmarks/train_throughput.py --profile cpu

bench-gpu: ## training throughput on one GPU, EMOTIC-sized epoch included (benchmarks/results/gpu.json)
	$(PYTHON) benchmarks/train_throughput.py --profile gpu

params: ## parameter count of the paper model (no weights needed)
	$(BIN)cocoer-params

clean: ## remove logs and generated data
	rm -rf logs data .pytest_cache
