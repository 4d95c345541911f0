/* Auth: HS256 tokens (cc_jwt_*), signed requests (cc_sig_*), the replay
 * cache (cc_nonce_cache) and token buckets (cc_bucket_take).
 *
 * The known vectors were computed outside the library, with python3's
 * hmac/hashlib/base64 (json.dumps(..., separators=(',', ':')) for the
 * payloads), and the JWT MAC of vector A and the signature vector were
 * checked again with `openssl dgst -sha256 -hmac <secret>`:
 *
 *   def b64(b): return base64.urlsafe_b64encode(b).rstrip(b'=').decode()
 *   si = b64(header.encode()) + '.' + b64(payload.encode())
 *   token = si + '.' + b64(hmac.new(key, si.encode(), hashlib.sha256).digest())
 *
 * Tokens that the tests build themselves (bad headers, odd claims) are
 * signed by sign_raw() below, which uses its own base64url encoder and
 * mbedTLS directly, not the library's code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md.h>

#include "chatcore/auth.h"
#include "core/internal.h"
#include "testutil.h"

static const char SECRET_A[] = "chatcore-test-secret";
#define KEY_A ((const uint8_t *)SECRET_A), (sizeof SECRET_A - 1)

/* Vector A: {"tid":"t1","sub":"v_123","role":"visitor","iat":1700000000,
 * "exp":1700003600,"jti":"j-1"} with secret "chatcore-test-secret". */
static const char VEC_A[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ0aWQiOiJ0MSIsInN1YiI6InZfMTIzIiwicm9sZSI6InZpc2l0b3IiLCJpYXQiOjE3MD"
    "AwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwianRpIjoiai0xIn0."
    "L-uQRP3s3t5pRO3rtE4jh1LvCWGN1qlKw4e8TlSRtLU";

/* Vector B: secret "sécret-ключ-🔑" as UTF-8 (21 bytes), claims
 * {"tid":"acme.eu:1","sub":"a_7","role":"agent","iat":1700000000,
 * "exp":1700086400}. */
static const uint8_t SECRET_B[] =
    "\x73\xc3\xa9\x63\x72\x65\x74\x2d\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\x2d"
    "\xf0\x9f\x94\x91";
static const char VEC_B[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ0aWQiOiJhY21lLmV1OjEiLCJzdWIiOiJhXzciLCJyb2xlIjoiYWdlbnQiLCJpYXQiOj"
    "E3MDAwMDAwMDAsImV4cCI6MTcwMDA4NjQwMH0."
    "Zj6OiHVDHRhbFUZVOVx3_Ds6wELZ3vqoy9BHq2f1grg";

/* Vector C, formatted as another library might: header
 * '{ "typ" : "JWT", "alg" : "HS256" }', payload
 * '{\n "exp": 1700003600, "role": "admin", "iss": "backend",\n "sub": "ops",
 * "tid": "t1" }' (no iat, no jti, an extra claim), secret A. */
static const char VEC_C[] =
    "eyAidHlwIiA6ICJKV1QiLCAiYWxnIiA6ICJIUzI1NiIgfQ."
    "ewogImV4cCI6IDE3MDAwMDM2MDAsICJyb2xlIjogImFkbWluIiwgImlzcyI6ICJiYWNrZW"
    "5kIiwKICJzdWIiOiAib3BzIiwgInRpZCI6ICJ0MSIgfQ."
    "P8idR6jdRCQ4gAr_HwnbF5xsdnrzT5hldq-s_Dpj9iI";

#define NOW_A 1700000100

/* ---- test-side token builder (independent of lib/auth) ---- */

static size_t
t_b64url(char *out, const uint8_t *in, size_t n)
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
    out[o] = 0;
    return o;
}

/* header.payload.sig signed with key; payload may contain NUL bytes when
 * plen is given (plen == 0 means strlen). Returns a malloc'd string. */
static char *
sign_raw_n(const char *hdr, const char *pl, size_t plen, const uint8_t *key,
           size_t klen)
{
    size_t hl = strlen(hdr);
    if (!plen)
        plen = strlen(pl);
    char *t = malloc(hl * 2 + plen * 2 + 64);
    ck_assert_ptr_nonnull(t);
    size_t o = t_b64url(t, (const uint8_t *)hdr, hl);
    t[o++] = '.';
    o += t_b64url(t + o, (const uint8_t *)pl, plen);
    uint8_t mac[32];
    ck_assert_int_eq(
        mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key,
                        klen, (const uint8_t *)t, o, mac),
        0);
    t[o++] = '.';
    t_b64url(t + o, mac, 32);
    return t;
}

static char *
sign_raw(const char *hdr, const char *pl)
{
    return sign_raw_n(hdr, pl, 0, KEY_A);
}

static const char HDR[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* verify a token built from header/payload JSON, at NOW_A, key A */
static int
verify_json(const char *hdr, const char *pl)
{
    char *t = sign_raw(hdr, pl);
    cc_claims c;
    int r = cc_jwt_verify(t, strlen(t), KEY_A, NOW_A, &c);
    free(t);
    return r;
}

/* A payload with the given claims fragment after a valid base. */
static int
verify_payload(const char *pl)
{
    return verify_json(HDR, pl);
}

static int
verify_str(const char *tok, int64_t now)
{
    cc_claims c;
    return cc_jwt_verify(tok, strlen(tok), KEY_A, now, &c);
}

static cc_claims
claims(const char *tid, const char *sub, int role, int64_t iat, int64_t exp,
       const char *jti)
{
    cc_claims c;
    memset(&c, 0, sizeof c);
    snprintf(c.tid, sizeof c.tid, "%s", tid);
    snprintf(c.sub, sizeof c.sub, "%s", sub);
    snprintf(c.jti, sizeof c.jti, "%s", jti);
    c.role = role;
    c.iat = iat;
    c.exp = exp;
    return c;
}

/* ---- JWT ---- */

START_TEST(jwt_known_vector_mint)
{
    cc_claims c = claims("t1", "v_123", CC_ROLE_VISITOR, 1700000000,
                         1700003600, "j-1");
    char out[512];
    int n = cc_jwt_mint(&c, KEY_A, out, sizeof out);
    ck_assert_int_eq(n, (int)strlen(VEC_A));
    ck_assert_str_eq(out, VEC_A);

    cc_claims b = claims("acme.eu:1", "a_7", CC_ROLE_AGENT, 1700000000,
                         1700086400, "");
    n = cc_jwt_mint(&b, SECRET_B, sizeof SECRET_B - 1, out, sizeof out);
    ck_assert_int_eq(n, (int)strlen(VEC_B));
    ck_assert_str_eq(out, VEC_B);
}
END_TEST

START_TEST(jwt_known_vector_verify)
{
    cc_claims c;
    ck_assert_int_eq(cc_jwt_verify(VEC_A, strlen(VEC_A), KEY_A, NOW_A, &c),
                     0);
    ck_assert_str_eq(c.tid, "t1");
    ck_assert_str_eq(c.sub, "v_123");
    ck_assert_str_eq(c.jti, "j-1");
    ck_assert_int_eq(c.role, CC_ROLE_VISITOR);
    ck_assert_int_eq(c.iat, 1700000000);
    ck_assert_int_eq(c.exp, 1700003600);

    /* spaces, other member order, no iat/jti, an unknown claim */
    ck_assert_int_eq(cc_jwt_verify(VEC_C, strlen(VEC_C), KEY_A, NOW_A, &c),
                     0);
    ck_assert_str_eq(c.tid, "t1");
    ck_assert_str_eq(c.sub, "ops");
    ck_assert_str_eq(c.jti, "");
    ck_assert_int_eq(c.role, CC_ROLE_ADMIN);
    ck_assert_int_eq(c.iat, 0);
    ck_assert_int_eq(c.exp, 1700003600);
}
END_TEST

START_TEST(jwt_utf8_secret)
{
    cc_claims c;
    ck_assert_int_eq(cc_jwt_verify(VEC_B, strlen(VEC_B), SECRET_B,
                                   sizeof SECRET_B - 1, NOW_A, &c),
                     0);
    ck_assert_str_eq(c.tid, "acme.eu:1");
    ck_assert_str_eq(c.sub, "a_7");
    ck_assert_int_eq(c.role, CC_ROLE_AGENT);
    ck_assert_int_eq(c.exp, 1700086400);
    /* the same text in Latin-1 is another key */
    static const uint8_t latin1[] = "s\xe9" "cret";
    ck_assert_int_eq(cc_jwt_verify(VEC_B, strlen(VEC_B), latin1,
                                   sizeof latin1 - 1, NOW_A, &c),
                     CC_EAUTH);
    /* a prefix of the key is another key */
    ck_assert_int_eq(cc_jwt_verify(VEC_B, strlen(VEC_B), SECRET_B,
                                   sizeof SECRET_B - 2, NOW_A, &c),
                     CC_EAUTH);
    /* on failure the claims are cleared */
    ck_assert_str_eq(c.tid, "");
    ck_assert_int_eq(c.role, 0);
}
END_TEST

START_TEST(jwt_round_trip)
{
    static const char *jtis[] = {"", "x", "q\"uo\\te", "uuid-0123-4567",
                                 ("0123456789012345678901234567890123456789"
                                  "012345678901234567890123")};
    char tid64[65];
    memset(tid64, 'T', 64);
    tid64[64] = 0;
    for (int role = CC_ROLE_VISITOR; role <= CC_ROLE_ADMIN; role++) {
        for (size_t j = 0; j < CC__ARRAY_LEN(jtis); j++) {
            cc_claims in = claims(j == 4 ? tid64 : "t-1.x:y_Z",
                                  j == 4 ? tid64 : "user.9", role,
                                  NOW_A - 10, NOW_A + 3600, jtis[j]);
            char tok[1024];
            int n = cc_jwt_mint(&in, KEY_A, tok, sizeof tok);
            ck_assert_int_gt(n, 0);
            ck_assert_int_eq((size_t)n, strlen(tok));
            cc_claims out;
            ck_assert_int_eq(cc_jwt_verify(tok, (size_t)n, KEY_A, NOW_A,
                                           &out),
                             0);
            ck_assert_str_eq(out.tid, in.tid);
            ck_assert_str_eq(out.sub, in.sub);
            ck_assert_str_eq(out.jti, in.jti);
            ck_assert_int_eq(out.role, in.role);
            ck_assert_int_eq(out.iat, in.iat);
            ck_assert_int_eq(out.exp, in.exp);
            /* length is what counts, not a NUL: one byte short fails */
            ck_assert_int_eq(cc_jwt_verify(tok, (size_t)n - 1, KEY_A, NOW_A,
                                           &out),
                             CC_EAUTH);
        }
    }
    /* iat 0 is written and read back as 0 */
    cc_claims z = claims("t", "u", CC_ROLE_AGENT, 0, NOW_A, "");
    char tok[512];
    ck_assert_int_gt(cc_jwt_mint(&z, KEY_A, tok, sizeof tok), 0);
    cc_claims out;
    ck_assert_int_eq(verify_str(tok, NOW_A), 0);
    ck_assert_int_eq(cc_jwt_verify(tok, strlen(tok), KEY_A, NOW_A, &out), 0);
    ck_assert_int_eq(out.iat, 0);
}
END_TEST

START_TEST(jwt_mint_errors)
{
    char out[512];
    cc_claims c = claims("t1", "v_123", CC_ROLE_VISITOR, 1700000000,
                         1700003600, "j-1");
    int n = (int)strlen(VEC_A);
    /* cap counts the NUL */
    ck_assert_int_eq(cc_jwt_mint(&c, KEY_A, out, (size_t)n), CC_E2BIG);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(cc_jwt_mint(&c, KEY_A, out, (size_t)n + 1), n);
    ck_assert_int_eq(cc_jwt_mint(&c, KEY_A, out, 0), CC_E2BIG);
    ck_assert_int_eq(cc_jwt_mint(&c, KEY_A, NULL, 10), CC_EINVAL);
    ck_assert_int_eq(cc_jwt_mint(NULL, KEY_A, out, sizeof out), CC_EINVAL);
    ck_assert_int_eq(cc_jwt_mint(&c, (const uint8_t *)"", 0, out, sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc_jwt_mint(&c, NULL, 5, out, sizeof out), CC_EINVAL);

    cc_claims bad = c;
    bad.role = 0;
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad.role = 4;
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad = c;
    strcpy(bad.tid, "t 1");
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad = c;
    bad.sub[0] = 0;
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad = c;
    memset(bad.tid, 'a', sizeof bad.tid); /* 65 chars, no NUL */
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad = c;
    memset(bad.jti, 'j', sizeof bad.jti);
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad = c;
    strcpy(bad.jti, "has space");
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad = c;
    bad.exp = -1;
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad = c;
    bad.iat = 9007199254740992LL;
    ck_assert_int_eq(cc_jwt_mint(&bad, KEY_A, out, sizeof out), CC_EINVAL);
    bad.iat = 9007199254740991LL;
    ck_assert_int_gt(cc_jwt_mint(&bad, KEY_A, out, sizeof out), 0);

    /* the largest token mint can make fits in 600 bytes */
    cc_claims big;
    memset(&big, 0, sizeof big);
    memset(big.tid, 'T', 64);
    memset(big.sub, 'S', 64);
    memset(big.jti, '"', 64); /* each escaped: 128 bytes of JSON */
    big.role = CC_ROLE_VISITOR;
    big.iat = 1000000000000000LL; /* 16 digits, like exp below */
    big.exp = 9007199254740991LL;
    char buf[600];
    n = cc_jwt_mint(&big, KEY_A, buf, sizeof buf);
    ck_assert_int_gt(n, 500);
    ck_assert_int_lt(n, 600);
    cc_claims back;
    ck_assert_int_eq(cc_jwt_verify(buf, (size_t)n, KEY_A, 1000000000000000LL,
                                   &back),
                     0);
    ck_assert_str_eq(back.jti, big.jti);
    ck_assert_str_eq(back.tid, big.tid);
}
END_TEST

START_TEST(jwt_alg_and_typ)
{
    const char *pl = "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"agent\","
                     "\"exp\":1700003600}";
    ck_assert_int_eq(verify_json(HDR, pl), 0);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256\"}", pl), 0); /* no typ */
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256\",\"kid\":\"k1\"}", pl), 0);
    /* signed with the right key and still refused: the header decides */
    ck_assert_int_eq(verify_json("{\"alg\":\"none\",\"typ\":\"JWT\"}", pl),
                     CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", pl),
                     CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"hs256\"}", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256 \"}", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"ALG\":\"HS256\"}", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"typ\":\"JWT\"}", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{}", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":256}", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":null}", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", pl),
                     CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", pl),
                     CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256\",\"typ\":1}", pl),
                     CC_EAUTH);
    ck_assert_int_eq(
        verify_json("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", pl), CC_EAUTH);
    /* duplicates: cJSON would take the first, another parser the last */
    ck_assert_int_eq(
        verify_json("{\"alg\":\"HS256\",\"alg\":\"none\"}", pl), CC_EAUTH);
    ck_assert_int_eq(
        verify_json("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", pl),
        CC_EAUTH);
    ck_assert_int_eq(verify_json("[\"HS256\"]", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("\"HS256\"", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256\"", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256\"}x", pl), CC_EAUTH);
    ck_assert_int_eq(verify_json("{\"alg\":\"HS256\"} ", pl), 0);

    /* the classic unsigned "none" token: empty signature segment */
    char t[256];
    size_t o = t_b64url(t, (const uint8_t *)"{\"alg\":\"none\"}", 14);
    t[o++] = '.';
    o += t_b64url(t + o, (const uint8_t *)pl, strlen(pl));
    t[o++] = '.';
    t[o] = 0;
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
}
END_TEST

START_TEST(jwt_tampering)
{
    static const char al[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char t[sizeof VEC_A];
    size_t n = strlen(VEC_A);
    ck_assert_int_eq(verify_str(VEC_A, NOW_A), 0);
    /* any single character changed to any other base64url character, in
     * any segment, is refused (strict decoding: no two spellings) */
    for (size_t i = 0; i < n; i++) {
        if (VEC_A[i] == '.')
            continue;
        for (size_t k = 0; k < 64; k++) {
            if (al[k] == VEC_A[i])
                continue;
            memcpy(t, VEC_A, sizeof t);
            t[i] = al[k];
            ck_assert_msg(verify_str(t, NOW_A) == CC_EAUTH,
                          "accepted with [%zu]='%c'", i, al[k]);
        }
    }
    /* the last signature character carries 2 unused bits: 'U' -> 'V'
     * changes only those, which a lenient decoder would accept */
    memcpy(t, VEC_A, sizeof t);
    ck_assert_int_eq(t[n - 1], 'U');
    t[n - 1] = 'V';
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    /* wrong key */
    cc_claims c;
    ck_assert_int_eq(cc_jwt_verify(VEC_A, n, (const uint8_t *)"chatcore-test",
                                   13, NOW_A, &c),
                     CC_EAUTH);
    ck_assert_int_eq(cc_jwt_verify(VEC_A, n, (const uint8_t *)"chatcore-test-secreT",
                                   20, NOW_A, &c),
                     CC_EAUTH);
    /* signature of another token */
    memcpy(t, VEC_A, sizeof t);
    memcpy(t + n - 43, VEC_B + strlen(VEC_B) - 43, 43);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    /* arguments */
    ck_assert_int_eq(cc_jwt_verify(VEC_A, n, KEY_A, NOW_A, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_jwt_verify(VEC_A, n, NULL, 3, NOW_A, &c), CC_EINVAL);
    ck_assert_int_eq(cc_jwt_verify(VEC_A, n, (const uint8_t *)"x", 0, NOW_A,
                                   &c),
                     CC_EINVAL);
    ck_assert_int_eq(cc_jwt_verify(NULL, 0, KEY_A, NOW_A, &c), CC_EAUTH);
    ck_assert_int_eq(cc_jwt_verify("", 0, KEY_A, NOW_A, &c), CC_EAUTH);
}
END_TEST

START_TEST(jwt_time)
{
    const int64_t now = NOW_A;
    char pl[256];
    /* exp: now - 31 and now - 30 refused, now - 29 accepted */
    snprintf(pl, sizeof pl,
             "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"visitor\",\"exp\":%lld}",
             (long long)(now - 31));
    ck_assert_int_eq(verify_payload(pl), CC_EAUTH);
    snprintf(pl, sizeof pl,
             "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"visitor\",\"exp\":%lld}",
             (long long)(now - 30));
    ck_assert_int_eq(verify_payload(pl), CC_EAUTH);
    snprintf(pl, sizeof pl,
             "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"visitor\",\"exp\":%lld}",
             (long long)(now - 29));
    ck_assert_int_eq(verify_payload(pl), 0);
    /* iat: now + 31 refused, now + 30 accepted */
    snprintf(pl, sizeof pl,
             "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"visitor\",\"iat\":%lld,"
             "\"exp\":%lld}",
             (long long)(now + 31), (long long)(now + 3600));
    ck_assert_int_eq(verify_payload(pl), CC_EAUTH);
    snprintf(pl, sizeof pl,
             "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"visitor\",\"iat\":%lld,"
             "\"exp\":%lld}",
             (long long)(now + 30), (long long)(now + 3600));
    ck_assert_int_eq(verify_payload(pl), 0);
    /* nbf, when present, is honoured with the same skew */
    snprintf(pl, sizeof pl,
             "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"visitor\",\"nbf\":%lld,"
             "\"exp\":%lld}",
             (long long)(now + 31), (long long)(now + 3600));
    ck_assert_int_eq(verify_payload(pl), CC_EAUTH);
    snprintf(pl, sizeof pl,
             "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"visitor\",\"nbf\":%lld,"
             "\"exp\":%lld}",
             (long long)(now + 30), (long long)(now + 3600));
    ck_assert_int_eq(verify_payload(pl), 0);
    /* vector A: valid until exp + 29 */
    ck_assert_int_eq(verify_str(VEC_A, 1700003600 + 29), 0);
    ck_assert_int_eq(verify_str(VEC_A, 1700003600 + 30), CC_EAUTH);
    ck_assert_int_eq(verify_str(VEC_A, 1700000000 - 30), 0);
    ck_assert_int_eq(verify_str(VEC_A, 1700000000 - 31), CC_EAUTH);
    /* extreme clocks do not overflow */
    ck_assert_int_eq(verify_str(VEC_A, INT64_MIN), CC_EAUTH);
    ck_assert_int_eq(verify_str(VEC_A, INT64_MAX), CC_EAUTH);
}
END_TEST

#define BASE "\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"visitor\""

START_TEST(jwt_claims_numbers)
{
    ck_assert_int_eq(verify_payload("{" BASE "}"), CC_EAUTH); /* no exp */
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":\"1700003600\"}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600.5}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":null}"), CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":true}"), CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":-1}"), CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":9007199254740992}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1e400}"), CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":9007199254740991}"), 0);
    /* an integral value written with an exponent or ".0" is an integer */
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1.7000036e9}"), 0);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600.0}"), 0);
    ck_assert_int_eq(
        verify_payload("{" BASE ",\"exp\":1700003600,\"exp\":1700003600}"),
        CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"EXP\":1700003600}"),
                     CC_EAUTH);
    ck_assert_int_eq(
        verify_payload("{" BASE ",\"exp\":1700003600,\"iat\":\"0\"}"),
        CC_EAUTH);
    ck_assert_int_eq(
        verify_payload("{" BASE ",\"exp\":1700003600,\"iat\":1.5}"),
        CC_EAUTH);
    ck_assert_int_eq(
        verify_payload("{" BASE ",\"exp\":1700003600,\"nbf\":\"x\"}"),
        CC_EAUTH);
}
END_TEST

START_TEST(jwt_claims_role)
{
    static const char *roles[] = {"\"root\"", "\"Agent\"", "\"visitor \"",
                                  "\"\"", "1", "null", "[\"agent\"]"};
    char pl[256];
    for (size_t i = 0; i < CC__ARRAY_LEN(roles); i++) {
        snprintf(pl, sizeof pl,
                 "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":%s,\"exp\":1700003600}",
                 roles[i]);
        ck_assert_msg(verify_payload(pl) == CC_EAUTH, "role %s", roles[i]);
    }
    ck_assert_int_eq(
        verify_payload("{\"tid\":\"t1\",\"sub\":\"u\",\"exp\":1700003600}"),
        CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"role\":\"admin\","
                                    "\"exp\":1700003600}"),
                     CC_EAUTH);
    /* the three roles */
    static const char *ok[] = {"visitor", "agent", "admin"};
    for (int r = 0; r < 3; r++) {
        snprintf(pl, sizeof pl,
                 "{\"tid\":\"t1\",\"sub\":\"u\",\"role\":\"%s\",\"exp\":1700003600}",
                 ok[r]);
        char *t = sign_raw(HDR, pl);
        cc_claims c;
        ck_assert_int_eq(cc_jwt_verify(t, strlen(t), KEY_A, NOW_A, &c), 0);
        ck_assert_int_eq(c.role, r + 1);
        free(t);
    }
}
END_TEST

START_TEST(jwt_claims_ids)
{
    static const char *bad[] = {
        "\"\"", "\"t 1\"", "\"t/1\"", "\"t@1\"", "\"t\\\"1\"", "\"t\\n1\"",
        "\"\xc3\xa9\"", "\"t1\\u0000x\"", "1", "null", "{}",
        /* 65 characters */
        ("\"0123456789012345678901234567890123456789012345678901234567890123"
         "4\"")};
    char pl[512];
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++) {
        snprintf(pl, sizeof pl,
                 "{\"tid\":%s,\"sub\":\"u\",\"role\":\"agent\",\"exp\":1700003600}",
                 bad[i]);
        ck_assert_msg(verify_payload(pl) == CC_EAUTH, "tid %s", bad[i]);
        snprintf(pl, sizeof pl,
                 "{\"tid\":\"t1\",\"sub\":%s,\"role\":\"agent\",\"exp\":1700003600}",
                 bad[i]);
        ck_assert_msg(verify_payload(pl) == CC_EAUTH, "sub %s", bad[i]);
    }
    /* 64 characters and every allowed character */
    const char *pl64 =
        "{\"tid\":\"0123456789012345678901234567890123456789012345678901234567"
        "890123\",\"sub\":\"azAZ09_.:-\",\"role\":\"agent\",\"exp\":1700003600}";
    char *t = sign_raw(HDR, pl64);
    cc_claims c;
    ck_assert_int_eq(cc_jwt_verify(t, strlen(t), KEY_A, NOW_A, &c), 0);
    ck_assert_uint_eq(strlen(c.tid), 64);
    ck_assert_str_eq(c.sub, "azAZ09_.:-");
    free(t);
    /* missing, duplicated, wrong case */
    ck_assert_int_eq(verify_payload("{\"sub\":\"u\",\"role\":\"agent\","
                                    "\"exp\":1700003600}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{\"tid\":\"t1\",\"role\":\"agent\","
                                    "\"exp\":1700003600}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{\"tid\":\"t1\",\"tid\":\"t2\",\"sub\":"
                                    "\"u\",\"role\":\"agent\",\"exp\":1700003600}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{\"TID\":\"t1\",\"sub\":\"u\",\"role\":"
                                    "\"agent\",\"exp\":1700003600}"),
                     CC_EAUTH);
    /* a \u0000 in a claim we do not read still refuses the token */
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600,"
                                    "\"x\":\"a\\u0000\"}"),
                     CC_EAUTH);
    /* but an escaped backslash before "u0000" is just text */
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600,"
                                    "\"x\":\"a\\\\u0000\"}"),
                     0);
}
END_TEST

START_TEST(jwt_claims_jti)
{
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600,\"jti\":"
                                    "\"0123456789012345678901234567890123456789"
                                    "012345678901234567890123\"}"),
                     0);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600,\"jti\":"
                                    "\"0123456789012345678901234567890123456789"
                                    "0123456789012345678901234\"}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600,\"jti\":\"\"}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600,\"jti\":7}"),
                     CC_EAUTH);
    ck_assert_int_eq(
        verify_payload("{" BASE ",\"exp\":1700003600,\"jti\":\"a b\"}"),
        CC_EAUTH);
    ck_assert_int_eq(
        verify_payload("{" BASE ",\"exp\":1700003600,\"jti\":\"a\\tb\"}"),
        CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600,\"jti\":"
                                    "\"a\",\"jti\":\"b\"}"),
                     CC_EAUTH);
    ck_assert_int_eq(
        verify_payload("{" BASE ",\"exp\":1700003600,\"jti\":\"a/b+c=\"}"), 0);
}
END_TEST

START_TEST(jwt_shape)
{
    const char *sig = strrchr(VEC_A, '.') + 1;
    char t[1024];
    size_t hl = (size_t)(strchr(VEC_A, '.') - VEC_A);
    size_t pl = (size_t)(sig - 1 - (VEC_A + hl + 1));
    const char *h = VEC_A, *p = VEC_A + hl + 1;

    /* '=' padding on any segment */
    snprintf(t, sizeof t, "%.*s=.%.*s.%s", (int)hl, h, (int)pl, p, sig);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%.*s.%.*s=.%s", (int)hl, h, (int)pl, p, sig);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%s=", VEC_A);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    /* segment counts */
    snprintf(t, sizeof t, "%s.%s", VEC_A, sig);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%s.", VEC_A);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%.*s.%.*s", (int)hl, h, (int)pl, p);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%.*s", (int)hl, h);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    /* empty segments */
    snprintf(t, sizeof t, ".%.*s.%s", (int)pl, p, sig);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%.*s..%s", (int)hl, h, sig);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%.*s.%.*s.", (int)hl, h, (int)pl, p);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    ck_assert_int_eq(verify_str("..", NOW_A), CC_EAUTH);
    ck_assert_int_eq(verify_str(".", NOW_A), CC_EAUTH);
    /* standard base64 characters, spaces, a NUL inside */
    snprintf(t, sizeof t, "%s", VEC_A);
    t[hl + 5] = '+';
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    t[hl + 5] = '/';
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, " %s", VEC_A);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%s\n", VEC_A);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    cc_claims c;
    memcpy(t, VEC_A, sizeof VEC_A);
    t[10] = 0;
    ck_assert_int_eq(cc_jwt_verify(t, sizeof VEC_A - 1, KEY_A, NOW_A, &c),
                     CC_EAUTH);
    /* a segment of length % 4 == 1 cannot be base64 */
    snprintf(t, sizeof t, "%.*sA.%.*s.%s", (int)hl, h, (int)pl, p, sig);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    /* signature too short / too long */
    snprintf(t, sizeof t, "%.*s.%.*s.%.42s", (int)hl, h, (int)pl, p, sig);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    snprintf(t, sizeof t, "%sAA", VEC_A);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
}
END_TEST

START_TEST(jwt_payload_json)
{
    /* a payload that is not an object, or has trailing bytes, or NULs */
    ck_assert_int_eq(verify_payload("[1]"), CC_EAUTH);
    ck_assert_int_eq(verify_payload("\"x\""), CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600}}"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("{" BASE ",\"exp\":1700003600"),
                     CC_EAUTH);
    ck_assert_int_eq(verify_payload("\n{" BASE ",\"exp\":1700003600}\n"), 0);
    static const char nul[] = "{" BASE ",\"exp\":1700003600}\0garbage";
    char *t = sign_raw_n(HDR, nul, sizeof nul - 1, KEY_A);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    free(t);
}
END_TEST

/* A correctly signed token of exactly `len` characters (len - 81 must be a
 * valid base64url length). */
static char *
token_of_len(size_t len)
{
    size_t b64 = len - 36 - 1 - 1 - 43;
    size_t raw = b64 / 4 * 3 + (b64 % 4 ? b64 % 4 - 1 : 0);
    char *pl = malloc(raw + 1);
    ck_assert_ptr_nonnull(pl);
    const char *head = "{" BASE ",\"exp\":1700003600,\"pad\":\"";
    size_t hn = strlen(head);
    memcpy(pl, head, hn);
    memset(pl + hn, 'x', raw - hn - 2);
    memcpy(pl + raw - 2, "\"}", 3);
    char *t = sign_raw(HDR, pl);
    free(pl);
    ck_assert_uint_eq(strlen(t), len);
    return t;
}

START_TEST(jwt_size_limit)
{
    char *t = token_of_len(8192);
    ck_assert_int_eq(verify_str(t, NOW_A), 0);
    char tid[8];
    ck_assert_int_eq(cc_jwt_peek_tenant(t, strlen(t), tid, sizeof tid), 2);
    free(t);
    t = token_of_len(8193);
    ck_assert_int_eq(verify_str(t, NOW_A), CC_EAUTH);
    ck_assert_int_eq(cc_jwt_peek_tenant(t, strlen(t), tid, sizeof tid),
                     CC_EAUTH);
    free(t);
    /* something huge is refused before it is read */
    size_t n = 1 << 20;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, 'A', n);
    big[100] = '.';
    big[n - 44] = '.';
    cc_claims c;
    ck_assert_int_eq(cc_jwt_verify(big, n, KEY_A, NOW_A, &c), CC_EAUTH);
    free(big);
}
END_TEST

START_TEST(jwt_peek_tenant)
{
    char tid[65];
    ck_assert_int_eq(cc_jwt_peek_tenant(VEC_A, strlen(VEC_A), tid, sizeof tid),
                     2);
    ck_assert_str_eq(tid, "t1");
    ck_assert_int_eq(cc_jwt_peek_tenant(VEC_B, strlen(VEC_B), tid, sizeof tid),
                     9);
    ck_assert_str_eq(tid, "acme.eu:1");
    /* exactly enough room, and one byte less */
    ck_assert_int_eq(cc_jwt_peek_tenant(VEC_B, strlen(VEC_B), tid, 10), 9);
    ck_assert_int_eq(cc_jwt_peek_tenant(VEC_B, strlen(VEC_B), tid, 9),
                     CC_E2BIG);
    ck_assert_str_eq(tid, "");
    ck_assert_int_eq(cc_jwt_peek_tenant(VEC_B, strlen(VEC_B), NULL, 9),
                     CC_EINVAL);
    ck_assert_int_eq(cc_jwt_peek_tenant(VEC_B, strlen(VEC_B), tid, 0),
                     CC_EINVAL);
    /* unverified: a wrong signature still names the tenant, and an
     * expired token too */
    char *t = sign_raw_n(HDR, "{\"tid\":\"other\",\"exp\":1}", 0,
                         (const uint8_t *)"k", 1);
    ck_assert_int_eq(cc_jwt_peek_tenant(t, strlen(t), tid, sizeof tid), 5);
    ck_assert_str_eq(tid, "other");
    free(t);
    /* but the shape and the tid are checked */
    t = sign_raw(HDR, "{\"sub\":\"u\"}");
    ck_assert_int_eq(cc_jwt_peek_tenant(t, strlen(t), tid, sizeof tid),
                     CC_EAUTH);
    free(t);
    t = sign_raw(HDR, "{\"tid\":\"a b\"}");
    ck_assert_int_eq(cc_jwt_peek_tenant(t, strlen(t), tid, sizeof tid),
                     CC_EAUTH);
    free(t);
    t = sign_raw(HDR, "{\"tid\":\"a\",\"tid\":\"b\"}");
    ck_assert_int_eq(cc_jwt_peek_tenant(t, strlen(t), tid, sizeof tid),
                     CC_EAUTH);
    free(t);
    t = sign_raw(HDR, "{\"tid\":\"a\\u0000b\"}");
    ck_assert_int_eq(cc_jwt_peek_tenant(t, strlen(t), tid, sizeof tid),
                     CC_EAUTH);
    free(t);
    ck_assert_int_eq(cc_jwt_peek_tenant("a.b", 3, tid, sizeof tid), CC_EAUTH);
    ck_assert_int_eq(cc_jwt_peek_tenant(NULL, 0, tid, sizeof tid), CC_EAUTH);
    char bad[sizeof VEC_A + 1];
    snprintf(bad, sizeof bad, "%s=", VEC_A);
    ck_assert_int_eq(cc_jwt_peek_tenant(bad, strlen(bad), tid, sizeof tid),
                     CC_EAUTH);
    /* the signature segment must be canonical base64url too */
    snprintf(bad, sizeof bad, "%s", VEC_A);
    bad[strlen(bad) - 1] = 'V';
    ck_assert_int_eq(cc_jwt_peek_tenant(bad, strlen(bad), tid, sizeof tid),
                     CC_EAUTH);
    bad[strlen(bad) - 1] = '=';
    ck_assert_int_eq(cc_jwt_peek_tenant(bad, strlen(bad), tid, sizeof tid),
                     CC_EAUTH);
}
END_TEST

/* ---- signed requests ---- */

static const char WH_SECRET[] = "whsec_test";
#define KEY_W ((const uint8_t *)WH_SECRET), (sizeof WH_SECRET - 1)
static const char WH_BODY[] = "{\"event\":\"message.created\"}";
#define BODY_W ((const uint8_t *)WH_BODY), (sizeof WH_BODY - 1)
#define T_W 1700000000
/* python3: hmac.new(b"whsec_test", b'1700000000.abc_DEF-123.'
 * b'{"event":"message.created"}', hashlib.sha256).hexdigest(); the same
 * from `printf ... | openssl dgst -sha256 -hmac whsec_test` */
#define MAC_W "36aa2fff6b49e714f91696e2baeafe812ac60d017fafb0c1ee847486ccbcb175"
static const char SIG_W[] = "t=1700000000,n=abc_DEF-123,v1=" MAC_W;

static int
sigv(const char *h, int64_t now)
{
    return cc_sig_verify(h, KEY_W, BODY_W, now, NULL);
}

START_TEST(sig_known_vector)
{
    char out[256];
    int n = cc_sig_sign(KEY_W, T_W, "abc_DEF-123", BODY_W, out, sizeof out);
    ck_assert_int_eq(n, (int)strlen(SIG_W));
    ck_assert_str_eq(out, SIG_W);
    ck_assert_int_eq(sigv(SIG_W, T_W), 0);
    /* uppercase hex is the same MAC */
    char up[256];
    snprintf(up, sizeof up, "%s", SIG_W);
    for (char *p = strstr(up, "v1=") + 3; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    ck_assert_int_eq(sigv(up, T_W), 0);
}
END_TEST

START_TEST(sig_round_trip)
{
    char out[256];
    int n = cc_sig_sign(KEY_W, 5, "n", NULL, 0, out, sizeof out);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(cc_sig_verify(out, KEY_W, NULL, 0, 5, NULL), 0);
    ck_assert_int_eq(cc_sig_verify(out, KEY_W, (const uint8_t *)"", 0, 5, NULL),
                     0);
    ck_assert_int_eq(cc_sig_verify(out, KEY_W, (const uint8_t *)"x", 1, 5, NULL),
                     CC_EAUTH);
    /* binary body with NULs and UTF-8 secret */
    static const uint8_t body[] = {0, 1, 2, 0xff, 0, '.', 0};
    n = cc_sig_sign(SECRET_B, sizeof SECRET_B - 1, 1700000000, "N-_9",
                    body, sizeof body, out, sizeof out);
    ck_assert_int_eq(n, (int)strlen(out));
    ck_assert_int_eq(cc_sig_verify(out, SECRET_B, sizeof SECRET_B - 1, body,
                                   sizeof body, 1700000000, NULL),
                     0);
    ck_assert_int_eq(cc_sig_verify(out, SECRET_B, sizeof SECRET_B - 1, body,
                                   sizeof body - 1, 1700000000, NULL),
                     CC_EAUTH);
    /* sizes and arguments */
    int len = (int)strlen(SIG_W);
    ck_assert_int_eq(cc_sig_sign(KEY_W, T_W, "abc_DEF-123", BODY_W, out,
                                 (size_t)len),
                     CC_E2BIG);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(cc_sig_sign(KEY_W, T_W, "abc_DEF-123", BODY_W, out,
                                 (size_t)len + 1),
                     len);
    ck_assert_int_eq(cc_sig_sign(KEY_W, -1, "n", BODY_W, out, sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc_sig_sign(KEY_W, T_W, "", BODY_W, out, sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc_sig_sign(KEY_W, T_W, "a.b", BODY_W, out, sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc_sig_sign(KEY_W, T_W, NULL, BODY_W, out, sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc_sig_sign(KEY_W, T_W, "n", NULL, 3, out, sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc_sig_sign((const uint8_t *)"", 0, T_W, "n", BODY_W, out,
                                 sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc_sig_sign(KEY_W, T_W, "n", BODY_W, NULL, 100),
                     CC_EINVAL);
    char n64[66];
    memset(n64, 'n', 65);
    n64[65] = 0;
    ck_assert_int_eq(cc_sig_sign(KEY_W, T_W, n64, BODY_W, out, sizeof out),
                     CC_EINVAL);
    n64[64] = 0;
    ck_assert_int_gt(cc_sig_sign(KEY_W, T_W, n64, BODY_W, out, sizeof out), 0);
    ck_assert_int_eq(sigv(out, T_W), 0);
    ck_assert_int_eq(cc_sig_verify(SIG_W, KEY_W, NULL, 4, T_W, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_sig_verify(SIG_W, NULL, 0, BODY_W, T_W, NULL),
                     CC_EINVAL);
}
END_TEST

START_TEST(sig_tampered)
{
    char h[256];
    /* body, secret */
    ck_assert_int_eq(cc_sig_verify(SIG_W, KEY_W, (const uint8_t *)WH_BODY,
                                   sizeof WH_BODY - 2, T_W, NULL),
                     CC_EAUTH);
    ck_assert_int_eq(cc_sig_verify(SIG_W, (const uint8_t *)"whsec_tesT", 10,
                                   BODY_W, T_W, NULL),
                     CC_EAUTH);
    /* t, n changed in the header (still within the window) */
    ck_assert_int_eq(sigv("t=1700000001,n=abc_DEF-123,v1=" MAC_W, T_W),
                     CC_EAUTH);
    ck_assert_int_eq(sigv("t=1700000000,n=abc_DEF-124,v1=" MAC_W, T_W),
                     CC_EAUTH);
    /* each MAC digit changed */
    size_t off = strlen(SIG_W) - 64;
    for (size_t i = off; i < strlen(SIG_W); i++) {
        snprintf(h, sizeof h, "%s", SIG_W);
        h[i] = h[i] == '0' ? '1' : '0';
        ck_assert_int_eq(sigv(h, T_W), CC_EAUTH);
    }
}
END_TEST

START_TEST(sig_time_window)
{
    ck_assert_int_eq(sigv(SIG_W, T_W + 300), 0);
    ck_assert_int_eq(sigv(SIG_W, T_W + 301), CC_EAUTH);
    ck_assert_int_eq(sigv(SIG_W, T_W - 300), 0);
    ck_assert_int_eq(sigv(SIG_W, T_W - 301), CC_EAUTH);
    ck_assert_int_eq(sigv(SIG_W, INT64_MIN), CC_EAUTH);
    ck_assert_int_eq(sigv(SIG_W, INT64_MAX), CC_EAUTH);
    char h[256];
    ck_assert_int_gt(cc_sig_sign(KEY_W, 0, "z", BODY_W, h, sizeof h), 0);
    ck_assert_int_eq(sigv(h, 300), 0);
    ck_assert_int_eq(sigv(h, -300), 0);
    ck_assert_int_eq(sigv(h, 301), CC_EAUTH);
    ck_assert_int_eq(sigv(h, -301), CC_EAUTH);
}
END_TEST

START_TEST(sig_field_order)
{
    static const char *ok[] = {
        "t=1700000000,n=abc_DEF-123,v1=" MAC_W,
        "n=abc_DEF-123,v1=" MAC_W ",t=1700000000",
        "v1=" MAC_W ",t=1700000000,n=abc_DEF-123",
        "v1=" MAC_W ",n=abc_DEF-123,t=1700000000",
        " t=1700000000 , n=abc_DEF-123,\tv1=" MAC_W "\t",
        /* fields of later versions are ignored */
        "t=1700000000,v0=whatever,n=abc_DEF-123,v1=" MAC_W ",v2=abc",
        "scheme_2=x,t=1700000000,n=abc_DEF-123,v1=" MAC_W,
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(ok); i++)
        ck_assert_msg(sigv(ok[i], T_W) == 0, "refused: %s", ok[i]);
}
END_TEST

START_TEST(sig_malformed)
{
    static const char *bad[] = {
        "",
        " ",
        "t=1700000000,n=abc_DEF-123",
        "t=1700000000,v1=" MAC_W,
        "n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000,t=1700000000,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000,n=abc_DEF-123,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000,n=abc_DEF-123,v1=" MAC_W ",v1=" MAC_W,
        "t=+1700000000,n=abc_DEF-123,v1=" MAC_W,
        "t=01700000000,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000.0,n=abc_DEF-123,v1=" MAC_W,
        "t=1e9,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000000000000,n=abc_DEF-123,v1=" MAC_W,
        "t=,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000,n=,v1=" MAC_W,
        "t=1700000000,n=abc.DEF,v1=" MAC_W,
        "t=1700000000,n=abc:DEF,v1=" MAC_W,
        "t=1700000000,n=0123456789012345678901234567890123456789012345678901"
        "234567890123x,v1=" MAC_W,
        "t=1700000000,n=abc_DEF-123,v1=" MAC_W "0",
        "t=1700000000,n=abc_DEF-123,v1=6aa2fff6b49e714f91696e2baeafe812ac60d0"
        "17fafb0c1ee847486ccbcb175",
        "t=1700000000,n=abc_DEF-123,v1=g6aa2fff6b49e714f91696e2baeafe812ac60d0"
        "17fafb0c1ee847486ccbcb175",
        "t=1700000000,n=abc_DEF-123,v1=" MAC_W ",",
        ",t=1700000000,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000,,n=abc_DEF-123,v1=" MAC_W,
        "t = 1700000000,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000;n=abc_DEF-123;v1=" MAC_W,
        "t=1700000000,n=abc_DEF-123,v1=" MAC_W " x",
        "T=1700000000,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000,n=abc_DEF-123,V1=" MAC_W,
        "x-y=1,t=1700000000,n=abc_DEF-123,v1=" MAC_W,
        "t=1700000000,n=abc_DEF-123,v1=" MAC_W "\r\n",
        "t=1700000000,n=abc_DEF-123,=x,v1=" MAC_W,
        "t=1700000000,n=abc_DEF-123,v1",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        ck_assert_msg(sigv(bad[i], T_W) == CC_EAUTH, "accepted: %s", bad[i]);
    ck_assert_int_eq(sigv(NULL, T_W), CC_EAUTH);
    /* overlong: a valid header padded with an ignored field */
    char *h = malloc(2048);
    ck_assert_ptr_nonnull(h);
    int n = snprintf(h, 2048, "%s,x=", SIG_W);
    memset(h + n, 'p', 1024 - (size_t)n);
    h[1024] = 0;
    ck_assert_int_eq(sigv(h, T_W), 0);
    h[1024] = 'p';
    h[1025] = 0;
    ck_assert_int_eq(sigv(h, T_W), CC_EAUTH);
    free(h);
}
END_TEST

/* ---- the replay cache ---- */

/* A fresh header for nonce n at time t. */
static const char *
hdr_for(char *buf, size_t cap, int64_t t, const char *n)
{
    ck_assert_int_gt(cc_sig_sign(KEY_W, t, n, BODY_W, buf, cap), 0);
    return buf;
}

static int
use(cc_nonce_cache *nc, int64_t t, int64_t now, const char *n)
{
    char h[256];
    return cc_sig_verify(hdr_for(h, sizeof h, t, n), KEY_W, BODY_W, now, nc);
}

START_TEST(nonce_replay)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc_nonce_cache *nc;
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 100, 600), 0);
    ck_assert_int_eq(cc_sig_verify(SIG_W, KEY_W, BODY_W, T_W, nc), 0);
    ck_assert_int_eq(cc_sig_verify(SIG_W, KEY_W, BODY_W, T_W, nc),
                     CC_ECLAIMED);
    ck_assert_int_eq(cc_sig_verify(SIG_W, KEY_W, BODY_W, T_W + 300, nc),
                     CC_ECLAIMED);
    /* the same nonce with another t or body (a new MAC) is still a reuse */
    ck_assert_int_eq(use(nc, T_W + 1, T_W + 1, "abc_DEF-123"), CC_ECLAIMED);
    /* nonces are case-sensitive; a different one is fine */
    ck_assert_int_eq(use(nc, T_W, T_W, "ABC_DEF-123"), 0);
    /* a bad MAC or an old t never records the nonce */
    ck_assert_int_eq(cc_sig_verify("t=1700000000,n=fresh,v1=" MAC_W, KEY_W,
                                   BODY_W, T_W, nc),
                     CC_EAUTH);
    ck_assert_int_eq(use(nc, T_W - 400, T_W, "fresh"), CC_EAUTH);
    ck_assert_int_eq(use(nc, T_W, T_W, "fresh"), 0);
    ck_assert_int_eq(use(nc, T_W, T_W, "fresh"), CC_ECLAIMED);
    cc_nonce_cache_free(nc);
    cc_nonce_cache_free(NULL);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}
END_TEST

START_TEST(nonce_window)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc_nonce_cache *nc;
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 10, 600), 0);
    /* first used at T_W with t 300 s ahead: that header stays valid until
     * T_W + 600, so the nonce must be remembered that long */
    ck_assert_int_eq(use(nc, T_W + 300, T_W, "k"), 0);
    ck_assert_int_eq(use(nc, T_W + 300, T_W + 600, "k"), CC_ECLAIMED);
    ck_assert_int_eq(use(nc, T_W + 400, T_W + 600, "k"), CC_ECLAIMED);
    /* reusable once the window has passed */
    ck_assert_int_eq(use(nc, T_W + 601, T_W + 601, "k"), 0);
    ck_assert_int_eq(use(nc, T_W + 601, T_W + 601, "k"), CC_ECLAIMED);
    cc_nonce_cache_free(nc);
    ck_assert_uint_eq(ta.bytes, 0);

    /* a longer window */
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 10, 3600), 0);
    ck_assert_int_eq(use(nc, T_W, T_W, "k"), 0);
    ck_assert_int_eq(use(nc, T_W + 3600, T_W + 3600, "k"), CC_ECLAIMED);
    ck_assert_int_eq(use(nc, T_W + 3601, T_W + 3601, "k"), 0);
    cc_nonce_cache_free(nc);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}
END_TEST

START_TEST(nonce_full)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc_nonce_cache *nc;
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 3, 600), 0);
    ck_assert_int_eq(use(nc, T_W, T_W, "a"), 0);
    ck_assert_int_eq(use(nc, T_W, T_W + 10, "b"), 0);
    ck_assert_int_eq(use(nc, T_W, T_W + 20, "c"), 0);
    /* full: new nonces refused, live ones never evicted */
    ck_assert_int_eq(use(nc, T_W, T_W + 30, "d"), CC_EBUSY);
    ck_assert_int_eq(use(nc, T_W, T_W + 30, "a"), CC_ECLAIMED);
    ck_assert_int_eq(use(nc, T_W + 300, T_W + 600, "d"), CC_EBUSY);
    /* "a" expires after 600 s and makes room for exactly one */
    ck_assert_int_eq(use(nc, T_W + 400, T_W + 601, "d"), 0);
    ck_assert_int_eq(use(nc, T_W + 400, T_W + 601, "e"), CC_EBUSY);
    ck_assert_int_eq(use(nc, T_W + 400, T_W + 601, "a"), CC_EBUSY);
    /* everything expires: memory is back to the empty cache */
    ck_assert_int_eq(use(nc, T_W + 5000, T_W + 5000, "z"), 0);
    ck_assert_uint_eq(ta.blocks, 3); /* cache, buckets, one entry */
    cc_nonce_cache_free(nc);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}
END_TEST

START_TEST(nonce_bounded_and_growth)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc_nonce_cache *nc;
    const size_t max = 1000;
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, max, 600), 0);
    char n[32];
    for (size_t i = 0; i < max; i++) {
        snprintf(n, sizeof n, "n%zu", i);
        ck_assert_int_eq(use(nc, T_W, T_W, n), 0);
    }
    ck_assert_int_eq(use(nc, T_W, T_W, "extra"), CC_EBUSY);
    for (size_t i = 0; i < max; i++) {
        snprintf(n, sizeof n, "n%zu", i);
        ck_assert_int_eq(use(nc, T_W, T_W, n), CC_ECLAIMED);
    }
    /* many windows later, memory still holds at most max entries */
    for (int w = 1; w <= 5; w++) {
        int64_t now = T_W + w * 700;
        for (size_t i = 0; i < max; i++) {
            snprintf(n, sizeof n, "w%d-%zu", w, i);
            ck_assert_int_eq(use(nc, now, now, n), 0);
        }
        ck_assert_uint_le(ta.blocks, 2 + max);
    }
    cc_nonce_cache_free(nc);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}
END_TEST

START_TEST(nonce_clock_backwards)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc_nonce_cache *nc;
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 2, 600), 0);
    ck_assert_int_eq(use(nc, T_W, T_W, "a"), 0);
    /* the clock jumps back 200 s: "b" sits behind "a" in time */
    ck_assert_int_eq(use(nc, T_W - 200, T_W - 200, "b"), 0);
    /* at T_W + 500, "b" has expired but "a" (ahead of it) has not: a
     * reuse of "b" is accepted anyway */
    ck_assert_int_eq(use(nc, T_W + 300, T_W + 500, "b"), 0);
    ck_assert_int_eq(use(nc, T_W + 300, T_W + 500, "a"), CC_ECLAIMED);
    ck_assert_int_eq(use(nc, T_W + 300, T_W + 500, "b"), CC_ECLAIMED);
    cc_nonce_cache_free(nc);
    ck_assert_uint_eq(ta.bytes, 0);
}
END_TEST

START_TEST(nonce_cache_args_and_oom)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc_nonce_cache *nc = (cc_nonce_cache *)&ta;
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 0, 600), CC_EINVAL);
    ck_assert_ptr_null(nc);
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 10, 599), CC_EINVAL);
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 10, -1), CC_EINVAL);
    ck_assert_int_eq(cc_nonce_cache_new(NULL, &ta.a, 10, 600), CC_EINVAL);
    ck_assert_uint_eq(ta.nalloc, 0);
    /* every allocation of the constructor can fail */
    for (size_t k = 1; k <= 2; k++) {
        cc_test_alloc_init(&ta);
        ta.fail_at = k;
        ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 10, 600), CC_ENOMEM);
        ck_assert_ptr_null(nc);
        ck_assert_uint_eq(ta.bytes, 0);
        ck_assert_uint_eq(ta.blocks, 0);
    }
    cc_test_alloc_init(&ta);
    ck_assert_int_eq(cc_nonce_cache_new(&nc, &ta.a, 100, 600), 0);
    ck_assert_uint_eq(ta.nalloc, 2);
    /* recording fails: the nonce is not kept, and a retry works */
    ta.fail_at = ta.nalloc + 1;
    ck_assert_int_eq(use(nc, T_W, T_W, "x"), CC_ENOMEM);
    ck_assert_int_eq(use(nc, T_W, T_W, "x"), 0);
    ck_assert_int_eq(use(nc, T_W, T_W, "x"), CC_ECLAIMED);
    /* growing the bucket array may fail without harm: fill 16 entries,
     * then fail the next allocation (the 17th insert grows first) */
    char n[16];
    for (int i = 1; i < 16; i++) {
        snprintf(n, sizeof n, "g%d", i);
        ck_assert_int_eq(use(nc, T_W, T_W, n), 0);
    }
    ta.fail_at = ta.nalloc + 1;
    ck_assert_int_eq(use(nc, T_W, T_W, "g16"), 0);
    ck_assert_int_eq(use(nc, T_W, T_W, "g17"), 0);
    for (int i = 1; i <= 17; i++) {
        snprintf(n, sizeof n, "g%d", i);
        ck_assert_int_eq(use(nc, T_W, T_W, n), CC_ECLAIMED);
    }
    cc_nonce_cache_free(nc);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);

    /* NULL allocator = libc */
    ck_assert_int_eq(cc_nonce_cache_new(&nc, NULL, 1, 600), 0);
    ck_assert_int_eq(use(nc, T_W, T_W, "x"), 0);
    ck_assert_int_eq(use(nc, T_W, T_W, "y"), CC_EBUSY);
    cc_nonce_cache_free(nc);
}
END_TEST

/* ---- token buckets ---- */

START_TEST(bucket_starts_full)
{
    cc_bucket b;
    memset(&b, 0, sizeof b);
    const uint64_t t0 = 1000000;
    /* PROTOCOL.md §6 defaults for send: 20/s, burst 40 */
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t0), 0);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t0), 50);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t0 + 1), 49);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t0 + 49), 1);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t0 + 50), 0);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t0 + 50), 50);
    /* a steady 20/s is always allowed */
    for (int i = 1; i <= 100; i++)
        ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t0 + 50 + 50 * i), 0);
}
END_TEST

START_TEST(bucket_refill)
{
    cc_bucket b;
    memset(&b, 0, sizeof b);
    uint64_t t = 5000;
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t), 0);
    /* 500 ms later: 10 tokens */
    t += 500;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t), 0);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t), 50);
    /* a long pause refills only up to burst */
    t += 3600 * 1000;
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t), 0);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t), 50);
    /* half a token: 25 ms more */
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, t + 25), 25);
    /* tenant default: 2000/s with one second of burst */
    cc_bucket tb;
    memset(&tb, 0, sizeof tb);
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(cc_bucket_take(&tb, 2000, 2000, t), 0);
    ck_assert_int_eq(cc_bucket_take(&tb, 2000, 2000, t), 1);
    ck_assert_int_eq(cc_bucket_take(&tb, 2000, 2000, t + 1), 0);
    ck_assert_int_eq(cc_bucket_take(&tb, 2000, 2000, t + 1), 0);
    ck_assert_int_eq(cc_bucket_take(&tb, 2000, 2000, t + 1), 1);
    /* connections_per_ip_per_min = 60: 1/s, burst 60 */
    cc_bucket ib;
    memset(&ib, 0, sizeof ib);
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(cc_bucket_take(&ib, 1, 60, t), 0);
    ck_assert_int_eq(cc_bucket_take(&ib, 1, 60, t), 1000);
}
END_TEST

START_TEST(bucket_wait_is_exact)
{
    /* for odd rates, waiting exactly the returned time is enough and one
     * millisecond less is not */
    static const double rates[] = {0.7, 1, 3, 7, 13.3, 20, 33.3, 999, 2000,
                                   0.001};
    static const double bursts[] = {1, 1.5, 2, 40};
    for (size_t r = 0; r < CC__ARRAY_LEN(rates); r++) {
        for (size_t k = 0; k < CC__ARRAY_LEN(bursts); k++) {
            cc_bucket b;
            memset(&b, 0, sizeof b);
            uint64_t t = 77777;
            for (int step = 0; step < 50; step++) {
                int64_t w = cc_bucket_take(&b, rates[r], bursts[k], t);
                if (w == 0) {
                    t += (uint64_t)(step * 7 % 13);
                    continue;
                }
                ck_assert_int_gt(w, 0);
                cc_bucket c1 = b, c2 = b;
                if (w > 1)
                    ck_assert_int_gt(
                        cc_bucket_take(&c1, rates[r], bursts[k],
                                       t + (uint64_t)w - 1),
                        0);
                ck_assert_msg(cc_bucket_take(&c2, rates[r], bursts[k],
                                             t + (uint64_t)w) == 0,
                              "rate %g burst %g wait %lld", rates[r],
                              bursts[k], (long long)w);
                t += (uint64_t)(step * 5 % 11);
            }
        }
    }
    /* rate 3/s: a third of a second, rounded up */
    cc_bucket b;
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(cc_bucket_take(&b, 3, 1, 1000), 0);
    ck_assert_int_eq(cc_bucket_take(&b, 3, 1, 1000), 334);
    ck_assert_int_eq(cc_bucket_take(&b, 3, 1, 1333), 1);
    ck_assert_int_eq(cc_bucket_take(&b, 3, 1, 1334), 0);
}
END_TEST

START_TEST(bucket_clock_backwards)
{
    cc_bucket b;
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(cc_bucket_take(&b, 20, 40, 10000), 0);
    /* 500 ms back: no tokens, and the wait counts from the later time */
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, 9500), 550);
    ck_assert_int_eq(b.at_ms, 10000);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, 0), 10050);
    /* forward again: only the real 50 ms since 10000 count */
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, 10050), 0);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 40, 10050), 50);
    /* a huge jump back caps at INT32_MAX */
    cc_bucket far = {0.0, UINT64_MAX - 5};
    ck_assert_int_eq(cc_bucket_take(&far, 20, 40, 1), INT32_MAX);
}
END_TEST

START_TEST(bucket_bad_params)
{
    cc_bucket b;
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(cc_bucket_take(&b, 0, 40, 1000), INT32_MAX);
    ck_assert_int_eq(cc_bucket_take(&b, -1, 40, 1000), INT32_MAX);
    ck_assert_int_eq(cc_bucket_take(&b, NAN, 40, 1000), INT32_MAX);
    ck_assert_int_eq(cc_bucket_take(&b, INFINITY, 40, 1000), INT32_MAX);
    ck_assert_int_eq(cc_bucket_take(&b, 20, 0.5, 1000), INT32_MAX);
    ck_assert_int_eq(cc_bucket_take(&b, 20, NAN, 1000), INT32_MAX);
    ck_assert_int_eq(cc_bucket_take(&b, 20, INFINITY, 1000), INT32_MAX);
    /* the bucket was not touched: it still starts full */
    ck_assert_int_eq(b.at_ms, 0);
    ck_assert_int_eq(cc_bucket_take(NULL, 20, 40, 1000), CC_EINVAL);
    /* a tiny rate caps the wait */
    ck_assert_int_eq(cc_bucket_take(&b, 1e-9, 1, 1000), 0);
    ck_assert_int_eq(cc_bucket_take(&b, 1e-9, 1, 1000), INT32_MAX);
    /* garbage tokens in a caller's POD are treated as empty or full */
    cc_bucket g = {NAN, 1000};
    ck_assert_int_eq(cc_bucket_take(&g, 20, 40, 1000), 50);
    cc_bucket h = {1e9, 1000};
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(cc_bucket_take(&h, 20, 40, 1000), 0);
    ck_assert_int_eq(cc_bucket_take(&h, 20, 40, 1000), 50);
    /* a clock that reads 0: the bucket still starts full once */
    cc_bucket z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(cc_bucket_take(&z, 1, 2, 0), 0);
    ck_assert_int_eq(cc_bucket_take(&z, 1, 2, 0), 0);
    ck_assert_int_eq(cc_bucket_take(&z, 1, 2, 0), 1001);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *j = tcase_create("jwt");
    tcase_add_test(j, jwt_known_vector_mint);
    tcase_add_test(j, jwt_known_vector_verify);
    tcase_add_test(j, jwt_utf8_secret);
    tcase_add_test(j, jwt_round_trip);
    tcase_add_test(j, jwt_mint_errors);
    tcase_add_test(j, jwt_alg_and_typ);
    tcase_add_test(j, jwt_tampering);
    tcase_add_test(j, jwt_time);
    tcase_add_test(j, jwt_claims_numbers);
    tcase_add_test(j, jwt_claims_role);
    tcase_add_test(j, jwt_claims_ids);
    tcase_add_test(j, jwt_claims_jti);
    tcase_add_test(j, jwt_shape);
    tcase_add_test(j, jwt_payload_json);
    tcase_add_test(j, jwt_size_limit);
    tcase_add_test(j, jwt_peek_tenant);
    suite_add_tcase(s, j);
    TCase *g = tcase_create("sig");
    tcase_add_test(g, sig_known_vector);
    tcase_add_test(g, sig_round_trip);
    tcase_add_test(g, sig_tampered);
    tcase_add_test(g, sig_time_window);
    tcase_add_test(g, sig_field_order);
    tcase_add_test(g, sig_malformed);
    suite_add_tcase(s, g);
    TCase *n = tcase_create("nonce");
    tcase_add_test(n, nonce_replay);
    tcase_add_test(n, nonce_window);
    tcase_add_test(n, nonce_full);
    tcase_add_test(n, nonce_bounded_and_growth);
    tcase_add_test(n, nonce_clock_backwards);
    tcase_add_test(n, nonce_cache_args_and_oom);
    suite_add_tcase(s, n);
    TCase *b = tcase_create("bucket");
    tcase_add_test(b, bucket_starts_full);
    tcase_add_test(b, bucket_refill);
    tcase_add_test(b, bucket_wait_is_exact);
    tcase_add_test(b, bucket_clock_backwards);
    tcase_add_test(b, bucket_bad_params);
    suite_add_tcase(s, b);
    return s;
}
