#!/usr/bin/env bash
# scripts/cluster.sh - a local distributed-mode cluster (docs/distributed.md):
# redis-server (AOF, fsync always), the mock Kafka cluster (3 brokers),
# N session-tier services and M gateways on consecutive ports.
#
#   scripts/cluster.sh start DIR [--build B] [--gateways M] [--services N]
#                                [--port P] [--admin-key K]
#       starts everything, waits until every gateway's /readyz is 200, and
#       writes DIR/cluster.env (BROKERS, REDIS_PORT, GATEWAY_PORTS,
#       ADMIN_KEY, ...). Defaults: build/, 2 gateways, 1 service, ports
#       8081.., a generated admin key. Processes are named redis, svc-N and
#       gw-N (port P+N-1); logs in DIR/NAME.log, pids in DIR/NAME.pid.
#       $CLUSTER_KAFKA_OPTS replaces the --kafka options of the services
#       and gateways (default: a 6 s group session timeout, 5 ms fetch
#       wait);
#       $CLUSTER_GATEWAY_OPTS adds flags to every gateway;
#       $CLUSTER_REDIS_OPTS adds options to redis-server.
#   scripts/cluster.sh stop DIR          SIGTERM to all (gateways drain),
#                                        waits, then KILL what is left
#   scripts/cluster.sh signal DIR NAME [SIG]   e.g. KILL (the default) or
#                                        TERM (a gateway drains)
#   scripts/cluster.sh restart DIR NAME  start a stopped process again (the
#                                        same port and data) and wait for it
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

# the environment of a started cluster (cluster.env)
load_env() {
    [ -f "$1/cluster.env" ] || die "no cluster in $1"
    # shellcheck disable=SC1091
    . "$1/cluster.env"
}

# spawn DIR NAME: start one process of the cluster (redis, svc-N, gw-N)
# with the settings in DIR/cluster.env; its pid goes to DIR/NAME.pid and
# its log to DIR/NAME.log (appended, so a restart keeps the history)
# shellcheck disable=SC2153  # BUILD, PORT, BROKERS... come from cluster.env
spawn() {
    local dir=$1 name=$2 i
    load_env "$dir"
    local bin=$BUILD/examples pid
    case $name in
    redis)
        # shellcheck disable=SC2086
        setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
            --appendonly yes --appendfsync always --dir "$dir/redis" \
            --logfile "$dir/redis.log" ${REDIS_OPTS:-} </dev/null >/dev/null 2>&1 &
        pid=$! ;;
    svc-[0-9]*)
        # shellcheck disable=SC2086
        setsid "$bin/chatcore-service" --brokers "$BROKERS" \
            --redis "127.0.0.1:$REDIS_PORT" --node "$name" $KAFKA_OPTS \
            </dev/null >>"$dir/$name.log" 2>&1 &
        pid=$! ;;
    gw-[0-9]*)
        i=${name#gw-}
        # shellcheck disable=SC2086
        setsid "$bin/chatcore-gateway" --brokers "$BROKERS" \
            --redis "127.0.0.1:$REDIS_PORT" --node "$name" \
            --port $((PORT + i - 1)) --admin-key "$ADMIN_KEY" $KAFKA_OPTS \
            ${CLUSTER_GATEWAY_OPTS:-} \
            </dev/null >>"$dir/$name.log" 2>&1 &
        pid=$! ;;
    *) die "spawn: unknown process $name (redis, svc-N, gw-N)" ;;
    esac
    echo "$pid" >"$dir/$name.pid"
}

wait_redis() {
    for _ in $(seq 1 200); do ping_redis "$1" && return 0; sleep 0.05; done
    ping_redis "$1"
}

wait_ready() {   # port
    for _ in $(seq 1 300); do ready "$1" && return 0; sleep 0.05; done
    ready "$1"
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
    build=$(cd "$build" && pwd)
    local rport; rport=$(free_port) || die "no free port"
    # a dead service's partitions move after the group's session timeout
    # (librdkafka's default is 45 s; a local cluster uses 6 s). The mock
    # broker answers a fetch that found no data only when its wait is over
    # (a real broker answers as soon as data arrives), so a short
    # fetch.wait.max.ms keeps each hop from adding up to 500 ms.
    {
        echo "BUILD=$build"
        echo "PORT=$port"
        echo "REDIS_PORT=$rport"
        echo "ADMIN_KEY=$key"
        echo "REDIS_OPTS=\"${CLUSTER_REDIS_OPTS:-}\""
        echo "KAFKA_OPTS=\"${CLUSTER_KAFKA_OPTS:---kafka consumer.session.timeout.ms=6000 --kafka consumer.heartbeat.interval.ms=1000 --kafka consumer.fetch.wait.max.ms=5}\""
    } >"$dir/cluster.env"

    # Redis: every write fsynced before its reply (what `sent` waits for)
    mkdir -p "$dir/redis"
    spawn "$dir" redis
    wait_redis "$rport" || die "redis-server did not start"

    # Kafka: the mock cluster reads commands from a FIFO kept open by a
    # sleeper (it exits on end of input)
    rm -f "$dir/kafka.cmd"
    mkfifo "$dir/kafka.cmd"
    setsid sleep 1000000 >"$dir/kafka.cmd" </dev/null 2>/dev/null &
    echo $! >"$dir/holder.pid"
    setsid "$bin/chatcore-kafka-mock" --brokers 3 \
        --topic chat.in:8 --topic chat.out:8 --topic chat.control:1 \
        --topic chat.dlq:2 <"$dir/kafka.cmd" >"$dir/kafka.out" \
        2>"$dir/kafka.log" &
    echo $! >"$dir/kafka.pid"
    local brokers=""
    for _ in $(seq 1 200); do
        brokers=$(sed -n 's/^bootstrap=//p' "$dir/kafka.out" 2>/dev/null)
        [ -n "$brokers" ] && break
        sleep 0.05
    done
    [ -n "$brokers" ] || die "the mock Kafka did not start"
    echo "BROKERS=$brokers" >>"$dir/cluster.env"

    local i ports=""
    for i in $(seq 1 "$svcs"); do
        spawn "$dir" "svc-$i"
    done
    for i in $(seq 1 "$gws"); do
        spawn "$dir" "gw-$i"
        ports="$ports $((port + i - 1))"
    done
    echo "GATEWAY_PORTS=\"${ports# }\"" >>"$dir/cluster.env"
    for p in $ports; do
        wait_ready "$p" || die "gateway on port $p not ready (see $dir/gw-*.log)"
    done
    echo "cluster up: gateways on$ports, redis $rport, kafka $brokers"
}

# running PID: the process exists and is not a zombie (an exited process
# whose parent does not reap it: the cluster's processes are orphans, and
# whoever adopts them may never wait for them)
running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

stop_pids() {   # TERM, wait up to 15 s, then KILL
    local p left
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 150); do
        left=0
        for p in "$@"; do running "$p" && left=1; done
        [ $left = 0 ] && return 0
        sleep 0.1
    done
    for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
}

pids_of() {   # DIR NAME-GLOB...: the pids recorded for those processes
    local f
    for g in "${@:2}"; do
        for f in "$1"/$g.pid; do
            [ -f "$f" ] && cat "$f"
        done
    done
}

stop() {
    local dir=$1
    load_env "$dir"
    # gateways first (they drain to the services), then the services
    # (they commit), then Kafka and Redis
    # shellcheck disable=SC2046
    stop_pids $(pids_of "$dir" 'gw-*')
    # shellcheck disable=SC2046
    stop_pids $(pids_of "$dir" 'svc-*')
    # shellcheck disable=SC2046
    stop_pids $(pids_of "$dir" kafka holder redis)
    echo "cluster stopped"
}

# signal DIR NAME [SIG]: send SIG (default KILL) to one process and, for
# KILL, wait until it is gone
signal_one() {
    local dir=$1 name=$2 sig=${3:-KILL} pid
    load_env "$dir"
    pid=$(pids_of "$dir" "$name")
    [ -n "$pid" ] || die "no process $name"
    kill -"$sig" "$pid" 2>/dev/null || die "$name (pid $pid) is not running"
    if [ "$sig" = KILL ] || [ "$sig" = 9 ]; then
        for _ in $(seq 1 100); do
            running "$pid" || return 0
            sleep 0.05
        done
    fi
}

# restart DIR NAME: start a stopped process again and wait until it serves
restart_one() {
    local dir=$1 name=$2 pid
    load_env "$dir"
    pid=$(pids_of "$dir" "$name")
    if [ -n "$pid" ] && running "$pid"; then
        die "$name (pid $pid) is still running"
    fi
    spawn "$dir" "$name"
    case $name in
    redis) wait_redis "$REDIS_PORT" || die "redis-server did not start" ;;
    gw-*) wait_ready $((PORT + ${name#gw-} - 1)) ||
              die "$name not ready (see $dir/$name.log)" ;;
    esac
}

kafka_cmd() {
    local dir=$1 what=$2 id=$3
    [ -p "$dir/kafka.cmd" ] || die "no cluster in $dir"
    echo "$what $id" >"$dir/kafka.cmd"
}

case ${1:-} in
start) shift; [ $# -ge 1 ] || die "start DIR"; start "$@" ;;
stop) [ $# -eq 2 ] || die "stop DIR"; stop "$2" ;;
signal) [ $# -ge 3 ] || die "signal DIR NAME [SIG]"; signal_one "$2" "$3" "${4:-KILL}" ;;
restart) [ $# -eq 3 ] || die "restart DIR NAME"; restart_one "$2" "$3" ;;
kafka) [ $# -eq 4 ] || die "kafka DIR down|up ID"; kafka_cmd "$2" "$3" "$4" ;;
status) cat "$2/cluster.env" ;;
*) sed -n '2,27p' "$0"; exit 2 ;;
esac
