# One entry point for people and CI. `make demo` and `make test` are the README's quick start.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Debian packages the browser test needs: headless Chromium and fonts for every script Beacon ships.
DEBIAN_PACKAGES := chromium fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji gettext

.PHONY: install system-deps demo test lint audit typecheck pytest bench bench-export bench-intake bench-burst bench-growth clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Installs Chromium and fonts with apt-get when they are missing (needs root, as on CI and the dev machines).
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "Missing Debian packages:$$missing (run 'sudo make system-deps'; the browser test is skipped without them)"; \
	  fi; \
	fi

demo: install
	$(VENV)/bin/beacon demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -q -c pyproject.toml -r bot handlers storage sandbox
	$(PY) scripts/audit.py

# Known vulnerabilities in the venv's packages: pip-audit, and where it cannot look a version up (here),
# PyPI's advisories for the latest release; fails on a vulnerability or when nothing could be checked.
audit: install
	$(PY) scripts/audit.py

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest -q

# The whole suite: lint, strict types, then every test (unit, storage, sandbox, end to end, browser).
test: system-deps lint typecheck pytest

bench: install
	$(PY) bench/sandbox_roundtrip.py

# Exports of 100,000 and 1,000,000 synthetic cases (time, peak memory); databases cached in the temp folder.
bench-export: install
	$(PY) bench/export.py

# 1,000 reporters through the whole flow, Beacon against a minimal PicklePersistence bot, same load, same run.
bench-intake: install
	$(PY) bench/intake.py

# 10,000 reports within a minute: none lost, P1 alerts first, outbox drain time.
bench-burst: install
	$(PY) bench/burst.py

# /queue, corroboration and /stats at 10k, 100k and 1M cases.
bench-growth: install
	$(PY) bench/growth.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
