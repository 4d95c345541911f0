#!/usr/bin/env bash
# scripts/test.sh - THE test command: set up, build, run every test.
#
#   ./scripts/test.sh
#
# 1. scripts/setup.sh (Debian packages, npm packages; fast when done before)
# 2. build/      normal build, -DCC_WERROR=ON; ctest
# 3. build-asan/ ASan+UBSan build, -DCC_WERROR=ON; ctest with leak checks
# 4. scripts/fuzz.sh, if present, FUZZ_SECONDS (default 20) per target
# 5. scripts/lint.sh on build/ (the mechanical STYLE.md checks)
# and ends with one line "N passed, N failed": ctest's counts of both
# builds plus one per fuzz run and per lint check (a build with errors
# counts as one failure; the tests of what did build still run). Exits
# nonzero on any failure.
#
# Environment: CTEST_JOBS (default 2), FUZZ_SECONDS (default 20),
# SKIP_ASAN=1 / SKIP_FUZZ=1 / SKIP_SETUP=1 for quicker local runs,
# CTEST_ARGS (extra ctest arguments, e.g. "-L unit").
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
exec </dev/null                  # CI has no stdin; nothing may wait on it
export DEBIAN_FRONTEND=noninteractive

PASSED=0
FAILED=0
FAILED_STEPS=()
START=$SECONDS
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/cc-test.XXXXXX")
trap 'rm -rf "$LOGDIR"' EXIT

banner() { printf '\n==== %s (%ds)\n' "$*" $((SECONDS - START)); }
failed_step() { FAILED=$((FAILED + 1)); FAILED_STEPS+=("$1"); }

summary() {
    banner "summary"
    if [ "${#FAILED_STEPS[@]}" -gt 0 ]; then
        printf 'failed: %s\n' "${FAILED_STEPS[@]}"
    fi
    echo "total time $((SECONDS - START))s"
    echo "$PASSED passed, $FAILED failed"
}

# ---- 1. setup ----
if [ "${SKIP_SETUP:-0}" != 1 ]; then
    banner "setup"
    if ! ./scripts/setup.sh; then
        failed_step "setup"
        summary
        exit 1
    fi
fi

# ---- 2./3. builds and ctest ----
# run_ctest NAME DIR: runs ctest in DIR, adds its counts.
run_ctest() {
    local name=$1 dir=$2 log="$LOGDIR/$1.ctest"
    # shellcheck disable=SC2086
    ctest --test-dir "$dir" --output-on-failure --no-tests=error \
          -j"${CTEST_JOBS:-2}" ${CTEST_ARGS:-} 2>&1 | tee "$log"
    local line p f total
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' \
               "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "test.sh: no ctest summary for $name"
        failed_step "ctest $name (no summary)"
        return
    fi
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
    total=$(printf '%s' "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
    p=$((total - f))
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    if [ "$f" -gt 0 ]; then
        FAILED_STEPS+=("ctest $name: $f of $total failed")
    fi
}

build_and_test() { # NAME DIR CMAKE-ARGS...
    local name=$1 dir=$2
    shift 2
    banner "build $name ($dir)"
    # KEEP_GOING: a broken target costs one failure, and the tests of
    # everything else that built still run (ctest fails the missing ones).
    if ! KEEP_GOING=1 ./scripts/build.sh "$dir" "$@"; then
        echo "test.sh: build $name failed"
        failed_step "build $name"
        [ -f "$dir/CTestTestfile.cmake" ] || return
    fi
    banner "ctest $name"
    run_ctest "$name" "$dir"
}

build_and_test normal build -DCC_SANITIZE=OFF -DCC_WERROR=ON \
    -DCC_BUILD_TESTS=ON -DCC_BUILD_EXAMPLES=ON

if [ "${SKIP_ASAN:-0}" != 1 ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
    build_and_test asan build-asan -DCC_SANITIZE=ON -DCC_WERROR=ON \
        -DCC_BUILD_TESTS=ON -DCC_BUILD_EXAMPLES=ON
    unset ASAN_OPTIONS UBSAN_OPTIONS
fi

# ---- 4. fuzz ----
if [ -f scripts/fuzz.sh ] && [ "${SKIP_FUZZ:-0}" != 1 ]; then
    banner "fuzz (FUZZ_SECONDS=${FUZZ_SECONDS:-20})"
    if FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash scripts/fuzz.sh; then
        PASSED=$((PASSED + 1))
    else
        failed_step "fuzz"
    fi
fi

# ---- 5. lint ----
banner "lint"
./scripts/lint.sh build | tee "$LOGDIR/lint.log"
lp=$(grep -c '^lint: PASS ' "$LOGDIR/lint.log")
lf=$(grep -c '^lint: FAIL ' "$LOGDIR/lint.log")
PASSED=$((PASSED + lp))
FAILED=$((FAILED + lf))
[ "$lf" -eq 0 ] || FAILED_STEPS+=("lint: $lf check(s)")
if [ "$lp" -eq 0 ] && [ "$lf" -eq 0 ]; then failed_step "lint (no output)"; fi

summary
[ "$FAILED" -eq 0 ]
