/*
 * tests/test_http_parser.c - the HTTP/1.1 parser wrapper (lib/http/
 * parser.c): requests whole, split at every byte boundary and byte by
 * byte; pipelining; Content-Length and chunked bodies; keep-alive rules;
 * the head (431) and body (413) limits, exactly at the boundary; garbage
 * (400); percent-decoding of the path; upgrades leaving the following
 * bytes unconsumed; responses (HTTP_RESPONSE mode, 101, EOF-delimited
 * bodies); allocation failure at every allocation; and the small helpers
 * (status text, percent-decoding, query lookup, JSON escaping).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "http/http_int.h"
#include "testutil.h"

/* ---- a caller simulation ---- */

/* What a test looks at in one parsed message (copied out of the parser). */
typedef struct seen {
    char method[16];
    char path[256];
    char query[256];
    char target[256];
    char hdrs[1024]; /* "name=value\n" for every header, in order */
    char body[4096];
    size_t body_len;
    int has_body;
    int keep_alive, upgrade, status, major, minor;
} seen;

typedef struct run {
    seen msgs[8];
    int nmsgs;
    int err;            /* the negative code, 0 if none */
    int err_status;
    const char *err_msg;
    size_t unconsumed;  /* bytes left over after an upgrade */
    char rest[256];     /* those bytes */
} run;

static void
record(seen *s, const cc__http_msg *m)
{
    memset(s, 0, sizeof *s);
    if (m->method_str)
        snprintf(s->method, sizeof s->method, "%s", m->method_str);
    if (m->path)
        snprintf(s->path, sizeof s->path, "%s", m->path);
    if (m->query)
        snprintf(s->query, sizeof s->query, "%s", m->query);
    if (m->target)
        snprintf(s->target, sizeof s->target, "%s", m->target);
    size_t o = 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        int k = snprintf(s->hdrs + o, sizeof s->hdrs - o, "%s=%s\n",
                         m->headers[i].name, m->headers[i].value);
        ck_assert(k > 0 && (size_t)k < sizeof s->hdrs - o);
        o += (size_t)k;
    }
    s->has_body = m->body != NULL;
    s->body_len = m->body_len;
    ck_assert_uint_lt(m->body_len, sizeof s->body);
    if (m->body) {
        memcpy(s->body, m->body, m->body_len);
        ck_assert_uint_eq(m->body[m->body_len], 0); /* NUL-terminated */
    }
    s->keep_alive = m->keep_alive;
    s->upgrade = m->upgrade;
    s->status = m->status;
    s->major = m->http_major;
    s->minor = m->http_minor;
}

/*
 * Deliver `data` in arrivals at the offsets in cuts[] (ascending, inside
 * (0, n)), the way a connection would: each arrival is appended to what
 * is still pending, then fed until the parser wants more. Stops at the
 * first error or after an upgrade (the rest is recorded). finish: call
 * cc__http_parser_finish at the end (EOF).
 */
static void
deliver(cc__http_parser *hp, run *r, const char *data, size_t n,
        const size_t *cuts, size_t ncuts, int finish)
{
    memset(r, 0, sizeof *r);
    char *pending = malloc(n + 1);
    size_t plen = 0, pos = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        memcpy(pending + plen, data + pos, end - pos);
        plen += end - pos;
        pos = end;
        for (;;) {
            ssize_t k = cc__http_parser_feed(hp, (const uint8_t *)pending,
                                             plen);
            if (k < 0) {
                r->err = (int)k;
                r->err_status = hp->err_status;
                r->err_msg = hp->err_msg;
                ck_assert_ptr_nonnull(hp->err_msg);
                free(pending);
                return;
            }
            ck_assert_uint_le((size_t)k, plen);
            memmove(pending, pending + k, plen - (size_t)k);
            plen -= (size_t)k;
            if (!hp->ready) {
                ck_assert_uint_eq(plen, 0); /* consumed all it was given */
                break;
            }
            ck_assert_int_lt(r->nmsgs, 8);
            record(&r->msgs[r->nmsgs++], &hp->msg);
            if (hp->msg.upgrade) {
                memcpy(pending + plen, data + pos, n - pos);
                plen += n - pos;
                r->unconsumed = plen;
                ck_assert_uint_lt(plen, sizeof r->rest);
                memcpy(r->rest, pending, plen);
                free(pending);
                return;
            }
            cc__http_parser_next(hp);
            ck_assert_int_eq(hp->ready, 0);
            ck_assert_uint_eq(hp->head_bytes, 0);
            if (plen == 0)
                break;
        }
    }
    free(pending);
    if (finish) {
        int rc = cc__http_parser_finish(hp);
        if (rc) {
            r->err = rc;
            r->err_status = hp->err_status;
            r->err_msg = hp->err_msg;
            return;
        }
        if (hp->ready) {
            record(&r->msgs[r->nmsgs++], &hp->msg);
            cc__http_parser_next(hp);
        }
    }
}

#define MAX_HEAD 8192
#define MAX_BODY 65536

/* Parse with a fresh parser and a counting allocator; checks no leak. */
static void
parse_cuts(int type, const char *data, size_t n, const size_t *cuts,
           size_t ncuts, size_t max_head, size_t max_body, int finish,
           run *r)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc__http_parser hp;
    cc__http_parser_init(&hp, &ta.a, type, max_head, max_body);
    deliver(&hp, r, data, n, cuts, ncuts, finish);
    cc__http_parser_free(&hp);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}

static void
parse_whole(int type, const char *data, run *r)
{
    parse_cuts(type, data, strlen(data), NULL, 0, MAX_HEAD, MAX_BODY, 0, r);
}

static void
assert_same(const run *a, const run *b)
{
    ck_assert_int_eq(a->err, b->err);
    ck_assert_int_eq(a->err_status, b->err_status);
    ck_assert_int_eq(a->nmsgs, b->nmsgs);
    ck_assert_uint_eq(a->unconsumed, b->unconsumed);
    ck_assert_mem_eq(a->rest, b->rest, a->unconsumed);
    for (int i = 0; i < a->nmsgs; i++) {
        const seen *x = &a->msgs[i], *y = &b->msgs[i];
        ck_assert_str_eq(x->method, y->method);
        ck_assert_str_eq(x->path, y->path);
        ck_assert_str_eq(x->query, y->query);
        ck_assert_str_eq(x->target, y->target);
        ck_assert_str_eq(x->hdrs, y->hdrs);
        ck_assert_uint_eq(x->body_len, y->body_len);
        ck_assert_mem_eq(x->body, y->body, x->body_len);
        ck_assert_int_eq(x->keep_alive, y->keep_alive);
        ck_assert_int_eq(x->upgrade, y->upgrade);
        ck_assert_int_eq(x->status, y->status);
    }
}

/* The same result for the whole input, for two pieces split at every
 * byte boundary, and for one byte at a time. */
static void
check_all_splits(int type, const char *data, size_t max_head,
                 size_t max_body, int finish, run *whole)
{
    size_t n = strlen(data);
    parse_cuts(type, data, n, NULL, 0, max_head, max_body, finish, whole);
    for (size_t k = 1; k < n; k++) {
        run r;
        parse_cuts(type, data, n, &k, 1, max_head, max_body, finish, &r);
        assert_same(whole, &r);
    }
    size_t *cuts = malloc(n * sizeof *cuts);
    for (size_t k = 1; k < n; k++)
        cuts[k - 1] = k;
    run r;
    parse_cuts(type, data, n, cuts, n ? n - 1 : 0, max_head, max_body, finish,
               &r);
    assert_same(whole, &r);
    free(cuts);
}

/* ---- requests ---- */

START_TEST(test_simple_get)
{
    const char *req = "GET /a/b?x=1&y=%20 HTTP/1.1\r\n"
                      "Host: example.com\r\n"
                      "User-Agent: T/1\r\n"
                      "\r\n";
    cc__http_parser hp;
    cc__http_parser_init(&hp, NULL, HTTP_REQUEST, MAX_HEAD, MAX_BODY);
    ssize_t k = cc__http_parser_feed(&hp, (const uint8_t *)req, strlen(req));
    ck_assert_int_eq(k, (ssize_t)strlen(req));
    ck_assert_int_eq(hp.ready, 1);
    ck_assert_uint_eq(hp.head_bytes, strlen(req));
    const cc__http_msg *m = &hp.msg;
    ck_assert_int_eq(m->method, HTTP_GET);
    ck_assert_str_eq(m->method_str, "GET");
    ck_assert_str_eq(m->target, "/a/b?x=1&y=%20");
    ck_assert_str_eq(m->path, "/a/b");
    ck_assert_str_eq(m->query, "x=1&y=%20");
    ck_assert_int_eq(m->http_major, 1);
    ck_assert_int_eq(m->http_minor, 1);
    ck_assert_int_eq(m->keep_alive, 1);
    ck_assert_int_eq(m->upgrade, 0);
    ck_assert_uint_eq(m->nheaders, 2);
    ck_assert_str_eq(m->headers[0].name, "host");
    ck_assert_str_eq(m->headers[0].value, "example.com");
    ck_assert_str_eq(m->headers[1].name, "user-agent");
    ck_assert_str_eq(cc__http_msg_header(m, "HOST"), "example.com");
    ck_assert_str_eq(cc__http_msg_header(m, "User-Agent"), "T/1");
    ck_assert_ptr_null(cc__http_msg_header(m, "accept"));
    ck_assert_ptr_null(m->body);
    ck_assert_uint_eq(m->body_len, 0);
    /* until next(), more input is not taken */
    ck_assert_int_eq(cc__http_parser_feed(&hp, (const uint8_t *)req, 3), 0);
    cc__http_parser_next(&hp);
    ck_assert_int_eq(hp.ready, 0);
    ck_assert_ptr_null(hp.msg.path);
    ck_assert_uint_eq(hp.head_bytes, 0);
    cc__http_parser_free(&hp);
}
END_TEST

START_TEST(test_headers_joined_and_trimmed)
{
    run r;
    parse_whole(HTTP_REQUEST,
                "GET / HTTP/1.1\r\n"
                "Accept: a/b  \t\r\n"
                "X-Empty:\r\n"
                "ACCEPT:   c/d\r\n"
                "x-empty: later\r\n"
                "Cookie: a=1\r\n"
                "cookie: b=2\r\n"
                "cookie: \r\n"
                "\r\n",
                &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 1);
    ck_assert_str_eq(r.msgs[0].hdrs, "accept=a/b, c/d\n"
                                     "x-empty=later\n"
                                     "cookie=a=1, b=2\n");
}
END_TEST

static const char PIPELINE[] =
    "POST /submit?q=%41 HTTP/1.1\r\n"
    "Host: h\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 13\r\n"
    "X-Rep: 1\r\n"
    "X-Rep: 2\r\n"
    "\r\n"
    "{\"a\":\"hello\"}"
    "PUT /chunks HTTP/1.1\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "5\r\nhello\r\n"
    "6;ext=1\r\n world\r\n"
    "0\r\n"
    "X-Trailer: t\r\n"
    "\r\n"
    "GET /last HTTP/1.1\r\n"
    "Connection: close\r\n"
    "\r\n";

START_TEST(test_pipeline_every_split)
{
    run r;
    check_all_splits(HTTP_REQUEST, PIPELINE, MAX_HEAD, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 3);
    ck_assert_str_eq(r.msgs[0].method, "POST");
    ck_assert_str_eq(r.msgs[0].path, "/submit");
    ck_assert_str_eq(r.msgs[0].query, "q=%41");
    ck_assert_str_eq(r.msgs[0].hdrs, "host=h\n"
                                     "content-type=application/json\n"
                                     "content-length=13\n"
                                     "x-rep=1, 2\n");
    ck_assert_uint_eq(r.msgs[0].body_len, 13);
    ck_assert_str_eq(r.msgs[0].body, "{\"a\":\"hello\"}");
    ck_assert_int_eq(r.msgs[0].keep_alive, 1);

    ck_assert_str_eq(r.msgs[1].method, "PUT");
    ck_assert_str_eq(r.msgs[1].path, "/chunks");
    ck_assert_uint_eq(r.msgs[1].body_len, 11);
    ck_assert_str_eq(r.msgs[1].body, "hello world");
    /* trailers are not headers */
    ck_assert_str_eq(r.msgs[1].hdrs, "transfer-encoding=chunked\n");

    ck_assert_str_eq(r.msgs[2].method, "GET");
    ck_assert_str_eq(r.msgs[2].path, "/last");
    ck_assert_int_eq(r.msgs[2].has_body, 0);
    ck_assert_int_eq(r.msgs[2].keep_alive, 0);
}
END_TEST

START_TEST(test_pipeline_consumed_counts)
{
    /* two requests in one buffer: the first feed stops right after the
     * first, the second feed takes exactly the second */
    const char *a = "GET /one HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *b = "POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz";
    char buf[256];
    snprintf(buf, sizeof buf, "%s%s", a, b);
    cc__http_parser hp;
    cc__http_parser_init(&hp, NULL, HTTP_REQUEST, MAX_HEAD, MAX_BODY);
    ssize_t k = cc__http_parser_feed(&hp, (uint8_t *)buf, strlen(buf));
    ck_assert_int_eq(k, (ssize_t)strlen(a));
    ck_assert_int_eq(hp.ready, 1);
    ck_assert_str_eq(hp.msg.path, "/one");
    cc__http_parser_next(&hp);
    ssize_t k2 = cc__http_parser_feed(&hp, (uint8_t *)buf + k,
                                      strlen(buf) - (size_t)k);
    ck_assert_int_eq(k2, (ssize_t)strlen(b));
    ck_assert_int_eq(hp.ready, 1);
    ck_assert_str_eq(hp.msg.path, "/two");
    ck_assert_str_eq((char *)hp.msg.body, "xyz");
    cc__http_parser_next(&hp);
    /* between messages: blank lines are tolerated, nothing is ready */
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)"\r\n", 2), 2);
    ck_assert_int_eq(hp.ready, 0);
    ck_assert_int_eq(cc__http_parser_finish(&hp), 0);
    cc__http_parser_free(&hp);
}
END_TEST

START_TEST(test_keep_alive_rules)
{
    static const struct {
        const char *req;
        int ka;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
        {"POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 0},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(cases); i++) {
        run r;
        parse_whole(HTTP_REQUEST, cases[i].req, &r);
        ck_assert_int_eq(r.err, 0);
        ck_assert_int_eq(r.nmsgs, 1);
        ck_assert_msg(r.msgs[0].keep_alive == cases[i].ka, "case %zu", i);
    }
    run r;
    parse_whole(HTTP_REQUEST, "GET / HTTP/1.0\r\n\r\n", &r);
    ck_assert_int_eq(r.msgs[0].major, 1);
    ck_assert_int_eq(r.msgs[0].minor, 0);
}
END_TEST

START_TEST(test_data_after_close_is_ignored)
{
    /* llhttp (non-strict build) swallows what follows a message that
     * ends the connection; nothing of it becomes a request */
    run r;
    parse_whole(HTTP_REQUEST,
                "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
                "GET /again HTTP/1.1\r\n\r\n",
                &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 1);
    ck_assert_str_eq(r.msgs[0].path, "/");
    ck_assert_int_eq(r.msgs[0].keep_alive, 0);
}
END_TEST

/* ---- limits ---- */

/* A request whose head is exactly `len` bytes. */
static char *
head_of_len(size_t len)
{
    const char *pre = "GET / HTTP/1.1\r\nX-Pad: ";
    size_t fixed = strlen(pre) + 4; /* value, then "\r\n\r\n" */
    ck_assert_uint_gt(len, fixed);
    char *s = malloc(len + 1);
    memcpy(s, pre, strlen(pre));
    memset(s + strlen(pre), 'a', len - fixed);
    memcpy(s + len - 4, "\r\n\r\n", 4);
    s[len] = 0;
    ck_assert_uint_eq(strlen(s), len);
    return s;
}

START_TEST(test_head_limit_exact)
{
    size_t lim = 200;
    char *ok = head_of_len(lim);
    char *big = head_of_len(lim + 1);
    run r;
    check_all_splits(HTTP_REQUEST, ok, lim, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 1);
    check_all_splits(HTTP_REQUEST, big, lim, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, CC_EHTTP);
    ck_assert_int_eq(r.err_status, 431);
    ck_assert_int_eq(r.nmsgs, 0);

    /* the second request of a connection has the whole limit again,
     * and is refused on its own size */
    char two[1024];
    snprintf(two, sizeof two, "%s%s", ok, ok);
    check_all_splits(HTTP_REQUEST, two, lim, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 2);
    snprintf(two, sizeof two, "%s%s", ok, big);
    check_all_splits(HTTP_REQUEST, two, lim, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err_status, 431);
    ck_assert_int_eq(r.nmsgs, 1);

    /* a head that never ends is refused as soon as it passes the limit */
    cc__http_parser hp;
    cc__http_parser_init(&hp, NULL, HTTP_REQUEST, lim, MAX_BODY);
    ssize_t k = cc__http_parser_feed(&hp, (uint8_t *)big, lim);
    ck_assert_int_eq(k, (ssize_t)lim);
    ck_assert_uint_eq(hp.head_bytes, lim);
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)"b", 1), CC_EHTTP);
    ck_assert_int_eq(hp.err_status, 431);
    /* errors are final */
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)"\r\n", 2),
                     CC_EHTTP);
    cc__http_parser_free(&hp);
    free(ok);
    free(big);
}
END_TEST

START_TEST(test_body_limit_content_length)
{
    /* exactly the limit is fine */
    const char *ok = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
    run r;
    check_all_splits(HTTP_REQUEST, ok, MAX_HEAD, 10, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_str_eq(r.msgs[0].body, "0123456789");

    /* one over is refused from the head alone, before any body byte */
    const char *head = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
    cc__http_parser hp;
    cc__http_parser_init(&hp, NULL, HTTP_REQUEST, MAX_HEAD, 10);
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)head, strlen(head)),
                     CC_EHTTP);
    ck_assert_int_eq(hp.err_status, 413);
    ck_assert_ptr_nonnull(hp.err_msg);
    cc__http_parser_free(&hp);

    /* memory follows the bytes that came, not the declared length, and
     * ends exactly at it */
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc__http_parser_init(&hp, &ta.a, HTTP_REQUEST, MAX_HEAD, 1 << 20);
    const char *h2 = "POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)h2, strlen(h2)),
                     (ssize_t)strlen(h2));
    ck_assert_uint_lt(ta.bytes, 2048);
    static char chunk[100000];
    memset(chunk, 'q', sizeof chunk);
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)chunk, 10), 10);
    ck_assert_uint_le(hp.msg.body_cap, 1024);
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)chunk + 10,
                                          sizeof chunk - 10),
                     (ssize_t)(sizeof chunk - 10));
    ck_assert_int_eq(hp.ready, 1);
    ck_assert_uint_eq(hp.msg.body_len, 100000);
    ck_assert_uint_eq(hp.msg.body_cap, 100001);
    cc__http_parser_free(&hp);
    ck_assert_uint_eq(ta.bytes, 0);

    /* a huge declared length too */
    cc__http_parser_init(&hp, NULL, HTTP_REQUEST, MAX_HEAD, MAX_BODY);
    const char *huge =
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n";
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)huge, strlen(huge)),
                     CC_EHTTP);
    ck_assert_int_eq(hp.err_status, 413);
    cc__http_parser_free(&hp);
}
END_TEST

START_TEST(test_body_limit_chunked)
{
    const char *ok = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "4\r\nabcd\r\n6\r\nefghij\r\n0\r\n\r\n";
    const char *big = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "4\r\nabcd\r\n7\r\nefghijk\r\n0\r\n\r\n";
    run r;
    check_all_splits(HTTP_REQUEST, ok, MAX_HEAD, 10, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_str_eq(r.msgs[0].body, "abcdefghij");
    check_all_splits(HTTP_REQUEST, big, MAX_HEAD, 10, 0, &r);
    ck_assert_int_eq(r.err, CC_EHTTP);
    ck_assert_int_eq(r.err_status, 413);
    ck_assert_int_eq(r.nmsgs, 0);
}
END_TEST

/* Chunk-size lines, extensions, CRLFs and trailers after the head may
 * add up to max_head bytes; one more is a 413, wherever it falls. */
START_TEST(test_chunk_metadata_limit)
{
    const char *head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t lim = strlen(head) + 10; /* the head fits with room to spare */
    char req[512];
    run r;

    /* "1\r\n" + "\r\n" = 5 bytes of framing per chunk; the last chunk
     * "0\r\n\r\n" is 5 more */
    size_t nchunks = (lim - 5) / 5; /* framing exactly at the limit */
    for (int over = 0; over <= 1; over++) {
        size_t o = (size_t)sprintf(req, "%s", head);
        size_t framing = 5;
        for (size_t i = 0; i < nchunks; i++, framing += 5)
            o += (size_t)sprintf(req + o, "1\r\nx\r\n");
        size_t pad = lim - framing + (size_t)over; /* an extension */
        o += (size_t)sprintf(req + o, "0;");
        memset(req + o, 'e', pad - 1 > 0 ? pad - 1 : 0);
        o += pad - 1;
        sprintf(req + o, "\r\n\r\n");
        check_all_splits(HTTP_REQUEST, req, lim, MAX_BODY, 0, &r);
        if (!over) {
            ck_assert_int_eq(r.err, 0);
            ck_assert_int_eq(r.nmsgs, 1);
            ck_assert_uint_eq(r.msgs[0].body_len, nchunks);
        } else {
            ck_assert_int_eq(r.err, CC_EHTTP);
            ck_assert_int_eq(r.err_status, 413);
            ck_assert_int_eq(r.nmsgs, 0);
        }
    }

    /* trailers count too */
    snprintf(req, sizeof req, "%s0\r\nX-T: %0*d\r\n\r\n", head, 200, 7);
    check_all_splits(HTTP_REQUEST, req, lim, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, CC_EHTTP);
    ck_assert_int_eq(r.err_status, 413);
    snprintf(req, sizeof req, "%s0\r\nX-T: 7\r\n\r\n", head);
    check_all_splits(HTTP_REQUEST, req, lim, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_str_eq(r.msgs[0].hdrs, "transfer-encoding=chunked\n");

    /* a syntax error after the limit was passed: the limit is reported,
     * and before it: the syntax error, however the input is split */
    snprintf(req, sizeof req, "%s0\r\nX-T: %0*d\r\nbad line\r\n\r\n",
             head, 200, 7);
    check_all_splits(HTTP_REQUEST, req, lim, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err_status, 413);
    snprintf(req, sizeof req, "%s0\r\nbad line\r\nX-T: %0*d\r\n\r\n", head,
             200, 7);
    check_all_splits(HTTP_REQUEST, req, lim, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err_status, 400);
}
END_TEST

START_TEST(test_big_body_grows)
{
    /* a chunked body much larger than the first buffer */
    size_t n = 40000;
    char *req = malloc(n * 2);
    int o = sprintf(req, "POST / HTTP/1.1\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < n / 1000; i++) {
        o += sprintf(req + o, "3e8\r\n");
        memset(req + o, 'a' + (int)(i % 26), 1000);
        o += 1000;
        o += sprintf(req + o, "\r\n");
    }
    o += sprintf(req + o, "0\r\n\r\n");
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc__http_parser hp;
    cc__http_parser_init(&hp, &ta.a, HTTP_REQUEST, MAX_HEAD, n);
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)req, (size_t)o), o);
    ck_assert_int_eq(hp.ready, 1);
    ck_assert_uint_eq(hp.msg.body_len, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(hp.msg.body[i], 'a' + (int)((i / 1000) % 26));
    /* never more than the limit + 1 */
    ck_assert_uint_le(hp.msg.body_cap, n + 1);
    cc__http_parser_free(&hp);
    ck_assert_uint_eq(ta.bytes, 0);
    free(req);
}
END_TEST

/* ---- malformed input ---- */

START_TEST(test_garbage_400)
{
    static const char *bad[] = {
        "\x01\x02\x03\r\n\r\n",
        "HELLO WORLD\r\n\r\n",
        "GET / HTTP/1.1\r\nHost example.com\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "GET / XTTP/1.1\r\n\r\n",
        "GET\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nBad\x01Name: v\r\n\r\n",
        "GET nopath HTTP/1.1\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++) {
        run r;
        parse_cuts(HTTP_REQUEST, bad[i], strlen(bad[i]), NULL, 0, MAX_HEAD,
                   MAX_BODY, 0, &r);
        ck_assert_msg(r.err == CC_EHTTP, "case %zu: err %d", i, r.err);
        ck_assert_int_eq(r.err_status, 400);
        ck_assert_ptr_nonnull(r.err_msg);
        ck_assert_uint_gt(strlen(r.err_msg), 0);
        ck_assert_int_eq(r.nmsgs, 0);
    }
}
END_TEST

START_TEST(test_eof_inside_message)
{
    run r;
    const char *s = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab";
    parse_cuts(HTTP_REQUEST, s, strlen(s), NULL, 0, MAX_HEAD, MAX_BODY, 1,
               &r);
    ck_assert_int_eq(r.err, CC_EHTTP);
    ck_assert_int_eq(r.err_status, 400);
}
END_TEST

/* ---- targets and percent-decoding ---- */

START_TEST(test_path_decoding)
{
    static const struct {
        const char *target, *path, *query;
    } ok[] = {
        {"/", "/", ""},
        {"/a%20b/%E2%82%AC", "/a b/\xE2\x82\xAC", ""},
        {"/x%2Fy", "/x/y", ""},
        {"/a+b", "/a+b", ""},
        {"/%41%62?q=%20+1", "/Ab", "q=%20+1"},
        {"/p?", "/p", ""},
        {"/p?a=1?b", "/p", "a=1?b"},
        {"http://example.com/abs?z=1", "/abs", "z=1"},
        {"http://example.com", "/", ""},
        {"HTTPS://h:8443/s%20p", "/s p", ""},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(ok); i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n\r\n", ok[i].target);
        run r;
        parse_whole(HTTP_REQUEST, req, &r);
        ck_assert_msg(r.err == 0, "case %zu", i);
        ck_assert_str_eq(r.msgs[0].target, ok[i].target);
        ck_assert_str_eq(r.msgs[0].path, ok[i].path);
        ck_assert_str_eq(r.msgs[0].query, ok[i].query);
    }
    run r;
    parse_whole(HTTP_REQUEST, "OPTIONS * HTTP/1.1\r\n\r\n", &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_str_eq(r.msgs[0].path, "*");
    ck_assert_str_eq(r.msgs[0].method, "OPTIONS");

    static const char *bad[] = {"/%", "/%4", "/%zz", "/a%G1", "/%00",
                                "/a%00b", "/%4?x"};
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n\r\n", bad[i]);
        parse_whole(HTTP_REQUEST, req, &r);
        ck_assert_msg(r.err == CC_EHTTP, "case %zu", i);
        ck_assert_int_eq(r.err_status, 400);
        ck_assert_str_eq(r.err_msg, "bad percent-encoding in path");
    }
}
END_TEST

START_TEST(test_pct_decode)
{
    char out[16];
    ck_assert_int_eq(cc__http_pct_decode("a%20b+c", 7, out, sizeof out, 0), 5);
    ck_assert_str_eq(out, "a b+c");
    ck_assert_int_eq(cc__http_pct_decode("a%20b+c", 7, out, sizeof out, 1), 5);
    ck_assert_str_eq(out, "a b c");
    ck_assert_int_eq(cc__http_pct_decode("%e2%82%AC", 9, out, sizeof out, 0),
                     3);
    ck_assert_str_eq(out, "\xE2\x82\xAC");
    /* only n bytes are read */
    ck_assert_int_eq(cc__http_pct_decode("abc%zz", 3, out, sizeof out, 0), 3);
    ck_assert_str_eq(out, "abc");
    ck_assert_int_eq(cc__http_pct_decode("", 0, out, sizeof out, 0), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(cc__http_pct_decode("%", 1, out, sizeof out, 0), -1);
    ck_assert_int_eq(cc__http_pct_decode("%1", 2, out, sizeof out, 0), -1);
    ck_assert_int_eq(cc__http_pct_decode("%1g", 3, out, sizeof out, 0), -1);
    ck_assert_int_eq(cc__http_pct_decode("%00", 3, out, sizeof out, 0), -1);
    ck_assert_int_eq(cc__http_pct_decode("a\0b", 3, out, sizeof out, 0), -1);
    /* capacity counts the NUL */
    ck_assert_int_eq(cc__http_pct_decode("abcd", 4, out, 5, 0), 4);
    ck_assert_int_eq(cc__http_pct_decode("abcd", 4, out, 4, 0), -1);
    ck_assert_int_eq(cc__http_pct_decode("%41%41", 6, out, 3, 0), 2);
    ck_assert_str_eq(out, "AA");
    ck_assert_int_eq(cc__http_pct_decode("a", 1, out, 0, 0), -1);
}
END_TEST

START_TEST(test_query_get)
{
    const char *q = "a=1&b=hello+world&c=%E2%82%AC&empty=&flag&a=2&x%20y=z"
                    "&bad=%zz";
    char out[32];
    ck_assert_int_eq(cc__http_query_get(q, "a", out, sizeof out), 1);
    ck_assert_str_eq(out, "1"); /* the first one wins */
    ck_assert_int_eq(cc__http_query_get(q, "b", out, sizeof out), 11);
    ck_assert_str_eq(out, "hello world");
    ck_assert_int_eq(cc__http_query_get(q, "c", out, sizeof out), 3);
    ck_assert_str_eq(out, "\xE2\x82\xAC");
    ck_assert_int_eq(cc__http_query_get(q, "empty", out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(cc__http_query_get(q, "flag", out, sizeof out), 0);
    ck_assert_int_eq(cc__http_query_get(q, "x y", out, sizeof out), 1);
    ck_assert_str_eq(out, "z");
    ck_assert_int_eq(cc__http_query_get(q, "missing", out, sizeof out),
                     CC_ENOENT);
    ck_assert_int_eq(cc__http_query_get(q, "", out, sizeof out), CC_ENOENT);
    ck_assert_int_eq(cc__http_query_get(q, "fla", out, sizeof out),
                     CC_ENOENT);
    ck_assert_int_eq(cc__http_query_get(q, "flagx", out, sizeof out),
                     CC_ENOENT);
    ck_assert_int_eq(cc__http_query_get(q, "b", out, 11), CC_E2BIG);
    ck_assert_int_eq(cc__http_query_get(q, "b", out, 12), 11);
    ck_assert_int_eq(cc__http_query_get(q, "bad", out, sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc__http_query_get("", "a", out, sizeof out), CC_ENOENT);
    ck_assert_int_eq(cc__http_query_get(NULL, "a", out, sizeof out),
                     CC_ENOENT);
}
END_TEST

START_TEST(test_json_escape)
{
    char out[64];
    ck_assert_int_eq(cc__json_escape("plain", out, sizeof out), 5);
    ck_assert_str_eq(out, "plain");
    ck_assert_int_eq(cc__json_escape("a\"b\\c\n\r\t\b\f\x01\x1f\x7f", out,
                                     sizeof out),
                     (ssize_t)strlen("a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001"
                                     "\\u001f\\u007f"));
    ck_assert_str_eq(out,
                     "a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f");
    ck_assert_int_eq(cc__json_escape("\xE2\x82\xAC", out, sizeof out), 3);
    ck_assert_str_eq(out, "\xE2\x82\xAC");
    ck_assert_int_eq(cc__json_escape("", out, sizeof out), 0);
    /* capacity includes the NUL, escapes are never cut in half */
    ck_assert_int_eq(cc__json_escape("abc", out, 4), 3);
    ck_assert_int_eq(cc__json_escape("abc", out, 3), -1);
    ck_assert_int_eq(cc__json_escape("a\"", out, 4), 3);
    ck_assert_int_eq(cc__json_escape("a\"", out, 3), -1);
    ck_assert_int_eq(cc__json_escape("x", out, 0), -1);
}
END_TEST

START_TEST(test_status_text)
{
    ck_assert_str_eq(cc__http_status_text(200), "OK");
    ck_assert_str_eq(cc__http_status_text(101), "Switching Protocols");
    ck_assert_str_eq(cc__http_status_text(304), "Not Modified");
    ck_assert_str_eq(cc__http_status_text(400), "Bad Request");
    ck_assert_str_eq(cc__http_status_text(404), "Not Found");
    ck_assert_str_eq(cc__http_status_text(405), "Method Not Allowed");
    ck_assert_str_eq(cc__http_status_text(408), "Request Timeout");
    ck_assert_str_eq(cc__http_status_text(413), "Payload Too Large");
    ck_assert_str_eq(cc__http_status_text(426), "Upgrade Required");
    ck_assert_str_eq(cc__http_status_text(429), "Too Many Requests");
    ck_assert_str_eq(cc__http_status_text(431),
                     "Request Header Fields Too Large");
    ck_assert_str_eq(cc__http_status_text(503), "Service Unavailable");
    ck_assert_str_eq(cc__http_status_text(299), "Unknown");
    ck_assert_str_eq(cc__http_status_text(-1), "Unknown");
}
END_TEST

/* ---- upgrades ---- */

static const char UPGRADE[] = "GET /ws?t=1 HTTP/1.1\r\n"
                              "Host: h\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: keep-alive, Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n";

START_TEST(test_upgrade_leaves_rest)
{
    /* the frame bytes after the head are not HTTP and must survive */
    char buf[512];
    const char frame[] = "\x81\x85\x01\x02\x03\x04GARBAGE\r\n\r\n";
    snprintf(buf, sizeof buf, "%s%s", UPGRADE, frame);
    run r;
    check_all_splits(HTTP_REQUEST, buf, MAX_HEAD, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 1);
    ck_assert_int_eq(r.msgs[0].upgrade, 1);
    ck_assert_str_eq(r.msgs[0].path, "/ws");
    ck_assert_str_eq(r.msgs[0].query, "t=1");
    ck_assert_uint_eq(r.unconsumed, strlen(frame));
    ck_assert_mem_eq(r.rest, frame, strlen(frame));

    /* one feed: the return value is exactly the head */
    cc__http_parser hp;
    cc__http_parser_init(&hp, NULL, HTTP_REQUEST, MAX_HEAD, MAX_BODY);
    ssize_t k = cc__http_parser_feed(&hp, (uint8_t *)buf, strlen(buf));
    ck_assert_int_eq(k, (ssize_t)strlen(UPGRADE));
    ck_assert_int_eq(hp.ready, 1);
    ck_assert_int_eq(hp.msg.upgrade, 1);
    ck_assert_str_eq(cc__http_msg_header(&hp.msg, "sec-websocket-key"),
                     "dGhlIHNhbXBsZSBub25jZQ==");
    cc__http_parser_free(&hp);

    /* Upgrade without Connection: upgrade is an ordinary request */
    parse_whole(HTTP_REQUEST,
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
                "GET /2 HTTP/1.1\r\n\r\n",
                &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 2);
    ck_assert_int_eq(r.msgs[0].upgrade, 0);

    /* an upgrade request with a body is refused */
    parse_whole(HTTP_REQUEST,
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
                "Connection: upgrade\r\nContent-Length: 3\r\n\r\nabc",
                &r);
    ck_assert_int_eq(r.err, CC_EHTTP);
    ck_assert_int_eq(r.err_status, 400);
}
END_TEST

START_TEST(test_upgrade_head_limit)
{
    /* the limit applies to upgrade heads too, exactly */
    size_t n = strlen(UPGRADE);
    run r;
    parse_cuts(HTTP_REQUEST, UPGRADE, n, NULL, 0, n, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.msgs[0].upgrade, 1);
    parse_cuts(HTTP_REQUEST, UPGRADE, n, NULL, 0, n - 1, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, CC_EHTTP);
    ck_assert_int_eq(r.err_status, 431);
}
END_TEST

/* ---- responses ---- */

START_TEST(test_response_basic)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi"
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                    "HTTP/1.1 204 No Content\r\n\r\n";
    run r;
    check_all_splits(HTTP_RESPONSE, s, MAX_HEAD, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 3);
    ck_assert_int_eq(r.msgs[0].status, 200);
    ck_assert_str_eq(r.msgs[0].body, "hi");
    ck_assert_str_eq(r.msgs[0].hdrs, "content-length=2\nx-a=b\n");
    ck_assert_int_eq(r.msgs[0].keep_alive, 1);
    ck_assert_str_eq(r.msgs[0].method, "");
    ck_assert_int_eq(r.msgs[1].status, 404);
    ck_assert_int_eq(r.msgs[1].has_body, 0);
    ck_assert_int_eq(r.msgs[2].status, 204);
}
END_TEST

START_TEST(test_response_101)
{
    const char *head = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                       "\r\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s\x81\x02hi", head);
    run r;
    check_all_splits(HTTP_RESPONSE, buf, MAX_HEAD, MAX_BODY, 0, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 1);
    ck_assert_int_eq(r.msgs[0].status, 101);
    ck_assert_int_eq(r.msgs[0].upgrade, 1);
    ck_assert_uint_eq(r.unconsumed, 4);
    ck_assert_mem_eq(r.rest, "\x81\x02hi", 4);

    cc__http_parser hp;
    cc__http_parser_init(&hp, NULL, HTTP_RESPONSE, MAX_HEAD, MAX_BODY);
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)buf, strlen(buf)),
                     (ssize_t)strlen(head));
    ck_assert_int_eq(hp.msg.status, 101);
    ck_assert_str_eq(cc__http_msg_header(&hp.msg, "sec-websocket-accept"),
                     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    cc__http_parser_free(&hp);

    /* a refusal instead of 101: an ordinary response with its body */
    const char *no = "HTTP/1.1 426 Upgrade Required\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Content-Length: 4\r\n\r\nnope";
    parse_whole(HTTP_RESPONSE, no, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.msgs[0].status, 426);
    ck_assert_int_eq(r.msgs[0].upgrade, 0);
    ck_assert_str_eq(r.msgs[0].body, "nope");
}
END_TEST

START_TEST(test_response_until_eof)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                    "all of this until the end";
    run r;
    check_all_splits(HTTP_RESPONSE, s, MAX_HEAD, MAX_BODY, 1, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.nmsgs, 1);
    ck_assert_str_eq(r.msgs[0].body, "all of this until the end");
    ck_assert_int_eq(r.msgs[0].keep_alive, 0);

    /* finish twice, and after next(): nothing more */
    cc__http_parser hp;
    cc__http_parser_init(&hp, NULL, HTTP_RESPONSE, MAX_HEAD, MAX_BODY);
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)s, strlen(s)),
                     (ssize_t)strlen(s));
    ck_assert_int_eq(hp.ready, 0);
    ck_assert_int_eq(cc__http_parser_finish(&hp), 0);
    ck_assert_int_eq(hp.ready, 1);
    ck_assert_int_eq(cc__http_parser_finish(&hp), 0);
    cc__http_parser_next(&hp);
    ck_assert_int_eq(cc__http_parser_finish(&hp), 0);
    ck_assert_int_eq(hp.ready, 0);
    cc__http_parser_free(&hp);

    /* body limit applies to EOF-delimited bodies */
    parse_cuts(HTTP_RESPONSE, s, strlen(s), NULL, 0, MAX_HEAD, 5, 1, &r);
    ck_assert_int_eq(r.err, CC_EHTTP);
    ck_assert_int_eq(r.err_status, 413);

    /* a bad status line */
    parse_whole(HTTP_RESPONSE, "HTTP/1.1 2x0 OK\r\n\r\n", &r);
    ck_assert_int_eq(r.err, CC_EHTTP);
    ck_assert_int_eq(r.err_status, 400);
}
END_TEST

/* ---- allocation failures ---- */

#define B16 "bbbbbbbbbbbbbbbb"
#define B128 B16 B16 B16 B16 B16 B16 B16 B16
#define B1024 B128 B128 B128 B128 B128 B128 B128 B128

static const char OOM_INPUT[] =
    "POST /p%20q?x=1 HTTP/1.1\r\n"
    "Host: h\r\n"
    "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\n"
    "I: 9\r\nJ: 10\r\n"
    "A: again\r\n"
    "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "400\r\n"
    B1024
    "\r\n"
    "3\r\nccc\r\n"
    "0\r\n\r\n"
    "PUT /second HTTP/1.1\r\nContent-Length: 5\r\nK: v\r\n\r\nhello";

static int
run_with_fail_at(size_t fail_at, size_t step, size_t *nalloc)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    ta.fail_at = fail_at;
    cc__http_parser hp;
    cc__http_parser_init(&hp, &ta.a, HTTP_REQUEST, MAX_HEAD, MAX_BODY);
    const uint8_t *p = (const uint8_t *)OOM_INPUT;
    size_t n = strlen(OOM_INPUT), off = 0, avail = 0;
    int rc = 0, msgs = 0;
    while (off < n) {
        avail = avail + step > n ? n : avail + step;
        ssize_t k = cc__http_parser_feed(&hp, p + off, avail - off);
        if (k < 0) {
            rc = (int)k;
            /* sticky */
            ck_assert_int_eq(cc__http_parser_feed(&hp, p + off, 1), rc);
            break;
        }
        off += (size_t)k;
        if (hp.ready) {
            msgs++;
            if (msgs == 1) {
                ck_assert_uint_eq(hp.msg.body_len, 1027);
                ck_assert_str_eq(cc__http_msg_header(&hp.msg, "a"),
                                 "1, again");
                ck_assert_str_eq(hp.msg.path, "/p q");
            } else {
                ck_assert_str_eq((char *)hp.msg.body, "hello");
            }
            cc__http_parser_next(&hp);
        }
    }
    if (rc == 0)
        ck_assert_int_eq(msgs, 2);
    cc__http_parser_free(&hp);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
    *nalloc = ta.nalloc;
    return rc;
}

START_TEST(test_alloc_failure_every_index)
{
    static const size_t steps[] = {1, 7, 100000};
    for (size_t s = 0; s < CC__ARRAY_LEN(steps); s++) {
        size_t total;
        ck_assert_int_eq(run_with_fail_at(0, steps[s], &total), 0);
        ck_assert_uint_gt(total, 10);
        for (size_t i = 1; i <= total; i++) {
            size_t na;
            int rc = run_with_fail_at(i, steps[s], &na);
            ck_assert_msg(rc == CC_ENOMEM, "step %zu fail_at %zu: rc %d",
                          steps[s], i, rc);
        }
    }
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("http_parser");
    TCase *tc = tcase_create("requests");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_simple_get);
    tcase_add_test(tc, test_headers_joined_and_trimmed);
    tcase_add_test(tc, test_pipeline_every_split);
    tcase_add_test(tc, test_pipeline_consumed_counts);
    tcase_add_test(tc, test_keep_alive_rules);
    tcase_add_test(tc, test_data_after_close_is_ignored);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_head_limit_exact);
    tcase_add_test(tc, test_body_limit_content_length);
    tcase_add_test(tc, test_body_limit_chunked);
    tcase_add_test(tc, test_chunk_metadata_limit);
    tcase_add_test(tc, test_big_body_grows);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_test(tc, test_garbage_400);
    tcase_add_test(tc, test_eof_inside_message);
    suite_add_tcase(s, tc);

    tc = tcase_create("targets");
    tcase_add_test(tc, test_path_decoding);
    tcase_add_test(tc, test_pct_decode);
    tcase_add_test(tc, test_query_get);
    tcase_add_test(tc, test_json_escape);
    tcase_add_test(tc, test_status_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("upgrade");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_upgrade_leaves_rest);
    tcase_add_test(tc, test_upgrade_head_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("responses");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_response_basic);
    tcase_add_test(tc, test_response_101);
    tcase_add_test(tc, test_response_until_eof);
    suite_add_tcase(s, tc);

    tc = tcase_create("oom");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_alloc_failure_every_index);
    suite_add_tcase(s, tc);
    return s;
}
