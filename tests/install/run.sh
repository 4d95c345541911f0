#!/usr/bin/env bash
# tests/install/run.sh - the packaging test (ctest: "install").
#
#   run.sh BUILD_DIR [C_COMPILER] [SANITIZE(ON|OFF)]
#
# Installs BUILD_DIR into a fresh temporary prefix and checks what a user
# gets there: headers, SONAME libchatcore.so.0, only cc_* exported, a
# pkg-config file and a CMake package that work from that prefix. Builds
# tests/install/consumer/main.c (a) with pkg-config, (b) with
# find_package(chatcore) linking chatcore::chatcore, (c) statically with
# `pkg-config --static` and (d) find_package linking
# chatcore::chatcore_static; runs each and compares its output. Every check
# prints "ok" or "FAIL"; the exit code is nonzero if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$(cd "${1:?usage: run.sh BUILD_DIR [CC] [SANITIZE]}" && pwd)
CC=${2:-cc}
SAN=${3:-OFF}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cc-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/prefix
FAILS=0
ok() { echo "ok:   $*"; }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

SANFLAGS=()
case "$SAN" in
    ON|on|1|TRUE|true|YES|yes)
        # shellcheck disable=SC2054 # the comma is part of the flag
        SANFLAGS=(-fsanitize=address,undefined -fno-omit-frame-pointer) ;;
esac

echo "== cmake --install $BUILD --prefix $PREFIX"
if ! cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1; then
    cat "$TMP/install.log"
    bad "cmake --install"
    exit 1
fi
ok "cmake --install"

# Where GNUInstallDirs put the libraries (lib or lib/<multiarch>).
PC=$(find "$PREFIX" -name chatcore.pc -print -quit)
if [ -z "$PC" ]; then bad "no chatcore.pc installed"; exit 1; fi
LIBDIR=$(dirname "$(dirname "$PC")")
echo "   libdir: $LIBDIR"

for f in include/chatcore/chatcore.h include/chatcore/common.h \
         include/chatcore/version.h; do
    if [ -f "$PREFIX/$f" ]; then ok "installed $f"; else bad "missing $f"; fi
done
for f in libchatcore.so libchatcore.so.0 libchatcore.a \
         cmake/chatcore/chatcoreConfig.cmake \
         cmake/chatcore/chatcoreConfigVersion.cmake \
         cmake/chatcore/chatcoreTargets.cmake; do
    if [ -e "$LIBDIR/$f" ]; then ok "installed lib/$f"; else bad "missing lib/$f"; fi
done
# Nothing private may be installed.
extra=$(cd "$PREFIX" && find include -type f ! -path 'include/chatcore/*.h')
if [ -z "$extra" ]; then ok "only chatcore/*.h headers installed"; else
    bad "unexpected headers installed: $extra"; fi

# ---- the shared library itself ----
SO=$(readlink -f "$LIBDIR/libchatcore.so")
soname=$(readelf -d "$SO" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" = libchatcore.so.0 ]; then ok "SONAME $soname"; else
    bad "SONAME is '$soname', want libchatcore.so.0"; fi
exports=$(nm -D --defined-only "$SO" | awk '{print $NF}')
others=$(printf '%s\n' "$exports" | grep -v '^cc_')
if [ -z "$others" ] && printf '%s\n' "$exports" | grep -q '^cc_version_string$'; then
    ok "exports only cc_* ($(printf '%s\n' "$exports" | wc -l) symbols)"
else
    bad "exports other than cc_*: $(printf '%s\n' "$others" | tr '\n' ' ')"
fi

# ---- what every consumer must print ----
VERSION=$(sed -n 's/^#define CC_VERSION_STRING "\(.*\)"/\1/p' \
              "$PREFIX/include/chatcore/version.h")
cat >"$TMP/expected" <<EOT
loop same
version $VERSION
hex match
EPROTO -5000 CC_EPROTO: protocol error
ctx closed 1, loop_close 0
EOT

runs() { # name binary [want-installed-so]
    local name=$1 bin=$2
    if ! LD_LIBRARY_PATH="$LIBDIR" "$bin" >"$TMP/$name.out" 2>&1; then
        cat "$TMP/$name.out"
        bad "$name: program failed"
        return
    fi
    if ! diff -u "$TMP/expected" "$TMP/$name.out"; then
        bad "$name: output differs"
        return
    fi
    if [ "${3:-}" = shared ]; then
        local lib
        lib=$(LD_LIBRARY_PATH="$LIBDIR" ldd "$bin" |
              awk '$1 == "libchatcore.so.0" {print $3}')
        if [ "$(readlink -f "$lib")" != "$SO" ]; then
            bad "$name: loads libchatcore.so.0 from '$lib', not the prefix"
            return
        fi
    fi
    ok "$name: built, ran, output as expected"
}

export PKG_CONFIG_PATH="$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# The compiler's default dialect (gnu17): <uv.h> needs POSIX types
# (pthread_rwlock_t), which a strict -std=c11 hides unless the user defines
# _POSIX_C_SOURCE; that combination is checked separately below.
WARN=(-Wall -Wextra -Wstrict-prototypes -Werror)

# (a) pkg-config, shared
if flags=$(pkg-config --cflags --libs chatcore 2>"$TMP/pc.err"); then
    echo "   pkg-config --cflags --libs chatcore: $flags"
    # shellcheck disable=SC2086
    if "$CC" "${WARN[@]}" "${SANFLAGS[@]}" "$HERE/consumer/main.c" \
            -o "$TMP/consumer-pc" $flags >"$TMP/a.log" 2>&1; then
        runs "pkg-config" "$TMP/consumer-pc" shared
    else
        cat "$TMP/a.log"; bad "pkg-config: compile/link failed"
    fi
else
    cat "$TMP/pc.err"; bad "pkg-config --cflags --libs chatcore"
fi
pcver=$(pkg-config --modversion chatcore 2>/dev/null)
if [ "$pcver" = "$VERSION" ]; then ok "pkg-config --modversion $pcver"; else
    bad "pkg-config --modversion '$pcver', want $VERSION"; fi

# Strict ISO C11 plus POSIX, as a careful embedder would compile.
# shellcheck disable=SC2046 # pkg-config output is a list of flags
if "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L "${WARN[@]}" -fsyntax-only \
        $(pkg-config --cflags chatcore 2>/dev/null) "$HERE/consumer/main.c" \
        >"$TMP/c11.log" 2>&1; then
    ok "headers compile with -std=c11 -D_POSIX_C_SOURCE=200809L"
else
    cat "$TMP/c11.log"; bad "headers fail with -std=c11 -D_POSIX_C_SOURCE=200809L"
fi

# (c) pkg-config --static against libchatcore.a: checks Libs.private and
# Requires.private name everything the static library needs.
if sflags=$(pkg-config --static --libs chatcore 2>"$TMP/pcs.err"); then
    cflags=$(pkg-config --cflags chatcore)
    sflags=$(printf '%s' "$sflags" | sed 's/\(^\| \)-lchatcore\( \|$\)/ -l:libchatcore.a /')
    echo "   pkg-config --static --libs chatcore -> $sflags"
    # shellcheck disable=SC2086
    if "$CC" "${WARN[@]}" "${SANFLAGS[@]}" $cflags "$HERE/consumer/main.c" \
            -o "$TMP/consumer-pc-static" $sflags >"$TMP/c.log" 2>&1; then
        runs "pkg-config --static" "$TMP/consumer-pc-static"
    else
        cat "$TMP/c.log"; bad "pkg-config --static: compile/link failed"
    fi
else
    cat "$TMP/pcs.err"; bad "pkg-config --static --libs chatcore"
fi

# (b) and (d) find_package(chatcore)
cm_consumer() { # name static(ON|OFF) [shared]
    local name=$1 dir="$TMP/cmake-$2"
    local cflags="${SANFLAGS[*]}"
    if ! cmake -S "$HERE/consumer" -B "$dir" -DCMAKE_PREFIX_PATH="$PREFIX" \
            -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Debug \
            -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$cflags" \
            -DCONSUMER_STATIC="$2" >"$TMP/$name.cfg" 2>&1; then
        cat "$TMP/$name.cfg"; bad "$name: cmake configure failed"; return
    fi
    local found
    found=$(sed -n 's/^-- chatcore \(.*\) from \(.*\)$/\1 \2/p' "$TMP/$name.cfg")
    if [ "$found" != "$VERSION $LIBDIR/cmake/chatcore" ]; then
        bad "$name: found '$found', want '$VERSION $LIBDIR/cmake/chatcore'"
        return
    fi
    if ! cmake --build "$dir" >"$TMP/$name.build" 2>&1; then
        cat "$TMP/$name.build"; bad "$name: build failed"; return
    fi
    runs "$name" "$dir/consumer" "${3:-}"
}
cm_consumer "find_package chatcore::chatcore" OFF shared
cm_consumer "find_package chatcore::chatcore_static" ON

# ---- the adapter libraries: their own .so and .pc; the core needs neither
# librdkafka nor hiredis ----
if readelf -d "$SO" | grep -Eq 'NEEDED.*(rdkafka|hiredis)'; then
    bad "libchatcore.so depends on librdkafka or hiredis"
else
    ok "libchatcore.so needs neither librdkafka nor hiredis"
fi
for ad in kafka redis; do
    ADSO=$(readlink -f "$LIBDIR/libchatcore-$ad.so" 2>/dev/null)
    if [ ! -f "$ADSO" ] || [ ! -f "$LIBDIR/libchatcore-$ad.a" ] ||
       [ ! -f "$LIBDIR/pkgconfig/chatcore-$ad.pc" ]; then
        bad "chatcore-$ad: library or .pc not installed"
        continue
    fi
    adx=$(nm -D --defined-only "$ADSO" | awk '{print $NF}' | grep -v '^cc_')
    if [ -n "$adx" ]; then
        bad "libchatcore-$ad.so exports other than cc_*: $(echo $adx)"
        continue
    fi
    case $ad in
        kafka) fn='cc_kafka_new(NULL, NULL, NULL, NULL, NULL)' ;;
        redis) fn='cc_redis_new(NULL, NULL, NULL, 0, NULL)' ;;
    esac
    printf '#include <chatcore/chatcore.h>\n#include <chatcore/%s.h>\n#include <stdio.h>\nint main(void) { printf("%%d\\n", %s == CC_EINVAL); return 0; }\n' \
        "$ad" "$fn" >"$TMP/ad-$ad.c"
    # shellcheck disable=SC2046 # pkg-config output is a list of flags
    if "$CC" "${WARN[@]}" "${SANFLAGS[@]}" "$TMP/ad-$ad.c" -o "$TMP/ad-$ad" \
            $(pkg-config --cflags --libs "chatcore-$ad") >"$TMP/ad-$ad.log" 2>&1 &&
       [ "$(LD_LIBRARY_PATH="$LIBDIR" "$TMP/ad-$ad")" = 1 ]; then
        ok "chatcore-$ad: pkg-config, linked, cc_${ad}_new refuses NULL"
    else
        cat "$TMP/ad-$ad.log"; bad "chatcore-$ad: pkg-config consumer failed"
    fi
done

# The public headers also compile as C++ (they have extern "C" guards).
if command -v c++ >/dev/null 2>&1; then
    if echo '#include <chatcore/chatcore.h>
int main() { return cc_version() == CC_VERSION_HEX ? 0 : 1; }' |
        c++ -x c++ -Wall -Wextra -Werror -fsyntax-only \
            -I"$PREFIX/include" - >"$TMP/cxx.log" 2>&1; then
        ok "headers compile as C++"
    else
        cat "$TMP/cxx.log"; bad "headers do not compile as C++"
    fi
fi

if [ "$FAILS" -eq 0 ]; then echo "install test: all checks passed"; exit 0; fi
echo "install test: $FAILS check(s) failed"
exit 1
