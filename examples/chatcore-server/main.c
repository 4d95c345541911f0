/*
 * examples/chatcore-server - the all-in-one reference server: the chat
 * engine of libchatcore on one loop, a SQLite store in the data directory,
 * the HTTP API and /v1/ws on one port. No Kafka, no Redis.
 *
 * Configuration (settings.c): defaults < --config FILE < CHATCORE_<NAME>
 * environment < --flags. SIGTERM/SIGINT drain: clients get
 * {"type":"reconnect"} and close 1012, the store finishes, the process
 * exits 0. Logs are JSON lines on stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <chatcore/chatcore.h>
#include <chatcore/chat.h>
#include <chatcore/store.h>

#include "log.h"
#include "settings.h"
#include "webdir.h"

typedef struct app {
    uv_loop_t loop;
    cc_ctx *ctx;
    cc_store *st;
    cc_chat *chat;
    cc_server *srv;
    cc_config *cfg;
    cc_settings s;
    cc_logger lg;
    uv_signal_t sigterm, sigint;
    int stopping;
    int exit_code;
} app;

static void
warn_env(void *data, const char *msg)
{
    (void)data;
    fprintf(stderr, "chatcore-server: %s\n", msg);
}

/* mkdir -p */
static int
make_dirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            tmp[i] = c;
        }
    }
    return 0;
}

static void
on_store_closed(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    cc_ctx_close(a->ctx, NULL, NULL);
}

static void
on_chat_closed(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    cc_store_close(a->st, on_store_closed, a);
}

static void
on_server_closed(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    cc_chat_close(a->chat, on_chat_closed, a);
}

static void
on_drained(void *obj, void *data)
{
    (void)obj;
    app *a = data;
    cc_log(&a->lg, CC_LOGGER_INFO, "drained", NULL);
    cc_server_close(a->srv, on_server_closed, a);
}

static void
on_signal(uv_signal_t *sg, int signum)
{
    app *a = sg->data;
    if (a->stopping) {
        cc_logf(&a->lg, CC_LOGGER_WARN, "already draining", "\"signal\":%d",
                signum);
        return;
    }
    a->stopping = 1;
    cc_logf(&a->lg, CC_LOGGER_INFO, "draining", "\"signal\":%d", signum);
    cc_chat_set_ready(a->chat, 0, "draining");
    if (cc_server_drain(a->srv, (uint64_t)a->s.drain_timeout_ms,
                        "{\"type\":\"reconnect\",\"after_ms\":1000}",
                        on_drained, a) != 0)
        cc_server_close(a->srv, on_server_closed, a);
}


static void
info(cc_server *srv, cc_http_req *req, void *data)
{
    (void)srv;
    (void)data;
    cc_http_respond_json(req, 200,
                         "{\"service\":\"chatcore-server\",\"websocket\":"
                         "\"/v1/ws\",\"health\":\"/healthz\",\"docs\":"
                         "\"docs/protocol.md\"}");
}

/* First start: a demo tenant and two agents, printed once. */
static int
make_demo(app *a)
{
    char secret[260];
    const char *err = "";
    int rc = cc_chat_tenant_put(a->chat, "demo", "{\"name\":\"Demo\"}", secret,
                                sizeof(secret), &err);
    if (rc != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "demo tenant failed",
                "\"error\":\"%s\"", err);
        return rc;
    }
    char pw[2][40];
    for (int i = 0; i < 2; i++) {
        unsigned char r[8];
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(r, 1, sizeof(r), f) != sizeof(r)) {
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        for (int j = 0; j < 8; j++)
            snprintf(pw[i] + 2 * j, 3, "%02x", r[j]);
        char body[128], id[16];
        snprintf(id, sizeof(id), "agent%d", i + 1);
        snprintf(body, sizeof(body),
                 "{\"name\":\"Agent %d\",\"password\":\"%s\"}", i + 1, pw[i]);
        rc = cc_chat_agent_put(a->chat, "demo", id, body, &err);
        if (rc != 0) {
            cc_logf(&a->lg, CC_LOGGER_ERROR, "demo agent failed",
                    "\"error\":\"%s\"", err);
            return rc;
        }
    }
    cc_logf(&a->lg, CC_LOGGER_INFO, "demo tenant created",
            "\"tenant\":\"demo\",\"secret\":\"%s\",\"agents\":["
            "{\"agent\":\"agent1\",\"password\":\"%s\"},"
            "{\"agent\":\"agent2\",\"password\":\"%s\"}]",
            secret, pw[0], pw[1]);
    return 0;
}

static int
run(app *a)
{
    cc_settings *s = &a->s;
    char path[4200];
    if (make_dirs(s->data) != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot create the data directory",
                "\"data\":\"%s\",\"error\":\"%s\"", s->data, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof(path), "%s/chatcore.db", s->data);
    int rc = uv_loop_init(&a->loop);
    if (rc == 0)
        rc = cc_ctx_new(&a->ctx, &a->loop, NULL);
    if (rc == 0)
        rc = cc_store_sqlite_open(&a->st, a->ctx, path,
                                  strcmp(s->sync, "full") == 0
                                      ? CC_STORE_SYNC_FULL : 0);
    if (rc != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot open the store",
                "\"path\":\"%s\",\"error\":\"%s\"", path, cc_strerror(rc));
        return 1;
    }
    rc = cc_config_new(&a->cfg, NULL);
    if (rc == 0)
        rc = cc_config_set_str(a->cfg, CC_OPT_CHAT_NODE, s->node);
    if (rc == 0 && s->admin_key[0])
        rc = cc_config_set_str(a->cfg, CC_OPT_CHAT_ADMIN_KEY, s->admin_key);
    if (rc == 0)
        rc = cc_config_set_int(a->cfg, CC_OPT_CHAT_IP_UPGRADES_PER_MIN,
                               s->ip_upgrades_per_min);
    if (rc == 0)
        rc = cc_config_set_int(a->cfg, CC_OPT_CHAT_LOGINS_PER_MIN,
                               s->logins_per_min);
    if (rc == 0)
        rc = cc_config_set_int(a->cfg, CC_OPT_HTTP_STATIC_CORS, 1);
    if (rc == 0)
        rc = cc_config_set_int(a->cfg, CC_OPT_WS_MAX_MESSAGE, s->max_message);
    if (rc == 0 && s->tls_cert[0])
        rc = cc_config_set_str(a->cfg, CC_OPT_TLS_CERT_FILE, s->tls_cert);
    if (rc == 0 && s->tls_key[0])
        rc = cc_config_set_str(a->cfg, CC_OPT_TLS_KEY_FILE, s->tls_key);
    if (rc == 0)
        rc = cc_chat_new(&a->chat, a->ctx, a->st, a->cfg);
    if (rc != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot start the chat engine",
                "\"error\":\"%s\"", cc_strerror(rc));
        return 1;
    }
    cc_chat_on_log(a->chat, cc_log_hook, &a->lg);
    int generated = 0;
    const char *key = cc_chat_admin_key(a->chat, &generated);
    if (generated)
        cc_logf(&a->lg, CC_LOGGER_INFO, "admin key generated",
                "\"admin_key\":\"%s\",\"note\":\"stored in the data "
                "directory; shown once\"", key);
    if (s->demo && cc_chat_tenant_count(a->chat) == 0 && make_demo(a) != 0)
        return 1;
    rc = cc_server_new(&a->srv, a->ctx, a->cfg);
    if (rc == 0)
        rc = cc_chat_mount(a->chat, a->srv);
    char web[4096];
    snprintf(web, sizeof(web), "%s", s->static_dir);
    if (!web[0])
        cc_find_web_dir(web, sizeof(web));
    /* max-age 0: browsers revalidate (304s are cheap) so an upgrade's
     * pages are never mixed with cached old ones */
    if (rc == 0 && web[0])
        rc = cc_server_static(a->srv, "/", web, 0);
    else if (rc == 0) {
        cc_log(&a->lg, CC_LOGGER_WARN, "no web pages found; / answers JSON",
               NULL);
        rc = cc_server_route(a->srv, "GET", "/", info, a);
    }
    if (rc == 0 && web[0])
        cc_logf(&a->lg, CC_LOGGER_INFO, "web pages", "\"dir\":\"%s\"", web);
    if (rc == 0)
        rc = cc_server_listen(a->srv, s->host, s->port);
    if (rc != 0) {
        cc_logf(&a->lg, CC_LOGGER_ERROR, "cannot listen",
                "\"host\":\"%s\",\"port\":%d,\"error\":\"%s\"", s->host,
                s->port, cc_strerror(rc));
        return 1;
    }
    cc_logf(&a->lg, CC_LOGGER_INFO, "listening",
            "\"host\":\"%s\",\"port\":%d,\"tls\":%s", s->host,
            cc_server_port(a->srv), s->tls_cert[0] ? "true" : "false");
    uv_signal_init(&a->loop, &a->sigterm);
    uv_signal_init(&a->loop, &a->sigint);
    a->sigterm.data = a->sigint.data = a;
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    cc_config_free(a->cfg);
    rc = uv_loop_close(&a->loop);
    cc_logf(&a->lg, CC_LOGGER_INFO, "stopped", "\"clean\":%s",
            rc == 0 ? "true" : "false");
    return 0;
}

int
main(int argc, char **argv, char **envp)
{
    static app a;
    char err[512];
    signal(SIGPIPE, SIG_IGN);
    int rc = cc_settings_load_ex(&a.s, argc, argv, envp, warn_env, NULL, err,
                                 sizeof(err));
    if (rc == 1)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "chatcore-server: %s (see --help)\n", err);
        return 2;
    }
    cc_logger_init(&a.lg, NULL, cc_log_level_parse(a.s.log_level),
                   cc_log_format_parse(a.s.log_format));
    char *j = cc_settings_json(&a.s);
    cc_logf(&a.lg, CC_LOGGER_INFO, "starting", "\"version\":\"%s\","
            "\"settings\":%s", cc_version_string(), j ? j : "{}");
    free(j);
    rc = run(&a);
    cc_settings_free(&a.s);
    return rc;
}
