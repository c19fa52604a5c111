#!/usr/bin/env bash
# Set up (Python packages; Debian's chromium, redis-server and postgresql for the tests), check with ruff and mypy,
# then run the whole suite on parallel workers. Extra arguments go to pytest (e.g. -m "not browser and not kernel").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Real Redis and PostgreSQL servers for the shared-budget and team-history tests (the fixtures start them)
if ! command -v redis-server >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "Installing Debian's redis-server and postgresql for the shared-budget and history tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null
fi
# Bytecode caches on: every worker, kernel and child interpreter of the suite then reuses one compile of grok_nb
# and one assertion rewrite of each test module (some machines set PYTHONDONTWRITEBYTECODE=1 for everything).
unset PYTHONDONTWRITEBYTECODE
echo "ruff:" && .venv/bin/ruff check grok_nb tests scripts benchmarks
echo "mypy:" && .venv/bin/mypy
# Workers: most tests wait on loopback jobs rather than compute, so more workers than cores pay off.
# Each browser module keeps its JupyterLab and stays whole on one worker (tests/conftest.py, which also ends the
# run with what it cost: wall seconds, CPU seconds, and the least wall time that allows on this machine's cores).
exec .venv/bin/python -m pytest -n "${GROK_NB_TEST_WORKERS:-4}" "$@"
