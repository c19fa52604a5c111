#!/usr/bin/env bash
# The main job: set up, then run a small experiment on the embedded simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/grok-nb demo "$@"
