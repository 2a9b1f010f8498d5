# Two commands do all the set-up on a fresh machine:
#   make demo   regenerate the release and grade the bundled sample submissions
#   make test   run the test suite (installs Debian's chromium for the browser check)
# Both create .venv from requirements.txt first (only when it is missing or out of date); `make test` and the
# benchmarks add requirements-dev.txt (the test and benchmark tools), which an instructor's install does not need.

# The Python that makes .venv: PYTHON when given (`make demo PYTHON=python3.12`); else the system's own python3,
# as the README asks for (Debian's, with python3-venv), when it can make a venv; else the first python3 on PATH.
# Debian builds its Python with profile-guided and link-time optimisation, which a Python built from source (pyenv's,
# by default) lacks: the suite took 15% less CPU on it (README, Where the time goes).
SYSTEM_PYTHON := /usr/bin/python3
PYTHON ?= $(shell $(SYSTEM_PYTHON) -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 10))' \
	>/dev/null 2>&1 && echo $(SYSTEM_PYTHON) || echo python3)
VENV := .venv
BIN := $(VENV)/bin
# nbgrader and Jupyter look for their commands (alembic, jupyter) on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo forget-demo test test-fast browser benchmark copies-benchmark conformance release figures checks-data clean

# pip shows each package as it collects and installs it: the first run takes a few minutes.
$(BIN)/.installed: requirements.txt pyproject.toml
	@echo "Creating $(VENV)/ with $(PYTHON) ($$($(PYTHON) --version 2>&1)) and installing requirements.txt into it (a few minutes the first time) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	@echo "Installing requirements-dev.txt (the test and benchmark tools) into $(VENV)/ ..."
	$(BIN)/python -m pip install --progress-bar on -r requirements-dev.txt
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m rnn_course demo

# Before grading a real class: the demo's sample students out of the gradebook (backed up first) and every output.
forget-demo: $(BIN)/.installed
	$(BIN)/python -m rnn_course forget-demo

# On every core (pytest-xdist), a test module per worker at a time: a module's fixtures are built once. One worker
# more than there are cores: a test often waits (on a timeout, a server starting, a process to end), and with one
# worker a core the cores were idle 7% of a run, the spare worker fills them (measured on 2 cores: 432 s against
# 405 s). The costliest modules first (tests/conftest.py lists them), in that order: not reordered by their number
# of tests. The kit's modules are compiled first: the suite starts a few hundred Python processes, and where the
# environment forbids writing bytecode (PYTHONDONTWRITEBYTECODE) each would compile them again (0.2 s of CPU each).
WORKERS := $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: $(BIN)/.installed-dev browser
	$(BIN)/python -m compileall -q grader grader_eval rnn_course tests
	$(BIN)/python -m pytest tests -n $(WORKERS) --dist loadfile --no-loadscope-reorder --durations=20

# The developer's quick loop: the tests that take under a few seconds each (tests/conftest.py lists the others).
test-fast: $(BIN)/.installed-dev browser
	$(BIN)/python -m compileall -q grader grader_eval rnn_course tests
	$(BIN)/python -m pytest tests -m "not slow" -n $(WORKERS) --dist loadfile --no-loadscope-reorder --durations=10

# The browser check drives Debian's chromium through chromedriver; install both when missing,
# waiting up to 10 minutes for another apt or dpkg to finish instead of failing at once.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { echo "Installing Debian's chromium and chromium-driver for the browser tests, with apt-get (it may also upgrade the system packages they need) ..."; \
	    $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium chromium-driver; }

# Stock nbgrader autograde against the kit's grader on 200 mixed submissions, and the kit on a Dask cluster of two
# worker processes (about 12 minutes).
benchmark: $(BIN)/.installed-dev
	$(BIN)/python -m rnn_course benchmark --dask-workers 2

# The copy report against copydetect and Dolos (installed from tools/dolos with npm), and on 1000 students.
copies-benchmark: $(BIN)/.installed-dev
	$(BIN)/python -m rnn_course copies-benchmark --docs

# The kit against stock nbgrader autograde, every cell of every student, on nbgrader's own notebooks and on the
# real courses of tools/conformance/manifest.json (downloaded into CORPUS from GitHub the first time; about an hour).
CORPUS ?= conformance-corpus
conformance: $(BIN)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[conformance]'
	@test -d $(CORPUS) || $(BIN)/python tools/conformance/rebuild.py $(CORPUS)
	$(BIN)/python -m grader_eval.conformance $(CORPUS) --nbgrader --docs docs

release: $(BIN)/.installed
	$(BIN)/python -m rnn_course release

figures: $(BIN)/.installed
	$(BIN)/python -m rnn_course figures

checks-data: $(BIN)/.installed
	$(BIN)/python -m rnn_course checks-data

# Caches only. Grades are never deleted here: students leave the gradebook through
# `rnn-grader remove-students` (or `make forget-demo`), which backs it up and asks first.
clean:
	rm -rf .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
