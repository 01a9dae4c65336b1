# The two commands of the README's Quick start; both set everything up from a clean clone.
#   make report   set up .venv, run the default parity grid (the quick tier), write reports/latest/
#   make test     set up .venv, run the test suite's quick tier, on every core (PYTEST_ARGS="--junitxml=out/junit.xml" for JUnit XML)
#   make test-all set up .venv with the cluster extra (Ray), run the test suite's full tier (every parity pair, every
#                 free run to its end, the tests that start a local Ray); CI runs it
#   make bench    set up .venv, time every implementation against this machine's limits, write bench/latest/
#   make coverage set up .venv, measure the line coverage of both test tiers (.ci/coverage; long: runs the full tier;
#                 COVERAGE_README=README.md also writes the table into the README)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat constraints.txt pyproject.toml | cksum | cut -d' ' -f1)
CLUSTER_STAMP := $(VENV)/.cluster-$(shell cat constraints.txt pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
BENCH_ARGS ?=

# pytest-xdist: one worker per core, a parity case's implementations on one worker (its reference runs once).
PARALLEL := -n auto --dist loadgroup

.PHONY: report test test-all bench coverage setup clean

setup: $(STAMP)

$(STAMP): constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,test]"
	@rm -f $(VENV)/.installed-*
	@touch $@

# the cluster extra (Ray, for upgrade-check --executor ray): the full tier's tests start a local Ray
$(CLUSTER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,test,cluster]"
	@rm -f $(VENV)/.cluster-*
	@touch $@

report: $(STAMP)
	$(BIN)/nnparity report --force

test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

test-all: $(STAMP) $(CLUSTER_STAMP)
	$(BIN)/python -m pytest $(PARALLEL) --full $(PYTEST_ARGS)

coverage: $(STAMP) $(CLUSTER_STAMP)
	bash .ci/coverage

bench: $(STAMP)
	$(BIN)/nnparity bench --force $(BENCH_ARGS)

clean:
	rm -rf $(VENV) reports/latest bench/latest explain/latest .pytest_cache
