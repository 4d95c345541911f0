/*
 * lib/auth/jwt.c - HS256 JSON Web Tokens (PROTOCOL.md §2): cc_jwt_verify,
 * cc_jwt_peek_tenant and cc_jwt_mint. docs/api/auth.md has the full rules.
 *
 * cc_jwt_verify checks in this order: the shape (at most 8 KiB, exactly
 * three non-empty segments, strict unpadded base64url, a 32-byte
 * signature), then the MAC, and only then the JSON. Checking the MAC first
 * means nobody without the secret can get cJSON to parse anything. Every
 * failure is CC_EAUTH, so the order does not show in the result.
 *
 * The JSON is read strictly, because two parsers that disagree about one
 * token are a classic bypass. Names are matched case-sensitively, a
 * duplicated name that we read is refused (instead of trusting cJSON's
 * "first wins"), and a \u0000 escape anywhere is refused (cJSON would cut
 * the string there, so "t1\u0000x" would pass as "t1"). Integer claims
 * must be integral JSON numbers in 0..2^53-1.
 *
 * Decoded segments go in one stack buffer (a token is at most 8 KiB, so a
 * segment decodes to at most 6 KiB). cJSON allocates through its own
 * global hooks, which the application sets (STYLE.md §6), and mbedtls_md_hmac
 * through mbedTLS's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "auth/auth_int.h"
#include "core/internal.h"

/* Allowed clock difference in seconds (PROTOCOL.md §2). */
#define SKEW 30
/* What a token's header or payload can decode to, plus a NUL. */
#define SEG_BUF (CC__JWT_MAX_LEN / 4 * 3 + 1)
/* jti: 1..64 printable ASCII characters, space excluded. */
#define JTI_MAX 64

static const char jwt_header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char *const role_names[] = {NULL, "visitor", "agent", "admin"};

typedef struct jwt_parts {
    const char *h, *p, *s;
    size_t hn, pn, sn;
} jwt_parts;

/* Split into header.payload.signature and decode the signature into sig.
 * Only the shape is checked here; the characters of the first two
 * segments are checked when they are decoded. */
static int
split(const char *tok, size_t n, jwt_parts *jp, uint8_t sig[CC__MAC_LEN])
{
    if (!tok || n == 0 || n > CC__JWT_MAX_LEN)
        return CC_EAUTH;
    const char *end = tok + n;
    const char *d1 = memchr(tok, '.', n);
    if (!d1)
        return CC_EAUTH;
    const char *d2 = memchr(d1 + 1, '.', (size_t)(end - (d1 + 1)));
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - (d2 + 1))))
        return CC_EAUTH;
    jp->h = tok;
    jp->hn = (size_t)(d1 - tok);
    jp->p = d1 + 1;
    jp->pn = (size_t)(d2 - jp->p);
    jp->s = d2 + 1;
    jp->sn = (size_t)(end - jp->s);
    size_t sig_len;
    if (jp->hn == 0 || jp->pn == 0 || jp->sn != CC__MAC_B64_LEN ||
        cc__b64url_decode(sig, CC__MAC_LEN, jp->s, jp->sn, &sig_len) != 0 ||
        sig_len != CC__MAC_LEN)
        return CC_EAUTH;
    return 0;
}

/* Does JSON text s[0..n) contain a \u0000 escape inside a string? */
static int
has_nul_escape(const char *s, size_t n)
{
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            in_str = s[i] == '"';
            continue;
        }
        if (s[i] == '"') {
            in_str = 0;
        } else if (s[i] == '\\') {
            if (i + 5 < n && s[i + 1] == 'u' &&
                memcmp(s + i + 2, "0000", 4) == 0)
                return 1;
            i++; /* the escaped character cannot end the string */
        }
    }
    return 0;
}

/* Decode one segment into buf (SEG_BUF bytes) and parse it as a JSON
 * object. NULL when any of that fails. */
static cJSON *
parse_segment(const char *seg, size_t n, char *buf)
{
    size_t len;
    if (cc__b64url_decode((uint8_t *)buf, SEG_BUF - 1, seg, n, &len) != 0)
        return NULL;
    /* cJSON reads up to the first NUL: a raw NUL would hide what follows */
    if (memchr(buf, 0, len) || has_nul_escape(buf, len))
        return NULL;
    buf[len] = 0;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(buf, &end, 1);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

/* An integral JSON number in 0..2^53-1. */
static int
get_int(const cJSON *j, int64_t *v)
{
    if (!cJSON_IsNumber(j))
        return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= (double)CC__JSON_INT_MAX))
        return -1;
    int64_t i = (int64_t)d;
    if ((double)i != d)
        return -1;
    *v = i;
    return 0;
}

/* A string claim satisfying the id rule, copied into out (65 bytes). */
static int
get_id(const cJSON *j, char *out)
{
    if (!cJSON_IsString(j) || !j->valuestring)
        return -1;
    size_t n = strlen(j->valuestring);
    if (!cc__valid_id(j->valuestring, n))
        return -1;
    memcpy(out, j->valuestring, n + 1);
    return 0;
}

static int
jti_valid(const char *s, size_t n)
{
    if (n == 0 || n > JTI_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

static int
role_from_name(const char *s)
{
    for (int r = CC_ROLE_VISITOR; r <= CC_ROLE_ADMIN; r++)
        if (strcmp(s, role_names[r]) == 0)
            return r;
    return 0;
}

/* Mark name `bit` as seen; -1 if it was already (a duplicate name). */
static int
seen_once(unsigned *seen, unsigned bit)
{
    if (*seen & bit)
        return -1;
    *seen |= bit;
    return 0;
}

/* {"alg":"HS256"} with an optional "typ":"JWT". "crit" names extensions
 * that a verifier must understand; we understand none, so it is refused. */
static int
check_header(const cJSON *h)
{
    unsigned seen = 0;
    for (const cJSON *c = h->child; c; c = c->next) {
        if (strcmp(c->string, "alg") == 0) {
            if (seen_once(&seen, 1) || !cJSON_IsString(c) ||
                strcmp(c->valuestring, "HS256") != 0)
                return -1;
        } else if (strcmp(c->string, "typ") == 0) {
            if (seen_once(&seen, 2) || !cJSON_IsString(c) ||
                strcmp(c->valuestring, "JWT") != 0)
                return -1;
        } else if (strcmp(c->string, "crit") == 0) {
            return -1;
        }
    }
    return (seen & 1) ? 0 : -1;
}

enum {
    C_TID = 1,
    C_SUB = 2,
    C_ROLE = 4,
    C_EXP = 8,
    C_IAT = 16,
    C_JTI = 32,
    C_NBF = 64
};

/* Read and check the claims. Unknown claims are ignored. */
static int
read_claims(const cJSON *p, int64_t now, cc_claims *out)
{
    unsigned seen = 0;
    int64_t nbf = 0;
    for (const cJSON *c = p->child; c; c = c->next) {
        const char *k = c->string;
        int r = 0;
        if (strcmp(k, "tid") == 0) {
            r = seen_once(&seen, C_TID) || get_id(c, out->tid);
        } else if (strcmp(k, "sub") == 0) {
            r = seen_once(&seen, C_SUB) || get_id(c, out->sub);
        } else if (strcmp(k, "role") == 0) {
            r = seen_once(&seen, C_ROLE) || !cJSON_IsString(c) ||
                (out->role = role_from_name(c->valuestring)) == 0;
        } else if (strcmp(k, "exp") == 0) {
            r = seen_once(&seen, C_EXP) || get_int(c, &out->exp);
        } else if (strcmp(k, "iat") == 0) {
            r = seen_once(&seen, C_IAT) || get_int(c, &out->iat);
        } else if (strcmp(k, "nbf") == 0) {
            r = seen_once(&seen, C_NBF) || get_int(c, &nbf);
        } else if (strcmp(k, "jti") == 0) {
            r = seen_once(&seen, C_JTI) || !cJSON_IsString(c) ||
                !jti_valid(c->valuestring, strlen(c->valuestring));
            if (!r)
                memcpy(out->jti, c->valuestring, strlen(c->valuestring) + 1);
        }
        if (r)
            return -1;
    }
    const unsigned required = C_TID | C_SUB | C_ROLE | C_EXP;
    if ((seen & required) != required)
        return -1;
    /* Written so nothing overflows: claims are <= 2^53, now is any int64.
     * exp <= now - 30, iat > now + 30 and nbf > now + 30 are refused. */
    if (out->exp + SKEW <= now)
        return -1;
    if ((seen & C_IAT) && out->iat - SKEW > now)
        return -1;
    if ((seen & C_NBF) && nbf - SKEW > now)
        return -1;
    return 0;
}

static int
hmac_sha256(const uint8_t *key, size_t key_len, const char *msg, size_t n,
            uint8_t mac[CC__MAC_LEN])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    /* It can only fail to allocate its context. */
    if (!md || mbedtls_md_hmac(md, key, key_len, (const unsigned char *)msg,
                               n, mac) != 0)
        return CC_ENOMEM;
    return 0;
}

int
cc_jwt_verify(const char *token, size_t token_len, const uint8_t *secret,
              size_t secret_len, int64_t now, cc_claims *out)
{
    if (!out)
        return CC_EINVAL;
    memset(out, 0, sizeof *out);
    if (!secret || secret_len == 0)
        return CC_EINVAL;

    jwt_parts jp;
    uint8_t sig[CC__MAC_LEN], mac[CC__MAC_LEN];
    int r = split(token, token_len, &jp, sig);
    if (r)
        return r;
    r = hmac_sha256(secret, secret_len, token, jp.hn + 1 + jp.pn, mac);
    if (r)
        return r;
    int ok = cc__ct_equal(sig, mac, CC__MAC_LEN);
    /* the MAC of attacker-chosen bytes is a forgery: leave none behind */
    mbedtls_platform_zeroize(mac, sizeof mac);
    if (!ok)
        return CC_EAUTH;

    char buf[SEG_BUF];
    cJSON *h = parse_segment(jp.h, jp.hn, buf);
    if (!h)
        return CC_EAUTH;
    r = check_header(h);
    cJSON_Delete(h);
    if (r)
        return CC_EAUTH;

    cJSON *p = parse_segment(jp.p, jp.pn, buf);
    if (!p)
        return CC_EAUTH;
    r = read_claims(p, now, out);
    cJSON_Delete(p);
    if (r) {
        memset(out, 0, sizeof *out);
        return CC_EAUTH;
    }
    return 0;
}

int
cc_jwt_peek_tenant(const char *token, size_t token_len, char *out,
                   size_t cap)
{
    if (!out || cap == 0)
        return CC_EINVAL;
    out[0] = 0;
    jwt_parts jp;
    uint8_t sig[CC__MAC_LEN];
    if (split(token, token_len, &jp, sig))
        return CC_EAUTH;
    char buf[SEG_BUF];
    cJSON *p = parse_segment(jp.p, jp.pn, buf);
    if (!p)
        return CC_EAUTH;
    /* the same reading as cc_jwt_verify: one tid, a valid id */
    const cJSON *tid = NULL;
    int r = 0;
    for (const cJSON *c = p->child; c && !r; c = c->next) {
        if (strcmp(c->string, "tid") == 0) {
            if (tid)
                r = CC_EAUTH;
            tid = c;
        }
    }
    char id[65];
    if (!r && (!tid || get_id(tid, id) != 0))
        r = CC_EAUTH;
    cJSON_Delete(p);
    if (r)
        return r;
    size_t n = strlen(id);
    if (n + 1 > cap)
        return CC_E2BIG;
    memcpy(out, id, n + 1);
    return (int)n;
}

/* Append s[0..n) to b (cap bytes) at *len; -1 when it does not fit. */
static int
put(char *b, size_t cap, size_t *len, const char *s, size_t n)
{
    if (n > cap - *len)
        return -1;
    memcpy(b + *len, s, n);
    *len += n;
    return 0;
}

static int
put_str(char *b, size_t cap, size_t *len, const char *s)
{
    return put(b, cap, len, s, strlen(s));
}

/* A JSON string: only '"' and '\\' can occur among the characters we
 * allow in ids and jti, so only they need escaping. */
static int
put_json_str(char *b, size_t cap, size_t *len, const char *s)
{
    if (put(b, cap, len, "\"", 1))
        return -1;
    for (; *s; s++) {
        if ((*s == '"' || *s == '\\') && put(b, cap, len, "\\", 1))
            return -1;
        if (put(b, cap, len, s, 1))
            return -1;
    }
    return put(b, cap, len, "\"", 1);
}

static int
put_int(char *b, size_t cap, size_t *len, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);
    return put(b, cap, len, num, (size_t)n);
}

int
cc_jwt_mint(const cc_claims *c, const uint8_t *secret, size_t secret_len,
            char *out, size_t cap)
{
    if (!out)
        return CC_EINVAL;
    if (cap)
        out[0] = 0;
    if (!c || !secret || secret_len == 0)
        return CC_EINVAL;
    size_t jti_len = strnlen(c->jti, sizeof c->jti);
    if (!cc__valid_id(c->tid, strnlen(c->tid, sizeof c->tid)) ||
        !cc__valid_id(c->sub, strnlen(c->sub, sizeof c->sub)) ||
        c->role < CC_ROLE_VISITOR || c->role > CC_ROLE_ADMIN ||
        c->iat < 0 || c->iat > CC__JSON_INT_MAX || c->exp < 0 ||
        c->exp > CC__JSON_INT_MAX ||
        (jti_len != 0 && !jti_valid(c->jti, jti_len)))
        return CC_EINVAL;

    /* Fixed order, no spaces: tid, sub, role, iat, exp[, jti]. At most
     * about 400 bytes (jti fully escaped is 128). */
    char pl[512];
    size_t pn = 0;
    size_t pc = sizeof pl;
    int bad = put_str(pl, pc, &pn, "{\"tid\":") ||
              put_json_str(pl, pc, &pn, c->tid) ||
              put_str(pl, pc, &pn, ",\"sub\":") ||
              put_json_str(pl, pc, &pn, c->sub) ||
              put_str(pl, pc, &pn, ",\"role\":") ||
              put_json_str(pl, pc, &pn, role_names[c->role]) ||
              put_str(pl, pc, &pn, ",\"iat\":") ||
              put_int(pl, pc, &pn, c->iat) ||
              put_str(pl, pc, &pn, ",\"exp\":") ||
              put_int(pl, pc, &pn, c->exp);
    if (!bad && jti_len)
        bad = put_str(pl, pc, &pn, ",\"jti\":") ||
              put_json_str(pl, pc, &pn, c->jti);
    if (bad || put_str(pl, pc, &pn, "}"))
        return CC_EINVAL; /* cannot happen with the sizes above */

    size_t hjson = sizeof jwt_header_json - 1;
    size_t signed_len = cc__b64url_len(hjson) + 1 + cc__b64url_len(pn);
    size_t total = signed_len + 1 + CC__MAC_B64_LEN;
    if (total + 1 > cap)
        return CC_E2BIG;
    size_t o = cc__b64url_encode(out, (const uint8_t *)jwt_header_json,
                                 hjson);
    out[o++] = '.';
    o += cc__b64url_encode(out + o, (const uint8_t *)pl, pn);
    uint8_t mac[CC__MAC_LEN];
    int r = hmac_sha256(secret, secret_len, out, signed_len, mac);
    if (r) {
        out[0] = 0;
        return r;
    }
    out[o++] = '.';
    o += cc__b64url_encode(out + o, mac, sizeof mac);
    out[o] = 0;
    return (int)o;
}
