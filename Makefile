# The two commands the README starts with:  make demo  (set up + run the end-to-end demo)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test test-slow bench lock clean

# torch is installed first, alone and pinned: 2.13.0 is the local CPU wheel; letting the resolver pick it together
# with other packages could pull a multi-GB CUDA build.
# constraints.txt pins every other package to the versions the suite was run with: without it pip's resolver
# backtracks for many minutes (xdsl, needed by litert-converter, caps typing-extensions, which caps pydantic).
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

$(BIN)/zendeploy: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) "torch==2.13.0"
	$(PIP) -e ".[dev]"
	touch $@

setup: $(BIN)/zendeploy

demo: setup
	$(BIN)/zendeploy demo

test: setup
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# also the tests marked slow (minutes each: the README's LiteRT profile and int8 export)
test-slow: setup
	$(BIN)/python -m pytest -q --slow

# Re-pin constraints.txt to what the venv holds, after changing dependencies in pyproject.toml and installing them.
lock: setup
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/+cpu//'; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) runs exports .pytest_cache
