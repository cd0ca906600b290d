# clinqa: `make serve` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# torch first and pinned: an unpinned torch pulled in by sentence-transformers brings gigabytes of CUDA.
TORCH ?= torch==2.13.0

.PHONY: install index serve test lint bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

index: install
	@if [ -e indexes/current ]; then \
		echo "index present: indexes/current -> $$(readlink indexes/current)"; \
	else \
		$(BIN)/clinqa index build; \
	fi

serve: index
	$(BIN)/clinqa serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: install
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/peers.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
