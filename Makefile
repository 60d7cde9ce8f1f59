# The two commands: `make run` (local stack) and `make test` (every test and lint).
# Both set everything up on a fresh machine with only Python 3.11+ and make.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
SAM_VENV := .sam-venv
BIN := $(VENV)/bin
# sam build needs the Lambda runtime's python3.13 on PATH (the libraries ship as its
# bytecode): pyenv's (these versions), the system's, or uv's own; `make build` finds it.
SAM_PYENV_VERSION ?= 3.11.7:3.13.0
RUNTIME_BIN := $(TOOLS)/runtime-bin

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export SAM_CLI_TELEMETRY := 0

.PHONY: run test lint test-python bench stress install sam-tools build lock clean email-screenshots

run: install
	$(BIN)/rft run

test: lint test-python

lint: install sam-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template-file template.yaml

# alembic check runs inside the suite (tests/db/test_migrations.py), against
# the PostgreSQL the suite starts.
test-python: install
	$(BIN)/python -m pytest

# Measurements, not tests: `make bench` (full, writes bench/results/latest.json and
# docs/performance.md) or `make bench BENCH_ARGS=--quick` (under 2 minutes).
bench: install sam-tools
	$(BIN)/python -m bench $(BENCH_ARGS)

# Reliability scenarios that take minutes (5 minutes of mixed load, then about 2 of
# contract fuzzing, by default; STRESS_ARGS="--only contract" picks scenarios):
# a table of cases tried and failures; exits non-zero on any failure.
stress: install
	$(BIN)/python -m stress $(STRESS_ARGS)

# Every kind of email checked in the machine's Chromium (apt-get install chromium) and
# saved as docs/emails/<kind>.png; Playwright drives it and downloads no browser.
email-screenshots: install
	$(UV) run --frozen --group browser rft mail screenshots

build: sam-tools
	@runtime="$$(PYENV_VERSION=$(SAM_PYENV_VERSION) $(UV) python find --no-project 3.13 2>/dev/null)" \
	|| { echo "make build needs Python 3.13, Lambda's runtime: UV_PYTHON_DOWNLOADS=manual $(UV) python install 3.13 (or pyenv, or your package manager)" >&2; exit 1; }; \
	mkdir -p $(RUNTIME_BIN) && ln -sf "$$runtime" $(RUNTIME_BIN)/python3.13 && \
	PATH="$(abspath $(RUNTIME_BIN)):$$PATH" PYENV_VERSION=$(SAM_PYENV_VERSION) \
	$(SAM_VENV)/bin/sam build --template-file template.yaml

install: $(VENV)/.synced

sam-tools: $(SAM_VENV)/.synced

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

$(SAM_VENV)/.synced: tools/requirements-sam.lock | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(SAM_VENV)
	$(UV) pip sync --quiet --python $(SAM_VENV)/bin/python $<
	touch $@

# Re-resolve dependencies after editing pyproject.toml or tools/requirements-sam.in.
lock: | $(UV)
	$(UV) lock --python $(PYTHON)
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --no-header \
		| grep -v -E '^(botocore|urllib3)==|^ ' > layers/common/requirements.txt
	$(UV) pip compile --quiet --python $(PYTHON) --generate-hashes \
		tools/requirements-sam.in -o tools/requirements-sam.lock

clean:
	rm -rf $(VENV) $(SAM_VENV) $(TOOLS) .aws-sam .pytest_cache .ruff_cache
