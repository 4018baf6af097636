# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
STORAGE ?= sqlite:///metrichub.db
PLUGINS := $(wildcard plugins/*)
EXAMPLE_PLUGINS := $(wildcard examples/metrichub-plugin-*)
EDITABLE := -e . $(foreach plugin,$(PLUGINS),-e $(plugin))

.PHONY: run test lint typecheck pytest bench clean

run: $(VENV)/.installed
	$(BIN)/metrichub demo --if-empty --storage $(STORAGE)
	$(BIN)/metrichub serve --host $(HOST) --port $(PORT) --storage $(STORAGE)

test: lint typecheck pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy metrichub_core $(foreach plugin,$(PLUGINS),$(plugin)/metrichub_plugin_$(notdir $(plugin))) \
		$(foreach example,$(EXAMPLE_PLUGINS),$(example)/$(subst -,_,$(notdir $(example))))

pytest: $(VENV)/.dev
	$(BIN)/pytest tests $(foreach dir,$(PLUGINS) $(EXAMPLE_PLUGINS),$(dir)/tests)

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/ingest_bench.py
	$(BIN)/python benchmarks/collect_bench.py
	$(BIN)/python benchmarks/dora_bench.py
	$(BIN)/python benchmarks/api_bench.py
	$(BIN)/python benchmarks/load_bench.py

$(VENV)/.installed: pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(EDITABLE)
	touch $@

$(VENV)/.dev: $(VENV)/.installed $(wildcard examples/*/pyproject.toml)
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(foreach example,$(EXAMPLE_PLUGINS),-e $(example))
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
