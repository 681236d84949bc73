# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test docs install install-dev bench clean

# Re-install when pyproject.toml changes; the stamp files record what was installed.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/vseg demo --out vseg-demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/prep_puzzles.py
	$(BIN)/python benchmarks/pretrain_throughput.py
	$(BIN)/python benchmarks/embed_throughput.py
	$(BIN)/python benchmarks/hico_throughput.py
	$(BIN)/python benchmarks/scenes_throughput.py

clean:
	rm -rf $(VENV) vseg-demo .pytest_cache site
