/*
 * lib/core/internal.h - what every module of the library shares: the ctx
 * structure, allocation through the ctx's hooks, small helpers.
 * Internal non-static names use the cc__ prefix.
 */
#ifndef CC_CORE_INTERNAL_H
#define CC_CORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chatcore/chatcore.h"

#define CC__UNUSED(x) ((void)(x))
#define CC__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CC__CONTAINER_OF(ptr, type, field) \
    ((type *)((char *)(ptr)-offsetof(type, field)))

/* Intrusive doubly linked list (a ring with a head node). */
typedef struct cc__list {
    struct cc__list *next, *prev;
} cc__list;

static inline void cc__list_init(cc__list *h) { h->next = h->prev = h; }
static inline bool cc__list_empty(const cc__list *h) { return h->next == h; }
static inline void cc__list_push(cc__list *h, cc__list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}
static inline void cc__list_remove(cc__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* Intrusive string-keyed hash map (lib/core/map.c). The key must stay
 * valid and unchanged while the node is in the map (point it into the
 * entry). Not thread-safe. */
typedef struct cc__hnode {
    struct cc__hnode *next;
    const char *key;
    uint32_t h;
} cc__hnode;
typedef struct cc__map {
    cc__hnode **b;
    size_t nb, n;
    const cc_allocator *a;
} cc__map;
uint32_t cc__hash_str(const char *s);
void cc__map_init(cc__map *m, const cc_allocator *a);
void cc__map_free(cc__map *m);          /* the bucket array only */
cc__hnode *cc__map_get(const cc__map *m, const char *key);
int cc__map_put(cc__map *m, cc__hnode *n, const char *key); /* no dup check */
void cc__map_del(cc__map *m, cc__hnode *n);
/* Iterate: n = cc__map_next(m, &it, NULL) then n = cc__map_next(m, &it, n).
 * Do not delete the current node while iterating (save next first). */
cc__hnode *cc__map_next(const cc__map *m, size_t *it, cc__hnode *cur);

/* One node of the cross-thread post queue. */
typedef struct cc__post {
    struct cc__post *next;
    cc_post_cb fn;
    void *data;
} cc__post;

#define CC__READ_BUF_SIZE (64 * 1024)
#define CC__TLS_BUF_SIZE (16 * 1024 + 256)

struct cc_ctx {
    uv_loop_t *loop;
    cc_allocator a;
    void *data;
    /* cross-thread posts (MPSC under a mutex) */
    uv_async_t async;
    uv_mutex_t post_mu;
    cc__post *post_head, *post_tail;
    int closing; /* guarded by post_mu */
    /* one read buffer per loop: libuv calls alloc_cb then read_cb for the
     * same handle back to back, so a shared buffer is safe; connections
     * keep only what a partial frame leaves over. */
    uint8_t *read_buf;
    int read_buf_busy;
    /* per-loop write batching: connections with queued output */
    uv_check_t flush_check;
    /* active while output waits, so the poll does not block: output
     * queued from a timer or before the poll is written in the same loop
     * turn, not after the next event */
    uv_idle_t flush_idle;
    cc__list dirty;
    /* cached HTTP Date header value, refreshed once a second */
    char http_date[40];
    uint64_t http_date_at;
    cc_close_cb close_cb;
    void *close_data;
    int handles_open;
    /* every connection of this loop (servers' and clients'), for the
     * timeout sweep; one timer per loop instead of one per connection */
    cc__list conns;
    uv_timer_t sweep;
    int sweep_on;
    /* recycled outbound segments and write requests (no allocation per
     * message on the hot path) */
    void *seg_free;       /* large (16 KiB) segments */
    unsigned seg_free_n;
    void *sseg_small_free; /* small (1 KiB) segments */
    unsigned sseg_small_free_n;
    void *wreq_free;
    unsigned wreq_free_n;
    void *sseg_free; /* header-only segments that reference shared frames */
    unsigned sseg_free_n;
    /* TLS decrypt scratch, allocated on first TLS connection */
    uint8_t *tls_buf;
    /* xorshift state for client masking keys (not for secrets) */
    uint64_t prng;
};

/* Allocation through the ctx (or the libc default when a is NULL-equivalent).
 * Sizes are checked for overflow. Return NULL on failure. */
void *cc__alloc(const cc_allocator *a, size_t n);
void *cc__calloc(const cc_allocator *a, size_t count, size_t size);
void *cc__realloc(const cc_allocator *a, void *p, size_t old_n, size_t new_n);
void cc__free(const cc_allocator *a, void *p, size_t n);
char *cc__strdup(const cc_allocator *a, const char *s);
/* frees a string made by cc__strdup (size = strlen + 1) */
void cc__free_str(const cc_allocator *a, char *s);
/* The libc allocator (static const table: no mutable global). */
const cc_allocator *cc__default_allocator(void);

#define CC__ALLOC(ctx, n) cc__alloc(&(ctx)->a, (n))
#define CC__CALLOC(ctx, c, n) cc__calloc(&(ctx)->a, (c), (n))
#define CC__FREE(ctx, p, n) cc__free(&(ctx)->a, (p), (n))

/* Case-insensitive ASCII compare helpers. */
int cc__strcaseeq(const char *a, const char *b);
int cc__strncaseeq(const char *a, const char *b, size_t n);
/* Does comma-separated header value `list` contain `token`
 * (case-insensitive, whitespace-trimmed)? */
int cc__header_has_token(const char *list, const char *token);

/* The ctx's cached "Date:" value for HTTP responses (RFC 7231 IMF-fixdate). */
const char *cc__ctx_http_date(cc_ctx *ctx);

/* The wire contract's id rule: 1..64 characters of [A-Za-z0-9_.:-].
 * s may be NULL when n is 0. Returns 1 or 0. */
int cc__valid_id(const char *s, size_t n);
/* Value of a hex digit (either case), or -1. */
int cc__hex_digit(int c);
/* Value of a base64 digit, or -1: url = 0 for RFC 4648 §4 ("+/"),
 * url = 1 for base64url §5 ("-_"). Padding is not a digit. */
int cc__b64_digit(int c, int url);

/* Number of decimal/size helpers */
size_t cc__u64_to_str(char *out, uint64_t v);

#endif
