# The two commands of the README: `make report` (the main job) and `make test`.
PYTHON ?= python3
PYTEST_ARGS ?=
# `make readme`: the README's measured figures from this run's report (default: the newest under reports/)
REPORT ?= $(lastword $(sort $(wildcard reports/2*/report.json)))

.PHONY: setup report test down readme

setup:
	bash .ci/install

# `run` exits 1 when it measured everything and some check failed: the engines differ, which is the
# report's news, not a broken job; any other status is passed on.
report: setup
	@$(PYTHON) -m harness run; status=$$?; \
	if [ $$status -eq 1 ]; then echo "make report: the run is complete; the engines differ (see the summary above)"; \
	else exit $$status; fi

test: setup
	$(PYTHON) -m pytest tests -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

down:
	$(PYTHON) -m harness engines down

# Copies the report to docs/reports/<run-id>/report.json and rewrites the README's generated blocks from it.
readme:
	$(PYTHON) -m harness readme-tables $(REPORT) --write
