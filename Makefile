# The two commands: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages are installed with sudo when not running as root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends

.PHONY: demo test e2e chaos lint typecheck unit servers nginx chromium wrk bench profile clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[redis,memcached,flask,encryption,asgi,fastapi,quart,cli,metrics,sqlalchemy]' --group dev
	touch $@

# Real servers the tests start themselves (never a shared one), and a browser.
servers: nginx chromium
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server from Debian packages"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) redis-server; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing postgresql from Debian packages"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) postgresql; }
	@command -v memcached >/dev/null 2>&1 || { \
		echo "installing memcached from Debian packages"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) memcached; }

nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
		echo "installing nginx from Debian packages"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) nginx; }

# Debian's Chromium for the browser tests; Playwright drives it (no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium from Debian packages"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) chromium; }

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The fast loop: no servers.
unit: $(VENV)/.installed
	$(BIN)/pytest -m "not integration"

test: $(VENV)/.installed servers lint typecheck
	$(BIN)/pytest

# A real browser through nginx to two instances; screenshots in artifacts/e2e/.
e2e: $(VENV)/.installed servers
	$(BIN)/pytest -m e2e

# Load with faults against a fleet behind nginx, every scenario at full scale (~3 min).
chaos: $(VENV)/.installed servers
	CHAOS=full $(BIN)/pytest -m chaos tests/chaos

DEMO_PORT ?= 8000
# make demo: SQLite; REDIS=1: a private redis-server; SESSION_REDIS_URL=...: that Redis.
demo: $(VENV)/.installed nginx $(if $(REDIS),servers)
	$(BIN)/python examples/demo.py --port $(DEMO_PORT) $(if $(SESSION_REDIS_URL),--redis $(SESSION_REDIS_URL),$(if $(REDIS),--redis))

# Peers (Flask-Session) go into .venv for the benchmark only; see bench/.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --group bench
	touch $@

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing wrk from Debian packages"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) wrk; }

# Every benchmark in one run; results in bench/results/ (see README "Benchmarks").
bench: $(VENV)/.bench-installed servers wrk
	$(BIN)/python -m bench.run

# Where the time of one read, one 2 KB read and one write goes (bench/profile.py).
profile: $(VENV)/.bench-installed servers
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build src/*.egg-info
