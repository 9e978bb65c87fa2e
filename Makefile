# The two commands of the README: `make report` (the main job) and `make test`.
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: setup report test down

setup:
	bash .ci/install

report: setup
	$(PYTHON) -m harness run

test: setup
	$(PYTHON) -m pytest tests -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

down:
	$(PYTHON) -m harness engines down
