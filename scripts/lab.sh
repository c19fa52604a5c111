#!/usr/bin/env bash
# Set up, then open the notebooks in JupyterLab on the simulator: lab.sh [--port N]
# Serves on 127.0.0.1 only, opens no browser, and prints the URL to open.
set -euo pipefail
cd "$(dirname "$0")/.."
port=""
bad_port() {  # one line that says what to do; exit status 2, as for every usage error
  echo "lab.sh: --port needs a port number from 1 to 65535 (got '${1}'), e.g. scripts/lab.sh --port 8888" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --port) [ $# -ge 2 ] && [ -n "$2" ] || bad_port ""; port="$2"; shift 2 ;;
    --port=*) port="${1#--port=}"; [ -n "$port" ] || bad_port ""; shift ;;
    -h|--help) echo "usage: scripts/lab.sh [--port N]  (JupyterLab on 127.0.0.1 with the notebooks, on the simulator)"
               exit 0 ;;
    *) echo "lab.sh: unknown argument '$1'; usage: scripts/lab.sh [--port N]" >&2; exit 2 ;;
  esac
done
if [ -n "$port" ]; then
  case "$port" in *[!0-9]*) bad_port "$port" ;; esac
  { [ "${#port}" -le 5 ] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; } || bad_port "$port"
fi
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
