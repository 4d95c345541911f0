/*
 * lib/net/server.c - the HTTP/1.1 server: listeners, the HTTP phase of a
 * connection (parse, route, respond, keep-alive), WebSocket upgrades,
 * drain and close.
 *
 * One request per connection is in flight: while a handler has not
 * responded, reading stops, so pipelined input cannot pile up.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "net_int.h"

typedef struct ws_mount {
    char *path;
    cc_ws_endpoint *ep;
} ws_mount;

struct cc_server {
    cc_ctx *ctx;
    cc__tls_conf *tls;
    size_t max_head, max_body;
    uint64_t header_ms, keepalive_ms;
    int backlog, reuseport;
    uv_tcp_t listener;
    uv_tcp_t reject;      /* takes a connection off the backlog on ENOMEM */
    int reject_busy;
    uv_timer_t drain_timer;
    int listener_init, port;
    int handles;
    cc__router router;
    ws_mount *ws;
    size_t nws;
    cc__static_mount *statics;
    size_t nstatic;
    size_t nconns;
    int draining, closing, drain_done;
    int static_cors;          /* CC_OPT_HTTP_STATIC_CORS */
    cc_close_cb drain_cb;
    void *drain_data;
    cc_close_cb close_cb;
    void *close_data;
    void *data;
};

int
cc_server_new(cc_server **out, cc_ctx *ctx, const cc_config *cfg)
{
    if (!out || !ctx)
        return CC_EINVAL;
    cc_server *srv = CC__CALLOC(ctx, 1, sizeof *srv);
    if (!srv)
        return CC_ENOMEM;
    srv->ctx = ctx;
    srv->max_head = (size_t)cc_config_get_int(cfg, CC_OPT_HTTP_MAX_HEADER);
    srv->max_body = (size_t)cc_config_get_int(cfg, CC_OPT_HTTP_MAX_BODY);
    srv->header_ms = (uint64_t)cc_config_get_int(cfg, CC_OPT_HTTP_HEADER_TIMEOUT_MS);
    srv->keepalive_ms = (uint64_t)cc_config_get_int(cfg, CC_OPT_HTTP_KEEPALIVE_MS);
    srv->backlog = (int)cc_config_get_int(cfg, CC_OPT_LISTEN_BACKLOG);
    srv->reuseport = (int)cc_config_get_int(cfg, CC_OPT_REUSEPORT);
    srv->static_cors = (int)cc_config_get_int(cfg, CC_OPT_HTTP_STATIC_CORS);
    const char *cert = cc_config_get_str(cfg, CC_OPT_TLS_CERT_FILE);
    const char *key = cc_config_get_str(cfg, CC_OPT_TLS_KEY_FILE);
    if (*cert || *key) {
        char err[256];
        int rc = cc__tls_conf_server_new(&srv->tls, &ctx->a, cert, key, err,
                                         sizeof err);
        if (rc) {
            CC__FREE(ctx, srv, sizeof *srv);
            return rc;
        }
    }
    cc__router_init(&srv->router, &ctx->a);
    uv_timer_init(ctx->loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    srv->handles = 1;
    *out = srv;
    return 0;
}

int
cc_server_route(cc_server *srv, const char *method, const char *path,
                cc_http_cb cb, void *data)
{
    if (!srv || !method || !path || !cb || path[0] != '/')
        return CC_EINVAL;
    return cc__router_add(&srv->router, method, path, cb, data);
}

int
cc_server_static(cc_server *srv, const char *prefix, const char *dir,
                 int max_age_s)
{
    if (!srv || !prefix || prefix[0] != '/' || !dir || max_age_s < 0)
        return CC_EINVAL;
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return CC_ENOENT;
    const cc_allocator *a = &srv->ctx->a;
    cc__static_mount *ns = cc__realloc(a, srv->statics,
                                       srv->nstatic * sizeof *ns,
                                       (srv->nstatic + 1) * sizeof *ns);
    if (!ns)
        return CC_ENOMEM;
    srv->statics = ns;
    size_t pl = strlen(prefix);
    char *px = cc__alloc(a, pl + 2);
    char *d = cc__strdup(a, real);
    if (!px || !d) {
        cc__free(a, px, pl + 2);
        cc__free_str(a, d);
        return CC_ENOMEM;
    }
    memcpy(px, prefix, pl + 1);
    if (px[pl - 1] != '/') {
        px[pl] = '/';
        px[pl + 1] = 0;
    } else {
        /* size the block as strlen + 1 so cc__free_str can free it */
        char *q = cc__strdup(a, prefix);
        cc__free(a, px, pl + 2);
        px = q;
        if (!px) {
            cc__free_str(a, d);
            return CC_ENOMEM;
        }
    }
    cc__static_mount *m = &srv->statics[srv->nstatic++];
    m->prefix = px;
    m->dir = d;
    m->max_age_s = max_age_s;
    m->cors = srv->static_cors;
    return 0;
}

int
cc_server_ws(cc_server *srv, const char *path, cc_ws_endpoint *ep)
{
    if (!srv || !path || path[0] != '/' || !ep)
        return CC_EINVAL;
    const cc_allocator *a = &srv->ctx->a;
    ws_mount *nw = cc__realloc(a, srv->ws, srv->nws * sizeof *nw,
                               (srv->nws + 1) * sizeof *nw);
    if (!nw)
        return CC_ENOMEM;
    srv->ws = nw;
    char *p = cc__strdup(a, path);
    if (!p)
        return CC_ENOMEM;
    srv->ws[srv->nws].path = p;
    srv->ws[srv->nws].ep = ep;
    srv->nws++;
    return 0;
}

/* ---- connections ---- */

static void
on_connection(uv_stream_t *l, int status)
{
    cc_server *srv = l->data;
    if (status < 0 || srv->draining || srv->closing)
        return;
    cc_server_accept(srv, l);
}

static void finish_close(cc_server *srv);

static void
on_reject_closed(uv_handle_t *h)
{
    cc_server *srv = h->data;
    srv->reject_busy = 0;
    srv->handles--;
    finish_close(srv);
}

int
cc_server_accept(cc_server *srv, uv_stream_t *listener)
{
    if (!srv || !listener)
        return CC_EINVAL;
    if (srv->draining || srv->closing)
        return CC_ESTATE;
    cc_ctx *ctx = srv->ctx;
    cc__conn *c = cc__conn_new(ctx);
    if (!c) {
        /* take the connection off the backlog anyway and drop it, or libuv
         * stops watching the listener until someone accepts */
        if (!srv->reject_busy && uv_tcp_init(ctx->loop, &srv->reject) == 0) {
            srv->reject_busy = 1;
            srv->handles++;
            srv->reject.data = srv;
            uv_accept(listener, (uv_stream_t *)&srv->reject);
            uv_close((uv_handle_t *)&srv->reject, on_reject_closed);
        }
        return CC_ENOMEM;
    }
    int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    c->srv = srv;
    srv->nconns++;
    c->phase = CC__PH_HTTP;
    if (rc) {
        cc__conn_destroy(c, rc);
        return rc;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->hp = CC__ALLOC(ctx, sizeof *c->hp);
    if (!c->hp) {
        cc__conn_destroy(c, CC_ENOMEM);
        return CC_ENOMEM;
    }
    cc__http_parser_init(c->hp, &ctx->a, HTTP_REQUEST, srv->max_head,
                         srv->max_body);
    if (srv->tls) {
        rc = cc__conn_tls_attach(c, srv->tls, NULL);
        if (rc) {
            cc__conn_destroy(c, rc);
            return rc;
        }
    }
    c->deadline = uv_now(ctx->loop) + srv->header_ms;
    rc = cc__conn_start_read(c);
    if (rc)
        cc__conn_destroy(c, rc);
    return rc;
}

static void maybe_finish_drain(cc_server *srv);
static void on_drain_timer(uv_timer_t *t);

void
cc__server_conn_closed(cc__conn *c)
{
    cc_server *srv = c->srv;
    c->srv = NULL;
    srv->nconns--;
    if (srv->nconns == 0) {
        if (srv->closing)
            finish_close(srv);
        else if (srv->draining)
            maybe_finish_drain(srv);
    }
}

static void
free_req(cc_http_req *req)
{
    const cc_allocator *a = req->msg.a;
    cc__http_msg_clear(&req->msg);
    cc__free(a, req, sizeof *req);
}

void
cc__http_conn_gone(cc__conn *c)
{
    if (c->req) {
        /* the handler still owns it; respond will report CC_EPIPE */
        c->req->conn = NULL;
        c->req = NULL;
    }
    if (c->hp) {
        cc__http_parser_free(c->hp);
        CC__FREE(c->ctx, c->hp, sizeof *c->hp);
        c->hp = NULL;
    }
}

static void
write_error(cc__conn *c, int status, const char *code, const char *msg,
            const char *extra)
{
    char body[512], esc[300], head[768];
    if (cc__json_escape(msg, esc, sizeof esc) < 0)
        strcpy(esc, "error");
    int bl = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}",
                      code, esc);
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: "
                      "application/json\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n%s\r\n",
                      status, cc__http_status_text(status),
                      cc__ctx_http_date(c->ctx), bl, extra ? extra : "");
    cc__conn_write(c, head, (size_t)hl);
    cc__conn_write(c, body, (size_t)bl);
    cc__conn_stop_read(c);
    cc__conn_close_after_flush(c, CC_EHTTP);
}

static const char *
error_code_for(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 408:
        return "request_timeout";
    case 413:
        return "too_large";
    case 426:
        return "upgrade_required";
    case 429:
        return "rate_limited";
    case 431:
        return "headers_too_large";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal" : "bad_request";
    }
}

void
cc__http_timeout(cc__conn *c)
{
    if (c->req)
        return; /* a handler is working; no deadline applies */
    if (c->hp && c->hp->head_bytes > 0)
        write_error(c, 408, "request_timeout", "request head not received in time", NULL);
    else
        cc__conn_destroy(c, CC_ETIMEDOUT);
}

static cc_ws_endpoint *
ws_for(cc_server *srv, const char *path)
{
    for (size_t i = 0; i < srv->nws; i++)
        if (strcmp(srv->ws[i].path, path) == 0)
            return srv->ws[i].ep;
    return NULL;
}

static void
handle_upgrade(cc__conn *c, cc_http_req *req, cc_ws_endpoint *ep)
{
    const char *why = NULL;
    int st = cc__ws_handshake_check(&req->msg, &why);
    if (st) {
        char body[256], esc[160];
        if (cc__json_escape(why ? why : "bad handshake", esc, sizeof esc) < 0)
            strcpy(esc, "bad handshake");
        int bl = snprintf(body, sizeof body,
                          "{\"error\":\"%s\",\"message\":\"%s\"}",
                          error_code_for(st), esc);
        cc_http_respond(req, st, "application/json",
                        st == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL,
                        body, (size_t)bl);
        return;
    }
    if (ep->on_origin &&
        !ep->on_origin(ep, cc__http_msg_header(&req->msg, "origin"),
                       ep->origin_data)) {
        cc_http_respond_error(req, 403, "forbidden", "origin not allowed");
        return;
    }
    req->ws = ep;
    if (ep->on_upgrade)
        ep->on_upgrade(ep, req, ep->upgrade_data);
    else
        cc_ws_accept(req, NULL);
}

static void
handle_request(cc__conn *c)
{
    cc_server *srv = c->srv;
    cc_http_req *req = CC__CALLOC(c->ctx, 1, sizeof *req);
    if (!req) {
        write_error(c, 503, "unavailable", "out of memory", NULL);
        return;
    }
    req->msg = c->hp->msg;
    memset(&c->hp->msg, 0, sizeof c->hp->msg);
    c->hp->msg.a = &c->ctx->a;
    req->srv = srv;
    req->conn = c;
    req->head_only = req->msg.method == HTTP_HEAD;
    c->req = req;
    c->deadline = 0;
    const char *path = req->msg.path ? req->msg.path : "/";
    /* RFC 7230 §5.4 (and RFC 6455 §4.1 for the handshake): an HTTP/1.1
     * request without Host is refused */
    if ((req->msg.http_major > 1 ||
         (req->msg.http_major == 1 && req->msg.http_minor >= 1)) &&
        !cc__http_msg_header(&req->msg, "host")) {
        cc_http_respond_error(req, 400, "bad_request", "missing Host header");
        return;
    }
    if (req->msg.upgrade) {
        cc_ws_endpoint *ep = ws_for(srv, path);
        if (ep) {
            handle_upgrade(c, req, ep);
            return;
        }
    }
    int status = 404;
    const cc__route *r = cc__router_match(&srv->router, req->msg.method_str,
                                          path, &status);
    if (r) {
        r->cb(srv, req, r->data);
        return;
    }
    /* files only where no route claims the path (a mount at "/" must not
     * shadow the API), and not where a route exists for another method */
    if (status == 404 &&
        (req->msg.method == HTTP_GET || req->msg.method == HTTP_HEAD)) {
        for (size_t i = 0; i < srv->nstatic; i++) {
            const cc__static_mount *m = &srv->statics[i];
            size_t pl = strlen(m->prefix);
            if (strncmp(path, m->prefix, pl) == 0 ||
                (strlen(path) + 1 == pl && strncmp(path, m->prefix, pl - 1) == 0)) {
                cc__static_serve(c->ctx, req, m);
                return;
            }
        }
    }
    if (ws_for(srv, path)) {
        static const char body[] =
            "{\"error\":\"upgrade_required\",\"message\":\"WebSocket endpoint\"}";
        cc_http_respond(req, 426, "application/json",
                        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                        body, sizeof body - 1);
        return;
    }
    cc_http_respond_error(req, status, error_code_for(status),
                          status == 405 ? "method not allowed" : "no such resource");
}

size_t
cc__http_input(cc__conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && !c->closing && !c->req && c->phase == CC__PH_HTTP) {
        if (c->srv->draining) {
            cc__conn_close_after_flush(c, 0);
            return n;
        }
        /* the first bytes of a request start its head deadline (which
         * replaces the keep-alive idle deadline) */
        if (c->hp->head_bytes == 0)
            c->deadline = uv_now(c->ctx->loop) + c->srv->header_ms;
        ssize_t r = cc__http_parser_feed(c->hp, p + off, n - off);
        if (r < 0) {
            int st = r == CC_ENOMEM ? 503 : (c->hp->err_status ? c->hp->err_status : 400);
            write_error(c, st, error_code_for(st),
                        c->hp->err_msg ? c->hp->err_msg : "malformed request", NULL);
            return n;
        }
        off += (size_t)r;
        if (!c->hp->ready)
            break;
        c->hp->ready = 0;
        handle_request(c);
        if (c->phase == CC__PH_HTTP && !c->closing && c->hp)
            cc__http_parser_next(c->hp);
    }
    if (c->req && !c->closing && c->phase == CC__PH_HTTP)
        cc__conn_stop_read(c); /* wait for the handler */
    return off;
}

/* ---- responding ---- */

int
cc_http_respond(cc_http_req *req, int status, const char *content_type,
                const char *headers, const void *body, size_t len)
{
    if (!req)
        return CC_EINVAL;
    cc__conn *c = req->conn;
    if (!c || c->closing) {
        if (c)
            c->req = NULL;
        free_req(req);
        return CC_EPIPE;
    }
    int bad = 0;
    if (status < 100 || status > 999 || (len && !body)) {
        /* still answer, so the client is not left waiting */
        bad = CC_EINVAL;
        status = 500;
        body = NULL;
        len = 0;
    }
    cc_server *srv = c->srv;
    int keep = req->msg.keep_alive && !srv->draining && !srv->closing;
    const char *extra = req->extra ? req->extra : "";
    size_t hlen = (headers ? strlen(headers) : 0) + strlen(extra);
    size_t cap = 256 + hlen + (content_type ? strlen(content_type) : 0);
    char stack[1024];
    char *head = cap <= sizeof stack ? stack : CC__ALLOC(c->ctx, cap);
    if (!head) {
        c->req = NULL;
        free_req(req);
        cc__conn_destroy(c, CC_ENOMEM);
        return CC_ENOMEM;
    }
    int n = snprintf(head, cap,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %zu\r\n"
                     "%s%s%sConnection: %s\r\n%s%s\r\n",
                     status, cc__http_status_text(status),
                     cc__ctx_http_date(c->ctx), len,
                     content_type ? "Content-Type: " : "",
                     content_type ? content_type : "",
                     content_type ? "\r\n" : "", keep ? "keep-alive" : "close",
                     extra, headers ? headers : "");
    int rc = cc__conn_write(c, head, (size_t)n);
    if (head != stack)
        CC__FREE(c->ctx, head, cap);
    if (rc == 0 && len && !req->head_only)
        rc = cc__conn_write(c, body, len);
    c->req = NULL;
    free_req(req);
    if (rc) {
        cc__conn_destroy(c, rc);
        return rc;
    }
    if (!keep) {
        cc__conn_stop_read(c);
        cc__conn_close_after_flush(c, 0);
        return bad;
    }
    c->deadline = uv_now(c->ctx->loop) + srv->keepalive_ms;
    cc__conn_resume(c);
    return bad;
}

int
cc_http_req_extra_headers(cc_http_req *req, const char *lines)
{
    if (!req)
        return CC_EINVAL;
    req->extra = lines;
    return 0;
}

int
cc_http_respond_json(cc_http_req *req, int status, const char *json)
{
    return cc_http_respond(req, status, "application/json", NULL, json,
                           json ? strlen(json) : 0);
}

int
cc_http_respond_error(cc_http_req *req, int status, const char *code,
                      const char *message)
{
    char esc_c[128], esc_m[1024], body[1200];
    if (!code || cc__json_escape(code, esc_c, sizeof esc_c) < 0)
        strcpy(esc_c, "error");
    if (!message || cc__json_escape(message, esc_m, sizeof esc_m) < 0)
        strcpy(esc_m, "");
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}",
                     esc_c, esc_m);
    return cc_http_respond(req, status, "application/json", NULL, body,
                           (size_t)n);
}

int
cc_http_req_peer(const cc_http_req *req, char *out, size_t cap)
{
    if (!req || !out)
        return CC_EINVAL;
    if (!req->conn)
        return CC_EPIPE;
    return cc__conn_peer(req->conn, out, cap);
}

/* ---- WebSocket accept ---- */

int
cc_ws_accept(cc_http_req *req, void *conn_data)
{
    if (!req)
        return CC_EINVAL;
    cc__conn *c = req->conn;
    cc_ws_endpoint *ep = req->ws;
    if (!c || c->closing) {
        if (c)
            c->req = NULL;
        free_req(req);
        return CC_EPIPE;
    }
    if (!ep)
        return CC_EINVAL;
    char accept[29];
    const char *key = cc__http_msg_header(&req->msg, "sec-websocket-key");
    if (!key || cc__ws_accept_key(key, accept)) {
        return cc_http_respond_error(req, 400, "bad_request",
                                     "bad Sec-WebSocket-Key");
    }
    char proto[128];
    cc__ws_pick_subprotocol(cc__http_msg_header(&req->msg, "sec-websocket-protocol"),
                            ep->subprotocols, proto, sizeof proto);
    char head[320];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     accept, proto[0] ? "Sec-WebSocket-Protocol: " : "", proto,
                     proto[0] ? "\r\n" : "");
    c->req = NULL;
    free_req(req);
    if (proto[0]) {
        c->subproto = cc__strdup(&c->ctx->a, proto);
        if (!c->subproto) {
            cc__conn_destroy(c, CC_ENOMEM);
            return CC_ENOMEM;
        }
    }
    int rc = cc__conn_write(c, head, (size_t)n);
    if (rc) {
        cc__conn_destroy(c, rc);
        return rc;
    }
    /* the HTTP parser is not needed any more: free it before the
     * connection goes idle */
    cc__http_parser_free(c->hp);
    CC__FREE(c->ctx, c->hp, sizeof *c->hp);
    c->hp = NULL;
    c->data = conn_data;
    cc__ws_open(c, ep);
    if (c->srv && c->srv->draining)
        cc__ws_close_code(c, CC_WS_CLOSE_RESTART, "restart", 7, 0);
    cc__conn_resume(c);
    return 0;
}

/* ---- listen, drain, close ---- */

static void
on_listener_failed(uv_handle_t *h)
{
    cc_server *srv = h->data;
    srv->listener_init = 0;
    srv->handles--;
    finish_close(srv);
}

int
cc_server_listen(cc_server *srv, const char *host, int port)
{
    if (!srv || port < 0 || port > 65535 || srv->listener_init)
        return srv && srv->listener_init ? CC_EBUSY : CC_EINVAL;
    struct sockaddr_storage ss;
    const char *h = host && *host ? host : "0.0.0.0";
    int rc;
    if (strchr(h, ':'))
        rc = uv_ip6_addr(h, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(h, port, (struct sockaddr_in *)&ss);
    if (rc)
        return rc;
    rc = uv_tcp_init_ex(srv->ctx->loop, &srv->listener, ss.ss_family);
    if (rc)
        return rc;
    srv->listener_init = 1;
    srv->handles++;
    srv->listener.data = srv;
    if (srv->reuseport) {
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&srv->listener, &fd) == 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, srv->backlog, on_connection);
    if (rc) {
        /* release the handle; a new listen may follow once it has closed
         * (until then it returns CC_EBUSY) */
        uv_close((uv_handle_t *)&srv->listener, on_listener_failed);
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
    srv->port = ntohs(bound.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&bound)->sin6_port
                          : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int
cc_server_port(const cc_server *srv)
{
    return srv ? srv->port : CC_EINVAL;
}

static void
on_handle_closed(uv_handle_t *h)
{
    cc_server *srv = h->data;
    srv->handles--;
    finish_close(srv);
}

static void
stop_listening(cc_server *srv)
{
    if (srv->listener_init && !uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
}

static void
drain_done(cc_server *srv)
{
    if (srv->drain_done)
        return;
    srv->drain_done = 1;
    uv_timer_stop(&srv->drain_timer);
    if (srv->drain_cb)
        srv->drain_cb(srv, srv->drain_data);
}

static void
maybe_finish_drain(cc_server *srv)
{
    if (srv->draining && srv->nconns == 0 && !srv->drain_done)
        uv_timer_start(&srv->drain_timer, on_drain_timer, 0, 0);
}

static void
for_each_conn(cc_server *srv, void (*fn)(cc__conn *c, void *arg), void *arg)
{
    cc__list *l = srv->ctx->conns.next;
    while (l != &srv->ctx->conns) {
        cc__conn *c = CC__CONTAINER_OF(l, cc__conn, ctx_link);
        l = l->next;
        if (c->srv == srv && !c->closing)
            fn(c, arg);
    }
}

static void
drain_conn(cc__conn *c, void *arg)
{
    const char *text = arg;
    if (c->phase == CC__PH_WS) {
        if (text && !c->close_sent)
            cc__ws_send_frame(c, CC_WS_TEXT, text, strlen(text));
        cc__ws_close_code(c, CC_WS_CLOSE_RESTART, "restart", 7, 0);
    } else if (!c->req) {
        cc__conn_close_after_flush(c, 0);
    }
}

static void
cut_conn(cc__conn *c, void *arg)
{
    CC__UNUSED(arg);
    cc__conn_destroy(c, CC_ETIMEDOUT);
}

static void
on_drain_timer(uv_timer_t *t)
{
    cc_server *srv = t->data;
    if (srv->nconns == 0) {
        drain_done(srv);
        return;
    }
    for_each_conn(srv, cut_conn, NULL);
    /* the last on_closed finishes the drain */
}

int
cc_server_drain(cc_server *srv, uint64_t timeout_ms, const char *text,
                cc_close_cb cb, void *data)
{
    if (!srv)
        return CC_EINVAL;
    if (srv->draining || srv->closing)
        return CC_ESTATE;
    srv->draining = 1;
    srv->drain_cb = cb;
    srv->drain_data = data;
    stop_listening(srv);
    for_each_conn(srv, drain_conn, (void *)text);
    uv_timer_start(&srv->drain_timer, on_drain_timer,
                   srv->nconns ? timeout_ms : 0, 0);
    return 0;
}

static void
close_conn(cc__conn *c, void *arg)
{
    CC__UNUSED(arg);
    if (c->phase == CC__PH_WS) {
        cc__ws_close_code(c, CC_WS_CLOSE_GOING_AWAY, "server closing", 14, CC_ECANCELED);
        cc__conn_close_after_flush(c, CC_ECANCELED);
    } else {
        cc__conn_destroy(c, CC_ECANCELED);
    }
}

void
cc_server_close(cc_server *srv, cc_close_cb cb, void *data)
{
    if (!srv || srv->closing)
        return;
    if (srv->draining)
        drain_done(srv); /* its callback runs before the close's */
    srv->closing = 1;
    srv->close_cb = cb;
    srv->close_data = data;
    stop_listening(srv);
    for_each_conn(srv, close_conn, NULL);
    finish_close(srv);
}

static void
finish_close(cc_server *srv)
{
    if (!srv->closing || srv->nconns)
        return;
    if (!uv_is_closing((uv_handle_t *)&srv->drain_timer)) {
        uv_close((uv_handle_t *)&srv->drain_timer, on_handle_closed);
        return;
    }
    if (srv->handles)
        return;
    cc_ctx *ctx = srv->ctx;
    const cc_allocator *a = &ctx->a;
    cc__router_free(&srv->router);
    for (size_t i = 0; i < srv->nws; i++)
        cc__free_str(a, srv->ws[i].path);
    cc__free(a, srv->ws, srv->nws * sizeof *srv->ws);
    for (size_t i = 0; i < srv->nstatic; i++) {
        cc__free_str(a, srv->statics[i].prefix);
        cc__free_str(a, srv->statics[i].dir);
    }
    cc__free(a, srv->statics, srv->nstatic * sizeof *srv->statics);
    if (srv->tls)
        cc__tls_conf_free(srv->tls);
    cc_close_cb cb = srv->close_cb;
    void *d = srv->close_data;
    CC__FREE(ctx, srv, sizeof *srv);
    if (cb)
        cb(srv, d);
}

size_t
cc_server_conn_count(const cc_server *srv)
{
    return srv->nconns;
}

void
cc_server_set_data(cc_server *srv, void *data)
{
    srv->data = data;
}

void *
cc_server_get_data(cc_server *srv)
{
    return srv->data;
}

cc_ctx *
cc_server_ctx(cc_server *srv)
{
    return srv->ctx;
}
