#!/usr/bin/env bash
# scripts/build.sh - configure and build libchatcore into a build directory.
#
#   scripts/build.sh [DIR] [CMAKE-ARGS...]
#   scripts/build.sh build
#   scripts/build.sh build-asan -DCC_SANITIZE=ON
#
# DIR defaults to "build" (relative to the repo root). The build type is
# RelWithDebInfo unless CMAKE-ARGS or $BUILD_TYPE say otherwise. Re-running
# only rebuilds what changed; -D options given are written into the cache.
# JOBS overrides -j$(nproc). KEEP_GOING=1 builds every target it can after
# an error (make -k / ninja -k 0), still exiting nonzero.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    DIR=$1
    shift
fi

TYPE_ARGS=()
case " $* " in
    *" -DCMAKE_BUILD_TYPE="*) ;;
    *) TYPE_ARGS=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}") ;;
esac

JOBS=${JOBS:-$(nproc)}

echo "build: cmake -S . -B $DIR ${TYPE_ARGS[*]} $*"
cmake -S . -B "$DIR" "${TYPE_ARGS[@]}" "$@"
NATIVE=()
if [ "${KEEP_GOING:-0}" = 1 ]; then
    case "$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$DIR/CMakeCache.txt")" in
        Ninja*) NATIVE=(-- -k 0) ;;
        *Makefiles*) NATIVE=(-- -k) ;;
    esac
fi
echo "build: cmake --build $DIR -j$JOBS ${NATIVE[*]}"
cmake --build "$DIR" -j"$JOBS" "${NATIVE[@]}"
