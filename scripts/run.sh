#!/usr/bin/env bash
# scripts/run.sh - set up, build and run the all-in-one chat server on its
# embedded default: one process, SQLite in ./data/, port 8080
# (http://127.0.0.1:8080/, ws://127.0.0.1:8080/v1/ws). On first start it
# prints the generated admin key and a demo tenant with two agents.
#
#   ./scripts/run.sh [server flags...]      (e.g. --port 9000 --data /tmp/d)
#   PORT=9000 ./scripts/run.sh
# Every setting is also CHATCORE_<NAME>; see `chatcore-server --help`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
./scripts/build.sh build >/dev/null
exec ./build/examples/chatcore-server --port "${PORT:-8080}" "$@"
