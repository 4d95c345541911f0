#!/usr/bin/env bash
# scripts/setup.sh - install everything libchatcore needs to build and test
# on a fresh Debian 12 machine, then the npm packages of the interop tests,
# the browser tests and the benchmarks.
#
# Idempotent and quick on a second run: apt is skipped entirely when every
# package is already installed, and npm is skipped when node_modules is newer
# than package.json and package-lock.json. Needs no TTY. Runs as root, or
# through sudo when not root.
#
# Environment: CC_SETUP_SKIP_NPM=1 skips the npm step.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

log() { printf 'setup: %s\n' "$*"; }

export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    else
        SUDO=(false)
    fi
fi

# Debian package names. Keep this list in step with the README.
PKGS=(
    build-essential cmake pkg-config
    clang libclang-rt-14-dev          # libFuzzer, sanitizer runtimes
    libuv1-dev libmbedtls-dev libcjson-dev
    librdkafka-dev libhiredis-dev libsqlite3-dev
    liblz4-dev libzstd-dev libsasl2-dev libssl-dev zlib1g-dev  # static rdkafka
    check libsubunit-dev              # unit tests
    node-llhttp                       # llhttp C sources, compiled in
    python3 python3-websockets libwebsockets-dev openssl  # interop peers
    redis-server procps ca-certificates
    chromium fonts-wqy-microhei       # browser tests of web/ (tests/web)
)
# The base image's node comes from a package that bundles npm; Debian's npm
# package would conflict with it, so ask for node/npm only when missing.
if ! command -v node >/dev/null 2>&1; then
    PKGS+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
    PKGS+=(npm)
fi

installed() {
    # "ii " = wanted install, status installed.
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

MISSING=()
for p in "${PKGS[@]}"; do
    case "$p" in \#*) continue ;; esac
    installed "$p" || MISSING+=("$p")
done

if [ "${#MISSING[@]}" -eq 0 ]; then
    log "all ${#PKGS[@]} Debian packages already installed; skipping apt-get"
else
    if [ "${SUDO[0]:-}" = false ]; then
        log "not root and no sudo: cannot install ${MISSING[*]}" >&2
        exit 1
    fi
    APT_OPTS=(-y -q --no-install-recommends
              -o DPkg::Lock::Timeout=600
              -o Dpkg::Options::=--force-confdef
              -o Dpkg::Options::=--force-confold)
    log "apt-get update"
    "${SUDO[@]}" apt-get update -q -o DPkg::Lock::Timeout=600 </dev/null
    log "apt-get install ${MISSING[*]}"
    "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" "${MISSING[@]}" </dev/null
fi

# Debian's python3-websockets lives in /usr/bin/python3, which may not be the
# python3 first on PATH (pyenv); tests call /usr/bin/python3 explicitly.
if ! /usr/bin/python3 -c 'import websockets' 2>/dev/null; then
    log "warning: /usr/bin/python3 cannot import websockets" >&2
fi

# npm packages of the interop tests and the benchmarks (if those exist).
npm_dir() {
    local d="$1"
    [ -f "$d/package.json" ] || { log "no $d/package.json; skipping npm"; return 0; }
    if ! command -v npm >/dev/null 2>&1; then
        log "npm not found; cannot install $d" >&2
        return 1
    fi
    local stamp="$d/node_modules/.package-lock.json"
    if [ -f "$stamp" ] && [ "$stamp" -nt "$d/package.json" ] &&
       { [ ! -f "$d/package-lock.json" ] || [ "$stamp" -nt "$d/package-lock.json" ]; }; then
        log "$d/node_modules up to date; skipping npm"
        return 0
    fi
    if [ -f "$d/package-lock.json" ]; then
        log "npm ci in $d"
        (cd "$d" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
    else
        log "npm install in $d"
        (cd "$d" && npm install --no-audit --no-fund --loglevel=error </dev/null)
    fi
    # npm ci may leave the hidden lockfile older than package-lock.json
    # when their mtimes tie; touch it so the next run is a no-op.
    [ -f "$stamp" ] && touch "$stamp"
    return 0
}

if [ "${CC_SETUP_SKIP_NPM:-0}" != 1 ]; then
    npm_dir "$ROOT/tests/interop"
    npm_dir "$ROOT/bench"
    npm_dir "$ROOT/tests/web"
fi

log "done"
