# Two entry points, one shared virtual environment (.venv):
#   make demo   set up, then run the main job on the built-in sample dataset
#   make test   set up, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test setup clean

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

clean:
	rm -rf $(VENV) runs data/sample-*
