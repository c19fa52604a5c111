#!/usr/bin/env bash
# Create .venv (if missing) and install grok_nb into it, with optional extras: setup.sh [extras]
# Quiet on success; on failure, pip's own output is shown.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    # Debian's python3 ships venv separately
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    rm -rf .venv && "$PY" -m venv .venv
  fi
fi
# Extras accumulate (setup.sh test, then setup.sh lab, keeps both); nothing to do when this
# pyproject.toml is already installed with every extra asked for.
stamp=".venv/.grok_nb-setup"
had="" same=""
if [ -f "$stamp" ] && [ "$(sed -n '2,$p' "$stamp")" = "$(cat pyproject.toml)" ]; then
  had="$(head -n 1 "$stamp")" same=1
fi
extras="$(printf '%s\n' ${had//,/ } ${extras//,/ } | sort -u | paste -sd, -)"
if [ -n "$same" ] && [ "$extras" = "$had" ] && .venv/bin/python -c "import grok_nb" 2>/dev/null; then
  exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
quiet_pip() {
  # pip -q still prints warnings about this machine's package index settings: keep them for failures only.
  if ! .venv/bin/python -m pip -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: pip $* failed" >&2
    exit 1
  fi
}
quiet_pip install --upgrade pip
target="."
[ -n "$extras" ] && target=".[$extras]"
quiet_pip install -e "$target"
.venv/bin/python -c "import grok_nb" # fail loudly if the install did not work
{ echo "$extras"; cat pyproject.toml; } > "$stamp"
