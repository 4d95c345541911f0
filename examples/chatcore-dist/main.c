/*
 * examples/chatcore-dist - the two processes of distributed mode
 * (docs/distributed.md), built from this one file:
 *
 *   chatcore-gateway  WebSocket + HTTP API + web pages on --port; the
 *                     chat engine in the gateway role on Kafka.
 *   chatcore-service  the session tier (logic, push and offline in one
 *                     process): the owner role for the chat.in partitions
 *                     the group gives it.
 *
 * Both keep state in Redis (the Redis store) and talk over Kafka. Wiring
 * only: settings, signals, readiness, order of closing.
 *
 *   chatcore-gateway --brokers H:P[,H:P] --redis H:P --node gw-1
 *                    [--host 0.0.0.0] [--port 8080] [--admin-key K]
 *                    [--static DIR] [--drain-timeout-ms 5000]
 *                    [--log-level info] [--kafka KEY=VALUE ...]
 *                    [--ip-upgrades-per-min 600]
 *   chatcore-service --brokers ... --redis H:P --node svc-1 [--log-level]
 *                    [--kafka KEY=VALUE ...]
 *
 * --kafka sets one librdkafka property (repeatable; "producer.X" and
 * "consumer.X" reach one client only), e.g.
 * --kafka consumer.session.timeout.ms=10000 for a faster take-over of a
 * dead service's partitions.
 *
 * SIGTERM/SIGINT: a gateway drains (clients get {"type":"reconnect"} and
 * 1012, then reconnect to another gateway); a service leaves the group
 * after committing what its store holds, so another takes its partitions.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chatcore/chatcore.h>
#include <chatcore/kafka_bus.h>
#include <chatcore/redis.h>

#include "../chatcore-server/log.h"
#include "../chatcore-server/webdir.h"

#ifndef DIST_GATEWAY
#define DIST_GATEWAY 1
#endif
#define PROG (DIST_GATEWAY ? "chatcore-gateway" : "chatcore-service")
#define CC_DIST_MAX_KAFKA 16

typedef struct app {
    uv_loop_t loop;
    cc_ctx *ctx;
    cc_redis *redis;
    cc_store *st;
    cc_config *cfg;
    cc_chat *chat;                /* gateway */
    cc_server *srv;               /* gateway */
    cc_kafka_gateway *gw;
    cc_kafka_owner *owner;
    cc_logger lg;
    uv_signal_t sigterm, sigint;
    uv_timer_t health;
    int stopping;
    int exit_code;
    /* settings */
    const char *brokers, *redis_addr, *node, *host, *admin_key, *static_dir;
    const char *log_level;
    int port;
    long drain_ms;
    long ip_upgrades;             /* per IP per minute, 0: the default */
    /* librdkafka properties: key, value pairs then NULL */
    const char *kconf[2 * (CC_DIST_MAX_KAFKA + 1) + 1];
    char kbuf[CC_DIST_MAX_KAFKA][256];
    int nkconf;
} app;

static void
usage(void)
{
    fprintf(stderr,
            "usage: %s --brokers H:P[,H:P] --redis H:P --node ID "
            "[--kafka KEY=VALUE]...%s\n", PROG,
            DIST_GATEWAY ? " [--host H] [--port N] [--admin-key K] "
                           "[--static DIR] [--drain-timeout-ms MS] "
                           "[--ip-upgrades-per-min N]"
                         : "");
}

static int
split_hostport(const char *s, char *host, size_t cap, int *port)
{
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= cap)
        return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = '\0';
    *port = atoi(c + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

/* one --kafka KEY=VALUE; the producer's delivery timeout comes first so
 * that a later --kafka can override it */
static int
add_kafka(app *a, const char *kv)
{
    if (a->nkconf == 0) {
        a->kconf[0] = "producer.message.timeout.ms";
        a->kconf[1] = "300000";
        a->kconf[2] = NULL;
        a->nkconf = 1;
    }
    if (!kv)
        return 0;
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || strlen(kv) >= sizeof(a->kbuf[0]) ||
        a->nkconf > CC_DIST_MAX_KAFKA) {
        fprintf(stderr, "%s: --kafka takes KEY=VALUE (at most %d)\n", PROG,
                CC_DIST_MAX_KAFKA);
        return -1;
    }
    char *b = a->kbuf[a->nkconf - 1];
    memcpy(b, kv, strlen(kv) + 1);
    b[eq - kv] = '\0';
    a->kconf[2 * a->nkconf] = b;
    a->kconf[2 * a->nkconf + 1] = b + (eq - kv) + 1;
    a->nkconf++;
    a->kconf[2 * a->nkconf] = NULL;
    return 0;
}

/* ---- closing, innermost last ---- */

static void
ctx_closed(void *obj, void *data)
{
    (void)obj;
    (void)data;
}

static void
redis_closed(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->health, NULL);
    cc_ctx_close(a->ctx, ctx_closed, a);
}

static void
store_closed(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    cc_redis_close(a->redis, redis_closed, a);
}

static void
chat_closed(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    cc_store_close(a->st, store_closed, a);
}

static void
role_closed(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    if (a->chat)
        cc_chat_close(a->chat, chat_closed, a);
    else
        chat_closed(NULL, a);
}

static void
server_closed(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    if (a->gw)
        cc_kafka_gateway_close(a->gw, role_closed, a);
    else
        role_closed(NULL, a);
}

static void
drained(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    cc_log(&a->lg, CC_LOGGER_INFO, "drained", NULL);
    cc_server_close(a->srv, server_closed, a);
}

static void
stop(app *a, int code)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    a->exit_code = code;
    uv_timer_stop(&a->health);
    if (a->owner) {
        cc_kafka_owner_close(a->owner, role_closed, a);
        return;
    }
    if (a->srv) {
        if (a->chat)
            cc_chat_set_ready(a->chat, 0, "draining");
        if (cc_server_drain(a->srv, (uint64_t)a->drain_ms,
                            "{\"type\":\"reconnect\",\"after_ms\":500}",
                            drained, a) != 0)
            cc_server_close(a->srv, server_closed, a);
        return;
    }
    server_closed(NULL, a);
}

static void
on_signal(uv_signal_t *sg, int signum)
{
    app *a = sg->data;
    cc_logf(&a->lg, CC_LOGGER_INFO, "stopping", "\"signal\":%d", signum);
    stop(a, 0);
}

/* /readyz: the bus and Redis both reachable */
static void
on_health(uv_timer_t *t)
{
    app *a = t->data;
    if (!a->chat || !a->gw)
        return;
    int kafka = cc_kafka_gateway_healthy(a->gw);
    int redis = cc_redis_ready(a->redis) == 1;
    cc_chat_set_ready(a->chat, kafka && redis,
                      !kafka ? "kafka unreachable" : "redis unreachable");
}

/* ---- gateway ---- */

static void
gw_ready(void *role, int status, void *data)
{
    (void)role;
    app *a = data;
    if (status != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot join the bus",
                "\"error\":\"%s\"", cc_strerror(status));
        stop(a, 1);
        return;
    }
    int rc = cc_server_new(&a->srv, a->ctx, a->cfg);
    if (rc == 0)
        rc = cc_chat_mount(a->chat, a->srv);
    char web[4096];
    snprintf(web, sizeof(web), "%s", a->static_dir ? a->static_dir : "");
    if (!web[0])
        cc_find_web_dir(web, sizeof(web));
    if (rc == 0 && web[0])
        rc = cc_server_static(a->srv, "/", web, 0);
    if (rc == 0)
        rc = cc_server_listen(a->srv, a->host, a->port);
    if (rc != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot listen",
                "\"port\":%d,\"error\":\"%s\"", a->port, cc_strerror(rc));
        stop(a, 1);
        return;
    }
    cc_logf(&a->lg, CC_LOGGER_INFO, "listening",
            "\"host\":\"%s\",\"port\":%d,\"node\":\"%s\"", a->host,
            cc_server_port(a->srv), a->node);
    uv_timer_start(&a->health, on_health, 1000, 1000);
}

static void
chat_opened(cc_chat *chat, int status, void *data)
{
    (void)chat;
    app *a = data;
    if (status != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot load from the store",
                "\"error\":\"%s\"", cc_strerror(status));
        stop(a, 1);
        return;
    }
    cc_chat_on_log(a->chat, cc_log_hook, &a->lg);
    cc_logf(&a->lg, CC_LOGGER_INFO, "loaded", "\"tenants\":%zu",
            cc_chat_tenant_count(a->chat));
    char group[96];
    snprintf(group, sizeof(group), "gw-%s", a->node);
    cc_kafka *k = NULL;
    int rc = cc_kafka_new(&k, a->ctx, a->brokers, group, a->kconf);
    if (rc == 0)
        rc = cc_kafka_gateway_new(&a->gw, k, a->chat, gw_ready, a);
    if (rc != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot start Kafka",
                "\"error\":\"%s\"", cc_strerror(rc));
        stop(a, 1);
    }
}

/* ---- service ---- */

static void
owner_ready(void *role, int status, void *data)
{
    (void)role;
    app *a = data;
    if (status != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot join the bus",
                "\"error\":\"%s\"", cc_strerror(status));
        stop(a, 1);
        return;
    }
    cc_logf(&a->lg, CC_LOGGER_INFO, "joined", "\"node\":\"%s\"", a->node);
}

static int
start_service(app *a)
{
    char group[96];
    snprintf(group, sizeof(group), "ctl-%s", a->node);
    cc_kafka *in = NULL, *ctl = NULL;
    int rc = cc_kafka_new(&in, a->ctx, a->brokers, "chatcore-owners",
                          a->kconf);
    if (rc == 0)
        rc = cc_kafka_new(&ctl, a->ctx, a->brokers, group, a->kconf);
    if (rc != 0) {
        if (in)
            cc_kafka_close(in, NULL, NULL);
        return rc;
    }
    return cc_kafka_owner_new(&a->owner, in, ctl, a->ctx, a->st, a->cfg,
                              cc_log_hook, &a->lg, owner_ready, a);
}

int
main(int argc, char **argv)
{
    static app a;
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"redis", required_argument, NULL, 'r'},
        {"node", required_argument, NULL, 'n'},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"admin-key", required_argument, NULL, 'k'},
        {"static", required_argument, NULL, 's'},
        {"drain-timeout-ms", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, 'l'},
        {"kafka", required_argument, NULL, 'K'},
        {"ip-upgrades-per-min", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    a.host = "0.0.0.0";
    a.port = 8080;
    a.drain_ms = 5000;
    a.log_level = "info";
    add_kafka(&a, NULL);
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': a.brokers = optarg; break;
        case 'r': a.redis_addr = optarg; break;
        case 'n': a.node = optarg; break;
        case 'H': a.host = optarg; break;
        case 'p': a.port = atoi(optarg); break;
        case 'k': a.admin_key = optarg; break;
        case 's': a.static_dir = optarg; break;
        case 'd': a.drain_ms = atol(optarg); break;
        case 'l': a.log_level = optarg; break;
        case 'u': a.ip_upgrades = atol(optarg); break;
        case 'K':
            if (add_kafka(&a, optarg) != 0)
                return 2;
            break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    char rhost[256];
    int rport;
    if (!a.brokers || !a.redis_addr || !a.node ||
        split_hostport(a.redis_addr, rhost, sizeof(rhost), &rport) != 0 ||
        a.port < 0 || a.port > 65535 || a.drain_ms < 0 ||
        a.ip_upgrades < 0 || a.ip_upgrades > 1000000) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int level = cc_log_level_parse(a.log_level);
    cc_logger_init(&a.lg, NULL, level < 0 ? CC_LOGGER_INFO : level,
                   CC_LOGGER_JSON);
    cc_logf(&a.lg, CC_LOGGER_INFO, "starting",
            "\"program\":\"%s\",\"version\":\"%s\",\"node\":\"%s\"", PROG,
            cc_version_string(), a.node);
    int rc = uv_loop_init(&a.loop);
    if (rc == 0)
        rc = cc_ctx_new(&a.ctx, &a.loop, NULL);
    if (rc == 0)
        rc = cc_redis_new(&a.redis, a.ctx, rhost, rport, NULL);
    if (rc == 0)
        rc = cc_store_redis_open(&a.st, a.ctx, a.redis, NULL);
    if (rc == 0)
        rc = cc_config_new(&a.cfg, NULL);
    if (rc == 0)
        rc = cc_config_set_str(a.cfg, CC_OPT_CHAT_NODE, a.node);
    if (rc == 0 && a.admin_key)
        rc = cc_config_set_str(a.cfg, CC_OPT_CHAT_ADMIN_KEY, a.admin_key);
    if (rc == 0 && a.ip_upgrades > 0)
        rc = cc_config_set_int(a.cfg, CC_OPT_CHAT_IP_UPGRADES_PER_MIN,
                               a.ip_upgrades);
    if (rc == 0)
        rc = cc_config_set_int(a.cfg, CC_OPT_HTTP_STATIC_CORS, 1);
    if (rc != 0) {
        cc_logf(&a.lg, CC_LOGGER_ERROR, "cannot start",
                "\"error\":\"%s\"", cc_strerror(rc));
        return 1;
    }
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    uv_timer_init(&a.loop, &a.health);
    a.sigterm.data = a.sigint.data = a.health.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    if (DIST_GATEWAY)
        rc = cc_chat_open(&a.chat, a.ctx, a.st, a.cfg, NULL, NULL,
                          chat_opened, &a);
    else
        rc = start_service(&a);
    if (rc != 0) {
        cc_logf(&a.lg, CC_LOGGER_ERROR, "cannot start",
                "\"error\":\"%s\"", cc_strerror(rc));
        a.chat = NULL;
        stop(&a, 1);
    }
    uv_run(&a.loop, UV_RUN_DEFAULT);
    cc_config_free(a.cfg);
    rc = uv_loop_close(&a.loop);
    cc_logf(&a.lg, CC_LOGGER_INFO, "stopped", "\"clean\":%s",
            rc == 0 ? "true" : "false");
    return a.exit_code;
}
