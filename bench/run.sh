#!/usr/bin/env bash
# bench/run.sh - benchmark our WebSocket server against libwebsockets and
# Node `ws` in one run, on this machine, and print ratios.
#
#   bench/run.sh [--quick] [--build-dir DIR] [--no-build]
#                [--servers ours1,ours2,lws,node]
#                [--tests echo32,echo1k,broadcast,bcast32,connect,idle] [--out FILE]
#
# For each server, one at a time and each on a fresh process and free port:
#   echo32     echo round trips, 32-byte messages
#   echo1k     echo round trips, 1 KiB messages
#   broadcast  one sender, 1,000 receivers, 4 broadcasts in flight, deliveries/s
#   bcast32    the same with 32 in flight: enough load to keep a fast
#              server busy, so throughput rather than latency is measured
#   connect    connection churn (open + close), handshakes/s
#   idle       N idle connections from two loadgen processes on two source
#              addresses; VmRSS before/after gives bytes per connection
# Server CPU (utime+stime from /proc/PID/stat) is sampled over each measured
# interval, so every rate is also given per server CPU-second.
#
# The default run takes about 5 minutes, --quick about 2. Results: a table
# on stdout and bench/results/<date>.json (see bench/README.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench-release}
QUICK=0
DO_BUILD=1
SERVERS=ours1,ours2,lws,node
TESTS=echo32,echo1k,broadcast,bcast32,connect,idle
OUT=""

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --build-dir) BUILD_DIR=$2; shift ;;
    --no-build) DO_BUILD=0 ;;
    --servers) SERVERS=$2; shift ;;
    --tests) TESTS=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# ---- fixed parameters (change them here, not per run: runs compare) ----
if [ "$QUICK" = 1 ]; then
    WARMUP=1; DURATION=3
    IDLE_PER_PROC=5000; IDLE_HOLD=4
    MODE_NAME=quick
else
    WARMUP=2; DURATION=10
    IDLE_PER_PROC=9500; IDLE_HOLD=6
    MODE_NAME=full
fi
ECHO_CONNS=100; ECHO_INFLIGHT=8
BCAST_CONNS=1000; BCAST_INFLIGHT=4; BCAST_SIZE=64; BCAST_INFLIGHT_SAT=32
CHURN_CONNS=64
IDLE_BINDS=(127.0.0.2 127.0.0.3)

log() { echo "[run.sh] $*" >&2; }

# ---- limits: servers and loadgen hold up to ~19,000 sockets each ----
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 12000 ]; then
    log "warning: open-file limit $(ulimit -n) is too low for the idle test"
fi

# ---- build ----
if [ "$DO_BUILD" = 1 ]; then
    log "building in $BUILD_DIR"
    mkdir -p "$BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
        -DCC_BUILD_TESTS=OFF >"$BUILD_DIR/bench-cmake.log" 2>&1 ||
        { cat "$BUILD_DIR/bench-cmake.log" >&2; exit 1; }
    for t in loadgen echo-server lws-server; do
        if ! cmake --build "$BUILD_DIR" -j2 --target "$t" \
            >"$BUILD_DIR/bench-build-$t.log" 2>&1; then
            log "building $t failed (see $BUILD_DIR/bench-build-$t.log)"
        fi
    done
fi
LOADGEN=$BUILD_DIR/bench/loadgen
ECHO_SERVER=$BUILD_DIR/examples/echo-server
LWS_SERVER=$BUILD_DIR/bench/lws-server
[ -x "$LOADGEN" ] || { log "no $LOADGEN: cannot run"; exit 1; }

if [[ ",$SERVERS," == *",node,"* ]] && [ ! -d "$HERE/node_modules/ws" ]; then
    log "installing the pinned Node ws (npm ci)"
    (cd "$HERE" && npm ci --no-audit --no-fund >/dev/null 2>&1) ||
        (cd "$HERE" && npm install --no-audit --no-fund >/dev/null 2>&1) ||
        log "npm install failed: the node peer will be skipped"
fi

WORK=$(mktemp -d /tmp/ccbench.XXXXXX)
SRV_PID=""
cleanup() {
    if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# server_cmd NAME MODE PORT -> prints the command line, or nothing
server_cmd() {
    local name=$1 mode=$2 port=$3
    case "$name" in
    ours1) [ -x "$ECHO_SERVER" ] &&
        echo "$ECHO_SERVER --port $port --mode $mode --threads 1" ;;
    ours2) [ -x "$ECHO_SERVER" ] &&
        echo "$ECHO_SERVER --port $port --mode $mode --threads 2" ;;
    lws) [ -x "$LWS_SERVER" ] &&
        echo "$LWS_SERVER --port $port --mode $mode" ;;
    node) [ -d "$HERE/node_modules/ws" ] && command -v node >/dev/null &&
        echo "node $HERE/peers/ws-server.js --port $port --mode $mode" ;;
    esac
    return 0
}

# start_server NAME MODE -> sets SRV_PID, PORT; returns 1 if it did not start
start_server() {
    local name=$1 mode=$2 cmd i
    PORT=$(free_port)
    cmd=$(server_cmd "$name" "$mode" "$PORT")
    if [ -z "$cmd" ]; then
        log "skipping $name $mode: not built or not installed"
        return 1
    fi
    SRV_LOG=$WORK/$name-$mode-$PORT.log
    # exec: $! is the server itself, so /proc/$! is the server's
    bash -c "exec $cmd" >"$SRV_LOG" 2>&1 &
    SRV_PID=$!
    for i in $(seq 1 100); do
        if grep -q listening "$SRV_LOG" 2>/dev/null; then
            sleep 0.2
            return 0
        fi
        if ! kill -0 "$SRV_PID" 2>/dev/null; then break; fi
        sleep 0.05
    done
    log "$name did not start ($cmd):"; tail -5 "$SRV_LOG" >&2 || true
    stop_server
    return 1
}

stop_server() {
    if [ -n "$SRV_PID" ]; then
        kill "$SRV_PID" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    SRV_PID=""
}

# emit NAME TEST JSON: append one record to the results stream
RESULTS=$WORK/results.jsonl
emit() {
    printf '{"server":"%s","test":"%s","result":%s}\n' "$1" "$2" "$3" >>"$RESULTS"
}

alive_note() {
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
        log "  server died during the test (log: $SRV_LOG)"
        echo false
    else
        echo true
    fi
}

# run_loadgen_test NAME TEST SERVER_MODE LOADGEN_ARGS...
run_loadgen_test() {
    local name=$1 test=$2 mode=$3; shift 3
    local out=$WORK/$name-$test.json err=$WORK/$name-$test.err alive
    if ! start_server "$name" "$mode"; then
        emit "$name" "$test" '{"skipped":"server did not start"}'
        return
    fi
    log "$name $test"
    timeout $((WARMUP + DURATION + 90)) "$LOADGEN" \
        --url "ws://127.0.0.1:$PORT/" --pid "$SRV_PID" --label "$name/$test" \
        --warmup "$WARMUP" --duration "$DURATION" "$@" >"$out" 2>"$err" || true
    alive=$(alive_note)
    stop_server
    if [ -s "$out" ]; then
        emit "$name" "$test" "$(tail -1 "$out" | sed "s/}\$/,\"server_alive\":$alive}/")"
    else
        log "  loadgen gave no result: $(tail -2 "$err" | tr '\n' ' ')"
        emit "$name" "$test" '{"skipped":"loadgen gave no result"}'
    fi
}

proc_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo -1; }
proc_cpu() {
    # utime+stime in clock ticks (fields 14, 15; the name may hold spaces)
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}' || echo -1
}

# idle: two (or more) loadgen processes, each under the fd limit
run_idle_test() {
    local name=$1 np=${#IDLE_BINDS[@]} i t0 t1 rss0 rss1 cpu0 cpu1 ready
    local total=$((IDLE_PER_PROC * np)) pids=() alive
    if ! start_server "$name" echo; then
        emit "$name" idle '{"skipped":"server did not start"}'
        return
    fi
    log "$name idle ($np x $IDLE_PER_PROC connections)"
    rss0=$(proc_rss "$SRV_PID"); cpu0=$(proc_cpu "$SRV_PID")
    t0=$(date +%s.%N)
    for i in $(seq 0 $((np - 1))); do
        timeout $((IDLE_HOLD + 120)) "$LOADGEN" --url "ws://127.0.0.1:$PORT/" \
            --mode idle --conns "$IDLE_PER_PROC" --duration "$IDLE_HOLD" \
            --connect-timeout 60 --bind "${IDLE_BINDS[$i]}" \
            --label "$name/idle/$i" >"$WORK/$name-idle-$i.json" \
            2>"$WORK/$name-idle-$i.err" &
        pids+=($!)
    done
    # wait until every process has its connections open (or gave up)
    for _ in $(seq 1 1400); do
        ready=0
        for i in $(seq 0 $((np - 1))); do
            grep -q '^READY' "$WORK/$name-idle-$i.err" 2>/dev/null && ready=$((ready + 1))
        done
        [ "$ready" -ge "$np" ] && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    cpu1=$(proc_cpu "$SRV_PID")
    sleep 1 # let the server finish its last handshakes and settle
    rss1=$(proc_rss "$SRV_PID")
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    alive=$(alive_note)
    stop_server
    local parts=""
    for i in $(seq 0 $((np - 1))); do
        local j
        j=$(tail -1 "$WORK/$name-idle-$i.json" 2>/dev/null || true)
        [ -n "$j" ] || j='{"skipped":"loadgen gave no result"}'
        parts="$parts${parts:+,}$j"
    done
    emit "$name" idle "$(printf '{"mode":"idle","conns":%d,"ready_procs":%d,"connect_wall_s":%.3f,"server_conn_cpu_ticks":%d,"clk_tck":%d,"rss_kb_before":%d,"rss_kb_after":%d,"server_alive":%s,"procs":[%s]}' \
        "$total" "$ready" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$((cpu1 - cpu0))" \
        "$(getconf CLK_TCK)" "$rss0" "$rss1" "$alive" "$parts")"
}

IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
START=$(date +%s)
log "mode $MODE_NAME; servers: ${SERVER_LIST[*]}; work dir $WORK"
want() { [[ ",$TESTS," == *",$1,"* ]]; }
for s in "${SERVER_LIST[@]}"; do
    want echo32 && run_loadgen_test "$s" echo32 echo --mode echo --conns $ECHO_CONNS \
        --inflight $ECHO_INFLIGHT --size 32
    want echo1k && run_loadgen_test "$s" echo1k echo --mode echo --conns $ECHO_CONNS \
        --inflight $ECHO_INFLIGHT --size 1024
    want broadcast && run_loadgen_test "$s" broadcast broadcast --mode broadcast --conns $BCAST_CONNS \
        --inflight $BCAST_INFLIGHT --size $BCAST_SIZE
    want bcast32 && run_loadgen_test "$s" bcast32 broadcast --mode broadcast --conns $BCAST_CONNS \
        --inflight $BCAST_INFLIGHT_SAT --size $BCAST_SIZE
    want connect && run_loadgen_test "$s" connect echo --mode connect --conns $CHURN_CONNS \
        --bind 127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7
    want idle && run_idle_test "$s"
done
ELAPSED=$(($(date +%s) - START))

mkdir -p "$HERE/results"
if [ -z "$OUT" ]; then
    OUT=$HERE/results/$(date +%Y-%m-%d-%H%M%S)
    [ "$QUICK" = 1 ] && OUT=$OUT-quick
    OUT=$OUT.json
fi
"$PY" "$HERE/summarize.py" --results "$RESULTS" --out "$OUT" \
    --mode "$MODE_NAME" --elapsed "$ELAPSED" \
    --params "warmup=$WARMUP duration=$DURATION echo_conns=$ECHO_CONNS echo_inflight=$ECHO_INFLIGHT bcast_conns=$BCAST_CONNS bcast_inflight=$BCAST_INFLIGHT bcast_inflight_sat=$BCAST_INFLIGHT_SAT bcast_size=$BCAST_SIZE churn_conns=$CHURN_CONNS idle_procs=${#IDLE_BINDS[@]} idle_per_proc=$IDLE_PER_PROC"
log "results: $OUT (raw logs in $WORK)"
