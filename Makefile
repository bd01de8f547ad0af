PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test test-fast bench load install install-dev browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_user
	$(BIN)/honcho start

# Every test: web, engine, integration through the real engine, scale-out and browser.
test: install-dev browser
	$(BIN)/python manage.py check
	$(BIN)/python -m pytest

# The quick tier while working: everything not marked slow.
test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python -m engine bench

# The status page at 100 polls/s under gunicorn while a render runs; writes docs/performance.md.
load: install
	VAR_DIR=$(CURDIR)/var/load $(BIN)/python manage.py load

clean:
	rm -rf var/test var/test.sqlite3 .pytest_cache
