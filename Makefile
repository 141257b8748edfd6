# Two entry points, one shared virtual environment (.venv):
#   make demo   set up, then run the main job on the built-in sample dataset
#   make test   set up, then run the whole test suite
# and the documentation site:
#   make docs   set up with the docs extra, then build the site into site/ (strict: any warning fails)
#   make lint   set up, then lint the code (ruff)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test lint docs setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

demo: $(STAMP)
	$(PY) -m skinlib demo

# The quick profile trains a few epochs only: the notebooks check that the series
# runs and what it prints, not how well it learns (tests/ check learning).
test: $(STAMP)
	SKINLIB_PROFILE=quick $(PY) -m pytest

# ruff, configured in pyproject.toml ([tool.ruff]); CI runs it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check skinlib scripts benchmarks tests

# The docs packages go into the same .venv, on top of the test setup (stamped separately).
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[docs]'
	@touch $@

# The notebooks are rendered as stored (mkdocs.yml: execute: false); mkdocs-jupyter keeps its
# rendering cache in .cache/ (git-ignored). Material's notice about MkDocs 2 is switched off.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --clean --site-dir site

clean:
	rm -rf $(VENV) runs data/sample-*
