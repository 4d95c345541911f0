/*
 * tests/fuzz/fuzz_jwt.c - libFuzzer target for the auth parsers
 * (include/chatcore/auth.h): cc_jwt_verify, cc_jwt_peek_tenant and
 * cc_sig_verify, with the replay cache.
 *
 * Random bytes almost never carry a valid MAC, so most inputs would stop at
 * the signature check and the JSON code would never run. The first input
 * byte therefore picks a mode:
 *
 *   0  the rest is a token, checked as it is (shape, base64url, MAC);
 *   1  the rest is "<header JSON>\n<payload JSON>": the harness encodes
 *      and signs it itself (its own base64url, mbedTLS HMAC), so every
 *      input reaches the header and claim checks;
 *   2  the rest is an X-Chatcore-Signature value, checked as it is;
 *   3  the rest is "<nonce>\n<body>": signed with cc_sig_sign, then
 *      verified, replayed, and verified with the body changed.
 *
 * Invariants (any violation aborts): only the documented codes come back;
 * accepted claims satisfy every rule of docs/api/auth.md; peek agrees with
 * verify; accepted claims survive cc_jwt_mint -> cc_jwt_verify unchanged;
 * no single changed character of an accepted token is accepted; a valid
 * signature verifies once, then is a replay.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md.h>

#include "chatcore/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

static const uint8_t KEY[] = "fuzz-secret";
#define KEY_LEN (sizeof KEY - 1)
#define NOW 1700000000

static size_t
b64url(char *out, const uint8_t *in, size_t n)
{
    static const char al[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = al[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = al[(acc << (6 - bits)) & 63];
    return o;
}

static int
id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static void
check_claims(const cc_claims *c)
{
    CHECK(id_ok(c->tid));
    CHECK(id_ok(c->sub));
    CHECK(c->role >= CC_ROLE_VISITOR && c->role <= CC_ROLE_ADMIN);
    CHECK(c->exp >= 0 && c->exp + 30 > NOW);
    CHECK(c->iat >= 0 && c->iat - 30 <= NOW);
    size_t jn = strlen(c->jti);
    CHECK(jn <= 64);
    for (size_t i = 0; i < jn; i++)
        CHECK(c->jti[i] > 0x20 && c->jti[i] < 0x7f);
}

/* What verify says about tok, with the invariants that hold for any
 * token. `pos` picks the character to change for the tamper check. */
static int
verify_token(const char *tok, size_t n, size_t pos)
{
    cc_claims c;
    int r = cc_jwt_verify(tok, n, KEY, KEY_LEN, NOW, &c);
    CHECK(r == 0 || r == CC_EAUTH);
    char tid[65];
    int pr = cc_jwt_peek_tenant(tok, n, tid, sizeof tid);
    CHECK(pr == CC_EAUTH || (pr >= 1 && pr <= 64));
    if (pr > 0)
        CHECK(strlen(tid) == (size_t)pr && id_ok(tid));
    if (r != 0) {
        CHECK(c.tid[0] == 0 && c.role == 0);
        return r;
    }
    check_claims(&c);
    CHECK(pr == (int)strlen(c.tid) && strcmp(tid, c.tid) == 0);

    /* mint the same claims, verify them back */
    char again[1024];
    int m = cc_jwt_mint(&c, KEY, KEY_LEN, again, sizeof again);
    CHECK(m > 0 && (size_t)m == strlen(again));
    cc_claims c2;
    CHECK(cc_jwt_verify(again, (size_t)m, KEY, KEY_LEN, NOW, &c2) == 0);
    CHECK(strcmp(c.tid, c2.tid) == 0 && strcmp(c.sub, c2.sub) == 0 &&
          strcmp(c.jti, c2.jti) == 0 && c.role == c2.role &&
          c.iat == c2.iat && c.exp == c2.exp);

    /* one changed character, one character less: refused */
    char *t = malloc(n);
    CHECK(t != NULL);
    memcpy(t, tok, n);
    size_t i = pos % n;
    t[i] = t[i] == 'A' ? 'B' : (t[i] == '.' ? 'x' : 'A');
    CHECK(cc_jwt_verify(t, n, KEY, KEY_LEN, NOW, &c2) == CC_EAUTH);
    CHECK(cc_jwt_verify(tok, n - 1, KEY, KEY_LEN, NOW, &c2) == CC_EAUTH);
    /* another key */
    CHECK(cc_jwt_verify(tok, n, KEY, KEY_LEN - 1, NOW, &c2) == CC_EAUTH);
    free(t);
    return 0;
}

static void
mode_signed_json(const uint8_t *d, size_t n, size_t pos)
{
    const uint8_t *nl = memchr(d, '\n', n);
    if (!nl)
        return;
    size_t hn = (size_t)(nl - d), pn = n - hn - 1;
    size_t cap = (hn + pn) * 4 / 3 + 64;
    char *tok = malloc(cap);
    CHECK(tok != NULL);
    size_t o = b64url(tok, d, hn);
    tok[o++] = '.';
    o += b64url(tok + o, nl + 1, pn);
    uint8_t mac[32];
    CHECK(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), KEY,
                          KEY_LEN, (const uint8_t *)tok, o, mac) == 0);
    tok[o++] = '.';
    o += b64url(tok + o, mac, sizeof mac);
    int r = verify_token(tok, o, pos);
    /* a token over 8 KiB is refused whatever it holds */
    if (o > 8192)
        CHECK(r == CC_EAUTH);
    free(tok);
}

static void
mode_sig_header(const uint8_t *d, size_t n)
{
    char *h = malloc(n + 1);
    CHECK(h != NULL);
    memcpy(h, d, n);
    h[n] = 0;
    static const uint8_t body[] = "{}";
    int r = cc_sig_verify(h, KEY, KEY_LEN, body, 2, NOW, NULL);
    CHECK(r == 0 || r == CC_EAUTH);
    free(h);
}

static void
mode_sig_round_trip(const uint8_t *d, size_t n)
{
    const uint8_t *nl = memchr(d, '\n', n);
    if (!nl)
        return;
    size_t nn = (size_t)(nl - d);
    char nonce[80];
    if (nn >= sizeof nonce)
        return;
    memcpy(nonce, d, nn);
    nonce[nn] = 0;
    const uint8_t *body = nl + 1;
    size_t bn = n - nn - 1;
    char h[256];
    int r = cc_sig_sign(KEY, KEY_LEN, NOW, nonce, body, bn, h, sizeof h);
    CHECK(r == CC_EINVAL || (r > 0 && (size_t)r == strlen(h)));
    if (r < 0)
        return;
    cc_nonce_cache *nc;
    CHECK(cc_nonce_cache_new(&nc, NULL, 4, 600) == 0);
    CHECK(cc_sig_verify(h, KEY, KEY_LEN, body, bn, NOW + 300, nc) == 0);
    CHECK(cc_sig_verify(h, KEY, KEY_LEN, body, bn, NOW - 300, nc) ==
          CC_ECLAIMED);
    CHECK(cc_sig_verify(h, KEY, KEY_LEN, body, bn, NOW + 301, nc) ==
          CC_EAUTH);
    cc_nonce_cache_free(nc);
    if (bn > 0) {
        uint8_t *b2 = malloc(bn);
        CHECK(b2 != NULL);
        memcpy(b2, body, bn);
        b2[bn / 2] ^= 1;
        CHECK(cc_sig_verify(h, KEY, KEY_LEN, b2, bn, NOW, NULL) == CC_EAUTH);
        free(b2);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int mode = data[0] & 3;
    size_t pos = data[0] >> 2;
    data++;
    size--;
    switch (mode) {
    case 0: {
        /* a private copy, so reads past the end are caught */
        char *t = malloc(size);
        if (!t)
            return 0;
        memcpy(t, data, size);
        verify_token(t, size, pos * 7 + size / 2);
        free(t);
        break;
    }
    case 1:
        mode_signed_json(data, size, pos * 7 + size / 2);
        break;
    case 2:
        mode_sig_header(data, size);
        break;
    default:
        mode_sig_round_trip(data, size);
        break;
    }
    return 0;
}
