#!/usr/bin/env bash
# bench/chat.sh - the chat benchmark: 1,000 visitors and 50 agents of one
# tenant through the all-in-one server (examples/chatcore-server), measured
# with bench/chatload, and the same 1,000 connections through the echo
# example for the ceiling. Builds nothing.
#
#   bench/chat.sh [BUILD_DIR] [--quick] [--tests max,open,mem,echo]
#                 [--inflight 2,8,32] [--rate 5000] [--data-base DIR]
#                 [--out FILE]
#
#   max   closed loop, K messages in flight per visitor, for each K of
#         --inflight: durable messages/s (the best K is the result)
#   open  open loop at --rate messages/s in all for 10 s: latency p50/p99
#   mem   no load: server RSS after setup vs with every session active,
#         bytes per active session
#   echo  examples/echo-server (one thread, echo mode) with loadgen: the
#         same 1,000 connections, the best K in flight, messages of the
#         size of one chat `send` frame: round trips/s, for chat/echo
#
# Each test runs on a fresh server (a new temporary data directory, a random
# admin key, a free port). --data-base puts those directories elsewhere
# (default: the work dir under /tmp; /dev/shm takes the disk out of the
# picture, to tell storage stalls from the engine's own latency). The load
# client and the server share the machine's cores, so every rate is also
# given per server CPU-second, and each run reports how much other work
# ran on the machine meanwhile (a warning above 0.1 cores).
# Results: a table on stdout, bench/results/chat-<date>.json; raw logs stay
# in the /tmp/ccchat.* directory printed at the end.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
QUICK=0
TESTS=max,open,mem,echo
INFLIGHTS=""
RATE=5000
OUT=""
DATA_BASE=""

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --tests) TESTS=$2; shift ;;
    --inflight) INFLIGHTS=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --out) OUT=$2; shift ;;
    --build-dir) BUILD_DIR=$2; shift ;;
    --data-base) DATA_BASE=$2; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    -*) echo "chat.sh: unknown option $1" >&2; exit 2 ;;
    *) BUILD_DIR=$1 ;;
    esac
    shift
done
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# ---- fixed parameters (change them here, not per run: runs compare) ----
VISITORS=1000
AGENTS=50
TEXT_BYTES=100
OPEN_DURATION=10
if [ "$QUICK" = 1 ]; then
    WARMUP=1; DURATION=4
    [ -n "$INFLIGHTS" ] || INFLIGHTS=8
else
    WARMUP=2; DURATION=10
    [ -n "$INFLIGHTS" ] || INFLIGHTS=2,8,32
fi
LOG_LEVEL=${LOG_LEVEL:-info}

log() { echo "[chat.sh] $*" >&2; }

CHAT_SERVER=${CHAT_SERVER:-$BUILD_DIR/examples/chatcore-server}
# the binary sits in examples/; accept a per-example directory too
[ -d "$CHAT_SERVER" ] && CHAT_SERVER=$CHAT_SERVER/chatcore-server
CHATLOAD=$BUILD_DIR/bench/chatload
LOADGEN=$BUILD_DIR/bench/loadgen
ECHO_SERVER=$BUILD_DIR/examples/echo-server
for b in "$CHAT_SERVER" "$CHATLOAD"; do
    [ -x "$b" ] || { log "missing $b (build it first)"; exit 1; }
done

# 1,050 client sockets plus the server's: well under the usual limit
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/ccchat.XXXXXX)
SRV_PID=""
DATA_DIRS=()
cleanup() {
    if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null || true; fi
    # the databases are large (the WAL alone reaches 64 MB): drop them
    for d in "${DATA_DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_server NAME CMD...: runs CMD (exec'd, so $! is the server) with its
# output in $WORK/NAME.log; waits for the "listening" line.
start_server() {
    local name=$1; shift
    SRV_LOG=$WORK/$name.log
    "$@" >"$SRV_LOG" 2>&1 &
    SRV_PID=$!
    for _ in $(seq 1 200); do
        if grep -q 'listening' "$SRV_LOG" 2>/dev/null; then
            sleep 0.2
            return 0
        fi
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "$name did not start ($*):"; tail -5 "$SRV_LOG" >&2 || true
    stop_server
    return 1
}

stop_server() {
    if [ -n "$SRV_PID" ]; then
        kill "$SRV_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    SRV_PID=""
}

alive_json() {
    if kill -0 "$SRV_PID" 2>/dev/null; then echo true; else
        log "  server died during the test (log: $SRV_LOG)"; echo false; fi
}

RESULTS=$WORK/results.jsonl
emit() {
    printf '{"test":"%s","result":%s}\n' "$1" "$2" >>"$RESULTS"
}

# start_chat NAME: a fresh chat server on a new data dir and random key
start_chat() {
    local name=$1 data
    data=$(mktemp -d "${DATA_BASE:-$WORK}/ccchat-data-$name.XXXXXX")
    DATA_DIRS+=("$data")
    PORT=$(free_port)
    ADMIN_KEY=$("$PY" -c 'import secrets; print(secrets.token_hex(24))')
    export CHATCORE_ADMIN_KEY=$ADMIN_KEY
    start_server "chat-$name" bash -c "exec \"$CHAT_SERVER\" --port $PORT \
        --host 127.0.0.1 --data \"$data\" --demo false \
        --ip-upgrades-per-min 1000000 --log-level $LOG_LEVEL"
}

# run_chat TEST NAME CHATLOAD_ARGS...
run_chat() {
    local test=$1 name=$2; shift 2
    local out=$WORK/$name.json err=$WORK/$name.err alive
    if ! start_chat "$name"; then
        emit "$test" "{\"name\":\"$name\",\"skipped\":\"server did not start\"}"
        return
    fi
    log "$name: chatload $*"
    timeout 300 "$CHATLOAD" --port "$PORT" --server-pid "$SRV_PID" \
        --visitors $VISITORS --agents $AGENTS --size $TEXT_BYTES \
        --label "$name" "$@" >"$out" 2>"$err" || true
    alive=$(alive_json)
    sed -n '/^== chatload/,$p' "$err" >&2
    stop_server
    rm -rf "${DATA_DIRS[@]}"; DATA_DIRS=()
    if [ -s "$out" ]; then
        emit "$test" "$(tail -1 "$out" | sed "s/}\$/,\"name\":\"$name\",\"server_alive\":$alive}/")"
    else
        log "  chatload gave no result: $(tail -3 "$err" | tr '\n' ' ')"
        emit "$test" "{\"name\":\"$name\",\"skipped\":\"chatload gave no result\"}"
    fi
}

want() { [[ ",$TESTS," == *",$1,"* ]]; }
START=$(date +%s)
log "work dir $WORK; build $BUILD_DIR; tests $TESTS"

BEST_K=8
if want max; then
    IFS=, read -r -a KS <<<"$INFLIGHTS"
    best=-1
    for k in "${KS[@]}"; do
        run_chat max "max-k$k" --inflight "$k" --warmup $WARMUP \
            --duration $DURATION
        r=$(tail -1 "$RESULTS" | jq -r '.result.rate // 0' 2>/dev/null || echo 0)
        if awk -v a="$r" -v b="$best" 'BEGIN {exit !(a > b)}'; then
            best=$r; BEST_K=$k
        fi
    done
    log "best closed loop: K=$BEST_K, $best durable msgs/s"
fi
if want open; then
    run_chat open "open-$RATE" --rate "$RATE" --warmup $WARMUP \
        --duration $OPEN_DURATION
fi
if want mem; then
    run_chat mem mem --duration 0
fi
if want echo; then
    if [ -x "$ECHO_SERVER" ] && [ -x "$LOADGEN" ]; then
        # one chat `send` frame as chatload builds it, so the echo moves
        # the same bytes per message
        FRAME=$("$CHATLOAD" --frame-bytes --size $TEXT_BYTES)
        PORT=$(free_port)
        if start_server echo bash -c "exec \"$ECHO_SERVER\" --port $PORT --mode echo --threads 1"; then
            log "echo: loadgen --conns $VISITORS --inflight $BEST_K --size $FRAME --text"
            timeout 300 "$LOADGEN" --url "ws://127.0.0.1:$PORT/" --mode echo \
                --conns $VISITORS --inflight "$BEST_K" --size "$FRAME" --text \
                --warmup $WARMUP --duration $DURATION --pid "$SRV_PID" \
                --label "echo-k$BEST_K" >"$WORK/echo.json" 2>"$WORK/echo.err" || true
            alive=$(alive_json)
            stop_server
            if [ -s "$WORK/echo.json" ]; then
                emit echo "$(tail -1 "$WORK/echo.json" | sed "s/}\$/,\"server_alive\":$alive}/")"
            else
                emit echo '{"skipped":"loadgen gave no result"}'
            fi
        else
            emit echo '{"skipped":"echo-server did not start"}'
        fi
    else
        log "no $ECHO_SERVER or $LOADGEN: echo skipped"
        emit echo '{"skipped":"not built"}'
    fi
fi
ELAPSED=$(($(date +%s) - START))

mkdir -p "$HERE/results"
if [ -z "$OUT" ]; then
    OUT=$HERE/results/chat-$(date +%Y-%m-%d-%H%M%S)
    [ "$QUICK" = 1 ] && OUT=$OUT-quick
    OUT=$OUT.json
fi
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo true || echo false)

"$PY" - "$RESULTS" "$OUT" <<EOF
import json, sys, os, platform
res_path, out_path = sys.argv[1], sys.argv[2]
recs = [json.loads(l) for l in open(res_path) if l.strip()]
def ok(r): return "skipped" not in r
maxes = [r["result"] for r in recs if r["test"] == "max" and ok(r["result"])]
opens = [r["result"] for r in recs if r["test"] == "open" and ok(r["result"])]
mems = [r["result"] for r in recs if r["test"] == "mem" and ok(r["result"])]
echos = [r["result"] for r in recs if r["test"] == "echo" and ok(r["result"])]
best = max(maxes, key=lambda r: r["rate"]) if maxes else None
op = opens[0] if opens else None
mem = mems[0] if mems else None
echo = echos[0] if echos else None

def fmt(v, unit=""):
    if v is None: return "-"
    if isinstance(v, float):
        if abs(v) >= 1e6: return "%.2fM%s" % (v / 1e6, unit)
        if abs(v) >= 1e4: return "%.1fk%s" % (v / 1e3, unit)
        return "%.0f%s" % (v, unit)
    return str(v) + unit

rows, summary = [], {}
for r in maxes:
    s = r["server"]
    rows.append(("closed loop K=%d: durable msgs/s" % r["inflight"], fmt(r["rate"])))
    rows.append(("  per server CPU-s (server %.2f cores, client %.2f CPU-s/s)" %
                 (s["cpu_util"], r["client_cpu_s"] / r["duration_s"] if r["duration_s"] else 0),
                 fmt(s["rate_per_cpu_s"])))
    rows.append(("  visitor->agent p50/p99/max us", "%s / %s / %s" % (
        fmt(r["latency_deliver_us"]["p50"]), fmt(r["latency_deliver_us"]["p99"]),
        fmt(r["latency_deliver_us"]["max"]))))
    rows.append(("  send->sent p50/p99 us", "%s / %s" % (
        fmt(r["latency_sent_us"]["p50"]), fmt(r["latency_sent_us"]["p99"]))))
    rows.append(("  server storage bytes per msg, msgs per commit", "%s / %s" % (
        fmt(s.get("disk_bytes_per_msg")), fmt(s.get("msgs_per_commit")))))
    rows.append(("  other work on the machine (cores)", "%.2f" % r["machine"]["other_cores"]))
if best:
    summary["max_durable_per_s"] = best["rate"]
    summary["max_inflight"] = best["inflight"]
    summary["max_durable_per_server_cpu_s"] = best["server"]["rate_per_cpu_s"]
    summary["max_server_cpu_util"] = best["server"]["cpu_util"]
    summary["max_other_cores"] = best["machine"]["other_cores"]
if op:
    rows.append(("open loop %d msg/s: achieved durable msgs/s" % op["target_rate"], fmt(op["rate"])))
    rows.append(("  visitor->agent p50/p90/p99/max us", "%s / %s / %s / %s" % tuple(
        fmt(op["latency_deliver_us"][k]) for k in ("p50", "p90", "p99", "max"))))
    rows.append(("  send->sent p50/p99 us", "%s / %s" % (
        fmt(op["latency_sent_us"]["p50"]), fmt(op["latency_sent_us"]["p99"]))))
    rows.append(("  server CPU cores used", "%.2f" % op["server"]["cpu_util"]))
    rows.append(("  server storage bytes per msg, msgs per commit", "%s / %s" % (
        fmt(op["server"].get("disk_bytes_per_msg")), fmt(op["server"].get("msgs_per_commit")))))
    rows.append(("  other work on the machine (cores)", "%.2f" % op["machine"]["other_cores"]))
    summary["open_disk_bytes_per_msg"] = op["server"].get("disk_bytes_per_msg")
    summary["open_msgs_per_commit"] = op["server"].get("msgs_per_commit")
    summary["open_other_cores"] = op["machine"]["other_cores"]
    summary["open_rate"] = op["target_rate"]
    summary["open_achieved"] = op["rate"]
    summary["open_deliver_p50_us"] = op["latency_deliver_us"]["p50"]
    summary["open_deliver_p99_us"] = op["latency_deliver_us"]["p99"]
    summary["open_sent_p50_us"] = op["latency_sent_us"]["p50"]
    summary["open_sent_p99_us"] = op["latency_sent_us"]["p99"]
    summary["open_server_cpu_util"] = op["server"]["cpu_util"]
msrc = mem or best or op
if msrc:
    s = msrc["server"]
    rows.append(("server RSS after setup / with %d sessions (KiB)" % msrc["visitors"],
                 "%s / %s" % (s["rss_kb_setup"], s["rss_kb_sessions"])))
    rows.append(("server bytes per active session", fmt(s["bytes_per_session"])))
    rows.append(("sessions made active per s (setup)", fmt(msrc["setup"]["sessions_per_s"])))
    summary["bytes_per_session"] = s["bytes_per_session"]
    summary["bytes_per_session_from"] = msrc["name"]
if echo:
    rows.append(("echo-server 1 thread, %d conns x %d, %d B: round trips/s" %
                 (echo["conns"], echo["inflight"], echo["size"]), fmt(echo["rate"])))
    rows.append(("  per server CPU-s", fmt(echo["server"]["rate_per_cpu_s"])))
    summary["echo_rate"] = echo["rate"]
    summary["echo_per_server_cpu_s"] = echo["server"]["rate_per_cpu_s"]
    if best:
        summary["chat_over_echo"] = best["rate"] / echo["rate"] if echo["rate"] else None
        e, c = echo["server"]["rate_per_cpu_s"], best["server"]["rate_per_cpu_s"]
        summary["chat_over_echo_per_cpu_s"] = c / e if e and e > 0 and c > 0 else None
        rows.append(("chat / echo, per wall s", "%.3f" % summary["chat_over_echo"] if summary["chat_over_echo"] else "-"))
        rows.append(("chat / echo, per server CPU-s", "%.3f" % summary["chat_over_echo_per_cpu_s"] if summary["chat_over_echo_per_cpu_s"] else "-"))

targets = []
def target(name, val, ok_):
    targets.append({"target": name, "measured": val, "met": ok_})
if best:
    target(">= 20,000 durable messages/s", best["rate"], best["rate"] >= 20000)
if op:
    target("p99 < 10 ms at %d messages/s (visitor->agent)" % op["target_rate"],
           op["latency_deliver_us"]["p99"],
           op["latency_deliver_us"]["p99"] < 10000 and op["rate"] >= 0.98 * op["target_rate"])
if msrc and msrc["server"]["bytes_per_session"] >= 0:
    target("< 16 KiB server memory per active session",
           msrc["server"]["bytes_per_session"], msrc["server"]["bytes_per_session"] < 16384)

w = max([len(a) for a, _ in rows] + [10])
print()
for a, b in rows:
    print(a.ljust(w + 2) + b)
print()
for t in targets:
    print("%-52s %-12s %s" % (t["target"], fmt(float(t["measured"])), "MET" if t["met"] else "NOT MET"))
for r in recs:
    oc = r["result"].get("machine", {}).get("other_cores", 0)
    if oc > 0.1:
        print("WARNING: other work used %.2f cores during %s: its numbers are disturbed" %
              (oc, r["result"].get("name", r["test"])))
    if not ok(r["result"]):
        print("skipped %s: %s" % (r["test"], r["result"]["skipped"]))
    elif r["result"].get("server_alive") is False:
        print("WARNING: the server died during %s" % r["result"].get("name", r["test"]))

doc = {
    "benchmark": "chat", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "commit": "$COMMIT", "dirty_tree": "$DIRTY" == "true", "elapsed_s": $ELAPSED,
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "params": {"visitors": $VISITORS, "agents": $AGENTS, "text_bytes": $TEXT_BYTES,
               "warmup_s": $WARMUP, "duration_s": $DURATION,
               "open_duration_s": $OPEN_DURATION, "inflight": "$INFLIGHTS",
               "rate": $RATE, "quick": bool($QUICK), "log_level": "$LOG_LEVEL",
               "data_base": "${DATA_BASE:-$WORK}"},
    "summary": summary, "targets": targets, "runs": recs,
}
with open(out_path, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
EOF
log "results: $OUT (raw logs in $WORK)"
