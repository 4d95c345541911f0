/*
 * lib/net/conn.c - the connection edge: reads into the loop's shared
 * buffer, keeps only unconsumed tails, queues output as segments and writes
 * each connection's queue once per loop turn (uv_check) with one writev.
 *
 * Invariants:
 * - A connection is freed only in on_closed (uv_close callback).
 * - out_bytes == sum over segments of (len - off).
 * - A connection is on ctx->dirty iff in_dirty, iff it has output to write
 *   that no pending uv_write covers.
 */
#include <stdlib.h>

#include "net_int.h"

typedef struct wreq {
    uv_write_t req;
    struct wreq *next_free;
    size_t bytes;
} wreq;

#define MAX_IOV 64

static void on_closed(uv_handle_t *h);

/* ---- segments ---- */

/* A segment with room for `need` bytes. `burst`: the connection already
 * has queued output, so more is likely: prefer the large size. */
static cc__seg *
seg_get(cc_ctx *ctx, size_t need, int burst)
{
    cc__seg *s;
    if (need <= CC__SEG_SMALL && !burst) {
        if (ctx->sseg_small_free) {
            s = ctx->sseg_small_free;
            ctx->sseg_small_free = s->next;
            ctx->sseg_small_free_n--;
        } else {
            s = CC__ALLOC(ctx, sizeof *s + CC__SEG_SMALL);
            if (!s)
                return NULL;
            s->cap = CC__SEG_SMALL;
        }
    } else if (need <= CC__SEG_SIZE && ctx->seg_free) {
        s = ctx->seg_free;
        ctx->seg_free = s->next;
        ctx->seg_free_n--;
    } else {
        size_t cap = need < CC__SEG_SIZE ? CC__SEG_SIZE : need;
        if (cap > UINT32_MAX - 64)
            return NULL;
        s = CC__ALLOC(ctx, sizeof *s + cap);
        if (!s)
            return NULL;
        s->cap = (uint32_t)cap;
    }
    s->next = NULL;
    s->base = s->data;
    s->len = s->off = 0;
    s->shared = NULL;
    return s;
}

static cc__seg *
sseg_get(cc_ctx *ctx)
{
    cc__seg *s;
    if (ctx->sseg_free) {
        s = ctx->sseg_free;
        ctx->sseg_free = s->next;
        ctx->sseg_free_n--;
    } else {
        s = CC__ALLOC(ctx, sizeof *s);
        if (!s)
            return NULL;
    }
    s->next = NULL;
    s->cap = 0;
    s->off = 0;
    return s;
}

static void
seg_put(cc_ctx *ctx, cc__seg *s)
{
    if (s->shared) {
        cc_ws_msg_release(s->shared);
        s->shared = NULL;
        if (ctx->sseg_free_n < CC__SEG_FREE_MAX * 4) {
            s->next = ctx->sseg_free;
            ctx->sseg_free = s;
            ctx->sseg_free_n++;
        } else {
            CC__FREE(ctx, s, sizeof *s);
        }
        return;
    }
    if (s->cap == CC__SEG_SMALL && ctx->sseg_small_free_n < CC__SEG_SMALL_FREE_MAX) {
        s->next = ctx->sseg_small_free;
        ctx->sseg_small_free = s;
        ctx->sseg_small_free_n++;
        return;
    }
    if (s->cap == CC__SEG_SIZE && ctx->seg_free_n < CC__SEG_FREE_MAX) {
        s->next = ctx->seg_free;
        ctx->seg_free = s;
        ctx->seg_free_n++;
        return;
    }
    CC__FREE(ctx, s, sizeof *s + s->cap);
}

void
cc__ctx_free_pools(cc_ctx *ctx)
{
    while (ctx->seg_free) {
        cc__seg *s = ctx->seg_free;
        ctx->seg_free = s->next;
        CC__FREE(ctx, s, sizeof *s + s->cap);
    }
    while (ctx->sseg_small_free) {
        cc__seg *s = ctx->sseg_small_free;
        ctx->sseg_small_free = s->next;
        CC__FREE(ctx, s, sizeof *s + s->cap);
    }
    while (ctx->sseg_free) {
        cc__seg *s = ctx->sseg_free;
        ctx->sseg_free = s->next;
        CC__FREE(ctx, s, sizeof *s);
    }
    while (ctx->wreq_free) {
        wreq *w = ctx->wreq_free;
        ctx->wreq_free = w->next_free;
        CC__FREE(ctx, w, sizeof *w);
    }
    ctx->seg_free_n = ctx->sseg_free_n = ctx->wreq_free_n = 0;
    ctx->sseg_small_free_n = 0;
}

/* ---- lifecycle ---- */

cc__conn *
cc__conn_new(cc_ctx *ctx)
{
    return cc__conn_new_ex(ctx, AF_UNSPEC);
}

cc__conn *
cc__conn_new_ex(cc_ctx *ctx, int family)
{
    cc__conn *c = CC__CALLOC(ctx, 1, sizeof *c);
    if (!c)
        return NULL;
    if (uv_tcp_init_ex(ctx->loop, &c->tcp, (unsigned)family)) {
        CC__FREE(ctx, c, sizeof *c);
        return NULL;
    }
    c->tcp.data = c;
    c->ctx = ctx;
    cc__list_init(&c->ep_link);
    cc__list_init(&c->dirty_link);
    cc__list_push(&ctx->conns, &c->ctx_link);
    cc__conn_sweep_arm(ctx);
    return c;
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    cc__conn *c = h->data;
    CC__UNUSED(hint);
    /* one byte of slack so a message may be NUL-terminated in place */
    buf->base = (char *)c->ctx->read_buf;
    buf->len = CC__READ_BUF_SIZE - 1;
}

static int
tls_plain(void *data, const uint8_t *p, size_t n)
{
    cc__conn *c = data;
    cc__conn_input(c, p, n);
    return c->closing ? CC_ECANCELED : 0;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    cc__conn *c = s->data;
    if (nread > 0) {
        if (c->tls) {
            int rc = cc__tls_input(c->tls, (const uint8_t *)buf->base,
                                   (size_t)nread, c->ctx->tls_buf,
                                   CC__TLS_BUF_SIZE - 1, tls_plain, c);
            if (rc == CC_ECANCELED)
                return;
            if (rc < 0) {
                cc__conn_destroy(c, rc == CC_EOF ? CC_EOF : rc);
                return;
            }
            /* the handshake may have just completed (client side) */
            if (c->phase == CC__PH_CONNECTING && cc__tls_ready(c->tls))
                cc__client_input(c, NULL, 0);
            return;
        }
        cc__conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
    } else if (nread < 0) {
        int st = (int)nread;
        if (c->phase == CC__PH_WS && c->close_sent && c->close_rcvd)
            st = 0;
        cc__conn_destroy(c, st);
    }
}

int
cc__conn_start_read(cc__conn *c)
{
    if (c->reading || c->closing)
        return 0;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc == 0)
        c->reading = 1;
    return rc;
}

void
cc__conn_stop_read(cc__conn *c)
{
    if (c->reading && !c->closing)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

int
cc__conn_keep(cc__conn *c, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if ((size_t)c->in_len + n + 1 > UINT32_MAX)
        return CC_E2BIG;
    size_t need = (size_t)c->in_len + n + 1;
    if (need > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 256;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = cc__realloc(&c->ctx->a, c->in, c->in_cap, cap);
        if (!nb)
            return CC_ENOMEM;
        c->in = nb;
        c->in_cap = (uint32_t)cap;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += (uint32_t)n;
    return 0;
}

static size_t
dispatch(cc__conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    while (!c->closing) {
        uint8_t ph = c->phase;
        size_t u;
        if (ph == CC__PH_HTTP)
            u = cc__http_input(c, p + off, n - off);
        else if (ph == CC__PH_WS)
            u = cc__ws_input(c, p + off, n - off);
        else if (ph == CC__PH_CLIENT_HS)
            u = cc__client_input(c, p + off, n - off);
        else
            u = n - off; /* nothing expected: drop */
        off += u;
        if (c->phase == ph || off >= n)
            break;
    }
    return off;
}

void
cc__conn_input(cc__conn *c, const uint8_t *p, size_t n)
{
    if (c->closing)
        return;
    if (c->in_len) {
        if (n && cc__conn_keep(c, p, n)) {
            cc__conn_destroy(c, CC_ENOMEM);
            return;
        }
        uint8_t *buf = c->in;
        size_t len = c->in_len;
        /* detach the buffer while dispatching: handlers may keep new
         * tails (an upgrade hand-off) without aliasing it */
        size_t cap = c->in_cap;
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        c->in_input = 1;
        size_t used = dispatch(c, buf, len);
        c->in_input = 0;
        if (!c->closing && used < len) {
            if (c->in == NULL) {
                /* reattach, keeping only the tail */
                memmove(buf, buf + used, len - used);
                c->in = buf;
                c->in_len = (uint32_t)(len - used);
                c->in_cap = (uint32_t)cap;
                return;
            }
            if (cc__conn_keep(c, buf + used, len - used))
                cc__conn_destroy(c, CC_ENOMEM);
        }
        cc__free(&c->ctx->a, buf, cap);
        return;
    }
    if (n == 0)
        return;
    c->in_input = 1;
    size_t used = dispatch(c, (uint8_t *)p, n);
    c->in_input = 0;
    if (!c->closing && used < n && cc__conn_keep(c, p + used, n - used))
        cc__conn_destroy(c, CC_ENOMEM);
}

void
cc__conn_resume(cc__conn *c)
{
    if (c->closing)
        return;
    if (cc__conn_start_read(c)) {
        cc__conn_destroy(c, CC_EPIPE);
        return;
    }
    if (!c->in_input && c->in_len)
        cc__conn_input(c, NULL, 0);
}

/* ---- output ---- */

static void
keep_polling(uv_idle_t *h)
{
    CC__UNUSED(h);   /* being active is the point: the poll returns at once */
}

void
cc__conn_mark_dirty(cc__conn *c)
{
    if (c->in_dirty || c->closing || c->write_pending)
        return;
    c->in_dirty = 1;
    cc__list_push(&c->ctx->dirty, &c->dirty_link);
    if (!uv_is_active((uv_handle_t *)&c->ctx->flush_check)) {
        uv_check_start(&c->ctx->flush_check, cc__flush_dirty);
        uv_idle_start(&c->ctx->flush_idle, keep_polling);
    }
}

static void
append_seg(cc__conn *c, cc__seg *s)
{
    if (c->out_tail)
        c->out_tail->next = s;
    else
        c->out_head = s;
    c->out_tail = s;
}

uint8_t *
cc__conn_reserve(cc__conn *c, size_t n)
{
    cc__seg *t = c->out_tail;
    if (!t || t->shared || t->cap - t->len < n) {
        t = seg_get(c->ctx, n, t != NULL);
        if (!t)
            return NULL;
        append_seg(c, t);
    }
    uint8_t *p = t->base + t->len;
    t->len += (uint32_t)n;
    c->out_bytes += n;
    cc__conn_mark_dirty(c);
    return p;
}

int
cc__conn_write_raw(cc__conn *c, const void *p, size_t n)
{
    if (c->closing)
        return CC_EPIPE;
    /* fill the tail segment, then new ones: large writes are split so
     * pooled segments are reused */
    const uint8_t *src = p;
    while (n) {
        cc__seg *t = c->out_tail;
        if (!t || t->shared || t->cap == t->len) {
            t = seg_get(c->ctx, n < CC__SEG_SIZE ? n : CC__SEG_SIZE,
                        t != NULL);
            if (!t)
                return CC_ENOMEM;
            append_seg(c, t);
        }
        size_t k = t->cap - t->len;
        if (k > n)
            k = n;
        memcpy(t->base + t->len, src, k);
        t->len += (uint32_t)k;
        c->out_bytes += k;
        src += k;
        n -= k;
    }
    cc__conn_mark_dirty(c);
    return 0;
}

static int
tls_send(void *data, const uint8_t *p, size_t n)
{
    return cc__conn_write_raw(data, p, n);
}

int
cc__conn_write(cc__conn *c, const void *p, size_t n)
{
    if (c->closing)
        return CC_EPIPE;
    if (c->tls)
        return cc__tls_write(c->tls, p, n);
    return cc__conn_write_raw(c, p, n);
}

int
cc__conn_tls_attach(cc__conn *c, cc__tls_conf *conf, const char *host)
{
    cc_ctx *ctx = c->ctx;
    if (!ctx->tls_buf) {
        ctx->tls_buf = CC__ALLOC(ctx, CC__TLS_BUF_SIZE);
        if (!ctx->tls_buf)
            return CC_ENOMEM;
    }
    return cc__tls_new(&c->tls, conf, host, tls_send, c);
}

int
cc__conn_write_shared(cc__conn *c, cc_ws_msg *m)
{
    if (c->closing)
        return CC_EPIPE;
    /* small frames are cheaper copied into the tail than referenced */
    cc__seg *t = c->out_tail;
    if (m->len <= 512 || (t && !t->shared && t->cap - t->len >= m->len)) {
        if (c->tls)
            return cc__tls_write(c->tls, m->data, m->len);
        return cc__conn_write_raw(c, m->data, m->len);
    }
    if (c->tls)
        return cc__tls_write(c->tls, m->data, m->len);
    cc__seg *s = sseg_get(c->ctx);
    if (!s)
        return CC_ENOMEM;
    cc_ws_msg_retain(m);
    s->shared = m;
    s->base = m->data;
    s->len = (uint32_t)m->len;
    append_seg(c, s);
    c->out_bytes += m->len;
    cc__conn_mark_dirty(c);
    return 0;
}

static void
consume(cc__conn *c, size_t n)
{
    c->out_bytes -= n;
    while (n && c->out_head) {
        cc__seg *s = c->out_head;
        size_t left = s->len - s->off;
        if (n < left) {
            s->off += (uint32_t)n;
            break;
        }
        n -= left;
        c->out_head = s->next;
        if (!c->out_head)
            c->out_tail = NULL;
        seg_put(c->ctx, s);
    }
    if (c->high_water && c->ep && c->out_bytes < c->ep->out_hwm / 2)
        c->high_water = 0;
}

static void flush(cc__conn *c);

static void
on_write(uv_write_t *req, int status)
{
    wreq *w = CC__CONTAINER_OF(req, wreq, req);
    cc__conn *c = req->data;
    cc_ctx *ctx = c->ctx;
    size_t bytes = w->bytes;
    if (ctx->wreq_free_n < CC__WREQ_FREE_MAX) {
        w->next_free = ctx->wreq_free;
        ctx->wreq_free = w;
        ctx->wreq_free_n++;
    } else {
        CC__FREE(ctx, w, sizeof *w);
    }
    c->write_pending = 0;
    if (c->closing)
        return;
    if (status < 0) {
        cc__conn_destroy(c, status);
        return;
    }
    consume(c, bytes);
    flush(c);
}

/* The unwritten part of the out-queue as up to MAX_IOV buffers. */
static unsigned
fill_iov(const cc__conn *c, uv_buf_t *iov, size_t *total)
{
    unsigned cnt = 0;
    *total = 0;
    for (cc__seg *s = c->out_head; s && cnt < MAX_IOV; s = s->next) {
        if (s->len == s->off)
            continue;
        iov[cnt].base = (char *)s->base + s->off;
        iov[cnt].len = s->len - s->off;
        *total += iov[cnt].len;
        cnt++;
    }
    return cnt;
}

static void
flush(cc__conn *c)
{
    if (c->closing || c->write_pending)
        return;
    while (c->out_head) {
        uv_buf_t iov[MAX_IOV];
        size_t total;
        unsigned cnt = fill_iov(c, iov, &total);
        if (cnt == 0) {
            consume(c, 0);
            break;
        }
        int n = uv_try_write((uv_stream_t *)&c->tcp, iov, cnt);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            cc__conn_destroy(c, n);
            return;
        }
        consume(c, (size_t)n);
        if ((size_t)n == total)
            continue;
        /* the socket is full: hand the rest to uv_write and wait */
        cc_ctx *ctx = c->ctx;
        wreq *w;
        if (ctx->wreq_free) {
            w = ctx->wreq_free;
            ctx->wreq_free = w->next_free;
            ctx->wreq_free_n--;
        } else {
            w = CC__ALLOC(ctx, sizeof *w);
            if (!w) {
                cc__conn_destroy(c, CC_ENOMEM);
                return;
            }
        }
        cnt = fill_iov(c, iov, &total);
        w->bytes = total;
        w->req.data = c;
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, iov, cnt, on_write);
        if (rc) {
            CC__FREE(ctx, w, sizeof *w);
            cc__conn_destroy(c, rc);
            return;
        }
        c->write_pending = 1;
        return;
    }
    if (c->close_after_flush)
        cc__conn_destroy(c, c->close_status);
}

void
cc__flush_dirty(uv_check_t *h)
{
    cc_ctx *ctx = h->data ? h->data : CC__CONTAINER_OF(h, cc_ctx, flush_check);
    while (!cc__list_empty(&ctx->dirty)) {
        cc__list *l = ctx->dirty.next;
        cc__conn *c = CC__CONTAINER_OF(l, cc__conn, dirty_link);
        cc__list_remove(l);
        c->in_dirty = 0;
        flush(c);
    }
    uv_check_stop(&ctx->flush_check);
    uv_idle_stop(&ctx->flush_idle);
}

void
cc__conn_close_after_flush(cc__conn *c, int status)
{
    if (c->closing)
        return;
    c->close_after_flush = 1;
    c->close_status = status;
    if (!c->out_head && !c->write_pending)
        cc__conn_destroy(c, status);
    else
        cc__conn_mark_dirty(c);
}

void
cc__conn_destroy(cc__conn *c, int status)
{
    if (c->closing)
        return;
    c->closing = 1;
    /* the first reason recorded wins (a slow consumer stays CC_ENOBUFS
     * even when its close handshake then times out) */
    if (!c->close_status)
        c->close_status = status;
    if (c->in_dirty) {
        cc__list_remove(&c->dirty_link);
        c->in_dirty = 0;
    }
    c->reading = 0;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void
on_closed(uv_handle_t *h)
{
    cc__conn *c = h->data;
    cc_ctx *ctx = c->ctx;
    /* the engine first: a client's TLS conf may go with its client state */
    if (c->tls) {
        cc__tls_free(c->tls);
        c->tls = NULL;
    }
    if (c->phase == CC__PH_HTTP)
        cc__http_conn_gone(c);
    else if (c->phase == CC__PH_WS)
        cc__ws_conn_gone(c);
    if (c->cl)
        cc__client_conn_gone(c);
    if (c->srv)
        cc__server_conn_closed(c);
    while (c->out_head) {
        cc__seg *s = c->out_head;
        c->out_head = s->next;
        seg_put(ctx, s);
    }
    if (c->in)
        CC__FREE(ctx, c->in, c->in_cap);
    cc__list_remove(&c->ctx_link);
    CC__FREE(ctx, c, sizeof *c);
}

/* ---- timeouts: one sweep per loop ---- */

static void
on_sweep(uv_timer_t *t)
{
    cc_ctx *ctx = CC__CONTAINER_OF(t, cc_ctx, sweep);
    uint64_t now = uv_now(ctx->loop);
    cc__list *l = ctx->conns.next;
    while (l != &ctx->conns) {
        cc__conn *c = CC__CONTAINER_OF(l, cc__conn, ctx_link);
        l = l->next; /* the handlers never free synchronously */
        if (c->closing)
            continue;
        if (c->phase == CC__PH_WS) {
            cc__ws_timeout(c, now);
            continue;
        }
        if (!c->deadline || now < c->deadline)
            continue;
        c->deadline = 0;
        if (c->phase == CC__PH_HTTP)
            cc__http_timeout(c);
        else
            cc__client_timeout(c);
    }
    if (cc__list_empty(&ctx->conns)) {
        uv_timer_stop(t);
        ctx->sweep_on = 0;
    }
}

void
cc__conn_sweep_arm(cc_ctx *ctx)
{
    if (ctx->sweep_on)
        return;
    ctx->sweep_on = 1;
    uv_timer_start(&ctx->sweep, on_sweep, CC__SWEEP_MS, CC__SWEEP_MS);
}

int
cc__conn_peer(const cc__conn *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
    if (rc)
        return rc;
    if (ss.ss_family == AF_INET6)
        rc = uv_ip6_name((struct sockaddr_in6 *)&ss, out, cap);
    else
        rc = uv_ip4_name((struct sockaddr_in *)&ss, out, cap);
    if (rc)
        return rc;
    return (int)strlen(out);
}
