# Two entry points for a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned, so pip takes the local CPU wheel instead of a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo needs gptkit alone; the tests need the dev extras too (llama-cpp-python compiles llama.cpp once).
$(DEMO_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $(DEMO_STAMP)

$(STAMP): $(DEMO_STAMP)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/gptkit prepare shakespeare --tokenizer char --out data/shakespeare
	$(BIN)/gptkit train --data data/shakespeare --out runs/demo --preset cpu-baby --overwrite
	$(BIN)/gptkit sample runs/demo --prompt "ROMEO:" --max-new-tokens 300 --temperature 0.8 --top-k 40 --seed 1

test: $(STAMP)
	@scripts/ensure-chromium.sh
	$(BIN)/python -m pytest

# Everything but the tests marked slow (torchrun launches, kills, end-to-end CLI runs).
test-fast: $(STAMP)
	@scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check gptkit tests bench experiments
	$(BIN)/ruff format --check gptkit tests bench experiments

bench: $(STAMP)
	$(BIN)/python bench/train_speed.py --preset cpu-baby
	$(BIN)/python bench/tokenizer_speed.py

clean:
	rm -rf $(VENV) data/shakespeare runs/demo
