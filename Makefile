# One command per job; each creates the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU build of torch: it lies on disk on the project's machines (an unpinned torch pulls a CUDA build).
TORCH_PIN := torch==2.13.0
DEMO_MODEL ?= gatr
# Test workers (pytest-xdist, one test file per worker), one torch thread each: on 2 cores this
# halves the wall time of the suite. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

.PHONY: test lint typecheck docs docs-check bench demo demo-jets demo-pde clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-test: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet $(TORCH_PIN) -e ".[test,examples,irreps]"
	touch $@

$(VENV)/.installed-docs: $(VENV)/.installed-test
	$(BIN)/pip install --quiet $(TORCH_PIN) -e ".[test,examples,irreps,docs]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(BIN)/pip install --quiet $(TORCH_PIN) -e ".[test,examples,irreps,bench]"
	touch $@

test: $(VENV)/.installed-test  ## the test suite (with the docstring examples), ruff, mypy and the import-linter layer contracts
	$(BIN)/lint-imports
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile
	$(BIN)/ruff check .
	$(BIN)/mypy

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

docs: $(VENV)/.installed-docs  ## build the documentation site (mkdocs, strict) into site/, MathJax vendored from npm
	$(BIN)/python docs/tools/vendor_mathjax.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-check:  ## the site's math typesets with the network off (headless Chromium: apt-get install chromium); builds site/ if absent
	test -f site/index.html || $(MAKE) docs
	$(PYTHON) docs/tools/check_math_offline.py site

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

bench: $(VENV)/.installed-bench  ## side-by-side product benchmark against other libraries
	$(BIN)/python benchmarks/bench_products.py

demo: $(VENV)/.installed-test  ## n-body demo: charged-particles data, GATr quick preset (<= 5 min on 2 CPU cores), test-MSE table
	$(BIN)/python -m examples.nbody.simulate --task charged
	$(BIN)/python -m examples.nbody.train --task charged --model $(DEMO_MODEL) --preset quick

demo-jets: $(VENV)/.installed-test  ## toy top tagging: jets data, GATr / GATrSlim / transformer quick preset (<= 4 min on 2 CPU cores), results table
	$(BIN)/python -m examples.jets.simulate
	$(BIN)/python -m examples.jets.train --model all --preset quick

demo-pde: $(VENV)/.installed-test  ## Navier-Stokes smoke: data (~1 min), Clifford ResNet / FNO / steerable vs ResNet / FNO quick preset (<= 5 min on 2 CPU cores), results table
	$(BIN)/python -m examples.pde.simulate
	$(BIN)/python -m examples.pde.train --model all --preset quick

clean:
	rm -rf $(VENV) build site docs/javascripts/vendor *.egg-info .pytest_cache .ruff_cache .mypy_cache
