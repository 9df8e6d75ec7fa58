#!/usr/bin/env bash
# The whole check: lint, types, the test suite on the embedded stack, and on CI
# the suite again against PostgreSQL and Redis with a real Celery worker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export PORTAL_DATA_DIR="${PORTAL_DATA_DIR:-$PWD/var/test}"
py=.venv/bin/python

echo "== ruff"
$py -m ruff check .
$py -m ruff format --check .
echo "== mypy"
$py -m mypy .
echo "== import layers"
.venv/bin/lint-imports --no-cache
echo "== migrations are up to date"
$py manage.py makemigrations --check --dry-run >/dev/null
echo "== deploy checks (production settings)"
PORTAL_ENV=production SECRET_KEY="$($py -c 'import secrets; print(secrets.token_urlsafe(60))')" \
    PORTAL_STAGING_KEY="$($py -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')" \
    PORTAL_SECRETS_KEY="$($py -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    ALLOWED_HOSTS=portal.example.com $py manage.py check --deploy --fail-level WARNING

echo "== tests (SQLite, filesystem broker)"
$py -m pytest "$@"

if [ "${CI:-}" = "true" ]; then
    # On CI the real services must be there: an unreachable one fails the run.
    pg_url="${CI_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pfx_portal}"
    redis_url="${CI_REDIS_URL:-redis://127.0.0.1:6379/0}"
    $py scripts/wait_for_services.py "$pg_url" "$redis_url"
    echo "== tests (PostgreSQL, Redis)"
    DATABASE_URL="$pg_url" REDIS_URL="$redis_url" $py -m pytest "$@"
fi
