/*
 * lib/http/handshake.c - the pure parts of the WebSocket opening handshake
 * (RFC 6455 §4): validating a client's upgrade request, the
 * Sec-WebSocket-Accept value, subprotocol choice, client keys, and the
 * base64 codec they need (RFC 4648, standard alphabet with padding).
 */
#include <mbedtls/sha1.h>

#include "http_int.h"

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 6455 §1.3 */
static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Longest key accepted for the accept computation; real keys are 24. */
#define MAX_KEY 128

ssize_t
cc__base64_encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
        return -1;
    size_t need = (n + 2) / 3 * 4;
    if (!out || cap < need + 1)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = 0;
    return (ssize_t)o;
}


/* Strict decode (canonical padding, no whitespace, unused bits zero) into
 * out (cap bytes). Returns the length or -1. Only the handshake needs it. */
static ssize_t
base64_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (size_t k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad) /* data after '=' */
                    return -1;
                v[k] = cc__b64_digit((unsigned char)s[i + k], 0);
                if (v[k] < 0)
                    return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t got = 3 - (size_t)pad;
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
            return -1; /* non-canonical: leftover bits set */
        if (o + got > cap)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (got > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (got > 2)
            out[o++] = (uint8_t)w;
    }
    return (ssize_t)o;
}

int
cc__ws_accept_key(const char *key, char out[29])
{
    if (!key || !out)
        return CC_EINVAL;
    size_t kl = strlen(key);
    if (kl == 0 || kl > MAX_KEY)
        return CC_EINVAL;
    unsigned char buf[MAX_KEY + sizeof WS_GUID];
    memcpy(buf, key, kl);
    memcpy(buf + kl, WS_GUID, sizeof WS_GUID - 1);
    unsigned char sha[20];
    if (mbedtls_sha1_ret(buf, kl + sizeof WS_GUID - 1, sha) != 0)
        return CC_EINVAL;
    return cc__base64_encode(sha, sizeof sha, out, 29) == 28 ? 0 : CC_EINVAL;
}

int
cc__ws_handshake_check(const cc__http_msg *m, const char **msg)
{
    const char *why = NULL;
    int status = 0;
    const char *v;
    uint8_t key[18];

    if (!m) {
        status = 400, why = "no request";
    } else if (m->method != HTTP_GET) {
        status = 400, why = "WebSocket upgrade needs GET";
    } else if (m->http_major < 1 || (m->http_major == 1 && m->http_minor < 1)) {
        status = 400, why = "WebSocket upgrade needs HTTP/1.1";
    } else if (!cc__header_has_token(cc__http_msg_header(m, "upgrade"),
                                     "websocket")) {
        status = 400, why = "Upgrade: websocket missing";
    } else if (!cc__header_has_token(cc__http_msg_header(m, "connection"),
                                     "upgrade")) {
        status = 400, why = "Connection: upgrade missing";
    } else if (!(v = cc__http_msg_header(m, "sec-websocket-key")) ||
               base64_decode(v, key, sizeof key) != 16) {
        status = 400, why = "bad Sec-WebSocket-Key";
    } else if (!(v = cc__http_msg_header(m, "sec-websocket-version")) ||
               strcmp(v, "13") != 0) {
        status = 426, why = "unsupported Sec-WebSocket-Version (use 13)";
    }
    if (msg)
        *msg = why;
    return status;
}

/* Next comma-separated element of *s, whitespace-trimmed, as [*b, *e);
 * returns 0 at the end. */
static int
next_elem(const char **s, const char **b, const char **e)
{
    const char *p = *s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) {
            *s = p;
            return 0;
        }
        const char *st = p;
        while (*p && *p != ',')
            p++;
        const char *en = p;
        while (en > st && (en[-1] == ' ' || en[-1] == '\t'))
            en--;
        if (en > st) {
            *b = st;
            *e = en;
            *s = p;
            return 1;
        }
    }
}

void
cc__ws_pick_subprotocol(const char *offered, const char *supported,
                        char *out, size_t cap)
{
    if (!out || !cap)
        return;
    out[0] = 0;
    if (!offered || !supported)
        return;
    const char *o = offered, *ob, *oe;
    while (next_elem(&o, &ob, &oe)) {
        size_t ol = (size_t)(oe - ob);
        const char *s = supported, *sb, *se;
        while (next_elem(&s, &sb, &se)) {
            /* subprotocol names are compared exactly (RFC 6455 §11.3.4) */
            if ((size_t)(se - sb) == ol && memcmp(sb, ob, ol) == 0) {
                if (ol + 1 > cap)
                    break; /* can not hand it back: try the next offer */
                memcpy(out, ob, ol);
                out[ol] = 0;
                return;
            }
        }
    }
}

void
cc__ws_make_key(const uint8_t rnd[16], char out[25])
{
    cc__base64_encode(rnd, 16, out, 25);
}
