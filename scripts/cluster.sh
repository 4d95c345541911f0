#!/usr/bin/env bash
# scripts/cluster.sh - a local distributed-mode cluster (docs/distributed.md):
# redis-server (AOF, fsync always), the mock Kafka cluster (3 brokers),
# N session-tier services and M gateways on consecutive ports.
#
#   scripts/cluster.sh start DIR [--build B] [--gateways M] [--services N]
#                                [--port P] [--admin-key K]
#       starts everything, waits until every gateway's /readyz is 200, and
#       writes DIR/cluster.env (BROKERS, REDIS_PORT, GATEWAY_PORTS,
#       ADMIN_KEY and the pids). Defaults: build/, 2 gateways, 1 service,
#       ports 8081.., a generated admin key. Logs: DIR/*.log.
#   scripts/cluster.sh stop DIR          SIGTERM to all (gateways drain),
#                                        waits, then KILL what is left
#   scripts/cluster.sh kafka DIR down|up ID|all    a broker down or up
#   scripts/cluster.sh status DIR
#
# Needs redis-server (scripts/setup.sh installs it) and a build with the
# examples (chatcore-gateway, chatcore-service, chatcore-kafka-mock).
set -uo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }

ping_redis() {
    local reply=""
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || true
    exec 3<&- 3>&-
    [[ $reply == +PONG* ]]
}

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! { exec 4<>"/dev/tcp/127.0.0.1/$p"; } 2>/dev/null; then
            echo "$p"
            return 0
        fi
        exec 4<&- 4>&-
    done
    return 1
}

ready() {   # port -> 0 when /readyz answers 200
    curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/readyz"
}

start() {
    local dir=$1; shift
    local build=build gws=2 svcs=1 port=8081 key=""
    while [ $# -gt 0 ]; do
        case $1 in
        --build) build=$2; shift 2 ;;
        --gateways) gws=$2; shift 2 ;;
        --services) svcs=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --admin-key) key=$2; shift 2 ;;
        *) die "unknown option $1" ;;
        esac
    done
    local bin=$build/examples
    for b in chatcore-gateway chatcore-service chatcore-kafka-mock; do
        [ -x "$bin/$b" ] || die "$bin/$b missing (build first)"
    done
    command -v redis-server >/dev/null || die "redis-server not installed"
    [ -n "$key" ] || key="ck_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd)
    : >"$dir/cluster.env"

    # Redis: every write fsynced before its reply (what `sent` waits for)
    local rport; rport=$(free_port) || die "no free port"
    mkdir -p "$dir/redis"
    setsid redis-server --port "$rport" --bind 127.0.0.1 --save "" \
        --appendonly yes --appendfsync always --dir "$dir/redis" \
        --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
    echo "REDIS_PID=$!" >>"$dir/cluster.env"
    echo "REDIS_PORT=$rport" >>"$dir/cluster.env"
    for _ in $(seq 1 200); do ping_redis "$rport" && break; sleep 0.05; done
    ping_redis "$rport" || die "redis-server did not start"

    # Kafka: the mock cluster reads commands from a FIFO kept open by a
    # sleeper (it exits on end of input)
    rm -f "$dir/kafka.cmd"
    mkfifo "$dir/kafka.cmd"
    setsid sleep 1000000 >"$dir/kafka.cmd" </dev/null 2>/dev/null &
    echo "HOLDER_PID=$!" >>"$dir/cluster.env"
    setsid "$bin/chatcore-kafka-mock" --brokers 3 \
        --topic chat.in:8 --topic chat.out:8 --topic chat.control:1 \
        --topic chat.dlq:2 <"$dir/kafka.cmd" >"$dir/kafka.out" \
        2>"$dir/kafka.log" &
    echo "KAFKA_PID=$!" >>"$dir/cluster.env"
    local brokers=""
    for _ in $(seq 1 200); do
        brokers=$(sed -n 's/^bootstrap=//p' "$dir/kafka.out" 2>/dev/null)
        [ -n "$brokers" ] && break
        sleep 0.05
    done
    [ -n "$brokers" ] || die "the mock Kafka did not start"
    echo "BROKERS=$brokers" >>"$dir/cluster.env"
    echo "ADMIN_KEY=$key" >>"$dir/cluster.env"

    local i pids="" ports=""
    for i in $(seq 1 "$svcs"); do
        setsid "$bin/chatcore-service" --brokers "$brokers" \
            --redis "127.0.0.1:$rport" --node "svc-$i" \
            </dev/null >"$dir/svc-$i.log" 2>&1 &
        pids="$pids $!"
    done
    echo "SERVICE_PIDS=\"${pids# }\"" >>"$dir/cluster.env"
    pids=""
    for i in $(seq 1 "$gws"); do
        local p=$((port + i - 1))
        setsid "$bin/chatcore-gateway" --brokers "$brokers" \
            --redis "127.0.0.1:$rport" --node "gw-$i" --port "$p" \
            --admin-key "$key" </dev/null >"$dir/gw-$i.log" 2>&1 &
        pids="$pids $!"
        ports="$ports $p"
    done
    echo "GATEWAY_PIDS=\"${pids# }\"" >>"$dir/cluster.env"
    echo "GATEWAY_PORTS=\"${ports# }\"" >>"$dir/cluster.env"
    for p in $ports; do
        for _ in $(seq 1 300); do ready "$p" && break; sleep 0.05; done
        ready "$p" || die "gateway on port $p not ready (see $dir/gw-*.log)"
    done
    echo "cluster up: gateways on$ports, redis $rport, kafka $brokers"
}

stop_pids() {   # TERM, wait up to 15 s, then KILL
    local p left
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 150); do
        left=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && left=1; done
        [ $left = 0 ] && return 0
        sleep 0.1
    done
    for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
}

stop() {
    local dir=$1
    [ -f "$dir/cluster.env" ] || die "no cluster in $dir"
    # shellcheck disable=SC1091
    . "$dir/cluster.env"
    # gateways first (they drain to the services), then the services
    # (they commit), then Kafka and Redis
    # shellcheck disable=SC2086
    stop_pids ${GATEWAY_PIDS:-}
    # shellcheck disable=SC2086
    stop_pids ${SERVICE_PIDS:-}
    stop_pids ${KAFKA_PID:-} ${HOLDER_PID:-} ${REDIS_PID:-}
    echo "cluster stopped"
}

kafka_cmd() {
    local dir=$1 what=$2 id=$3
    [ -p "$dir/kafka.cmd" ] || die "no cluster in $dir"
    echo "$what $id" >"$dir/kafka.cmd"
}

case ${1:-} in
start) shift; [ $# -ge 1 ] || die "start DIR"; start "$@" ;;
stop) [ $# -eq 2 ] || die "stop DIR"; stop "$2" ;;
kafka) [ $# -eq 4 ] || die "kafka DIR down|up ID"; kafka_cmd "$2" "$3" "$4" ;;
status) cat "$2/cluster.env" ;;
*) sed -n '2,18p' "$0"; exit 2 ;;
esac
