# The two commands of the README: `make report` (the main job) and `make test`.
# Both install first (.ci/install), into the active virtual environment or .venv, and run from it.
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
PYTHON ?= $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup report test down

setup:
	VENV=$(VENV) bash .ci/install

report: setup
	$(PYTHON) -m harness run

test: setup
	$(PYTHON) -m pytest tests -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

down:
	$(PYTHON) -m harness engines down
