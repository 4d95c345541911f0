/*
 * lib/proto/encode.c - server frames (PROTOCOL.md §3, §4 server -> client)
 * written as JSON text straight into a cc__jbuf, without a cJSON tree.
 *
 * Every string goes through one escaper whose output is always valid
 * UTF-8 JSON, whatever the input bytes: a frame we send must never make
 * the peer close with 1007 or fail JSON.parse. Message bodies are the one
 * thing written verbatim; they come from decode (strict JSON, compacted)
 * or from the store, which got them from decode.
 */
#include <string.h>

#include "proto/proto.h"

/* ---- UTF-8 ---- */

size_t
cc__proto_utf8_seq(const unsigned char *p, size_t n, size_t *bad)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len, k;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlong forms */
        else if (c == 0xed)
            hi = 0x9f; /* no UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f; /* nothing above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    for (k = 1; k < len && k < n; k++) {
        if (p[k] < lo || p[k] > hi)
            break;
        lo = 0x80;
        hi = 0xbf;
    }
    if (k == len)
        return len;
    *bad = k;
    return 0;
}

/* ---- the buffer ---- */

void
cc__jbuf_init(cc__jbuf *b, const cc_allocator *a)
{
    b->a = a ? a : cc__default_allocator();
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

void
cc__jbuf_free(cc__jbuf *b)
{
    cc__free(b->a, b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

void
cc__jbuf_reset(cc__jbuf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

/* Room for `extra` more bytes plus the NUL; 0 (and oom set) if not. */
static int
reserve(cc__jbuf *b, size_t extra)
{
    if (b->oom)
        return 0;
    if (extra > SIZE_MAX - 1 - b->len) {
        b->oom = 1;
        return 0;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = b->p ? cc__realloc(b->a, b->p, b->cap, cap)
                   : cc__alloc(b->a, cap);
    if (p == NULL) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void
cc__jbuf_raw(cc__jbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
lit(cc__jbuf *b, const char *s)
{
    cc__jbuf_raw(b, s, strlen(s));
}

static const char HEX[] = "0123456789abcdef";

/* The escaped form of s[0..n) without quotes, written to out when it is
 * not NULL; returns its length. Run twice: measure, then write, so the
 * buffer grows once and by exactly what is needed. */
static size_t
escape(const unsigned char *s, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            if (out)
                out[o] = (char)c;
            o++;
            i++;
        } else if (c == '"' || c == '\\') {
            if (out) {
                out[o] = '\\';
                out[o + 1] = (char)c;
            }
            o += 2;
            i++;
        } else if (c < 0x20) {
            if (out) {
                memcpy(out + o, "\\u00", 4);
                out[o + 4] = HEX[c >> 4];
                out[o + 5] = HEX[c & 15];
            }
            o += 6;
            i++;
        } else {
            size_t bad = 0;
            size_t k = cc__proto_utf8_seq(s + i, n - i, &bad);
            if (k) {
                if (out)
                    memcpy(out + o, s + i, k);
                o += k;
                i += k;
            } else {
                if (out)
                    memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
                o += 3;
                i += bad;
            }
        }
    }
    return o;
}

void
cc__jbuf_strn(cc__jbuf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t m = escape(u, n, NULL);
    if (m > SIZE_MAX - 2 || !reserve(b, m + 2)) {
        b->oom = 1;
        return;
    }
    char *o = b->p + b->len;
    o[0] = '"';
    escape(u, n, o + 1);
    o[m + 1] = '"';
    b->len += m + 2;
    b->p[b->len] = '\0';
}

void
cc__jbuf_str(cc__jbuf *b, const char *s)
{
    if (s == NULL)
        lit(b, "null");
    else
        cc__jbuf_strn(b, s, strlen(s));
}

void
cc__jbuf_u64(cc__jbuf *b, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cc__jbuf_raw(b, tmp + n, sizeof tmp - n);
}

void
cc__jbuf_i64(cc__jbuf *b, int64_t v)
{
    if (v < 0) {
        lit(b, "-");
        /* via unsigned: -INT64_MIN does not fit an int64_t */
        cc__jbuf_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        cc__jbuf_u64(b, (uint64_t)v);
    }
}

void
cc__jbuf_bool(cc__jbuf *b, int v)
{
    lit(b, v ? "true" : "false");
}

/* ---- frames ----
 * Keys are written as literals with their leading comma; the first member
 * of every frame is "type", so the comma placement is fixed. */

static void
kstr(cc__jbuf *b, const char *key, const char *v)
{
    lit(b, key);
    cc__jbuf_str(b, v);
}

static void
ku64(cc__jbuf *b, const char *key, uint64_t v)
{
    lit(b, key);
    cc__jbuf_u64(b, v);
}

static void
queue_items(cc__jbuf *b, const cc__queue_item *it, size_t n)
{
    lit(b, "[");
    for (size_t i = 0; i < n; i++) {
        lit(b, i ? ",{\"session\":" : "{\"session\":");
        cc__jbuf_str(b, it[i].session);
        kstr(b, ",\"visitor\":", it[i].visitor);
        ku64(b, ",\"since\":", it[i].since);
        kstr(b, ",\"preview\":", it[i].preview ? it[i].preview : "");
        lit(b, "}");
    }
    lit(b, "]");
}

static void
msg_array(cc__jbuf *b, const cc__msgv *ms, size_t n)
{
    lit(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            lit(b, ",");
        cc__enc_msg_obj(b, &ms[i], 0);
    }
    lit(b, "]");
}

void
cc__enc_hello(cc__jbuf *b, const cc__hello *h)
{
    kstr(b, "{\"type\":\"hello\",\"v\":1,\"tenant\":", h->tenant);
    kstr(b, ",\"user\":", h->user);
    lit(b, h->role_agent ? ",\"role\":\"agent\"" : ",\"role\":\"visitor\"");
    kstr(b, ",\"node\":", h->node);
    lit(b, ",\"heartbeat_s\":");
    cc__jbuf_i64(b, h->heartbeat_s);
    if (h->role_agent) {
        kstr(b, ",\"status\":", h->status);
        lit(b, ",\"queue\":");
        queue_items(b, h->queue, h->nqueue);
        lit(b, ",\"sessions\":[");
        for (size_t i = 0; i < h->nsessions; i++) {
            const cc__sess_item *s = &h->sessions[i];
            lit(b, i ? ",{\"session\":" : "{\"session\":");
            cc__jbuf_str(b, s->session);
            kstr(b, ",\"visitor\":", s->visitor);
            kstr(b, ",\"state\":", s->state);
            ku64(b, ",\"last_seq\":", s->last_seq);
            lit(b, "}");
        }
        lit(b, "]}");
    } else {
        kstr(b, ",\"session\":", h->session);
        kstr(b, ",\"state\":", h->state);
        lit(b, ",\"resumed\":");
        cc__jbuf_bool(b, h->resumed);
        lit(b, "}");
    }
}

void
cc__enc_pong(cc__jbuf *b)
{
    lit(b, "{\"type\":\"pong\"}");
}

void
cc__enc_refreshed(cc__jbuf *b, uint64_t expires)
{
    ku64(b, "{\"type\":\"refreshed\",\"expires\":", expires);
    lit(b, "}");
}

void
cc__enc_sent(cc__jbuf *b, const char *cid, const char *session, uint64_t seq,
             uint64_t ts)
{
    kstr(b, "{\"type\":\"sent\",\"cid\":", cid);
    kstr(b, ",\"session\":", session);
    ku64(b, ",\"seq\":", seq);
    ku64(b, ",\"ts\":", ts);
    lit(b, "}");
}

void
cc__enc_msg_obj(cc__jbuf *b, const cc__msgv *m, int with_type)
{
    kstr(b, with_type ? "{\"type\":\"msg\",\"session\":" : "{\"session\":",
         m->session);
    ku64(b, ",\"seq\":", m->seq);
    kstr(b, ",\"from\":", m->from);
    kstr(b, ",\"kind\":", cc__kind_name(m->kind));
    lit(b, ",\"body\":");
    if (m->body_json != NULL && m->body_json[0] != '\0')
        lit(b, m->body_json);
    else
        lit(b, "{}");
    ku64(b, ",\"ts\":", m->ts);
    kstr(b, ",\"cid\":", m->cid);
    lit(b, "}");
}

void
cc__enc_msg(cc__jbuf *b, const cc__msgv *m)
{
    cc__enc_msg_obj(b, m, 1);
}

void
cc__enc_history(cc__jbuf *b, const char *session, const cc__msgv *ms,
                size_t n, int more)
{
    kstr(b, "{\"type\":\"history\",\"session\":", session);
    lit(b, ",\"messages\":");
    msg_array(b, ms, n);
    lit(b, ",\"more\":");
    cc__jbuf_bool(b, more);
    lit(b, "}");
}

void
cc__enc_error(cc__jbuf *b, cc__perr code, const char *message,
              const char *ref, int64_t retry_after_ms)
{
    kstr(b, "{\"type\":\"error\",\"code\":", cc__proto_err_code(code));
    kstr(b, ",\"message\":", message ? message : "");
    if (ref != NULL)
        kstr(b, ",\"ref\":", ref);
    if (retry_after_ms >= 0) {
        lit(b, ",\"retry_after_ms\":");
        cc__jbuf_i64(b, retry_after_ms);
    }
    lit(b, "}");
}

void
cc__enc_queued(cc__jbuf *b, const char *session, int position)
{
    kstr(b, "{\"type\":\"queued\",\"session\":", session);
    lit(b, ",\"position\":");
    cc__jbuf_i64(b, position);
    lit(b, "}");
}

void
cc__enc_queue(cc__jbuf *b, const cc__queue_item *it, size_t n)
{
    lit(b, "{\"type\":\"queue\",\"waiting\":");
    queue_items(b, it, n);
    lit(b, "}");
}

void
cc__enc_session_started(cc__jbuf *b, const char *session, const char *state)
{
    kstr(b, "{\"type\":\"session_started\",\"session\":", session);
    kstr(b, ",\"state\":", state);
    lit(b, "}");
}

void
cc__enc_session_accepted(cc__jbuf *b, const char *session, const char *agent)
{
    kstr(b, "{\"type\":\"session_accepted\",\"session\":", session);
    kstr(b, ",\"agent\":", agent);
    lit(b, "}");
}

void
cc__enc_accepted(cc__jbuf *b, const char *session, const char *visitor,
                 const cc__msgv *hist, size_t n, uint64_t last_seq)
{
    kstr(b, "{\"type\":\"accepted\",\"session\":", session);
    kstr(b, ",\"visitor\":", visitor);
    lit(b, ",\"history\":");
    msg_array(b, hist, hist ? n : 0);
    ku64(b, ",\"last_seq\":", last_seq);
    lit(b, "}");
}

void
cc__enc_transferred(cc__jbuf *b, const char *session, const char *from,
                    const char *to, const cc__msgv *hist, size_t n,
                    uint64_t last_seq)
{
    kstr(b, "{\"type\":\"session_transferred\",\"session\":", session);
    kstr(b, ",\"from\":", from);
    kstr(b, ",\"to\":", to);
    if (hist != NULL) {
        lit(b, ",\"history\":");
        msg_array(b, hist, n);
        ku64(b, ",\"last_seq\":", last_seq);
    }
    lit(b, "}");
}

void
cc__enc_session_closed(cc__jbuf *b, const char *session, const char *reason,
                       const char *by)
{
    kstr(b, "{\"type\":\"session_closed\",\"session\":", session);
    kstr(b, ",\"reason\":", reason ? reason : "");
    kstr(b, ",\"by\":", by);
    lit(b, "}");
}

void
cc__enc_peer(cc__jbuf *b, int online, const char *session, const char *who)
{
    kstr(b, online ? "{\"type\":\"peer_online\",\"session\":"
                   : "{\"type\":\"peer_offline\",\"session\":",
         session);
    kstr(b, ",\"who\":", who);
    lit(b, "}");
}

void
cc__enc_read(cc__jbuf *b, const char *session, const char *who, uint64_t seq)
{
    kstr(b, "{\"type\":\"read\",\"session\":", session);
    kstr(b, ",\"who\":", who);
    ku64(b, ",\"seq\":", seq);
    lit(b, "}");
}

void
cc__enc_typing(cc__jbuf *b, const char *session, const char *who, int on)
{
    kstr(b, "{\"type\":\"typing\",\"session\":", session);
    kstr(b, ",\"who\":", who);
    lit(b, ",\"on\":");
    cc__jbuf_bool(b, on);
    lit(b, "}");
}

void
cc__enc_reconnect(cc__jbuf *b, uint64_t after_ms)
{
    ku64(b, "{\"type\":\"reconnect\",\"after_ms\":", after_ms);
    lit(b, "}");
}
