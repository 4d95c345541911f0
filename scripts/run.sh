#!/usr/bin/env bash
# scripts/run.sh - set up, build and run the reference server on its
# embedded default. Until the all-in-one chat server lands this starts the
# WebSocket echo example on port 8080 (ws://127.0.0.1:8080/, GET /healthz).
#
#   ./scripts/run.sh [server flags...]      (e.g. --port 9000 --threads 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
./scripts/build.sh build >/dev/null
exec ./build/examples/echo-server --port "${PORT:-8080}" "$@"
