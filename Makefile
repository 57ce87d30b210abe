# The two commands the README starts with:  make demo  (set up + run the end-to-end demo)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test bench clean

# torch is installed first, alone and pinned: 2.13.0 is the local CPU wheel; letting the resolver pick it together
# with other packages could pull a multi-GB CUDA build.
$(BIN)/zendeploy: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "torch==2.13.0"
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

setup: $(BIN)/zendeploy

demo: setup
	$(BIN)/zendeploy demo

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs exports .pytest_cache
