# Deskpilot: `make demo` runs the copilot, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo up test lint format clean-data

install: $(STAMP)

# torch first, pinned to the CPU build: an unpinned torch pulls several GB of CUDA wheels.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: install
	$(PY) manage.py up --demo

up: install
	$(PY) manage.py up

test: install chromium
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy apps

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Stops nothing: run it with `up` stopped. Removes the local database, Redis data and secret key.
clean-data:
	rm -rf $${DESKPILOT_HOME:-.deskpilot}

# Browser tests and screenshots drive Debian's Chromium (never Playwright's own download).
# Installed when missing; if that fails (no root, no registry), the browser tests skip.
CHROMIUM ?= /usr/bin/chromium
.PHONY: chromium screenshots
chromium:
	@test -x $(CHROMIUM) || command -v chromium >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium could not be installed: the browser tests will skip"

# PNGs of the inbox, a ticket, the widget (desktop and phone) and the flagged view, made
# on a throwaway test database, into screenshots/ (git-ignored).
screenshots: install chromium
	$(PY) -m pytest tests/browser/screenshots.py -q -p no:cacheprovider
