/*
 * lib/auth/sig.c - signed requests (PROTOCOL.md §2, §8): the
 * X-Chatcore-Signature header, cc_sig_sign / cc_sig_verify, and the replay
 * cache (cc_nonce_cache). docs/api/auth.md has the full rules.
 *
 * Header: elements "key=value" separated by ',' with optional spaces or
 * tabs around each element. t, n and v1 must each appear exactly once, in
 * any order; other keys are ignored so a later version can add a scheme
 * (v2=...) without breaking receivers that still run this one.
 *
 * Replay cache. A header with timestamp t verifies while |now - t| <= 300,
 * so the same header can come back up to 600 s after its first use (t
 * 300 s ahead at first use, 300 s behind at the replay). The cache must
 * therefore remember a nonce at least 600 s, and cc_nonce_cache_new
 * refuses a shorter window. Entries sit in a chained hash set (for the
 * lookup) and in a list in insertion order (for expiry): with a clock that
 * only moves forward the oldest entry is at the head, so pruning on each
 * call pops expired heads in O(1) amortized. If the caller's clock went
 * backwards, an expired entry may hide behind a live head; lookups treat
 * such an entry as absent, and it leaves at the latest when the entries
 * ahead of it do. The set never holds more than `max` entries: when full,
 * new nonces are refused (CC_EBUSY) rather than evicting live ones.
 *
 * A nonce is looked up and stored only after its MAC verified, so only a
 * holder of the secret can choose what goes in; a plain FNV-1a hash is then
 * enough (no need for a keyed hash against collision flooding).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "auth/auth_int.h"
#include "core/internal.h"

#define SIG_MAX_AGE 300       /* |now - t| allowed, seconds */
#define SIG_MIN_WINDOW 600    /* see the top of the file */
#define SIG_MAX_HEADER 1024   /* longer header values are refused */
#define NONCE_MAX 64
#define T_MAX_DIGITS 18       /* fits int64 with room */
#define BUCKETS_MIN 16
#define BUCKETS_MAX ((size_t)1 << 22)

/* ---- the replay cache ---- */

typedef struct nonce_ent {
    struct nonce_ent *hnext; /* hash chain */
    cc__list fifo;       /* insertion order */
    int64_t at;          /* when it was used */
    uint64_t hash;
    size_t len;
    char n[]; /* not NUL-terminated */
} nonce_ent;

struct cc_nonce_cache {
    cc_allocator a;
    size_t max, count;
    int64_t window_s;
    nonce_ent **buckets;
    size_t nbuckets; /* a power of two */
    cc__list fifo;   /* oldest first */
};

static size_t
nonce_size(size_t len)
{
    size_t sz = offsetof(nonce_ent, n) + len;
    return sz < sizeof(nonce_ent) ? sizeof(nonce_ent) : sz;
}

static uint64_t
fnv1a(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Expired: more than window_s seconds old. Written with unsigned math so
 * no subtraction of two arbitrary int64 values can overflow. */
static int
nonce_expired(const cc_nonce_cache *nc, const nonce_ent *e, int64_t now)
{
    return now > e->at &&
           (uint64_t)now - (uint64_t)e->at > (uint64_t)nc->window_s;
}

static void
nonce_unlink(cc_nonce_cache *nc, nonce_ent *e)
{
    nonce_ent **pp = &nc->buckets[e->hash & (nc->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    cc__list_remove(&e->fifo);
    nc->count--;
    cc__free(&nc->a, e, nonce_size(e->len));
}

static void
nonce_prune(cc_nonce_cache *nc, int64_t now)
{
    while (!cc__list_empty(&nc->fifo)) {
        nonce_ent *e = CC__CONTAINER_OF(nc->fifo.next, nonce_ent, fifo);
        if (!nonce_expired(nc, e, now))
            break;
        nonce_unlink(nc, e);
    }
}

/* Double the bucket array, up to about one bucket per entry. Failing to
 * allocate is harmless: chains just get longer. */
static void
nonce_grow(cc_nonce_cache *nc)
{
    size_t nb = nc->nbuckets * 2;
    if (nc->count < nc->nbuckets || nc->nbuckets >= nc->max ||
        nb > BUCKETS_MAX)
        return;
    nonce_ent **b = cc__calloc(&nc->a, nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < nc->nbuckets; i++) {
        nonce_ent *e = nc->buckets[i];
        while (e) {
            nonce_ent *next = e->hnext;
            nonce_ent **head = &b[e->hash & (nb - 1)];
            e->hnext = *head;
            *head = e;
            e = next;
        }
    }
    cc__free(&nc->a, nc->buckets, nc->nbuckets * sizeof *nc->buckets);
    nc->buckets = b;
    nc->nbuckets = nb;
}

/* Record a nonce used at `now`: 0, CC_ECLAIMED, CC_EBUSY or CC_ENOMEM. */
static int
nonce_use(cc_nonce_cache *nc, const char *n, size_t len, int64_t now)
{
    nonce_prune(nc, now);
    uint64_t h = fnv1a(n, len);
    for (nonce_ent *e = nc->buckets[h & (nc->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash == h && e->len == len && memcmp(e->n, n, len) == 0) {
            if (!nonce_expired(nc, e, now))
                return CC_ECLAIMED;
            nonce_unlink(nc, e); /* stale, behind a live head */
            break;
        }
    }
    if (nc->count >= nc->max)
        return CC_EBUSY;
    nonce_grow(nc);
    nonce_ent *e = cc__alloc(&nc->a, nonce_size(len));
    if (!e)
        return CC_ENOMEM;
    e->at = now;
    e->hash = h;
    e->len = len;
    memcpy(e->n, n, len);
    nonce_ent **head = &nc->buckets[h & (nc->nbuckets - 1)];
    e->hnext = *head;
    *head = e;
    cc__list_push(&nc->fifo, &e->fifo);
    nc->count++;
    return 0;
}

int
cc_nonce_cache_new(cc_nonce_cache **out, const cc_allocator *a, size_t max,
                   int64_t window_s)
{
    if (!out)
        return CC_EINVAL;
    *out = NULL;
    if (max == 0 || window_s < SIG_MIN_WINDOW)
        return CC_EINVAL;
    if (!a)
        a = cc__default_allocator();
    cc_nonce_cache *nc = cc__calloc(a, 1, sizeof *nc);
    if (!nc)
        return CC_ENOMEM;
    nc->a = *a;
    nc->max = max;
    nc->window_s = window_s;
    nc->nbuckets = BUCKETS_MIN;
    nc->buckets = cc__calloc(a, nc->nbuckets, sizeof *nc->buckets);
    if (!nc->buckets) {
        cc__free(a, nc, sizeof *nc);
        return CC_ENOMEM;
    }
    cc__list_init(&nc->fifo);
    *out = nc;
    return 0;
}

void
cc_nonce_cache_free(cc_nonce_cache *nc)
{
    if (!nc)
        return;
    while (!cc__list_empty(&nc->fifo)) {
        nonce_ent *e = CC__CONTAINER_OF(nc->fifo.next, nonce_ent, fifo);
        cc__list_remove(&e->fifo);
        cc__free(&nc->a, e, nonce_size(e->len));
    }
    cc__free(&nc->a, nc->buckets, nc->nbuckets * sizeof *nc->buckets);
    cc_allocator a = nc->a;
    cc__free(&a, nc, sizeof *nc);
}

/* ---- the header ---- */

typedef struct sig_hdr {
    const char *t, *n, *v;
    size_t tn, nn, vn;
    int64_t tval;
    uint8_t mac[CC__MAC_LEN];
} sig_hdr;

static int
is_key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

static int
nonce_valid(const char *s, size_t n)
{
    if (n == 0 || n > NONCE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Decimal, no sign, no leading zero, at most 18 digits. */
static int
parse_t(const char *s, size_t n, int64_t *v)
{
    if (n == 0 || n > T_MAX_DIGITS || (n > 1 && s[0] == '0'))
        return -1;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

/* One field: store it, refusing a second copy of a field we use. */
static int
take_field(sig_hdr *sh, const char *k, size_t kn, const char *v, size_t vn)
{
    const char **slot = NULL;
    size_t *len = NULL;
    if (kn == 1 && k[0] == 't')
        slot = &sh->t, len = &sh->tn;
    else if (kn == 1 && k[0] == 'n')
        slot = &sh->n, len = &sh->nn;
    else if (kn == 2 && k[0] == 'v' && k[1] == '1')
        slot = &sh->v, len = &sh->vn;
    else
        return 0; /* a field of a later version */
    if (*slot)
        return -1;
    *slot = v;
    *len = vn;
    return 0;
}

static int
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int
parse_header(const char *h, sig_hdr *sh)
{
    memset(sh, 0, sizeof *sh);
    if (!h)
        return -1;
    size_t len = strnlen(h, SIG_MAX_HEADER + 1);
    if (len > SIG_MAX_HEADER)
        return -1;
    const char *p = h, *end = h + len;
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        const char *k = p;
        while (p < end && is_key_char((unsigned char)*p))
            p++;
        size_t kn = (size_t)(p - k);
        if (kn == 0 || p == end || *p != '=')
            return -1;
        const char *v = ++p;
        while (p < end && *p != ',' && *p > 0x20 && *p < 0x7f)
            p++;
        size_t vn = (size_t)(p - v);
        if (vn == 0 || take_field(sh, k, kn, v, vn))
            return -1;
        while (p < end && is_ows(*p))
            p++;
        if (p == end)
            break;
        if (*p != ',')
            return -1;
        p++;
    }
    if (!sh->t || !sh->n || !sh->v)
        return -1;
    if (parse_t(sh->t, sh->tn, &sh->tval) || !nonce_valid(sh->n, sh->nn) ||
        sh->vn != 2 * CC__MAC_LEN ||
        cc__hex_decode(sh->mac, sh->v, CC__MAC_LEN))
        return -1;
    return 0;
}

/* HMAC-SHA256(secret, t "." n "." body), streamed so the body is not
 * copied. mbedtls_md_setup allocates the context: CC_ENOMEM on failure. */
static int
sig_mac(const uint8_t *key, size_t key_len, const char *t, size_t tn,
        const char *n, size_t nn, const uint8_t *body, size_t body_len,
        uint8_t mac[CC__MAC_LEN])
{
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int r = mbedtls_md_setup(
        &md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (!r)
        r = mbedtls_md_hmac_starts(&md, key, key_len);
    if (!r)
        r = mbedtls_md_hmac_update(&md, (const unsigned char *)t, tn);
    if (!r)
        r = mbedtls_md_hmac_update(&md, (const unsigned char *)".", 1);
    if (!r)
        r = mbedtls_md_hmac_update(&md, (const unsigned char *)n, nn);
    if (!r)
        r = mbedtls_md_hmac_update(&md, (const unsigned char *)".", 1);
    if (!r && body_len)
        r = mbedtls_md_hmac_update(&md, body, body_len);
    if (!r)
        r = mbedtls_md_hmac_finish(&md, mac);
    mbedtls_md_free(&md); /* zeroizes the key schedule */
    return r ? CC_ENOMEM : 0;
}

int
cc_sig_verify(const char *header, const uint8_t *secret, size_t secret_len,
              const uint8_t *body, size_t body_len, int64_t now,
              cc_nonce_cache *nc)
{
    if (!secret || secret_len == 0 || (!body && body_len))
        return CC_EINVAL;
    sig_hdr sh;
    if (parse_header(header, &sh))
        return CC_EAUTH;
    uint64_t age = now >= sh.tval ? (uint64_t)now - (uint64_t)sh.tval
                                  : (uint64_t)sh.tval - (uint64_t)now;
    if (age > SIG_MAX_AGE)
        return CC_EAUTH;
    uint8_t mac[CC__MAC_LEN];
    int r = sig_mac(secret, secret_len, sh.t, sh.tn, sh.n, sh.nn, body,
                    body_len, mac);
    if (r)
        return r;
    int ok = cc__ct_equal(mac, sh.mac, CC__MAC_LEN);
    mbedtls_platform_zeroize(mac, sizeof mac);
    if (!ok)
        return CC_EAUTH;
    return nc ? nonce_use(nc, sh.n, sh.nn, now) : 0;
}

int
cc_sig_sign(const uint8_t *secret, size_t secret_len, int64_t t,
            const char *nonce, const uint8_t *body, size_t body_len,
            char *out, size_t cap)
{
    if (!out)
        return CC_EINVAL;
    if (cap)
        out[0] = 0;
    if (!secret || secret_len == 0 || (!body && body_len) || !nonce ||
        t < 0 || t > 999999999999999999LL)
        return CC_EINVAL;
    size_t nn = strnlen(nonce, NONCE_MAX + 1);
    if (!nonce_valid(nonce, nn))
        return CC_EINVAL;
    char ts[24];
    size_t tn = (size_t)snprintf(ts, sizeof ts, "%" PRId64, t);
    /* t=<t>,n=<n>,v1=<64 hex> */
    size_t total = 2 + tn + 3 + nn + 4 + 2 * CC__MAC_LEN;
    if (total + 1 > cap)
        return CC_E2BIG;
    uint8_t mac[CC__MAC_LEN];
    int r = sig_mac(secret, secret_len, ts, tn, nonce, nn, body, body_len,
                    mac);
    if (r)
        return r;
    size_t o = 0;
    memcpy(out + o, "t=", 2), o += 2;
    memcpy(out + o, ts, tn), o += tn;
    memcpy(out + o, ",n=", 3), o += 3;
    memcpy(out + o, nonce, nn), o += nn;
    memcpy(out + o, ",v1=", 4), o += 4;
    cc__hex_encode(out + o, mac, CC__MAC_LEN);
    o += 2 * CC__MAC_LEN;
    out[o] = 0;
    return (int)o;
}
