#!/usr/bin/env bash
# Set up, then open the notebooks in JupyterLab on the simulator: lab.sh [--port N]
# Serves on 127.0.0.1 only, opens no browser, and prints the URL to open.
set -euo pipefail
cd "$(dirname "$0")/.."
port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    *) echo "usage: scripts/lab.sh [--port N]" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh lab
[ -n "$port" ] || port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
token="$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(24))')"
echo "JupyterLab with grok_nb's notebooks, on the simulator (no XAI_API_KEY: nothing is sent to xAI, nothing billed):"
echo "  http://127.0.0.1:${port}/lab/tree/01_quickstart.ipynb?token=${token}"
echo "Ctrl+C stops it."
root=()
[ "$(id -u)" = 0 ] && root=(--allow-root)  # containers often run as root; the server stays on loopback
# The simulator is grok_nb's default when no key and no base URL are set.
exec env -u XAI_API_KEY -u GROK_NB_BASE_URL .venv/bin/jupyter lab --no-browser --ip=127.0.0.1 --port="$port" \
  --ServerApp.port_retries=0 --IdentityProvider.token="$token" --ServerApp.root_dir=notebooks \
  --log-level=WARN --LabApp.log_level=WARN "${root[@]}"
