/*
 * tests/fuzz/fuzz_http.c - libFuzzer target for the HTTP request parser
 * (lib/http/parser.c). The input after a 5-byte preamble is a byte stream
 * from a client. It is parsed twice: in one piece, and delivered in
 * chunks whose sizes come from the preamble (the way a connection sees
 * it, re-feeding what was not consumed). Both runs must see the same
 * messages and end the same way; every message must satisfy the
 * wrapper's contract (limits, NUL-terminated fields, lower-case names);
 * an error must be final; and a counting allocator must be back at zero
 * after cc__http_parser_free.
 *
 * Preamble: byte 0 picks the limits (small ones reach 413/431 often);
 * bytes 1..4 are the chunk sizes, used in turn (0 means 1).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* ---- counting allocator ---- */

typedef struct counter {
    cc_allocator a;
    size_t bytes, blocks;
} counter;

static void *
c_alloc(void *ud, size_t n)
{
    counter *c = ud;
    void *p = malloc(n ? n : 1);
    if (p) {
        c->bytes += n;
        c->blocks++;
    }
    return p;
}

static void
c_free(void *ud, void *p, size_t n)
{
    counter *c = ud;
    if (!p)
        return;
    CHECK(c->bytes >= n && c->blocks > 0);
    c->bytes -= n;
    c->blocks--;
    free(p);
}

static void *
c_realloc(void *ud, void *p, size_t old_n, size_t new_n)
{
    counter *c = ud;
    void *q = realloc(p, new_n ? new_n : 1);
    if (q) {
        CHECK(c->bytes >= old_n);
        c->bytes = c->bytes - old_n + new_n;
        if (!p)
            c->blocks++;
    }
    return q;
}

/* ---- what a run saw ---- */

#define MAX_MSGS 64

typedef struct outcome {
    uint64_t hash[MAX_MSGS];
    int nmsgs;
    int err;        /* negative code or 0 */
    int err_status;
    size_t rest;    /* bytes left after an upgrade */
} outcome;

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t
fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s ? s : "(null)", s ? strlen(s) + 1 : 7);
}

/* Check one complete message and fold it into a hash. */
static uint64_t
check_msg(const cc__http_parser *hp)
{
    const cc__http_msg *m = &hp->msg;
    CHECK(hp->ready == 1);
    CHECK(m->method_str != NULL);
    CHECK(m->target != NULL && m->path != NULL && m->query != NULL);
    CHECK(m->path[0] == '/' || strcmp(m->path, "*") == 0);
    CHECK(strlen(m->path) <= strlen(m->target));
    CHECK(strlen(m->query) <= strlen(m->target));
    CHECK(hp->head_bytes <= hp->max_head);
    CHECK(m->body_len <= hp->max_body);
    if (!m->body) {
        CHECK(m->body_len == 0 && m->body_cap == 0);
    } else {
        CHECK(m->body_len < m->body_cap);
        CHECK(m->body[m->body_len] == 0);
    }
    CHECK(m->keep_alive == 0 || m->keep_alive == 1);
    CHECK(m->upgrade == 0 || m->upgrade == 1);
    CHECK(m->nheaders <= m->cap_headers);

    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv_str(h, m->method_str);
    h = fnv_str(h, m->target);
    h = fnv_str(h, m->path);
    h = fnv_str(h, m->query);
    for (size_t i = 0; i < m->nheaders; i++) {
        const char *n = m->headers[i].name;
        for (const char *p = n; *p; p++)
            CHECK(!(*p >= 'A' && *p <= 'Z'));
        /* names are unique: the lookup finds this very entry */
        CHECK(cc__http_msg_header(m, n) == m->headers[i].value);
        h = fnv_str(h, n);
        h = fnv_str(h, m->headers[i].value);
    }
    if (m->body)
        h = fnv(h, m->body, m->body_len);
    int flags[4] = {m->keep_alive, m->upgrade, m->http_major, m->http_minor};
    h = fnv(h, flags, sizeof flags);

    /* the helpers must cope with whatever the parser let through */
    char out[64];
    int r = cc__http_query_get(m->query, "a", out, sizeof out);
    CHECK(r == CC_ENOENT || r == CC_E2BIG || r == CC_EINVAL ||
          (r >= 0 && (size_t)r < sizeof out && strlen(out) == (size_t)r));
    const char *why = NULL;
    int st = cc__ws_handshake_check(m, &why);
    CHECK(st == 0 || st == 400 || st == 426);
    CHECK((st == 0) == (why == NULL));
    if (st == 0) {
        char acc[29];
        CHECK(cc__ws_accept_key(cc__http_msg_header(m, "sec-websocket-key"),
                                acc) == 0);
        CHECK(strlen(acc) == 28);
    }
    return h;
}

static void
on_error(cc__http_parser *hp, outcome *o, ssize_t k)
{
    CHECK(k == CC_EHTTP); /* the allocator never fails here */
    CHECK(hp->err_status == 400 || hp->err_status == 413 ||
          hp->err_status == 431);
    CHECK(hp->err_msg != NULL && hp->err_msg[0] != 0);
    o->err = (int)k;
    o->err_status = hp->err_status;
    /* errors are final */
    CHECK(cc__http_parser_feed(hp, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n",
                               18) == k);
}

/* Deliver stream[0..n) in chunks (sizes cycling through sizes[4], or all
 * at once when sizes is NULL). */
static void
run(const uint8_t *stream, size_t n, const uint8_t *sizes, size_t max_head,
    size_t max_body, outcome *o)
{
    counter c = {{c_alloc, c_free, c_realloc, NULL}, 0, 0};
    c.a.ud = &c;
    cc__http_parser hp;
    cc__http_parser_init(&hp, &c.a, HTTP_REQUEST, max_head, max_body);
    memset(o, 0, sizeof *o);

    uint8_t *pending = malloc(n ? n : 1);
    size_t plen = 0, pos = 0, turn = 0;
    int done = 0;
    while (!done && pos < n) {
        size_t step = n;
        if (sizes) {
            step = sizes[turn++ % 4];
            if (step == 0)
                step = 1;
        }
        if (step > n - pos)
            step = n - pos;
        memcpy(pending + plen, stream + pos, step);
        plen += step;
        pos += step;
        for (;;) {
            size_t head_before = hp.head_bytes;
            ssize_t k = cc__http_parser_feed(&hp, pending, plen);
            if (k < 0) {
                on_error(&hp, o, k);
                done = 1;
                break;
            }
            CHECK((size_t)k <= plen);
            CHECK(hp.head_bytes >= head_before || hp.ready);
            memmove(pending, pending + k, plen - (size_t)k);
            plen -= (size_t)k;
            if (!hp.ready) {
                CHECK(plen == 0);
                break;
            }
            CHECK(o->nmsgs < MAX_MSGS);
            o->hash[o->nmsgs++] = check_msg(&hp);
            if (hp.msg.upgrade) {
                o->rest = plen + (n - pos);
                done = 1;
                break;
            }
            /* a complete message: again ready only after next() */
            CHECK(cc__http_parser_feed(&hp, pending, plen) == 0);
            cc__http_parser_next(&hp);
            CHECK(hp.ready == 0 && hp.head_bytes == 0);
            if (plen == 0 || o->nmsgs == MAX_MSGS) {
                if (o->nmsgs == MAX_MSGS)
                    done = 1;
                break;
            }
        }
    }
    if (!done) {
        int r = cc__http_parser_finish(&hp);
        CHECK(r == 0 || r == CC_EHTTP);
        if (r) {
            CHECK(hp.err_status == 400);
            o->err = r;
            o->err_status = hp.err_status;
        }
        CHECK(!hp.ready); /* requests are never delimited by EOF */
    }
    free(pending);
    cc__http_parser_free(&hp);
    CHECK(c.bytes == 0 && c.blocks == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    static const size_t heads[4] = {64, 200, 1024, 8192};
    static const size_t bodies[4] = {0, 16, 300, 1 << 20};
    size_t max_head = heads[data[0] & 3];
    size_t max_body = bodies[(data[0] >> 2) & 3];
    const uint8_t *sizes = data + 1;
    const uint8_t *stream = data + 5;
    size_t n = size - 5;

    outcome whole, pieces;
    run(stream, n, NULL, max_head, max_body, &whole);
    run(stream, n, sizes, max_head, max_body, &pieces);
    CHECK(whole.nmsgs == pieces.nmsgs);
    for (int i = 0; i < whole.nmsgs; i++)
        CHECK(whole.hash[i] == pieces.hash[i]);
    CHECK(whole.err == pieces.err);
    CHECK(whole.err_status == pieces.err_status);
    CHECK(whole.rest == pieces.rest);
    return 0;
}
