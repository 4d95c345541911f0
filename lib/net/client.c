/*
 * lib/net/client.c - WebSocket client connections (ws:// and wss://):
 * resolve, connect, optional TLS, the opening handshake, then the same
 * framing code as the server side (with masking).
 *
 * The resolver request may outlive the connection (a close while
 * resolving), so the client state is a separate block that whichever of
 * the two finishes last frees.
 */
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "net_int.h"

typedef struct cc__client {
    cc__conn *conn;         /* NULL once the connection is gone */
    const cc_allocator *a;
    cc_allocator al;
    char host[256];
    char port[8];
    char *target;           /* path + query */
    char *headers;          /* extra header lines */
    char *protocols;        /* offered subprotocols */
    char bind[64];
    char key[25];
    int use_tls, verify;
    char *ca_file;
    cc__tls_conf *tls_conf;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    int gai_pending;
} cc__client;

static void
client_free(cc__client *cl)
{
    const cc_allocator *a = &cl->al;
    cc__free_str(a, cl->target);
    cc__free_str(a, cl->headers);
    cc__free_str(a, cl->protocols);
    cc__free_str(a, cl->ca_file);
    if (cl->tls_conf)
        cc__tls_conf_free(cl->tls_conf);
    cc__free(a, cl, sizeof *cl);
}

/* ws[s]://host[:port][/path][?query] */
static int
parse_url(cc__client *cl, const char *url)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        p = url + 6;
        cl->use_tls = 1;
    } else {
        return CC_EINVAL;
    }
    const char *hs = p, *he;
    if (*p == '[') {
        hs = ++p;
        while (*p && *p != ']')
            p++;
        if (*p != ']')
            return CC_EINVAL;
        he = p++;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?')
            p++;
        he = p;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof cl->host)
        return CC_EINVAL;
    memcpy(cl->host, hs, (size_t)(he - hs));
    cl->host[he - hs] = 0;
    int port = cl->use_tls ? 443 : 80;
    if (*p == ':') {
        p++;
        port = 0;
        if (*p < '0' || *p > '9')
            return CC_EINVAL;
        while (*p >= '0' && *p <= '9') {
            port = port * 10 + (*p++ - '0');
            if (port > 65535)
                return CC_EINVAL;
        }
        if (port == 0)
            return CC_EINVAL;
    }
    if (*p && *p != '/' && *p != '?')
        return CC_EINVAL;
    snprintf(cl->port, sizeof cl->port, "%d", port);
    const char *target = *p == '/' ? p : NULL;
    if (!target) {
        /* "?q" without a path: the path is "/" */
        size_t n = strlen(p) + 2;
        cl->target = cc__alloc(&cl->al, n);
        if (!cl->target)
            return CC_ENOMEM;
        cl->target[0] = '/';
        memcpy(cl->target + 1, p, n - 1);
    } else {
        cl->target = cc__strdup(&cl->al, target);
        if (!cl->target)
            return CC_ENOMEM;
    }
    for (const char *q = cl->target; *q; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            return CC_EINVAL;
    return 0;
}

static void
client_fail(cc__conn *c, int status)
{
    c->close_status = status;
    cc__conn_destroy(c, status);
}

static void
send_handshake(cc__conn *c)
{
    cc__client *cl = c->cl;
    uint8_t rnd[16];
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL)) {
        for (size_t i = 0; i < sizeof rnd; i += 8) {
            uint64_t x = c->ctx->prng;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c->ctx->prng = x;
            memcpy(rnd + i, &x, 8);
        }
    }
    cc__ws_make_key(rnd, cl->key);
    int defport = strcmp(cl->port, cl->use_tls ? "443" : "80") == 0;
    int v6 = strchr(cl->host, ':') != NULL;
    size_t cap = 512 + strlen(cl->target) + strlen(cl->host) +
                 (cl->headers ? strlen(cl->headers) : 0) +
                 (cl->protocols ? strlen(cl->protocols) : 0);
    char *req = CC__ALLOC(c->ctx, cap);
    if (!req) {
        client_fail(c, CC_ENOMEM);
        return;
    }
    int n = snprintf(req, cap,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "%s%s%s%s\r\n",
                     cl->target, v6 ? "[" : "", cl->host, v6 ? "]" : "",
                     defport ? "" : ":", defport ? "" : cl->port, cl->key,
                     cl->protocols && *cl->protocols ? "Sec-WebSocket-Protocol: " : "",
                     cl->protocols && *cl->protocols ? cl->protocols : "",
                     cl->protocols && *cl->protocols ? "\r\n" : "",
                     cl->headers ? cl->headers : "");
    c->hp = CC__ALLOC(c->ctx, sizeof *c->hp);
    if (!c->hp) {
        CC__FREE(c->ctx, req, cap);
        client_fail(c, CC_ENOMEM);
        return;
    }
    cc__http_parser_init(c->hp, &c->ctx->a, HTTP_RESPONSE, 16384, 16384);
    c->phase = CC__PH_CLIENT_HS;
    int rc = cc__conn_write(c, req, (size_t)n);
    CC__FREE(c->ctx, req, cap);
    if (rc) {
        client_fail(c, rc);
        return;
    }
    rc = cc__conn_start_read(c);
    if (rc)
        client_fail(c, rc);
}

static int
check_response(cc__conn *c)
{
    cc__http_msg *m = &c->hp->msg;
    cc__client *cl = c->cl;
    if (m->status != 101)
        return CC_EHANDSHAKE;
    const char *up = cc__http_msg_header(m, "upgrade");
    const char *conn = cc__http_msg_header(m, "connection");
    const char *acc = cc__http_msg_header(m, "sec-websocket-accept");
    if (!up || !cc__header_has_token(up, "websocket") || !conn ||
        !cc__header_has_token(conn, "upgrade") || !acc)
        return CC_EHANDSHAKE;
    char want[29];
    if (cc__ws_accept_key(cl->key, want) || strcmp(want, acc) != 0)
        return CC_EHANDSHAKE;
    const char *proto = cc__http_msg_header(m, "sec-websocket-protocol");
    if (proto && *proto) {
        if (!cl->protocols || !cc__header_has_token(cl->protocols, proto))
            return CC_EHANDSHAKE;
        c->subproto = cc__strdup(&c->ctx->a, proto);
        if (!c->subproto)
            return CC_ENOMEM;
    }
    const char *ext = cc__http_msg_header(m, "sec-websocket-extensions");
    if (ext && *ext)
        return CC_EHANDSHAKE; /* we offered none */
    return 0;
}

size_t
cc__client_input(cc__conn *c, uint8_t *p, size_t n)
{
    if (c->phase == CC__PH_CONNECTING) {
        /* TLS is up: now the WebSocket handshake */
        send_handshake(c);
        return n;
    }
    ssize_t r = cc__http_parser_feed(c->hp, p, n);
    if (r < 0) {
        client_fail(c, CC_EHANDSHAKE);
        return n;
    }
    if (!c->hp->ready)
        return (size_t)r;
    int rc = check_response(c);
    if (rc) {
        client_fail(c, rc);
        return n;
    }
    cc__http_parser_free(c->hp);
    CC__FREE(c->ctx, c->hp, sizeof *c->hp);
    c->hp = NULL;
    cc__ws_open(c, c->ep);
    return (size_t)r;
}

void
cc__client_timeout(cc__conn *c)
{
    client_fail(c, CC_ETIMEDOUT);
}

void
cc__client_conn_gone(cc__conn *c)
{
    cc__client *cl = c->cl;
    if (c->hp) {
        cc__http_parser_free(c->hp);
        CC__FREE(c->ctx, c->hp, sizeof *c->hp);
        c->hp = NULL;
    }
    if (!c->open_notified && c->ep && c->ep->on_open) {
        int st = c->close_status ? c->close_status : CC_ECANCELED;
        c->ep->on_open((cc_ws_conn *)c, st, c->ep->open_data);
    }
    if (c->subproto) {
        cc__free_str(&c->ctx->a, c->subproto);
        c->subproto = NULL;
    }
    c->cl = NULL;
    if (!cl)
        return;
    cl->conn = NULL;
    if (!cl->gai_pending)
        client_free(cl);
}

static void
on_connect(uv_connect_t *req, int status)
{
    cc__conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        client_fail(c, status);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    cc__client *cl = c->cl;
    if (cl->use_tls) {
        cc_ws_endpoint *ep = c->ep;
        cc__tls_conf *conf = NULL;
        int rc = 0;
        if (ep->client_tls && ep->client_tls_verify == cl->verify &&
            strcmp(ep->client_tls_ca, cl->ca_file) == 0) {
            conf = ep->client_tls;
        } else {
            char err[256];
            rc = cc__tls_conf_client_new(&conf, &cl->al, cl->verify,
                                         cl->ca_file, err, sizeof err);
            if (rc == 0 && !ep->client_tls) {
                /* the first configuration seen is kept for the rest */
                ep->client_tls_ca = cc__strdup(&ep->ctx->a, cl->ca_file);
                if (ep->client_tls_ca) {
                    ep->client_tls = conf;
                    ep->client_tls_verify = cl->verify;
                } else {
                    cl->tls_conf = conf;
                }
            } else if (rc == 0) {
                cl->tls_conf = conf; /* owned by this connection */
            }
        }
        if (rc == 0)
            rc = cc__conn_tls_attach(c, conf, cl->host);
        if (rc == 0)
            rc = cc__tls_start(c->tls);
        if (rc == 0)
            rc = cc__conn_start_read(c);
        if (rc)
            client_fail(c, rc);
        return;
    }
    send_handshake(c);
}

static void
start_connect(cc__conn *c, const struct sockaddr *sa)
{
    cc__client *cl = c->cl;
    if (cl->bind[0]) {
        struct sockaddr_storage b;
        int rc = strchr(cl->bind, ':')
                     ? uv_ip6_addr(cl->bind, 0, (struct sockaddr_in6 *)&b)
                     : uv_ip4_addr(cl->bind, 0, (struct sockaddr_in *)&b);
        if (rc == 0) {
            /* choose the port at connect time, not bind time: bind's port
             * search slows to a crawl with thousands of sockets per
             * source address, connect's does not */
            uv_os_fd_t fd;
            int one = 1;
            if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
                setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                           sizeof one);
            rc = uv_tcp_bind(&c->tcp, (struct sockaddr *)&b, 0);
        }
        if (rc) {
            client_fail(c, rc);
            return;
        }
    }
    cl->creq.data = c;
    int rc = uv_tcp_connect(&cl->creq, &c->tcp, sa, on_connect);
    if (rc)
        client_fail(c, rc);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    cc__client *cl = req->data;
    cl->gai_pending = 0;
    cc__conn *c = cl->conn;
    if (!c) {
        uv_freeaddrinfo(res);
        client_free(cl);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        client_fail(c, status < 0 ? status : CC_ENOENT);
        return;
    }
    start_connect(c, res->ai_addr);
    uv_freeaddrinfo(res);
}

int
cc_ws_connect(cc_ws_conn **out, cc_ws_endpoint *ep, const char *url,
              const cc_config *cfg, const char *headers, void *conn_data)
{
    if (!out || !ep || !url)
        return CC_EINVAL;
    cc_ctx *ctx = ep->ctx;
    cc__client *cl = CC__CALLOC(ctx, 1, sizeof *cl);
    if (!cl)
        return CC_ENOMEM;
    cl->al = ctx->a;
    int rc = parse_url(cl, url);
    cl->verify = (int)cc_config_get_int(cfg, CC_OPT_TLS_VERIFY);
    const char *s = cc_config_get_str(cfg, CC_OPT_CLIENT_BIND_ADDR);
    if (rc == 0 && strlen(s) >= sizeof cl->bind)
        rc = CC_EINVAL;
    if (rc == 0) {
        strcpy(cl->bind, s);
        cl->ca_file = cc__strdup(&cl->al, cc_config_get_str(cfg, CC_OPT_TLS_CA_FILE));
        cl->protocols = cc__strdup(&cl->al, cc_config_get_str(cfg, CC_OPT_WS_SUBPROTOCOLS));
        if (headers)
            cl->headers = cc__strdup(&cl->al, headers);
        if (!cl->ca_file || !cl->protocols || (headers && !cl->headers))
            rc = CC_ENOMEM;
    }
    if (rc == 0 && headers) {
        size_t hl = strlen(headers);
        if (hl && (hl < 2 || strcmp(headers + hl - 2, "\r\n") != 0))
            rc = CC_EINVAL;
    }
    if (rc) {
        client_free(cl);
        return rc;
    }
    int family = AF_UNSPEC;
    if (cl->bind[0])
        family = strchr(cl->bind, ':') ? AF_INET6 : AF_INET;
    cc__conn *c = cc__conn_new_ex(ctx, family);
    if (!c) {
        client_free(cl);
        return CC_ENOMEM;
    }
    c->is_client = 1;
    c->phase = CC__PH_CONNECTING;
    c->ep = ep;
    c->data = conn_data;
    c->cl = cl;
    cl->conn = c;
    c->deadline = uv_now(ctx->loop) + 10000;
    *out = (cc_ws_conn *)c;

    struct sockaddr_storage ss;
    int port = atoi(cl->port);
    if (uv_ip4_addr(cl->host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(cl->host, port, (struct sockaddr_in6 *)&ss) == 0) {
        start_connect(c, (struct sockaddr *)&ss);
        return 0;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    cl->gai.data = cl;
    cl->gai_pending = 1;
    rc = uv_getaddrinfo(ctx->loop, &cl->gai, on_resolved, cl->host, cl->port,
                        &hints);
    if (rc) {
        cl->gai_pending = 0;
        client_fail(c, rc);
    }
    return 0;
}
