# aiplane: `make run` starts the whole system locally, `make test` runs every test tier.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CDK_CLI_VERSION := 2.1148.1
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20
export CDK_DISABLE_CLI_TELEMETRY = true

.PHONY: install run test synth deploy bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

run: | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local]'
	$(BIN)/python -m aiplane_local

test: $(STAMP)
	$(BIN)/python -m pytest

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

clean:
	rm -rf $(VENV) cdk.out node_modules build .pytest_cache
