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
# What the suite costs the machine: CPU seconds of pytest and of every process it waited for (workers, chromium,
# kernels, JupyterLab, render workers, servers). Divided by the cores, it is the least wall time the suite can take.
# `times` is a builtin, run here in this shell: in a pipe or in $(...) it would ask a subshell, which has no children.
children_cpu() {  # sets CHILDREN_CPU to the CPU seconds of this shell's finished children so far
  times > .suite-times
  CHILDREN_CPU=$(awk 'NR==2 { split($1, u, "m"); split($2, s, "m"); printf "%.0f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' .suite-times)
  rm -f .suite-times
}
children_cpu
before=$CHILDREN_CPU
started=$SECONDS
status=0
# Workers: most tests wait on loopback jobs rather than compute, so more workers than cores pay off.
# Each browser module keeps its JupyterLab and stays whole on one worker (tests/conftest.py).
.venv/bin/python -m pytest -n "${GROK_NB_TEST_WORKERS:-4}" "$@" || status=$?
children_cpu
cpu=$((CHILDREN_CPU - before))
cores=$(nproc)
echo "suite: $((SECONDS - started)) s wall; ${cpu} CPU-s in pytest and the processes it waited for," \
     "so at least $((cpu / cores)) s on ${cores} cores"
exit "$status"
