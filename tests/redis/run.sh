#!/usr/bin/env bash
# tests/redis/run.sh - a private redis-server for the Redis adapter's tests
# (tests/test_redis.c): 127.0.0.1 only, a free port, no persistence.
#
#   run.sh start DIR     start one; writes DIR/port and DIR/pid, waits until
#                        it answers PING (ctest's FIXTURES_SETUP)
#   run.sh stop DIR      stop it (TERM, then KILL after 5 s), remove DIR
#                        (ctest's FIXTURES_CLEANUP)
#   run.sh exec CMD...   start one in a temporary directory, run CMD with
#                        CC_REDIS_PORT set, stop it; exit with CMD's status
#
# CC_REDIS_SERVER names the binary (default: redis-server on PATH). The
# test itself also starts private servers (restart, timeouts, AUTH) with
# the same binary. Ports are tried at random in 20000-59999 until one binds.
set -uo pipefail

REDIS_SERVER=${CC_REDIS_SERVER:-redis-server}

die() { echo "run.sh: $*" >&2; exit 1; }

# PING through bash's /dev/tcp: no redis-cli needed.
ping_port() {
    local port=$1 reply=""
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || true
    exec 3<&- 3>&-
    [[ $reply == +PONG* ]]
}

start() {
    local dir=$1 port pid i try
    command -v "$REDIS_SERVER" >/dev/null 2>&1 ||
        die "$REDIS_SERVER not found (install redis-server or set CC_REDIS_SERVER)"
    mkdir -p "$dir" || die "cannot create $dir"
    for try in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        # setsid + redirected stdio: ctest does not wait on the server
        setsid "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 \
            --save "" --appendonly no --daemonize no --dir "$dir" \
            --logfile "$dir/redis.log" --loglevel warning \
            </dev/null >/dev/null 2>&1 &
        pid=$!
        for i in $(seq 1 200); do
            if ping_port "$port"; then
                echo "$port" >"$dir/port"
                echo "$pid" >"$dir/pid"
                echo "redis-server pid $pid on 127.0.0.1:$port"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break # exited: port taken?
            sleep 0.02
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    [ -f "$dir/redis.log" ] && tail -5 "$dir/redis.log" >&2
    die "could not start $REDIS_SERVER"
}

# Exited: no such process, or a zombie that init has not reaped yet (the
# server was started by an earlier run.sh, so it is not our child).
gone() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}

stop() {
    local dir=$1 pid i
    if [ -f "$dir/pid" ]; then
        pid=$(cat "$dir/pid")
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 250); do
            gone "$pid" && break
            sleep 0.02
        done
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start) [ $# -eq 2 ] || die "usage: run.sh start DIR"; start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: run.sh stop DIR"; stop "$2" ;;
exec)
    shift
    [ $# -ge 1 ] || die "usage: run.sh exec CMD..."
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cc-redis.XXXXXX") || die "mktemp failed"
    trap 'stop "$dir"' EXIT
    start "$dir" >/dev/null || exit 1
    CC_REDIS_PORT=$(cat "$dir/port") "$@"
    exit $?
    ;;
*) die "usage: run.sh start DIR | stop DIR | exec CMD..." ;;
esac
