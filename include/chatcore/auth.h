/*
 * chatcore/auth.h - tokens, signed requests and rate-limit buckets
 * (PROTOCOL.md §2, §6). docs/api/auth.md has every rule in full.
 *
 * JWT: HS256 only (any other alg, "none" included, is refused), signed with
 * the tenant secret's UTF-8 bytes. Claims tid, sub, role (visitor|agent|
 * admin), exp (required), iat, nbf, jti (optional); 30 s clock skew.
 * Signed requests: X-Chatcore-Signature: t=<unix s>,n=<nonce>,v1=<hex
 * hmac_sha256(secret, t "." n "." body)>, ±300 s, nonce single-use within
 * the window (cc_nonce_cache).
 *
 * Pure functions: the caller passes `now` (unix seconds, or milliseconds
 * for buckets); nothing reads a clock. MACs are compared in constant time.
 * Secrets are never copied or kept. An empty secret is refused
 * (CC_EINVAL): it would let anyone mint tokens.
 *
 * Threads: no globals of our own, so any thread may call these at once,
 * except that a cc_nonce_cache, like every object, belongs to one thread.
 * (cJSON, which reads the token JSON, records its last parse error in a
 * global; that is the only shared state, and nothing here reads it.)
 *
 * Memory: only cc_nonce_cache allocates through a cc_allocator. Token
 * verification allocates briefly through cJSON's and mbedTLS's own hooks
 * (the application's choice, see cJSON_InitHooks and
 * mbedtls_platform_set_calloc_free) and frees before returning.
 */
#ifndef CHATCORE_AUTH_H
#define CHATCORE_AUTH_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { CC_ROLE_VISITOR = 1, CC_ROLE_AGENT = 2, CC_ROLE_ADMIN = 3 };

/* Verified claims. Strings NUL-terminated. tid and sub are ids: 1..64
 * of [A-Za-z0-9_.:-]. jti is 1..64 printable ASCII characters other than
 * space, or "" when absent. iat is 0 when absent. iat and exp are
 * 0..2^53-1. Frozen POD. */
typedef struct cc_claims {
    char tid[65];
    char sub[65];
    char jti[65];   /* "" when absent */
    int role;       /* CC_ROLE_* */
    int64_t iat;    /* 0 when absent */
    int64_t exp;
} cc_claims;

/* Verify token (token_len bytes, no NUL needed) against secret
 * (secret_len bytes) at time `now`. Returns 0 and fills *out. Returns
 * CC_EAUTH for a NULL, empty, over-8-KiB or malformed token, a bad
 * signature, an alg other than HS256, a typ other than "JWT", a "crit"
 * header, a missing, invalid or duplicated claim, exp <= now - 30,
 * iat > now + 30 or nbf > now + 30. CC_EINVAL when out is NULL or the
 * secret is empty; CC_ENOMEM when mbedTLS cannot allocate. On any error
 * *out is zeroed. Since 0.1. */
CC_API int cc_jwt_verify(const char *token, size_t token_len,
                         const uint8_t *secret, size_t secret_len,
                         int64_t now, cc_claims *out);
/* Read the tid claim WITHOUT verifying anything but the token's shape and
 * the id rule, to find which tenant's secret to verify with; trust only
 * what cc_jwt_verify returns. Copies it into out (cap bytes incl. the NUL)
 * and returns its length; CC_EAUTH (malformed token, no or a bad tid),
 * CC_E2BIG (cap too small), CC_EINVAL (out NULL or cap 0). On error out is
 * "" when cap > 0. Since 0.1. */
CC_API int cc_jwt_peek_tenant(const char *token, size_t token_len,
                              char *out, size_t cap);
/* Mint an HS256 token for claims c into out (cap bytes incl. NUL). The
 * header is {"alg":"HS256","typ":"JWT"}, the payload has tid, sub, role,
 * iat, exp and then jti (left out when c->jti is ""), in that order,
 * without spaces. Returns its length (under 600, so a 600-byte out is
 * always enough), CC_E2BIG (cap too small), CC_EINVAL (bad id, role, jti,
 * iat or exp per cc_claims, NULL argument, empty secret) or CC_ENOMEM
 * (mbedTLS). On error out is "" when cap > 0. Since 0.1. */
CC_API int cc_jwt_mint(const cc_claims *c, const uint8_t *secret,
                       size_t secret_len, char *out, size_t cap);

typedef struct cc_nonce_cache cc_nonce_cache;
/* A replay cache of at most `max` nonces, each remembered `window_s`
 * seconds after its use (expired entries are dropped on every call, so
 * memory stays bounded by max). When full, verification is refused
 * (CC_EBUSY) rather than evicting live nonces, so a flood cannot reopen a
 * replay. window_s must be at least 600: a header stays valid for up to
 * 600 s after its first use (t 300 s ahead, then 300 s behind). Nonces
 * are only unique per signer: keep one cache per secret (tenant). `a` is
 * copied; NULL means libc. Returns 0, CC_EINVAL (out NULL, max 0,
 * window_s < 600) or CC_ENOMEM; *out is NULL on error. Since 0.1. */
CC_API int cc_nonce_cache_new(cc_nonce_cache **out, const cc_allocator *a,
                              size_t max, int64_t window_s);
/* Free the cache and every entry. NULL is a no-op. Since 0.1. */
CC_API void cc_nonce_cache_free(cc_nonce_cache *nc);

/* Verify an X-Chatcore-Signature header value (NUL-terminated) for body
 * (body_len bytes; NULL when 0). Fields t, n, v1 each exactly once, in
 * any order, spaces/tabs allowed around each; other fields are ignored.
 * t: decimal, no sign or leading zero; n: 1..64 of [A-Za-z0-9_-]; v1: 64
 * hex digits, either case. Returns 0; CC_EAUTH (NULL, malformed or over
 * 1024 bytes, bad MAC, |now - t| > 300); CC_ECLAIMED (nonce already used
 * within the window); CC_EBUSY (cache full); CC_EINVAL (empty secret,
 * NULL body with body_len > 0); CC_ENOMEM. A nonce is looked up and
 * recorded only when everything else is valid. nc may be NULL (no replay
 * check, for tests and webhooks receivers). Since 0.1. */
CC_API int cc_sig_verify(const char *header, const uint8_t *secret,
                         size_t secret_len, const uint8_t *body,
                         size_t body_len, int64_t now, cc_nonce_cache *nc);
/* Produce the header value "t=<t>,n=<nonce>,v1=<64 lowercase hex>" into
 * out (cap bytes incl. NUL; 160 is always enough). Returns its length;
 * CC_E2BIG; CC_EINVAL (t outside 0..10^18-1, nonce not 1..64 of
 * [A-Za-z0-9_-], empty secret, NULL body with body_len > 0, out NULL);
 * CC_ENOMEM (mbedTLS). On error out is "" when cap > 0. Since 0.1. */
CC_API int cc_sig_sign(const uint8_t *secret, size_t secret_len, int64_t t,
                       const char *nonce, const uint8_t *body,
                       size_t body_len, char *out, size_t cap);

/* ---- token buckets (PROTOCOL.md §6 rate limits) ---- */
/* A bucket is a frozen POD the caller stores (per user, tenant, IP). */
typedef struct cc_bucket {
    double tokens;
    uint64_t at_ms;
} cc_bucket;
/* Take one token at now_ms from a bucket of `rate` per second and `burst`
 * capacity (a fresh zeroed bucket, at_ms == 0, starts full; a clock
 * reading 0 is stored as 1). Returns 0 if allowed, else the exact
 * milliseconds until a token is available (>= 1, at most INT32_MAX):
 * retrying after that long succeeds if nobody else took one. A clock that
 * goes backwards adds no tokens. rate <= 0, burst < 1, NaN or infinite:
 * always INT32_MAX, bucket untouched. b NULL: CC_EINVAL. Since 0.1. */
CC_API int64_t cc_bucket_take(cc_bucket *b, double rate, double burst,
                              uint64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif
