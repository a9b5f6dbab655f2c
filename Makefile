# The two commands: `make run` (the whole local stack in the foreground) and `make test`.
.PHONY: run test check lint bootstrap up format lock clean-state clean-kafka-backup

PYTHON_VENV := .venv/bin/python

bootstrap:
	@scripts/bootstrap.sh

run: bootstrap
	@$(PYTHON_VENV) scripts/devstack.py run

test: bootstrap
	@$(PYTHON_VENV) scripts/devstack.py test $(PYTEST_ARGS)

# The inner loop: everything but the slow tiers (whole stacks, soak, DR, browser, real n8n,
# fuzzers, broker faults); see TIERS in tests/conftest.py.
check: bootstrap
	@$(PYTHON_VENV) scripts/devstack.py test -m "not (stack or soak or dr or browser or real_n8n or fuzz or faults)" $(PYTEST_ARGS)

# Start the services and leave them running (to run single tests with .venv/bin/pytest).
up: bootstrap
	@$(PYTHON_VENV) scripts/devstack.py up

# Forget the local stack's state (stop `make run` first): the topics' backup, and OpenBao's data
# and keys only after a typed confirmation (without them stored credentials never decrypt again).
clean-state:
	@$(PYTHON_VENV) scripts/devstack.py clean-state

# Forget only the topics' backup (the next `make run` starts with empty topics).
clean-kafka-backup:
	@$(PYTHON_VENV) scripts/devstack.py clean-kafka-backup

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports --no-cache
	$(PYTHON_VENV) manage.py check
	$(PYTHON_VENV) manage.py makemigrations --check --dry-run

format:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

# Re-pin requirements.lock from pyproject.toml after changing dependencies.
lock:
	.venv/bin/pip install -q pip-tools
	.venv/bin/pip-compile -q --strip-extras --extra dev -o requirements.lock pyproject.toml
