.PHONY: run test lint

# Start the demo: web, Celery worker and beat, on SQLite and a file-based broker.
run:
	@scripts/bootstrap.sh
	@.venv/bin/python manage.py demo

# Lint, type-check and run the whole test suite.
test:
	@scripts/test.sh

lint:
	@scripts/bootstrap.sh
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy . && .venv/bin/lint-imports --no-cache
