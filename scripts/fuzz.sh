#!/bin/sh
# scripts/fuzz.sh - build the libFuzzer targets (tests/fuzz/fuzz_*.c) with
# clang + ASan/UBSan in build-fuzz/ and run each for FUZZ_SECONDS (default
# 30) on a copy of its seed corpus, tests/fuzz/corpus/<name>/ (name without
# the fuzz_ prefix). Exits nonzero if any target crashed; the crashing
# inputs are left in build-fuzz/fuzz-out/<target>/ (turn them into unit
# tests). The seed corpora in the tree are never modified.
#
#   scripts/fuzz.sh                 all targets
#   scripts/fuzz.sh fuzz_frame      only these
#   FUZZ_SECONDS=600 FUZZ_JOBS=2 scripts/fuzz.sh
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-1}
CC_BIN=${FUZZ_CC:-clang}

if ! command -v "$CC_BIN" >/dev/null 2>&1; then
    echo "fuzz.sh: $CC_BIN not found (libFuzzer needs clang)" >&2
    exit 2
fi

cmake -S "$ROOT" -B "$BUILD" \
    -DCMAKE_C_COMPILER="$CC_BIN" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCC_FUZZ=ON -DCC_SANITIZE=ON \
    -DCC_BUILD_TESTS=OFF -DCC_BUILD_EXAMPLES=OFF -DCC_BUILD_BENCH=OFF
cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)"

if [ $# -gt 0 ]; then
    TARGETS="$*"
else
    TARGETS=""
    for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
        [ -e "$src" ] || continue
        TARGETS="$TARGETS $(basename "$src" .c)"
    done
fi

failed=""
for t in $TARGETS; do
    exe="$BUILD/tests/fuzz/$t"
    if [ ! -x "$exe" ]; then
        echo "fuzz.sh: no executable $exe" >&2
        failed="$failed $t"
        continue
    fi
    out="$BUILD/fuzz-out/$t"
    corpus="$out/corpus"
    rm -rf "$out"
    mkdir -p "$corpus"
    seeds="$ROOT/tests/fuzz/corpus/${t#fuzz_}"
    if [ -d "$seeds" ]; then
        cp -R "$seeds"/. "$corpus"/
    fi
    echo "== $t: ${SECONDS_EACH}s, corpus $(ls "$corpus" | wc -l) files"
    # -artifact_prefix keeps crash-*/leak-*/timeout-* files out of the cwd.
    set +e
    if [ "$JOBS" -gt 1 ]; then
        (cd "$out" && "$exe" "$corpus" -max_total_time="$SECONDS_EACH" \
            -artifact_prefix="$out/" -print_final_stats=1 \
            -jobs="$JOBS" -workers="$JOBS")
    else
        "$exe" "$corpus" -max_total_time="$SECONDS_EACH" \
            -artifact_prefix="$out/" -print_final_stats=1
    fi
    rc=$?
    set -e
    crashes=$(find "$out" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
           -o -name 'oom-*' \) | wc -l)
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        echo "== $t: FAILED (exit $rc, $crashes artifacts in $out)"
        failed="$failed $t"
    else
        echo "== $t: ok"
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz.sh: failures:$failed" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran clean"
