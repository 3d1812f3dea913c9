# The two commands: `make up` runs the service, `make test` runs the tests.
# Both create ./.venv and install what they need on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test test-fast lint install clean browser

# The package holds only the client (trainq); constraints.txt pins every version the service
# runs and is tested with. The server's packages (shared, web, worker) are used from this
# checkout: a .pth file puts it on the venv's path.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[server,dev]'
	$(BIN)/python -c 'import sys, sysconfig, pathlib; pathlib.Path(sysconfig.get_path("purelib"), "trainq-checkout.pth").write_text(sys.argv[1] + "\n")' "$(CURDIR)"
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/trainq up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The dashboard's tests drive Debian's headless Chromium through chromedriver.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# Every test, in two runs: first all but the `serial` ones, $(TEST_WORKERS) at a time (pytest-xdist;
# the tests of one module, or of one xdist group such as those of the shared services, go to one
# worker, the slow ones first: tests/conftest.py), then the `serial` ones alone (they time things
# or read CPU priorities). Both runs report; the target fails if either failed. The markers are
# described in [tool.pytest.ini_options] in pyproject.toml.
TEST_WORKERS ?= 2

test: lint browser
	status=0; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial" --durations=30 || status=$$?; \
	$(BIN)/pytest -m serial --durations=10 || status=$$?; \
	exit $$status

# The inner loop: every test but the slow ones (real service processes, real training for more
# than a few seconds, Chromium, chaos, schemathesis), in the same two runs: under two minutes
# here. `.venv/bin/pytest -m "not slow"` runs the same tests in one process, in under three.
test-fast: $(STAMP)
	status=0; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow and not serial" || status=$$?; \
	$(BIN)/pytest -m "serial and not slow" || status=$$?; \
	exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
