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
# The user's guide, built strictly (a warning, a broken link or anchor, a docstring mkdocstrings cannot read fails
# it): one line on success, MkDocs' own output on failure. Built into a temporary folder, nothing fetched.
docs_out="$(mktemp -d)"
if ! NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$docs_out/site" >"$docs_out/log" 2>&1; then
  cat "$docs_out/log" >&2
  echo "docs: the strict build failed (see above); build it yourself with .venv/bin/mkdocs build --strict" >&2
  rm -rf "$docs_out"
  exit 1
fi
rm -rf "$docs_out"
echo "docs: built strictly"
# Workers: most tests wait on loopback jobs rather than compute, so more workers than cores pay off.
# Each browser module keeps its JupyterLab and stays whole on one worker (tests/conftest.py, which also ends the
# run with what it cost: wall seconds, CPU seconds, and the least wall time that allows on this machine's cores).
exec .venv/bin/python -m pytest -n "${GROK_NB_TEST_WORKERS:-4}" "$@"
