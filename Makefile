# Two commands: `make run` starts the whole product, `make test` runs the whole suite.
# Both set up whatever is missing first (virtualenv, packages; models and data on first start).

SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip --quiet --disable-pip-version-check

.PHONY: run test bench lint setup clean-data chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	@# vLLM's CPU build needs torch 2.13.0+cpu; install it first so nothing pulls a CUDA torch.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[worker,dev]'
	@# The PyPI builds of these are CUDA-linked and break vLLM's import on the CPU; the text path needs none.
	$(PIP) uninstall -y torchvision torchaudio torchcodec 2>/dev/null || true
	@touch $(STAMP)

run: $(STAMP)
	@$(PY) -m stack run

test: $(STAMP) chromium
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# Browser tests drive Debian's Chromium (Playwright never downloads a browser here).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "The browser tests need Chromium: sudo apt-get install chromium"; exit 1; fi; }

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) -m benchmarks

clean-data:
	rm -rf var/
