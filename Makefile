# Two commands do all set-up on a fresh machine:
#   make demo   import the bundled real capture, infer its interface, show the result
#   make test   install what the tests need (system packages, services, venv) and run them all
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_CAPTURE := tests/captures/oslo_rpc.pcap
DEMO_OUT := demo-output

.PHONY: demo test venv services lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	$(BIN)/busdoc capture pcap $(DEMO_CAPTURE) --db $(DEMO_OUT)/busdoc.db
	$(BIN)/busdoc stats --db $(DEMO_OUT)/busdoc.db
	$(BIN)/busdoc infer --db $(DEMO_OUT)/busdoc.db -o $(DEMO_OUT)/interface.md
	@echo
	@sed -n '1,60p' $(DEMO_OUT)/interface.md
	@echo "..."
	@echo "The whole report: $(DEMO_OUT)/interface.md (store: $(DEMO_OUT)/busdoc.db)"

services:
	bash tools/ensure-services.sh

# Node tools the report tests run: the AsyncAPI parser and quicktype (pinned by lockfiles).
NODE_TOOLS := tools/asyncapi-validate/node_modules tools/java/node_modules
tools/%/node_modules: tools/%/package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --prefix tools/$*
	touch $@

# Tests that restart the shared broker run last, in a pytest run of their own.
test: services $(STAMP) $(NODE_TOOLS)
	$(BIN)/python -m pytest -p no:cacheprovider -m "not broker_restart" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -p no:cacheprovider -m broker_restart $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python bench/bench_pcap.py --repeat 5
	$(BIN)/python bench/bench_infer.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) busdoc.db busdoc.db-wal busdoc.db-shm
