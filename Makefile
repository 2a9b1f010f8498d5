# Two commands do all the set-up on a fresh machine:
#   make demo   regenerate the release and autograde the bundled sample submissions
#   make test   run the test suite
# Both create .venv from requirements.txt first (only when it is missing or out of date).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# nbgrader and Jupyter look for their commands (alembic, jupyter) on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test release figures checks-data clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m grader demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest tests

release: $(BIN)/.installed
	$(BIN)/python -m grader release

figures: $(BIN)/.installed
	$(BIN)/python -m grader figures

checks-data: $(BIN)/.installed
	$(BIN)/python -m grader checks-data

clean:
	rm -rf submitted autograded/sample_* gradebook.db .pytest_cache
