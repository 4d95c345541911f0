/*
 * lib/net/ws.c - WebSocket connections over the frame codec: endpoints,
 * receive path (control frames, fragmentation, UTF-8, limits), sends,
 * the close handshake, shared messages and broadcast.
 *
 * Unfragmented data frames are delivered straight from the read buffer,
 * unmasked in place (zero copy); only fragmented messages are assembled.
 */
#include "net_int.h"

/* ---- endpoint ---- */

int
cc_ws_endpoint_new(cc_ws_endpoint **out, cc_ctx *ctx, const cc_config *cfg)
{
    if (!out || !ctx)
        return CC_EINVAL;
    cc_ws_endpoint *ep = CC__CALLOC(ctx, 1, sizeof *ep);
    if (!ep)
        return CC_ENOMEM;
    ep->ctx = ctx;
    cc__list_init(&ep->conns);
    ep->max_message = (size_t)cc_config_get_int(cfg, CC_OPT_WS_MAX_MESSAGE);
    ep->idle_ms = (uint64_t)cc_config_get_int(cfg, CC_OPT_WS_IDLE_TIMEOUT_MS);
    ep->ping_ms = (uint64_t)cc_config_get_int(cfg, CC_OPT_WS_PING_INTERVAL_MS);
    ep->close_ms = (uint64_t)cc_config_get_int(cfg, CC_OPT_CLOSE_TIMEOUT_MS);
    ep->out_hwm = (size_t)cc_config_get_int(cfg, CC_OPT_OUT_HIGH_WATER);
    ep->out_max = (size_t)cc_config_get_int(cfg, CC_OPT_OUT_MAX);
    ep->allow_binary = (int)cc_config_get_int(cfg, CC_OPT_WS_ALLOW_BINARY);
    ep->subprotocols = cc__strdup(&ctx->a, cc_config_get_str(cfg, CC_OPT_WS_SUBPROTOCOLS));
    if (!ep->subprotocols) {
        CC__FREE(ctx, ep, sizeof *ep);
        return CC_ENOMEM;
    }
    *out = ep;
    return 0;
}

void
cc_ws_endpoint_free(cc_ws_endpoint *ep)
{
    if (!ep)
        return;
    cc__free_str(&ep->ctx->a, ep->subprotocols);
    cc__free_str(&ep->ctx->a, ep->client_tls_ca);
    if (ep->client_tls)
        cc__tls_conf_free(ep->client_tls);
    CC__FREE(ep->ctx, ep, sizeof *ep);
}

#define SETTER(name, field, type)                                          \
    void cc_ws_endpoint_on_##name(cc_ws_endpoint *ep, type cb, void *data) \
    {                                                                      \
        ep->on_##field = cb;                                               \
        ep->field##_data = data;                                           \
    }
SETTER(upgrade, upgrade, cc_ws_upgrade_cb)
SETTER(origin, origin, cc_ws_origin_cb)
SETTER(open, open, cc_ws_open_cb)
SETTER(message, message, cc_ws_message_cb)
SETTER(close, close, cc_ws_close_cb)
#undef SETTER

void
cc_ws_endpoint_on_high_water(cc_ws_endpoint *ep, cc_ws_high_water_cb cb,
                             void *data)
{
    ep->on_hw = cb;
    ep->hw_data = data;
}

size_t
cc_ws_endpoint_conn_count(const cc_ws_endpoint *ep)
{
    return ep->nconns;
}

cc_ctx *
cc_ws_endpoint_ctx(cc_ws_endpoint *ep)
{
    return ep->ctx;
}

/* ---- opening and closing ---- */

int
cc__ws_open(cc__conn *c, cc_ws_endpoint *ep)
{
    c->phase = CC__PH_WS;
    c->ep = ep;
    c->deadline = 0;
    c->last_rx = uv_now(c->ctx->loop);
    cc__list_push(&ep->conns, &c->ep_link);
    ep->nconns++;
    c->open_notified = 1;
    if (ep->on_open)
        ep->on_open((cc_ws_conn *)c, 0, ep->open_data);
    return 0;
}

void
cc__ws_conn_gone(cc__conn *c)
{
    cc_ws_endpoint *ep = c->ep;
    cc__list_remove(&c->ep_link);
    if (ep)
        ep->nconns--;
    int code = c->close_code ? c->close_code : CC_WS_CLOSE_ABNORMAL;
    int status = c->close_status;
    if (status == CC_EOF && c->close_sent && c->close_rcvd)
        status = 0;
    const char *reason = c->close_reason ? c->close_reason : "";
    if (c->open_notified && ep && ep->on_close)
        ep->on_close((cc_ws_conn *)c, status, code, reason, strlen(reason),
                     ep->close_data);
    if (c->close_reason)
        cc__free_str(&c->ctx->a, c->close_reason);
    c->close_reason = NULL;
    if (c->msg)
        CC__FREE(c->ctx, c->msg, c->msg_cap);
    c->msg = NULL;
    if (c->subproto)
        cc__free_str(&c->ctx->a, c->subproto);
    c->subproto = NULL;
}

/* Queue one frame, no policy checks. Server frames are encoded straight
 * into the out queue; client frames are masked there in place. */
static int
frame_out(cc__conn *c, int opcode, const uint8_t *p, size_t len)
{
    uint8_t hdr[CC__WS_MAX_HEADER];
    uint8_t mask[4];
    const uint8_t *mk = NULL;
    if (c->is_client) {
        uint64_t x = c->ctx->prng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c->ctx->prng = x;
        memcpy(mask, &x, 4);
        mk = mask;
    }
    size_t hl = cc__ws_hdr_encode(hdr, 1, opcode, len, mk);
    if (c->tls) {
        /* stage small frames so header and payload share one record */
        uint8_t stage[4096];
        if (hl + len <= sizeof stage) {
            memcpy(stage, hdr, hl);
            if (len)
                memcpy(stage + hl, p, len);
            if (mk)
                cc__ws_mask(stage + hl, len, mk, 0);
            return cc__tls_write(c->tls, stage, hl + len);
        }
        int rc = cc__tls_write(c->tls, hdr, hl);
        for (size_t off = 0; rc == 0 && off < len; off += sizeof stage) {
            size_t k = len - off < sizeof stage ? len - off : sizeof stage;
            memcpy(stage, p + off, k);
            if (mk)
                cc__ws_mask(stage, k, mk, off);
            rc = cc__tls_write(c->tls, stage, k);
        }
        return rc;
    }
    if (hl + len <= CC__SEG_SIZE) {
        uint8_t *dst = cc__conn_reserve(c, hl + len);
        if (!dst)
            return CC_ENOMEM;
        memcpy(dst, hdr, hl);
        if (len)
            memcpy(dst + hl, p, len);
        if (mk)
            cc__ws_mask(dst + hl, len, mk, 0);
        return 0;
    }
    int rc = cc__conn_write_raw(c, hdr, hl);
    if (rc)
        return rc;
    if (!mk)
        return cc__conn_write_raw(c, p, len);
    /* large client frame: copy in pieces, masking each */
    for (size_t off = 0; off < len;) {
        size_t k = len - off < CC__SEG_SIZE ? len - off : CC__SEG_SIZE;
        uint8_t *dst = cc__conn_reserve(c, k);
        if (!dst)
            return CC_ENOMEM;
        memcpy(dst, p + off, k);
        cc__ws_mask(dst, k, mk, off);
        off += k;
    }
    return 0;
}

int
cc__ws_close_code(cc__conn *c, int code, const char *reason, size_t len,
                  int status)
{
    if (c->closing || c->close_sent)
        return 0;
    uint8_t pl[125];
    size_t n = 0;
    if (code != CC_WS_CLOSE_NO_STATUS) {
        if (len > 123)
            len = 123;
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)(code & 0xff);
        if (len)
            memcpy(pl + 2, reason, len);
        n = 2 + len;
    }
    c->close_sent = 1;
    if (!c->close_rcvd)
        c->close_code = (uint16_t)code;
    if (status)
        c->close_status = status;
    if (c->msg) {
        CC__FREE(c->ctx, c->msg, c->msg_cap);
        c->msg = NULL;
        c->msg_len = c->msg_cap = 0;
        c->msg_op = 0;
    }
    int rc = frame_out(c, CC_WS_CLOSE, pl, n);
    if (rc) {
        cc__conn_destroy(c, rc);
        return rc;
    }
    if (c->close_rcvd && !c->is_client) {
        cc__conn_close_after_flush(c, c->close_status);
    } else {
        uint64_t ms = c->ep ? c->ep->close_ms : 5000;
        c->deadline = uv_now(c->ctx->loop) + ms;
    }
    return 0;
}

/* Fail the connection (RFC 6455 §7.1.7): our close frame, then only the
 * peer's close is processed. The input after a refused frame may be out
 * of step (an oversized frame's payload is not read), so the peer's
 * answering close can go unseen: wait for it at most FAIL_CLOSE_MS, not
 * the full close timeout, before dropping the connection. */
#define FAIL_CLOSE_MS 1000
static void
fail(cc__conn *c, int code, int status)
{
    cc__ws_close_code(c, code, NULL, 0, status);
    if (!c->closing && c->deadline) {
        uint64_t soon = uv_now(c->ctx->loop) + FAIL_CLOSE_MS;
        if (soon < c->deadline)
            c->deadline = soon;
    }
}

/* ---- receive path ---- */

static void
deliver(cc__conn *c, int op, uint8_t *p, size_t len)
{
    cc_ws_endpoint *ep = c->ep;
    if (!ep->on_message)
        return;
    /* NUL-terminate in place: every input buffer keeps a spare byte */
    uint8_t saved = p[len];
    p[len] = 0;
    ep->on_message((cc_ws_conn *)c, op, p, len, ep->message_data);
    p[len] = saved;
}

static int
msg_append(cc__conn *c, const uint8_t *p, size_t n)
{
    size_t need = c->msg_len + n + 1;
    if (need > c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap : 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = cc__realloc(&c->ctx->a, c->msg, c->msg_cap, cap);
        if (!nb)
            return CC_ENOMEM;
        c->msg = nb;
        c->msg_cap = cap;
    }
    if (n)
        memcpy(c->msg + c->msg_len, p, n);
    c->msg_len += n;
    return 0;
}

static void
on_close_frame(cc__conn *c, uint8_t *pl, size_t len)
{
    int code;
    const uint8_t *reason;
    size_t rlen;
    int bad = cc__ws_close_parse(pl, len, &code, &reason, &rlen);
    c->close_rcvd = 1;
    if (bad) {
        c->close_code = (uint16_t)bad;
        if (!c->close_sent) {
            c->close_rcvd = 0; /* send our code, not an echo */
            cc__ws_close_code(c, bad, NULL, 0, CC_EFRAME);
            c->close_rcvd = 1;
        }
        if (!c->is_client)
            cc__conn_close_after_flush(c, CC_EFRAME);
        return;
    }
    c->close_code = (uint16_t)code;
    if (rlen && !c->close_reason) {
        /* kept for on_close (validated UTF-8, at most 123 bytes) */
        c->close_reason = cc__alloc(&c->ctx->a, rlen + 1);
        if (c->close_reason) {
            memcpy(c->close_reason, reason, rlen);
            c->close_reason[rlen] = 0;
            if (strlen(c->close_reason) != rlen) { /* an embedded NUL */
                cc__free(&c->ctx->a, c->close_reason, rlen + 1);
                c->close_reason = NULL;
            }
        }
    }
    if (!c->close_sent) {
        /* echo the peer's code (none -> empty close) */
        cc__ws_close_code(c, code, NULL, 0, 0);
    } else if (!c->is_client) {
        cc__conn_close_after_flush(c, c->close_status);
    }
}

size_t
cc__ws_input(cc__conn *c, uint8_t *p, size_t n)
{
    cc_ws_endpoint *ep = c->ep;
    size_t off = 0;
    while (off < n && !c->closing) {
        cc__ws_hdr h;
        uint16_t cc = 0;
        int r = cc__ws_hdr_decode(p + off, n - off, !c->is_client, &h, &cc);
        if (r == 0)
            break;
        if (r < 0) {
            fail(c, cc, CC_EFRAME);
            return n;
        }
        if (h.opcode < 8) {
            uint64_t total = h.len + (c->msg_op ? c->msg_len : 0);
            if (h.len > ep->max_message || total > ep->max_message) {
                fail(c, CC_WS_CLOSE_TOO_BIG, CC_E2BIG);
                return n;
            }
        }
        if ((uint64_t)(n - off - (size_t)r) < h.len)
            break; /* wait for the rest (bounded by max_message) */
        uint8_t *pl = p + off + r;
        size_t len = (size_t)h.len;
        off += (size_t)r + len;
        c->last_rx = uv_now(c->ctx->loop);
        c->ping_sent = 0;
        if (c->close_rcvd)
            continue;
        if (h.masked)
            cc__ws_mask(pl, len, h.mask, 0);
        if (c->close_sent && h.opcode != CC_WS_CLOSE)
            continue;
        switch (h.opcode) {
        case 0:
            if (!c->msg_op) {
                fail(c, CC_WS_CLOSE_PROTOCOL, CC_EFRAME);
                return n;
            }
            if (c->msg_op == CC_WS_TEXT) {
                c->utf8 = cc__utf8_validate(c->utf8, pl, len);
                if (c->utf8 == CC__UTF8_REJECT ||
                    (h.fin && c->utf8 != CC__UTF8_ACCEPT)) {
                    fail(c, CC_WS_CLOSE_INVALID_DATA, CC_EUTF8);
                    return n;
                }
            }
            if (msg_append(c, pl, len)) {
                fail(c, CC_WS_CLOSE_INTERNAL, CC_ENOMEM);
                return n;
            }
            if (h.fin) {
                int op = c->msg_op;
                uint8_t *m = c->msg;
                size_t ml = c->msg_len, mc = c->msg_cap;
                c->msg = NULL;
                c->msg_len = c->msg_cap = 0;
                c->msg_op = 0;
                deliver(c, op, m, ml);
                CC__FREE(c->ctx, m, mc);
            }
            break;
        case CC_WS_TEXT:
        case CC_WS_BINARY:
            if (c->msg_op) {
                fail(c, CC_WS_CLOSE_PROTOCOL, CC_EFRAME);
                return n;
            }
            if (h.opcode == CC_WS_BINARY && !ep->allow_binary) {
                fail(c, CC_WS_CLOSE_UNSUPPORTED, CC_EPROTO);
                return n;
            }
            if (h.fin) {
                if (h.opcode == CC_WS_TEXT &&
                    cc__utf8_validate(CC__UTF8_ACCEPT, pl, len) != CC__UTF8_ACCEPT) {
                    fail(c, CC_WS_CLOSE_INVALID_DATA, CC_EUTF8);
                    return n;
                }
                deliver(c, h.opcode, pl, len);
                break;
            }
            c->msg_op = h.opcode;
            c->utf8 = CC__UTF8_ACCEPT;
            if (h.opcode == CC_WS_TEXT) {
                c->utf8 = cc__utf8_validate(c->utf8, pl, len);
                if (c->utf8 == CC__UTF8_REJECT) {
                    fail(c, CC_WS_CLOSE_INVALID_DATA, CC_EUTF8);
                    return n;
                }
            }
            if (msg_append(c, pl, len)) {
                fail(c, CC_WS_CLOSE_INTERNAL, CC_ENOMEM);
                return n;
            }
            break;
        case CC_WS_CLOSE:
            on_close_frame(c, pl, len);
            break;
        case CC_WS_PING:
            /* pongs count against the outbound limit too: a peer that
             * pings without reading must not grow our memory */
            if (c->out_bytes + len + 2 > ep->out_max) {
                cc__ws_close_code(c, CC_WS_CLOSE_POLICY, "slow consumer", 13,
                                  CC_ENOBUFS);
                return n;
            }
            if (frame_out(c, CC_WS_PONG, pl, len))
                cc__conn_destroy(c, CC_ENOMEM);
            break;
        case CC_WS_PONG:
            break;
        }
    }
    return off;
}

void
cc__ws_timeout(cc__conn *c, uint64_t now)
{
    if (c->close_sent || c->close_rcvd) {
        if (c->deadline && now >= c->deadline)
            cc__conn_destroy(c, c->close_rcvd && c->close_sent ? 0 : CC_ETIMEDOUT);
        return;
    }
    cc_ws_endpoint *ep = c->ep;
    uint64_t idle = c->idle_ms ? c->idle_ms : ep->idle_ms;
    if (idle && now - c->last_rx >= idle) {
        cc__ws_close_code(c, CC_WS_CLOSE_GOING_AWAY, "idle timeout", 12,
                          CC_ETIMEDOUT);
        return;
    }
    if (ep->ping_ms && !c->ping_sent && now - c->last_rx >= ep->ping_ms) {
        c->ping_sent = 1;
        frame_out(c, CC_WS_PING, NULL, 0);
    }
}

/* ---- sending ---- */

static int
send_check(cc__conn *c, size_t len)
{
    if (c->closing || c->close_sent)
        return CC_EPIPE;
    if (c->phase != CC__PH_WS)
        return CC_ESTATE;
    cc_ws_endpoint *ep = c->ep;
    if (c->out_bytes + len > ep->out_max) {
        /* slow consumer: its messages stay with the application */
        cc__ws_close_code(c, CC_WS_CLOSE_POLICY, "slow consumer", 13,
                          CC_ENOBUFS);
        return CC_ENOBUFS;
    }
    return 0;
}

static void
check_high_water(cc__conn *c)
{
    cc_ws_endpoint *ep = c->ep;
    if (!c->high_water && c->out_bytes >= ep->out_hwm && !c->closing) {
        c->high_water = 1;
        if (ep->on_hw)
            ep->on_hw((cc_ws_conn *)c, 0, c->out_bytes, ep->hw_data);
    }
}

int
cc__ws_send_frame(cc__conn *c, int opcode, const void *p, size_t len)
{
    int rc = send_check(c, len);
    if (rc)
        return rc;
    rc = frame_out(c, opcode, p, len);
    if (rc) {
        cc__conn_destroy(c, rc);
        return rc;
    }
    check_high_water(c);
    return 0;
}

int
cc_ws_send(cc_ws_conn *wc, int opcode, const void *p, size_t len)
{
    if (!wc || (opcode != CC_WS_TEXT && opcode != CC_WS_BINARY) ||
        (len && !p))
        return CC_EINVAL;
    return cc__ws_send_frame(&wc->c, opcode, p, len);
}

int
cc_ws_send_text(cc_ws_conn *wc, const char *s, size_t len)
{
    return cc_ws_send(wc, CC_WS_TEXT, s, len);
}

int
cc_ws_ping(cc_ws_conn *wc, const void *p, size_t len)
{
    if (!wc || len > 125 || (len && !p))
        return CC_EINVAL;
    cc__conn *c = &wc->c;
    if (c->closing || c->close_sent)
        return CC_EPIPE;
    if (c->phase != CC__PH_WS)
        return CC_ESTATE;
    return frame_out(c, CC_WS_PING, p, len);
}

int
cc_ws_close(cc_ws_conn *wc, int code, const char *reason, size_t len)
{
    if (!wc)
        return CC_EINVAL;
    if (!cc__ws_close_code_valid(code) || len > 123 || (len && !reason))
        return CC_EINVAL;
    cc__conn *c = &wc->c;
    if (c->phase != CC__PH_WS) {
        cc__conn_destroy(c, CC_ECANCELED);
        return 0;
    }
    return cc__ws_close_code(c, code, reason, len, 0);
}

void
cc_ws_conn_set_data(cc_ws_conn *c, void *data)
{
    c->c.data = data;
}

void *
cc_ws_conn_get_data(const cc_ws_conn *c)
{
    return c->c.data;
}

cc_ws_endpoint *
cc_ws_conn_endpoint(const cc_ws_conn *c)
{
    return c->c.ep;
}

const char *
cc_ws_conn_subprotocol(const cc_ws_conn *c)
{
    return c->c.subproto ? c->c.subproto : "";
}

int
cc_ws_conn_set_idle_timeout(cc_ws_conn *c, uint64_t ms)
{
    if (ms > UINT32_MAX)
        return CC_EINVAL;
    c->c.idle_ms = (uint32_t)ms;
    return 0;
}

size_t
cc_ws_conn_queued(const cc_ws_conn *c)
{
    return c->c.out_bytes;
}

int
cc_ws_conn_peer(const cc_ws_conn *c, char *out, size_t cap)
{
    return cc__conn_peer(&c->c, out, cap);
}

/* ---- shared messages ---- */

int
cc_ws_msg_new(cc_ws_msg **out, cc_ctx *ctx, int opcode, const void *p,
              size_t len)
{
    if (!out || !ctx || (opcode != CC_WS_TEXT && opcode != CC_WS_BINARY) ||
        (len && !p) || len > SIZE_MAX - sizeof(cc_ws_msg) - CC__WS_MAX_HEADER)
        return CC_EINVAL;
    size_t sz = sizeof(cc_ws_msg) + CC__WS_MAX_HEADER + len;
    cc_ws_msg *m = CC__ALLOC(ctx, sz);
    if (!m)
        return CC_ENOMEM;
    atomic_init(&m->refs, 1);
    m->a = ctx->a;
    m->opcode = (uint8_t)opcode;
    m->hdr_len = cc__ws_hdr_encode(m->data, 1, opcode, len, NULL);
    if (len)
        memcpy(m->data + m->hdr_len, p, len);
    m->len = m->hdr_len + len;
    *out = m;
    return 0;
}

const uint8_t *
cc__ws_msg_payload(const cc_ws_msg *m, size_t *len)
{
    *len = m->len - m->hdr_len;
    return m->data + m->hdr_len;
}

void
cc_ws_msg_retain(cc_ws_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void
cc_ws_msg_release(cc_ws_msg *m)
{
    if (!m)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        cc_allocator a = m->a;
        cc__free(&a, m, sizeof(cc_ws_msg) + CC__WS_MAX_HEADER + m->len - m->hdr_len);
    }
}

int
cc_ws_send_msg(cc_ws_conn *wc, cc_ws_msg *m)
{
    if (!wc || !m)
        return CC_EINVAL;
    cc__conn *c = &wc->c;
    if (c->is_client)
        return cc__ws_send_frame(c, m->opcode, m->data + m->hdr_len,
                                 m->len - m->hdr_len);
    int rc = send_check(c, m->len);
    if (rc)
        return rc;
    rc = cc__conn_write_shared(c, m);
    if (rc) {
        cc__conn_destroy(c, rc);
        return rc;
    }
    check_high_water(c);
    return 0;
}

size_t
cc_ws_endpoint_broadcast(cc_ws_endpoint *ep, cc_ws_msg *m,
                         const cc_ws_conn *skip)
{
    size_t n = 0;
    cc__list *l = ep->conns.next;
    while (l != &ep->conns) {
        cc__conn *c = CC__CONTAINER_OF(l, cc__conn, ep_link);
        l = l->next;
        if ((const cc_ws_conn *)c == skip || c->closing || c->close_sent)
            continue;
        if (cc_ws_send_msg((cc_ws_conn *)c, m) == 0)
            n++;
    }
    return n;
}
