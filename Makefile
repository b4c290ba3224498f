# aiplane: `make run` starts the whole system locally, `make test` runs every test tier.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CDK_CLI_VERSION := 2.1148.1
# Every install comes from the lock files; `make lock` regenerates them from pyproject.toml.
DEV_LOCK := requirements/dev.lock
LAMBDA_LOCK := requirements/lambda.lock
STAMP := $(VENV)/.installed-$(shell cat $(DEV_LOCK) pyproject.toml | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20
export CDK_DISABLE_CLI_TELEMETRY = true

.PHONY: install lock run test lint typecheck unit integration infra packaged e2e synth deploy bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(DEV_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

# Dev/test environment (Python 3.11 here) and the Lambda dependencies layer (Python 3.12, manylinux).
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o $(DEV_LOCK)
	$(BIN)/uv pip compile --quiet pyproject.toml --python-version 3.12 --python-platform x86_64-manylinux_2_28 -o $(LAMBDA_LOCK)

run: $(STAMP)
	$(BIN)/python -m aiplane_local

# Every tier, the linter and the type checker: the README's test command, and what CI runs.
test: lint typecheck unit integration infra packaged e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Plain functions and classes, without moto or network.
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

# Domain and handlers against the embedded AWS (moto).
integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

# The CDK templates, synthesized offline, with cdk-nag.
infra: $(STAMP)
	$(BIN)/python -m pytest tests/infra

# The built Lambda assets, imported and invoked in an isolated Python 3.12.
packaged: $(STAMP)
	$(BIN)/python -m pytest tests/packaged

# The local server as `make run` starts it, over HTTP.
e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

node_modules/.bin/cdk:
	npm install --no-save --no-audit --no-fund aws-cdk@$(CDK_CLI_VERSION)

synth: $(STAMP) node_modules/.bin/cdk
	for env in dev prod; do node_modules/.bin/cdk synth --quiet --no-notices --app '$(BIN)/python infra/cdk/app.py' -c env=$$env -o cdk.out/$$env || exit 1; done

deploy: $(STAMP) node_modules/.bin/cdk
	@test -n "$(ENV)" || (echo "usage: make deploy ENV=dev|prod"; exit 2)
	node_modules/.bin/cdk deploy --all --no-notices --app '$(BIN)/python infra/cdk/app.py' -c env=$(ENV)

bench: $(STAMP)
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/warm.py
	$(BIN)/python bench/provision.py
	$(BIN)/python bench/agent.py

clean:
	rm -rf $(VENV) cdk.out node_modules build .pytest_cache
