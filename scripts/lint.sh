#!/usr/bin/env bash
# scripts/lint.sh - the mechanical checks of STYLE.md.
#
#   scripts/lint.sh [BUILD_DIR]     (default: build; must hold a normal,
#                                    non-sanitizer build of the library)
#
# Prints "lint: PASS <check>" or "lint: FAIL <check>" plus the offending
# lines for each check; exits nonzero when any check fails.
#   alloc     no malloc/calloc/realloc/free/strdup calls in lib/ outside
#             lib/core/alloc.c (comments and strings are ignored; member
#             calls such as a->free( and cc__free( are not bare calls)
#   globals   no mutable global or static data in libchatcore.a: no symbol
#             in .data/.bss/.tdata/.tbss or common, except the reviewed
#             entries of scripts/nm-allowlist.txt. Plain `nm | grep ' [dD] '`
#             would also flag `static const` tables of pointers, which PIC
#             places in .data.rel.ro (read-only after relocation), so the
#             section is what is checked.
#   exports   libchatcore.so exports only cc_* symbols
#   headers   public headers include only chatcore headers, <uv.h> and
#             the C standard library
#   adapters  only lib/adapters/{kafka,redis,sqlite}.c include librdkafka,
#             hiredis or sqlite3 headers
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
BUILD=${1:-build}
FAILS=0
PASSES=0

pass() { echo "lint: PASS $1"; PASSES=$((PASSES + 1)); }
fail() {
    echo "lint: FAIL $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/    /'
    FAILS=$((FAILS + 1))
}

# ---- alloc: bare libc allocation calls in lib/ ----
# shellcheck disable=SC2016 # the single-quoted text is perl, not shell
out=$(find lib -name '*.[ch]' ! -path lib/core/alloc.c -print0 | sort -z |
      xargs -0 -r perl -e '
    for my $f (@ARGV) {
        open(my $fh, "<", $f) or die "$f: $!";
        local $/; my $s = <$fh>; close $fh;
        # Blank out comments and string/char literals, keeping newlines so
        # line numbers stay right.
        $s =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27)}
               { (my $m = $1) =~ s/[^\n]/ /g; $m }gse;
        my $n = 0;
        for my $line (split /\n/, $s, -1) {
            $n++;
            print "$f:$n: $line\n"
                if $line =~ /(?<![\w.>])(malloc|calloc|realloc|free|strdup)\s*\(/;
        }
    }')
if [ -z "$out" ]; then pass alloc; else fail alloc "$out"; fi

# ---- globals: mutable data in the static library ----
A="$BUILD/libchatcore.a"
if [ ! -f "$A" ]; then
    fail globals "$A not found (build first: scripts/build.sh $BUILD)"
else
    allow=()
    if [ -f scripts/nm-allowlist.txt ]; then
        while read -r obj sym _; do
            case "$obj" in ''|\#*) continue ;; esac
            allow+=("$obj ${sym:-*}")
        done < scripts/nm-allowlist.txt
    fi
    bad=""
    # sysv format: archive:object:name|value|class|type|size|line|section
    while IFS='|' read -r left _ class _ _ _ section; do
        class=${class// /}; section=${section// /}
        name=${left##*:}; name=${name%% *}
        rest=${left%:*}; obj=${rest##*:}
        mutable=0
        case "$section" in
            .data.rel.ro*) ;;
            .data|.data.*|.bss|.bss.*|.tdata|.tdata.*|.tbss|.tbss.*) mutable=1 ;;
        esac
        case "$class" in C|c) mutable=1 ;; esac
        [ "$mutable" = 1 ] || continue
        ok=0
        for a in "${allow[@]}"; do
            # shellcheck disable=SC2254
            case "$obj" in ${a%% *}) case "$name" in ${a#* }) ok=1 ;; esac ;; esac
        done
        [ "$ok" = 1 ] || bad+="$obj: $name ($section)"$'\n'
    done < <(nm -A -f sysv --defined-only "$A" 2>/dev/null | grep '|')
    if [ -z "$bad" ]; then pass globals; else fail globals "${bad%$'\n'}"; fi
fi

# ---- exports: only cc_* from the shared library ----
SO="$BUILD/libchatcore.so"
if [ ! -e "$SO" ]; then
    fail exports "$SO not found"
else
    out=$(nm -D --defined-only "$SO" | awk '{print $NF}' | grep -v '^cc_')
    n=$(nm -D --defined-only "$SO" | awk '{print $NF}' | grep -c '^cc_')
    if [ -n "$out" ]; then
        fail exports "$out"
    elif [ "$n" -eq 0 ]; then
        fail exports "no cc_* symbol exported at all"
    else
        pass exports
    fi
fi

# ---- headers: what public headers may include ----
STD=" assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h iso646.h
limits.h locale.h math.h setjmp.h signal.h stdalign.h stdarg.h stdatomic.h
stdbool.h stddef.h stdint.h stdio.h stdlib.h stdnoreturn.h string.h tgmath.h
threads.h time.h uchar.h wchar.h wctype.h uv.h "
STD=$(printf '%s' "$STD" | tr '\n' ' ')  # one line
bad=""
while IFS= read -r hit; do
    file=${hit%%:*}
    inc=$(printf '%s' "$hit" | sed -E 's/^[^:]*:[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*//')
    case "$inc" in
        \"*\"*)
            h=${inc#\"}; h=${h%%\"*}
            [ -f "$(dirname "$file")/$h" ] && [ "${h#*..}" = "$h" ] ||
                bad+="$hit"$'\n' ;;
        \<chatcore/*\>*)
            h=${inc#<}; h=${h%%>*}
            [ -f "include/$h" ] || bad+="$hit"$'\n' ;;
        \<*\>*)
            h=${inc#<}; h=${h%%>*}
            case " $STD " in *" $h "*) ;; *) bad+="$hit"$'\n' ;; esac ;;
        *) bad+="$hit"$'\n' ;;
    esac
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include' include/)
if [ -z "$bad" ]; then pass headers; else fail headers "${bad%$'\n'}"; fi

# ---- adapters: third-party backend headers stay in their adapter ----
out=$(grep -rnE '#[[:space:]]*include[[:space:]]*[<"](librdkafka/|rdkafka\.h|hiredis/|hiredis\.h|sqlite3\.h)' \
          lib include 2>/dev/null |
      grep -vE '^lib/adapters/(kafka|redis|sqlite)\.c:')
if [ -z "$out" ]; then pass adapters; else fail adapters "$out"; fi

echo "lint: $PASSES checks passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
