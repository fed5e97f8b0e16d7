# Two entry points: `make book` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# workers of make test and chapters executed at once by make book (default: every core)
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: install test test-fast lint format book book-smoke sync colab clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

install: $(STAMP)

## Unit tests, conventions checks and every chapter run with papermill in the smoke profile,
## on JOBS workers (default: every core; each test runs torch on one thread). Tests that
## share an expensive fixture stay on one worker (pytest-xdist's xdist_group).
test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup

## The contributor's loop: unit and conventions tests, no chapter runs, no fresh-venv installs (about 1 minute).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -m "not notebook and not slow"

## Lint and format check at 88 columns (ruff, configured in pyproject.toml): package, tests,
## tools, benchmarks and the chapters' code cells (through their paired .ipynb).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Format everything in place, the chapters included, and carry the changes to their .py sources.
format: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.py
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/jupytext --sync notebooks/*.ipynb
	$(MAKE) colab

## Execute every chapter (profile: $$TRUSTML_PROFILE, default book) and render HTML into _build/html.
## A build in another profile than the last one starts from an empty _build (tools/build_book.py).
## Chapters are executed JOBS at a time before rendering.
book: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python tools/build_book.py --jobs $(JOBS)

## The same build in the smoke profile (seconds per chapter), from a clean execution cache.
book-smoke: $(STAMP)
	rm -rf _build
	TRUSTML_PROFILE=smoke $(MAKE) book

## Regenerate each paired .ipynb from its py:percent source (outputs stripped), then the
## Colab edition.
sync: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.py
	$(MAKE) colab

## The Colab edition the badges open (colab/*.ipynb): the chapters with plain Markdown.
colab: $(STAMP)
	$(BIN)/python -m trustml_ref.teaching colab-edition

clean:
	rm -rf _build .pytest_cache .hypothesis
