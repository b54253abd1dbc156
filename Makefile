# cocoer: common tasks. `make help` lists them.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# torch/torchvision: the newest releases this project is tested with
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
RUN_DIR ?= logs/smoke

.DEFAULT_GOAL := help
.PHONY: help setup install smoke test test-slow test-all lint typecheck format bench params clean

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

install: ## install cocoer (editable) with the dev extras into the current Python
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -e '.[dev]'

setup: install smoke ## fresh machine: install, generate data, train + test the smoke experiment

smoke: ## generate the synthetic EMOTIC-layout data, train the tiny model, test it, print mAP
	COCOER_ROOT=$(CURDIR) cocoer-train experiment=smoke hydra.run.dir=$(RUN_DIR)/$$(date +%Y-%m-%d_%H-%M-%S)

test: ## the test suite (what CI runs); slow and GPU tests excluded
	$(PYTHON) -m pytest -q -n 2 --dist loadfile

test-slow: ## only the slow tests
	$(PYTHON) -m pytest -q -m slow

test-all: ## every test, slow ones included (GPU ones skip without a GPU)
	$(PYTHON) -m pytest -q -m "slow or not slow"

lint: ## ruff lint + format check + mypy
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	mypy src/cocoer

typecheck: ## mypy over src/cocoer
	mypy src/cocoer

format: ## ruff autofix + format
	ruff check --fix src tests benchmarks
	ruff format src tests benchmarks

bench: ## benchmarks: workspace vs reference/qpth, model forward, data loading
	$(PYTHON) benchmarks/workspace_speed.py
	$(PYTHON) benchmarks/data_speed.py

params: ## parameter count of the paper model (no weights needed)
	cocoer-params

clean: ## remove logs and generated data
	rm -rf logs data .pytest_cache
