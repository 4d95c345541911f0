/*
 * examples/echo-server - a WebSocket echo/broadcast server on libchatcore.
 * Thin: flags -> cc_config, one loop + ctx + server per thread (SO_REUSEPORT),
 * signals -> drain.
 *
 *   echo-server [--host H] [--port N] [--mode echo|broadcast] [--threads N]
 *               [--tls CERT KEY] [--max-message BYTES] [--idle-timeout-ms MS]
 *               [--header-timeout-ms MS]
 *
 * Prints "listening on port N" when ready. WebSocket at "/" (selects the
 * subprotocol chatcore.v1 when offered), GET /healthz.
 * Broadcast mode relays every message to every connection of every thread:
 * the frame is encoded once (cc_ws_msg) and posted to the other loops.
 * SIGTERM/SIGINT: drain ({"type":"reconnect","after_ms":1000}, close 1012).
 */
#include <chatcore/chatcore.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

typedef struct worker {
    int idx;
    uv_loop_t loop;
    cc_ctx *ctx;
    cc_server *srv;
    cc_ws_endpoint *ep;
    uv_thread_t tid;
    uv_signal_t sigterm, sigint;
    int ready;
} worker;

static struct {
    const char *host;
    int port;
    int broadcast;
    int threads;
    const char *cert, *key;
    long max_message, idle_ms, header_ms;
    worker w[MAX_THREADS];
    uv_mutex_t mu;
    uv_cond_t cond;
    int bound_port;
} app;

static void
on_message(cc_ws_conn *c, int opcode, const uint8_t *msg, size_t len,
           void *data)
{
    worker *w = data;
    if (!app.broadcast) {
        cc_ws_send(c, opcode, msg, len);
        return;
    }
    cc_ws_msg *m;
    if (cc_ws_msg_new(&m, w->ctx, opcode, msg, len))
        return;
    cc_ws_endpoint_broadcast(w->ep, m, NULL);
    cc_ws_msg_release(m);
}

typedef struct relay {
    cc_ws_msg *m;
    worker *w;
} relay;

static void
on_relay(cc_ctx *ctx, void *data)
{
    relay *r = data;
    cc_ws_endpoint_broadcast(r->w->ep, r->m, NULL);
    cc_ws_msg_release(r->m);
    free(r);
    (void)ctx;
}

static void
on_message_mt(cc_ws_conn *c, int opcode, const uint8_t *msg, size_t len,
              void *data)
{
    worker *w = data;
    if (!app.broadcast || app.threads == 1) {
        on_message(c, opcode, msg, len, data);
        return;
    }
    cc_ws_msg *m;
    if (cc_ws_msg_new(&m, w->ctx, opcode, msg, len))
        return;
    cc_ws_endpoint_broadcast(w->ep, m, NULL);
    for (int i = 0; i < app.threads; i++) {
        if (&app.w[i] == w)
            continue;
        relay *r = malloc(sizeof *r);
        if (!r)
            continue;
        cc_ws_msg_retain(m);
        r->m = m;
        r->w = &app.w[i];
        if (cc_ctx_post(app.w[i].ctx, on_relay, r)) {
            cc_ws_msg_release(m);
            free(r);
        }
    }
    cc_ws_msg_release(m);
}

static void
on_healthz(cc_server *srv, cc_http_req *req, void *data)
{
    (void)srv;
    (void)data;
    cc_http_respond_json(req, 200, "{\"ok\":true}");
}

static void
on_drained(void *obj, void *data)
{
    worker *w = data;
    (void)obj;
    cc_server_close(w->srv, NULL, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
}

static void
on_signal(uv_signal_t *s, int signum)
{
    worker *w = s->data;
    (void)signum;
    uv_signal_stop(&w->sigterm);
    uv_signal_stop(&w->sigint);
    cc_server_drain(w->srv, 5000, "{\"type\":\"reconnect\",\"after_ms\":1000}",
                    on_drained, w);
}

static int
setup(worker *w)
{
    int rc;
    if ((rc = uv_loop_init(&w->loop)))
        return rc;
    if ((rc = cc_ctx_new(&w->ctx, &w->loop, NULL)))
        return rc;
    cc_config *cfg;
    if ((rc = cc_config_new(&cfg, NULL)))
        return rc;
    cc_config_set_int(cfg, CC_OPT_REUSEPORT, app.threads > 1);
    /* the chat protocol's subprotocol is selected when a client offers it */
    cc_config_set_str(cfg, CC_OPT_WS_SUBPROTOCOLS, "chatcore.v1");
    if (app.max_message)
        rc = cc_config_set_int(cfg, CC_OPT_WS_MAX_MESSAGE, app.max_message);
    if (!rc && app.idle_ms >= 0)
        rc = cc_config_set_ms(cfg, CC_OPT_WS_IDLE_TIMEOUT_MS, (uint64_t)app.idle_ms);
    if (!rc && app.header_ms > 0)
        rc = cc_config_set_ms(cfg, CC_OPT_HTTP_HEADER_TIMEOUT_MS, (uint64_t)app.header_ms);
    if (!rc && app.cert) {
        rc = cc_config_set_str(cfg, CC_OPT_TLS_CERT_FILE, app.cert);
        if (!rc)
            rc = cc_config_set_str(cfg, CC_OPT_TLS_KEY_FILE, app.key);
    }
    if (!rc)
        rc = cc_server_new(&w->srv, w->ctx, cfg);
    if (!rc)
        rc = cc_ws_endpoint_new(&w->ep, w->ctx, cfg);
    cc_config_free(cfg);
    if (rc)
        return rc;
    cc_ws_endpoint_on_message(w->ep, on_message_mt, w);
    if ((rc = cc_server_ws(w->srv, "/", w->ep)))
        return rc;
    if ((rc = cc_server_route(w->srv, "GET", "/healthz", on_healthz, w)))
        return rc;
    int port = w->idx == 0 ? app.port : app.bound_port;
    if ((rc = cc_server_listen(w->srv, app.host, port)))
        return rc;
    if (w->idx == 0)
        app.bound_port = cc_server_port(w->srv);
    uv_signal_init(&w->loop, &w->sigterm);
    uv_signal_init(&w->loop, &w->sigint);
    w->sigterm.data = w->sigint.data = w;
    if (w->idx == 0) {
        /* one thread takes the signal and every worker drains through a
         * post (signals go to one loop only) */
        uv_signal_start(&w->sigterm, on_signal, SIGTERM);
        uv_signal_start(&w->sigint, on_signal, SIGINT);
    }
    return 0;
}

static void
drain_post(cc_ctx *ctx, void *data)
{
    worker *w = data;
    (void)ctx;
    on_signal(&w->sigterm, SIGTERM);
}

static void
run(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    cc_ws_endpoint_free(w->ep);
    cc_ctx_close(w->ctx, NULL, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
}

static void
on_signal_main(uv_signal_t *s, int signum)
{
    /* thread 0 got the signal: tell the others too */
    for (int i = 1; i < app.threads; i++)
        cc_ctx_post(app.w[i].ctx, drain_post, &app.w[i]);
    on_signal(s, signum);
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: echo-server [--host H] [--port N] [--mode echo|broadcast]\n"
            "                   [--threads N] [--tls CERT KEY] [--max-message BYTES]\n"
            "                   [--idle-timeout-ms MS] [--header-timeout-ms MS]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    app.host = "127.0.0.1";
    app.port = 8080;
    app.threads = 1;
    app.idle_ms = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port") && v) {
            app.port = atoi(v);
            i++;
        } else if (!strcmp(a, "--host") && v) {
            app.host = v;
            i++;
        } else if (!strcmp(a, "--mode") && v) {
            if (!strcmp(v, "broadcast"))
                app.broadcast = 1;
            else if (strcmp(v, "echo"))
                usage();
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            app.threads = atoi(v);
            if (app.threads < 1 || app.threads > MAX_THREADS)
                usage();
            i++;
        } else if (!strcmp(a, "--tls") && v && i + 2 < argc) {
            app.cert = v;
            app.key = argv[i + 2];
            i += 2;
        } else if (!strcmp(a, "--max-message") && v) {
            app.max_message = atol(v);
            i++;
        } else if (!strcmp(a, "--idle-timeout-ms") && v) {
            app.idle_ms = atol(v);
            i++;
        } else if (!strcmp(a, "--header-timeout-ms") && v) {
            app.header_ms = atol(v);
            i++;
        } else {
            usage();
        }
    }
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < app.threads; i++) {
        app.w[i].idx = i;
        int rc = setup(&app.w[i]);
        if (rc) {
            fprintf(stderr, "echo-server: %s (%s)\n", cc_strerror(rc), cc_err_name(rc));
            return 1;
        }
    }
    if (app.threads > 1) {
        uv_signal_stop(&app.w[0].sigterm);
        uv_signal_stop(&app.w[0].sigint);
        uv_signal_start(&app.w[0].sigterm, on_signal_main, SIGTERM);
        uv_signal_start(&app.w[0].sigint, on_signal_main, SIGINT);
    }
    printf("listening on port %d (%s, %d thread%s%s)\n", app.bound_port,
           app.broadcast ? "broadcast" : "echo", app.threads,
           app.threads > 1 ? "s" : "", app.cert ? ", tls" : "");
    fflush(stdout);
    for (int i = 1; i < app.threads; i++)
        uv_thread_create(&app.w[i].tid, run, &app.w[i]);
    run(&app.w[0]);
    for (int i = 1; i < app.threads; i++)
        uv_thread_join(&app.w[i].tid);
    return 0;
}
