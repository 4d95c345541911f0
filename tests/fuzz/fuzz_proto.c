/*
 * tests/fuzz/fuzz_proto.c - libFuzzer target for the chat protocol codec
 * (lib/proto/proto.h). The input is one client text message:
 *
 * 1. cc__proto_decode with a counting allocator; the result must be one of
 *    the codes decode may return, every field must satisfy its rule, a
 *    decoded frame must also be JSON to cJSON, and clearing the frame must
 *    give every byte back.
 * 2. What decoded is encoded again (msg and sent for a send, error with
 *    the echo for anything) and read back with cJSON: the body, cid and
 *    ref must come back equal.
 * 3. The same decode with an allocator that fails at once: no crash, no
 *    leak, and only CC__E_INTERNAL where an allocation was needed.
 * 4. The raw input as a string through the encoder's escaper: the output
 *    must be valid UTF-8 JSON, and equal to the input when that was valid
 *    UTF-8 without NUL.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* A counting allocator that can refuse everything. */
typedef struct fz_alloc {
    cc_allocator a;
    size_t bytes, nalloc;
    int fail;
} fz_alloc;

static void *
fz_malloc(void *ud, size_t n)
{
    fz_alloc *t = ud;
    t->nalloc++;
    if (t->fail)
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p)
        t->bytes += n;
    return p;
}

static void
fz_free(void *ud, void *p, size_t n)
{
    fz_alloc *t = ud;
    if (p) {
        t->bytes -= n;
        free(p);
    }
}

static void *
fz_realloc(void *ud, void *p, size_t old_n, size_t new_n)
{
    fz_alloc *t = ud;
    t->nalloc++;
    if (t->fail)
        return NULL;
    void *q = realloc(p, new_n ? new_n : 1);
    if (q)
        t->bytes = t->bytes - old_n + new_n;
    return q;
}

static void
fz_init(fz_alloc *t, int fail)
{
    t->a.alloc = fz_malloc;
    t->a.free = fz_free;
    t->a.realloc = fz_realloc;
    t->a.ud = t;
    t->bytes = t->nalloc = 0;
    t->fail = fail;
}

static int
utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0, bad;
    while (i < n) {
        size_t k = cc__proto_utf8_seq(p + i, n - i, &bad);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

static size_t
cps(const char *s)
{
    size_t c = 0;
    for (; *s; s++)
        c += ((unsigned char)*s & 0xc0) != 0x80;
    return c;
}

static void
check_frame(const cc__cframe *f)
{
    CHECK(f->type >= CC__F_PING && f->type <= CC__F_STATUS);
    switch (f->type) {
    case CC__F_SEND:
    case CC__F_ACK:
    case CC__F_READ:
    case CC__F_TYPING:
    case CC__F_SYNC:
    case CC__F_ACCEPT:
    case CC__F_TRANSFER:
    case CC__F_CLOSE:
        CHECK(cc__proto_valid_id(f->session, strlen(f->session)));
        break;
    default:
        CHECK(f->session[0] == '\0');
    }
    CHECK(f->seq <= CC__NUM_MAX && f->after <= CC__NUM_MAX);
    if (f->type == CC__F_SEND) {
        CHECK(f->cid[0] != '\0' && cps(f->cid) <= CC__CID_MAX);
        CHECK(f->kind >= CC__K_TEXT && f->kind <= CC__K_EVENT);
        CHECK(f->body_json != NULL);
        CHECK(f->body_len == strlen(f->body_json));
        CHECK(f->body_len <= CC__BODY_MAX && f->body_json[0] == '{');
        cJSON *b = cJSON_ParseWithLength(f->body_json, f->body_len);
        CHECK(b != NULL && cJSON_IsObject(b));
        cJSON_Delete(b);
        /* the echo is the ref, or else the cid */
        CHECK(f->has_ref);
        if (f->ref_is_cid)
            CHECK(strcmp(f->ref, f->cid) == 0);
    } else {
        CHECK(f->body_json == NULL && f->cid[0] == '\0');
        CHECK(!f->ref_is_cid);
    }
    if (f->type == CC__F_SYNC)
        CHECK(f->limit >= 1 && f->limit <= CC__SYNC_LIMIT_MAX);
    if (f->type == CC__F_TRANSFER)
        CHECK(f->to_null ? f->to[0] == '\0'
                         : cc__proto_valid_id(f->to, strlen(f->to)));
    if (f->type == CC__F_CLOSE)
        CHECK(cps(f->reason) <= CC__REASON_MAX);
    CHECK((f->type == CC__F_REFRESH) == (f->token != NULL));
    if (f->token)
        CHECK(cps(f->token) <= CC__TOKEN_MAX);
}

/* Encode what decoded and read it back. */
static void
reencode(const cc__cframe *f, const cc_allocator *a)
{
    cc__jbuf b;
    cc__jbuf_init(&b, a);
    if (f->type == CC__F_SEND) {
        cc__msgv m = {f->session, 1, "visitor:v", f->kind, f->body_json, 2,
                      f->cid};
        cc__enc_msg(&b, &m);
        CHECK(!b.oom && utf8_valid((const unsigned char *)b.p, b.len));
        cJSON *o = cJSON_ParseWithLength(b.p, b.len);
        CHECK(o != NULL);
        CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "body")));
        /* the body is relayed byte for byte (cJSON_Compare cannot judge
         * bodies with duplicate names); session, from and kind hold no
         * quote, so the first ,"body": is the member */
        const char *at = strstr(b.p, ",\"body\":");
        CHECK(at != NULL);
        at += 8;
        CHECK(memcmp(at, f->body_json, f->body_len) == 0);
        CHECK(strncmp(at + f->body_len, ",\"ts\":2,\"cid\":", 14) == 0);
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "cid");
        CHECK(cJSON_IsString(cid) && strcmp(cid->valuestring, f->cid) == 0);
        cJSON_Delete(o);
        cc__jbuf_reset(&b);
        cc__enc_sent(&b, f->cid, f->session, 1, 2);
        o = cJSON_ParseWithLength(b.p, b.len);
        CHECK(o != NULL);
        cJSON_Delete(o);
        cc__jbuf_reset(&b);
    }
    cc__enc_error(&b, CC__E_NOT_FOUND, "m", f->has_ref ? f->ref : NULL, -1);
    CHECK(!b.oom && utf8_valid((const unsigned char *)b.p, b.len));
    cJSON *o = cJSON_ParseWithLength(b.p, b.len);
    CHECK(o != NULL);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "ref");
    if (f->has_ref)
        CHECK(cJSON_IsString(ref) && strcmp(ref->valuestring, f->ref) == 0);
    else
        CHECK(ref == NULL);
    cJSON_Delete(o);
    cc__jbuf_free(&b);
}

static void
check_escaper(const uint8_t *data, size_t size)
{
    cc__jbuf b;
    cc__jbuf_init(&b, NULL);
    cc__jbuf_strn(&b, (const char *)data, size);
    CHECK(!b.oom && b.len >= 2 && b.p[0] == '"' && b.p[b.len - 1] == '"');
    CHECK(utf8_valid((const unsigned char *)b.p, b.len));
    cJSON *o = cJSON_ParseWithLength(b.p, b.len);
    CHECK(o != NULL && cJSON_IsString(o));
    if (utf8_valid(data, size) && memchr(data, 0, size) == NULL)
        CHECK(strlen(o->valuestring) == size &&
              memcmp(o->valuestring, data, size) == 0);
    cJSON_Delete(o);
    cc__jbuf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_alloc t;
    cc__cframe f;
    const char *msg = NULL;

    /* 1 + 2 */
    fz_init(&t, 0);
    cc__perr e = cc__proto_decode((const char *)data, size, &t.a, &f, &msg);
    CHECK(msg != NULL);
    CHECK(e == CC__E_NONE || e == CC__E_BAD_REQUEST ||
          e == CC__E_TOO_LARGE);
    if (f.has_ref) {
        CHECK(cps(f.ref) <= CC__REF_MAX);
        CHECK(utf8_valid((const unsigned char *)f.ref, strlen(f.ref)));
    } else {
        CHECK(f.ref[0] == '\0');
    }
    size_t allocs = t.nalloc;
    if (e == CC__E_NONE) {
        CHECK(msg[0] == '\0');
        check_frame(&f);
        /* strict JSON is JSON to cJSON too */
        cJSON *o = cJSON_ParseWithLength((const char *)data, size);
        CHECK(o != NULL && cJSON_IsObject(o));
        cJSON_Delete(o);
        reencode(&f, &t.a);
    } else {
        CHECK(msg[0] != '\0');
        CHECK(f.body_json == NULL && f.token == NULL);
        CHECK(t.bytes == 0);
    }
    cc__cframe_clear(&f);
    CHECK(t.bytes == 0);

    /* 3 */
    fz_init(&t, 1);
    cc__perr e2 = cc__proto_decode((const char *)data, size, &t.a, &f, &msg);
    CHECK(t.nalloc == allocs); /* decode is deterministic */
    if (e != CC__E_NONE)
        CHECK(e2 == e); /* every refusal comes before any allocation */
    else
        CHECK(e2 == (allocs ? CC__E_INTERNAL : CC__E_NONE));
    cc__cframe_clear(&f);
    CHECK(t.bytes == 0);

    /* 4 */
    check_escaper(data, size);
    return 0;
}
