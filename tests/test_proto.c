/*
 * tests/test_proto.c - the chat protocol codec (lib/proto/): every client
 * frame of PROTOCOL.md §4 decoded, valid and invalid (each missing field,
 * each wrongly typed field, each limit at the limit and one over, counted
 * in code points), the number rules, ref echo, precedence, the strict JSON
 * pre-pass, and every server frame encoded and read back with cJSON,
 * escaping included. Each test checks that the counting allocator ends at
 * 0 bytes, and OOM paths run with the failing allocator. The decisions
 * tested here are the ones docs/protocol.md lists.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "proto/proto.h"
#include "testutil.h"

static cc_test_alloc ta;

/* Strings built by S()/rep(), freed in teardown. */
static char *pool[4096];
static size_t npool;

static char *
keep(char *p)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_lt(npool, CC__ARRAY_LEN(pool));
    pool[npool++] = p;
    return p;
}

static char *
S(const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&p, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(r, 0);
    return keep(p);
}

/* unit repeated n times */
static char *
rep(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *p = malloc(u * n + 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        memcpy(p + i * u, unit, u);
    p[u * n] = '\0';
    return keep(p);
}

static void
setup(void)
{
    cc_test_alloc_init(&ta);
    npool = 0;
}

static void
teardown(void)
{
    for (size_t i = 0; i < npool; i++)
        free(pool[i]);
    npool = 0;
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}

/* ---- decode helpers ---- */

#define NOREF NULL

/* Decode; on error check code, message, echo; nothing may stay
 * allocated after an error. */
static void
expect_err_n(int line, const char *json, size_t n, cc__perr want,
             const char *want_msg, const char *want_ref)
{
    cc__cframe f;
    const char *msg = "unset";
    cc__perr e = cc__proto_decode(json, n, &ta.a, &f, &msg);
    ck_assert_msg(e == want, "line %d: [%.200s] -> %s (%s), want %s", line,
                  json, cc__proto_err_code(e), msg, cc__proto_err_code(want));
    ck_assert_ptr_nonnull(msg);
    if (want_msg)
        ck_assert_msg(strcmp(msg, want_msg) == 0,
                      "line %d: message [%s], want [%s]", line, msg,
                      want_msg);
    if (want_ref) {
        ck_assert_msg(f.has_ref == 1, "line %d: no ref echoed", line);
        ck_assert_str_eq(f.ref, want_ref);
    } else {
        ck_assert_msg(f.has_ref == 0, "line %d: unexpected echo [%s]", line,
                      f.ref);
        ck_assert_str_eq(f.ref, "");
    }
    ck_assert_ptr_null(f.body_json);
    ck_assert_ptr_null(f.token);
    ck_assert_uint_eq(ta.bytes, 0);
    cc__cframe_clear(&f);
}

#define ERR(json, code, msg, ref)                                            \
    expect_err_n(__LINE__, (json), strlen(json), (code), (msg), (ref))
#define BAD(json, msg) ERR((json), CC__E_BAD_REQUEST, (msg), NOREF)
#define BIG(json, msg) ERR((json), CC__E_TOO_LARGE, (msg), NOREF)

static void
expect_ok_n(int line, const char *json, size_t n, cc__cframe *f)
{
    const char *msg = "unset";
    cc__perr e = cc__proto_decode(json, n, &ta.a, f, &msg);
    ck_assert_msg(e == CC__E_NONE, "line %d: [%.200s] -> %s (%s)", line, json,
                  cc__proto_err_code(e), msg);
    ck_assert_str_eq(msg, "");
}

#define OK(json, f) expect_ok_n(__LINE__, (json), strlen(json), (f))

/* ---- helpers, names ---- */

START_TEST(test_names)
{
    static const char *const want[] = {
        "internal", "bad_request", "unauthorized", "forbidden", "not_found",
        "not_in_session", "already_taken", "invalid_state", "rate_limited",
        "too_large", "internal",
    };
    for (int i = 0; i <= CC__E_INTERNAL; i++)
        ck_assert_str_eq(cc__proto_err_code((cc__perr)i), want[i]);
    ck_assert_str_eq(cc__proto_err_code((cc__perr)99), "internal");
    ck_assert_str_eq(cc__proto_err_code((cc__perr)-1), "internal");

    ck_assert_str_eq(cc__kind_name(CC__K_TEXT), "text");
    ck_assert_str_eq(cc__kind_name(CC__K_IMAGE), "image");
    ck_assert_str_eq(cc__kind_name(CC__K_FILE), "file");
    ck_assert_str_eq(cc__kind_name(CC__K_EVENT), "event");
    ck_assert_str_eq(cc__kind_name((cc__kind)0), "text");
    ck_assert_str_eq(cc__kind_name((cc__kind)9), "text");

    static const char *const types[] = {
        "ping", "refresh", "send", "ack", "read", "typing", "sync",
        "accept", "transfer", "close", "status",
    };
    for (int t = CC__F_PING; t <= CC__F_STATUS; t++)
        ck_assert_str_eq(cc__ftype_name((cc__ftype)t), types[t - 1]);
    ck_assert_ptr_null(cc__ftype_name((cc__ftype)0));
    ck_assert_ptr_null(cc__ftype_name((cc__ftype)12));
}
END_TEST

START_TEST(test_valid_id)
{
    ck_assert_int_eq(cc__proto_valid_id("S_1", 3), 1);
    ck_assert_int_eq(cc__proto_valid_id("a", 1), 1);
    ck_assert_int_eq(cc__proto_valid_id("AZaz09_.:-", 10), 1);
    ck_assert_int_eq(cc__proto_valid_id("", 0), 0);
    ck_assert_int_eq(cc__proto_valid_id(NULL, 0), 0);
    const char *a64 = rep("a", 64), *a65 = rep("a", 65);
    ck_assert_int_eq(cc__proto_valid_id(a64, 64), 1);
    ck_assert_int_eq(cc__proto_valid_id(a65, 65), 0);
    static const char *const bad[] = {
        "a b", "a/b", "a\"b", "a\\b", "a+b", "a@b", "a#b", "a,b", "a;b",
        "\xc3\xa9", "a\tb", "a~b", "a*b", "a!b", "a=b", "a%b",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        ck_assert_msg(cc__proto_valid_id(bad[i], strlen(bad[i])) == 0,
                      "%s", bad[i]);
    /* n counts: an embedded NUL is a bad character */
    ck_assert_int_eq(cc__proto_valid_id("ab\0c", 4), 0);
    ck_assert_int_eq(cc__proto_valid_id("ab\0c", 2), 1);
}
END_TEST

/* ---- every client frame, valid ---- */

START_TEST(test_ping)
{
    cc__cframe f;
    OK("{\"type\":\"ping\"}", &f);
    ck_assert_int_eq(f.type, CC__F_PING);
    ck_assert_int_eq(f.has_ref, 0);
    ck_assert_str_eq(f.ref, "");
    cc__cframe_clear(&f);
    /* a ping allocates nothing of ours */
    ck_assert_uint_eq(ta.nalloc, 0);

    OK(" \t\r\n{ \"type\" : \"ping\" , \"ref\" : \"p-1\" } \n", &f);
    ck_assert_int_eq(f.type, CC__F_PING);
    ck_assert_int_eq(f.has_ref, 1);
    ck_assert_int_eq(f.ref_is_cid, 0);
    ck_assert_str_eq(f.ref, "p-1");
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_refresh)
{
    cc__cframe f;
    OK("{\"type\":\"refresh\",\"token\":\"eyJ.a.b\"}", &f);
    ck_assert_int_eq(f.type, CC__F_REFRESH);
    ck_assert_str_eq(f.token, "eyJ.a.b");
    ck_assert_uint_eq(ta.bytes, 8);
    cc__cframe_clear(&f);
    ck_assert_ptr_null(f.token);
    ck_assert_uint_eq(ta.bytes, 0);

    /* the codec does not judge tokens: "" is for auth (unauthorized) */
    OK("{\"type\":\"refresh\",\"token\":\"\"}", &f);
    ck_assert_str_eq(f.token, "");
    cc__cframe_clear(&f);

    /* 4096 characters ok, 4097 too large (code points, not bytes) */
    OK(S("{\"type\":\"refresh\",\"token\":\"%s\"}", rep("t", 4096)), &f);
    ck_assert_uint_eq(strlen(f.token), 4096);
    cc__cframe_clear(&f);
    BIG(S("{\"type\":\"refresh\",\"token\":\"%s\"}", rep("t", 4097)),
        "token: over 4096 characters");
    OK(S("{\"type\":\"refresh\",\"token\":\"%s\"}", rep("\xc3\xa9", 4096)), &f);
    ck_assert_uint_eq(strlen(f.token), 8192);
    cc__cframe_clear(&f);
    BIG(S("{\"type\":\"refresh\",\"token\":\"%s\"}", rep("\xc3\xa9", 4097)),
        "token: over 4096 characters");
}
END_TEST

START_TEST(test_send)
{
    static const struct {
        const char *name;
        cc__kind k;
    } kinds[] = {{"text", CC__K_TEXT}, {"image", CC__K_IMAGE},
                 {"file", CC__K_FILE}, {"event", CC__K_EVENT}};
    for (size_t i = 0; i < CC__ARRAY_LEN(kinds); i++) {
        cc__cframe f;
        OK(S("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c-1\","
             "\"kind\":\"%s\",\"body\":{\"text\":\"hi\"}}",
             kinds[i].name),
           &f);
        ck_assert_int_eq(f.type, CC__F_SEND);
        ck_assert_str_eq(f.session, "S_1");
        ck_assert_str_eq(f.cid, "c-1");
        ck_assert_int_eq(f.kind, kinds[i].k);
        ck_assert_str_eq(f.body_json, "{\"text\":\"hi\"}");
        ck_assert_uint_eq(f.body_len, 13);
        /* no ref: the echo is the cid */
        ck_assert_int_eq(f.has_ref, 1);
        ck_assert_int_eq(f.ref_is_cid, 1);
        ck_assert_str_eq(f.ref, "c-1");
        ck_assert_uint_eq(ta.bytes, 14);
        cc__cframe_clear(&f);
        ck_assert_uint_eq(ta.bytes, 0);
    }

    cc__cframe f;
    /* with a ref, the ref is the echo; members in any order */
    OK("{\"body\":{},\"ref\":\"r9\",\"kind\":\"event\",\"cid\":\"c\","
       "\"session\":\"S_2\",\"type\":\"send\"}",
       &f);
    ck_assert_str_eq(f.ref, "r9");
    ck_assert_int_eq(f.ref_is_cid, 0);
    ck_assert_str_eq(f.cid, "c");
    ck_assert_str_eq(f.body_json, "{}");
    ck_assert_uint_eq(f.body_len, 2);
    cc__cframe_clear(&f);

    /* body: compacted, otherwise byte for byte (escapes and number text
     * kept, whitespace inside strings kept) */
    OK("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c\",\"kind\":\"text\","
       "\"body\": { \"t\" : \"a b\\n\" ,\r\n\t\"n\" : [ 1 , 2.50 , -0 , 1e5 ,"
       " true , null ] , \"u\":\"\\u00e9\\/\" , \"o\" : { } } }",
       &f);
    ck_assert_str_eq(f.body_json,
                     "{\"t\":\"a b\\n\",\"n\":[1,2.50,-0,1e5,true,null],"
                     "\"u\":\"\\u00e9\\/\",\"o\":{}}");
    ck_assert_uint_eq(f.body_len, strlen(f.body_json));
    cc__cframe_clear(&f);

    /* U+0000 inside the body is relayed as written, not cut off */
    OK("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c\",\"kind\":\"text\","
       "\"body\":{\"t\":\"a\\u0000b\"}}",
       &f);
    ck_assert_str_eq(f.body_json, "{\"t\":\"a\\u0000b\"}");
    cc__cframe_clear(&f);

    /* raw UTF-8 in the body passes through */
    OK("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c\",\"kind\":\"text\","
       "\"body\":{\"t\":\"\xe4\xb8\xad\xf0\x9f\x98\x80\"}}",
       &f);
    ck_assert_str_eq(f.body_json, "{\"t\":\"\xe4\xb8\xad\xf0\x9f\x98\x80\"}");
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_ack_read)
{
    cc__cframe f;
    OK("{\"type\":\"ack\",\"session\":\"S_1\",\"seq\":42}", &f);
    ck_assert_int_eq(f.type, CC__F_ACK);
    ck_assert_str_eq(f.session, "S_1");
    ck_assert(f.seq == 42);
    cc__cframe_clear(&f);
    OK("{\"type\":\"read\",\"session\":\"S_1\",\"seq\":7}", &f);
    ck_assert_int_eq(f.type, CC__F_READ);
    ck_assert(f.seq == 7);
    cc__cframe_clear(&f);
    /* 0 is allowed: nothing acked yet */
    OK("{\"type\":\"ack\",\"session\":\"S_1\",\"seq\":0}", &f);
    ck_assert(f.seq == 0);
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_typing)
{
    cc__cframe f;
    OK("{\"type\":\"typing\",\"session\":\"S_1\",\"on\":true}", &f);
    ck_assert_int_eq(f.type, CC__F_TYPING);
    ck_assert_int_eq(f.on, 1);
    cc__cframe_clear(&f);
    OK("{\"type\":\"typing\",\"session\":\"S_1\",\"on\":false}", &f);
    ck_assert_int_eq(f.on, 0);
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_sync)
{
    cc__cframe f;
    /* defaults */
    OK("{\"type\":\"sync\",\"session\":\"S_1\"}", &f);
    ck_assert_int_eq(f.type, CC__F_SYNC);
    ck_assert(f.after == 0);
    ck_assert_int_eq(f.limit, 50);
    cc__cframe_clear(&f);
    /* null = absent = default */
    OK("{\"type\":\"sync\",\"session\":\"S_1\",\"after\":null,\"limit\":null}",
       &f);
    ck_assert(f.after == 0);
    ck_assert_int_eq(f.limit, 50);
    cc__cframe_clear(&f);
    OK("{\"type\":\"sync\",\"session\":\"S_1\",\"after\":0}", &f);
    ck_assert(f.after == 0);
    ck_assert_int_eq(f.limit, 50);
    cc__cframe_clear(&f);
    OK("{\"type\":\"sync\",\"session\":\"S_1\",\"after\":9007199254740991}",
       &f);
    ck_assert(f.after == UINT64_C(9007199254740991));
    cc__cframe_clear(&f);

    static const struct {
        const char *lit;
        int want;
    } lim[] = {
        {"1", 1},     {"2", 2},     {"50", 50},     {"199", 199},
        {"200", 200}, {"201", 200}, {"1000", 200},  {"1e9", 200},
        {"9007199254740991", 200},  {"1.0", 1},     {"2e2", 200},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(lim); i++) {
        OK(S("{\"type\":\"sync\",\"session\":\"S_1\",\"after\":5,"
             "\"limit\":%s}",
             lim[i].lit),
           &f);
        ck_assert_msg(f.limit == lim[i].want, "%s -> %d", lim[i].lit,
                      f.limit);
        ck_assert(f.after == 5);
        cc__cframe_clear(&f);
    }
    const char *lmsg =
        "limit: must be from 1 to 9007199254740991 (above 200 means 200)";
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"limit\":0}", lmsg);
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"limit\":-0}", lmsg);
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"limit\":-1}", lmsg);
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"limit\":9007199254740992}",
        lmsg);
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"limit\":1e300}", lmsg);
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"limit\":1.5}",
        "limit: must be an integer");
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"limit\":\"10\"}",
        "limit: must be an integer");
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"after\":-1}",
        "after: must be from 0 to 9007199254740991");
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"after\":0.5}",
        "after: must be an integer");
    /* after is checked before limit */
    BAD("{\"type\":\"sync\",\"session\":\"S_1\",\"limit\":0,\"after\":-1}",
        "after: must be from 0 to 9007199254740991");
}
END_TEST

START_TEST(test_accept)
{
    cc__cframe f;
    OK("{\"type\":\"accept\",\"session\":\"S_abc.def:1-2\"}", &f);
    ck_assert_int_eq(f.type, CC__F_ACCEPT);
    ck_assert_str_eq(f.session, "S_abc.def:1-2");
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_transfer)
{
    cc__cframe f;
    OK("{\"type\":\"transfer\",\"session\":\"S_1\",\"to\":\"a_7\"}", &f);
    ck_assert_int_eq(f.type, CC__F_TRANSFER);
    ck_assert_str_eq(f.to, "a_7");
    ck_assert_int_eq(f.to_null, 0);
    cc__cframe_clear(&f);
    OK("{\"type\":\"transfer\",\"session\":\"S_1\",\"to\":null}", &f);
    ck_assert_str_eq(f.to, "");
    ck_assert_int_eq(f.to_null, 1);
    cc__cframe_clear(&f);
    /* missing is not null */
    BAD("{\"type\":\"transfer\",\"session\":\"S_1\"}", "to: missing");
    BAD("{\"type\":\"transfer\",\"session\":\"S_1\",\"to\":\"\"}",
        "to: not a valid id ([A-Za-z0-9_.:-], 1 to 64)");
    BAD("{\"type\":\"transfer\",\"session\":\"S_1\",\"to\":\"a 7\"}",
        "to: not a valid id ([A-Za-z0-9_.:-], 1 to 64)");
    OK(S("{\"type\":\"transfer\",\"session\":\"S_1\",\"to\":\"%s\"}",
         rep("a", 64)),
       &f);
    ck_assert_uint_eq(strlen(f.to), 64);
    cc__cframe_clear(&f);
    BIG(S("{\"type\":\"transfer\",\"session\":\"S_1\",\"to\":\"%s\"}",
          rep("a", 65)),
        "to: over 64 characters");
    BAD("{\"type\":\"transfer\",\"session\":\"S_1\",\"to\":null,\"to\":null}",
        "to: given more than once");
}
END_TEST

START_TEST(test_close)
{
    cc__cframe f;
    OK("{\"type\":\"close\",\"session\":\"S_1\"}", &f);
    ck_assert_int_eq(f.type, CC__F_CLOSE);
    ck_assert_str_eq(f.reason, "");
    cc__cframe_clear(&f);
    OK("{\"type\":\"close\",\"session\":\"S_1\",\"reason\":null}", &f);
    ck_assert_str_eq(f.reason, "");
    cc__cframe_clear(&f);
    OK("{\"type\":\"close\",\"session\":\"S_1\",\"reason\":\"done, "
       "thanks\\n\\\"ok\\\"\"}",
       &f);
    ck_assert_str_eq(f.reason, "done, thanks\n\"ok\"");
    cc__cframe_clear(&f);
    OK("{\"type\":\"close\",\"session\":\"S_1\",\"reason\":\"\"}", &f);
    ck_assert_str_eq(f.reason, "");
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_status)
{
    cc__cframe f;
    OK("{\"type\":\"status\",\"status\":\"online\"}", &f);
    ck_assert_int_eq(f.type, CC__F_STATUS);
    ck_assert_int_eq(f.status_away, 0);
    cc__cframe_clear(&f);
    OK("{\"type\":\"status\",\"status\":\"away\"}", &f);
    ck_assert_int_eq(f.status_away, 1);
    cc__cframe_clear(&f);
    static const char *const bad[] = {"busy", "Online", "AWAY", "", "offline",
                                      "online "};
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        BAD(S("{\"type\":\"status\",\"status\":\"%s\"}", bad[i]),
            "status: must be online or away");
}
END_TEST

/* ---- each missing and each wrongly typed field, every frame type ---- */

typedef struct fspec {
    const char *name;
    const char *valid;     /* a valid JSON value */
    int required;
    const char *type_msg;  /* message for a wrongly typed value */
    const char *wrong[8];  /* wrongly typed values */
} fspec;

typedef struct tspec {
    const char *type;
    fspec f[5];
} tspec;

#define STR_WRONG {"1", "true", "false", "{}", "[]", "[\"x\"]", "0.5", NULL}
#define INT_WRONG {"\"5\"", "true", "{}", "[]", "[5]", "1.5", "-0.5", NULL}

static const tspec TSPECS[] = {
    {"refresh", {{"token", "\"tok\"", 1, "token: must be a string", STR_WRONG}}},
    {"send",
     {{"session", "\"S_1\"", 1, "session: must be a string", STR_WRONG},
      {"cid", "\"c1\"", 1, "cid: must be a string", STR_WRONG},
      {"kind", "\"text\"", 1, "kind: must be a string", STR_WRONG},
      {"body", "{\"t\":1}", 1, "body: must be an object",
       {"1", "\"{}\"", "[]", "[{}]", "true", "false", "0.5", NULL}}}},
    {"ack",
     {{"session", "\"S_1\"", 1, "session: must be a string", STR_WRONG},
      {"seq", "3", 1, "seq: must be an integer", INT_WRONG}}},
    {"read",
     {{"session", "\"S_1\"", 1, "session: must be a string", STR_WRONG},
      {"seq", "3", 1, "seq: must be an integer", INT_WRONG}}},
    {"typing",
     {{"session", "\"S_1\"", 1, "session: must be a string", STR_WRONG},
      {"on", "true", 1, "on: must be true or false",
       {"1", "0", "\"true\"", "{}", "[]", "[true]", "\"\"", NULL}}}},
    {"sync",
     {{"session", "\"S_1\"", 1, "session: must be a string", STR_WRONG},
      {"after", "3", 0, "after: must be an integer", INT_WRONG},
      {"limit", "10", 0, "limit: must be an integer", INT_WRONG}}},
    {"accept",
     {{"session", "\"S_1\"", 1, "session: must be a string", STR_WRONG}}},
    {"transfer",
     {{"session", "\"S_1\"", 1, "session: must be a string", STR_WRONG},
      {"to", "\"a_2\"", 1, "to: must be an agent id or null", STR_WRONG}}},
    {"close",
     {{"session", "\"S_1\"", 1, "session: must be a string", STR_WRONG},
      {"reason", "\"bye\"", 0, "reason: must be a string", STR_WRONG}}},
    {"status",
     {{"status", "\"away\"", 1, "status: must be a string", STR_WRONG}}},
};

/* The frame of type t with every field valid, except field `skip` left
 * out (skip < 0: none) or given the value `over`. */
static char *
build(const tspec *t, int skip, const char *over)
{
    char *p = S("{\"type\":\"%s\"", t->type);
    for (int i = 0; i < 5 && t->f[i].name; i++) {
        if (i == skip && over == NULL)
            continue;
        p = S("%s,\"%s\":%s", p, t->f[i].name,
              i == skip ? over : t->f[i].valid);
    }
    return S("%s}", p);
}

START_TEST(test_missing_and_wrong_types)
{
    for (size_t ti = 0; ti < CC__ARRAY_LEN(TSPECS); ti++) {
        const tspec *t = &TSPECS[ti];
        cc__cframe f;
        OK(build(t, -1, NULL), &f);
        ck_assert_str_eq(cc__ftype_name(f.type), t->type);
        cc__cframe_clear(&f);
        for (int i = 0; i < 5 && t->f[i].name; i++) {
            const fspec *fs = &t->f[i];
            const char *echo =
                strcmp(t->type, "send") == 0 && strcmp(fs->name, "cid") != 0
                    ? "c1"
                    : NOREF;
            if (fs->required) {
                const char *m = S("%s: missing", fs->name);
                ERR(build(t, i, NULL), CC__E_BAD_REQUEST, m, echo);
                /* null counts as missing, except for transfer's `to` */
                if (strcmp(fs->name, "to") != 0)
                    ERR(build(t, i, "null"), CC__E_BAD_REQUEST, m, echo);
            } else {
                OK(build(t, i, NULL), &f);
                cc__cframe_clear(&f);
                OK(build(t, i, "null"), &f);
                cc__cframe_clear(&f);
            }
            for (int w = 0; fs->wrong[w]; w++)
                ERR(build(t, i, fs->wrong[w]), CC__E_BAD_REQUEST,
                    fs->type_msg, echo);
            /* given twice: refused even when both values are valid */
            const char *twice = build(t, -1, NULL);
            twice = S("%.*s,\"%s\":%s}", (int)strlen(twice) - 1, twice,
                      fs->name, fs->valid);
            ERR(twice, CC__E_BAD_REQUEST,
                S("%s: given more than once", fs->name), echo);
        }
    }
}
END_TEST

/* ---- envelope ---- */

START_TEST(test_not_json)
{
    static const char *const bad[] = {
        "", " ", "\n", "{", "}", "{\"type\":\"ping\"",
        "{\"type\":\"ping\"}x", "{\"type\":\"ping\"}{}",
        "{\"type\":\"ping\"},", "{'type':'ping'}", "{type:\"ping\"}",
        "{\"type\":\"ping\",}", "{\"type\" \"ping\"}", "{\"type\":}",
        "{\"type\":\"ping\" /* c */}", "{\"type\":\"ping\"} // c",
        "{\"type\":\"ping\",\"x\":[1,]}", "{\"type\":\"ping\",\"x\":[,1]}",
        "{\"type\":\"ping\",\"x\":{\"a\"}}", "{\"type\":\"ping\",\"x\":{1:2}}",
        "{\"type\":\"ping\",\"x\":tru}", "{\"type\":\"ping\",\"x\":True}",
        "{\"type\":\"ping\",\"x\":nul}", "{\"type\":\"ping\",\"x\":undefined}",
        /* numbers cJSON would take but JSON does not */
        "{\"type\":\"ping\",\"x\":01}", "{\"type\":\"ping\",\"x\":1.}",
        "{\"type\":\"ping\",\"x\":.5}", "{\"type\":\"ping\",\"x\":+1}",
        "{\"type\":\"ping\",\"x\":1e}", "{\"type\":\"ping\",\"x\":1e+}",
        "{\"type\":\"ping\",\"x\":-}", "{\"type\":\"ping\",\"x\":0x10}",
        "{\"type\":\"ping\",\"x\":NaN}", "{\"type\":\"ping\",\"x\":Infinity}",
        "{\"type\":\"ping\",\"x\":-Infinity}", "{\"type\":\"ping\",\"x\":--1}",
        "{\"type\":\"ping\",\"x\":1.e5}", "{\"type\":\"ping\",\"x\":-01}",
        /* strings */
        "{\"type\":\"ping\",\"x\":\"a}", "{\"type\":\"ping\",\"x\":\"\\x41\"}",
        "{\"type\":\"ping\",\"x\":\"\\u00zz\"}",
        "{\"type\":\"ping\",\"x\":\"\\u12\"}",
        "{\"type\":\"ping\",\"x\":\"\\U0041\"}",
        "{\"type\":\"ping\",\"x\":\"\\'\"}",
        "{\"type\":\"ping\",\"x\":\"\\\"}",
        "{\"type\":\"ping\",\"x\":\"\\ud800\"}",
        "{\"type\":\"ping\",\"x\":\"\\udc00\"}",
        "{\"type\":\"ping\",\"x\":\"\\ude00\\ud83d\"}",
        "{\"type\":\"ping\",\"x\":\"\\ud800\\u0041\"}",
        "{\"type\":\"ping\",\"x\":\"\\ud800\\ud800\"}",
        "{\"type\":\"ping\",\"x\":\"\\ud800x\"}",
        /* raw control characters inside strings */
        "{\"type\":\"ping\",\"x\":\"a\tb\"}", "{\"type\":\"ping\",\"x\":\"a\nb\"}",
        "{\"type\":\"ping\",\"x\":\"a\x01\"}", "{\"type\":\"ping\",\"x\":\"\x1f\"}",
        /* whitespace JSON does not have */
        "{\"type\":\"ping\"}\f", "\v{\"type\":\"ping\"}",
        "{\x01\"type\":\"ping\"}", "{\"type\":\"ping\"}\xc2\xa0",
        /* a byte order mark anywhere but first */
        " \xef\xbb\xbf{\"type\":\"ping\"}",
        "{\"type\":\"ping\"}\xef\xbb\xbf",
        /* raw non-ASCII outside strings */
        "{\"type\":\"ping\",\"x\":\xc3\xa9}",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        ERR(bad[i], CC__E_BAD_REQUEST, "not JSON", NOREF);

    /* a raw NUL byte, inside or after the text */
    expect_err_n(__LINE__, "{\"type\":\"ping\"}\0", 16, CC__E_BAD_REQUEST,
                 "not JSON", NOREF);
    expect_err_n(__LINE__, "{\"type\":\"pi\0ng\"}", 16, CC__E_BAD_REQUEST,
                 "not JSON", NOREF);
    /* NULL input */
    cc__cframe f;
    const char *msg;
    ck_assert_int_eq(cc__proto_decode(NULL, 0, &ta.a, &f, &msg),
                     CC__E_BAD_REQUEST);
    ck_assert_str_eq(msg, "not JSON");
    cc__cframe_clear(&f);
    /* msg may be NULL */
    ck_assert_int_eq(cc__proto_decode("x", 1, &ta.a, &f, NULL),
                     CC__E_BAD_REQUEST);
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_ping_is_fine_err_helper)
{
    /* sanity check of the helper itself: a valid frame must not pass as
     * an error expectation (every test must be able to fail) */
    cc__cframe f;
    const char *msg;
    ck_assert_int_eq(cc__proto_decode("{\"type\":\"ping\"}", 15, &ta.a, &f,
                                      &msg),
                     CC__E_NONE);
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_not_object)
{
    static const char *const bad[] = {
        "[]", "[{\"type\":\"ping\"}]", "\"ping\"", "1", "0", "-1.5", "null",
        "true", "false", " [ ] ", "\"\"",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        ERR(bad[i], CC__E_BAD_REQUEST, "not a JSON object", NOREF);
}
END_TEST

START_TEST(test_type)
{
    BAD("{}", "type: missing");
    BAD("{\"type\":null}", "type: missing");
    BAD("{\"Type\":\"ping\"}", "type: missing");
    BAD("{\"type\":1}", "type: must be a string");
    BAD("{\"type\":[\"ping\"]}", "type: must be a string");
    BAD("{\"type\":{\"ping\":1}}", "type: must be a string");
    BAD("{\"type\":true}", "type: must be a string");
    static const char *const unknown[] = {
        "", "PING", "Ping", "ping ", " ping", "pingx", "pin", "hello",
        "pong", "msg", "sent", "error", "history", "queued", "subscribe",
        "send\\u0000",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(unknown); i++) {
        const char *j = S("{\"type\":\"%s\"}", unknown[i]);
        if (strstr(unknown[i], "u0000"))
            BAD(j, "type: must not contain U+0000");
        else
            BAD(j, "type: unknown frame type");
    }
    BAD("{\"type\":\"ping\",\"type\":\"ping\"}", "type: given more than once");
    /* an escaped name is the same name */
    BAD("{\"type\":\"ping\",\"\\u0074ype\":\"ping\"}",
        "type: given more than once");
    cc__cframe f;
    OK("{\"\\u0074ype\":\"p\\u0069ng\"}", &f);
    ck_assert_int_eq(f.type, CC__F_PING);
    cc__cframe_clear(&f);
    /* a type over any length limit is just unknown */
    BAD(S("{\"type\":\"%s\"}", rep("x", 5000)), "type: unknown frame type");
}
END_TEST

START_TEST(test_utf8)
{
    static const char *const bad[] = {
        "\xff", "\xfe", "\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xc3",
        "\xc3\x28", "\xe0\x80\xaf", "\xe0\x9f\xbf", "\xed\xa0\x80",
        "\xed\xbf\xbf", "\xe4\xb8", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80", "\xf0\x9f\x98", "\xf8\x88\x80\x80\x80",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++) {
        BAD(S("{\"type\":\"ping\",\"x\":\"a%sb\"}", bad[i]), "invalid UTF-8");
        /* in a key, too */
        BAD(S("{\"type\":\"ping\",\"%s\":1}", bad[i]), "invalid UTF-8");
    }
    /* edges of the valid ranges */
    static const char *const good[] = {
        "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
        "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
        "\xf4\x8f\xbf\xbf", "\x7f",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(good); i++) {
        cc__cframe f;
        OK(S("{\"type\":\"close\",\"session\":\"S\",\"reason\":\"%s\"}",
             good[i]),
           &f);
        ck_assert_str_eq(f.reason, good[i]);
        cc__cframe_clear(&f);
    }
    /* a leading byte order mark is ignored */
    cc__cframe f;
    OK("\xef\xbb\xbf{\"type\":\"ping\"}", &f);
    ck_assert_int_eq(f.type, CC__F_PING);
    cc__cframe_clear(&f);
    BAD("\xef\xbb\xbf", "not JSON");
    BAD("\xef\xbb\xbf[]", "not a JSON object");
}
END_TEST

START_TEST(test_nul)
{
    /* cJSON would cut "a\u0000b" to "a": refused in the fields we read */
    BAD("{\"type\":\"ping\",\"\\u0000\":1}", "a member name contains U+0000");
    BAD("{\"type\\u0000\":\"x\",\"type\":\"ping\"}",
        "a member name contains U+0000");
    BAD("{\"type\":\"ping\",\"ref\":\"a\\u0000b\"}",
        "ref: must not contain U+0000");
    ERR("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c\\u0000\","
        "\"kind\":\"text\",\"body\":{}}",
        CC__E_BAD_REQUEST, "cid: must not contain U+0000", NOREF);
    BAD("{\"type\":\"accept\",\"session\":\"S_1\\u0000x\"}",
        "session: must not contain U+0000");
    BAD("{\"type\":\"close\",\"session\":\"S\",\"reason\":\"\\u0000\"}",
        "reason: must not contain U+0000");
    BAD("{\"type\":\"refresh\",\"token\":\"t\\u0000\"}",
        "token: must not contain U+0000");
    ERR("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c\","
        "\"kind\":\"text\\u0000\",\"body\":{}}",
        CC__E_BAD_REQUEST, "kind: must not contain U+0000", "c");
    /* not in fields nobody reads */
    cc__cframe f;
    OK("{\"type\":\"ping\",\"x\":\"\\u0000\",\"y\":[\"\\u0000\"]}", &f);
    cc__cframe_clear(&f);
    /* an escaped backslash before u0000 is not a NUL */
    OK("{\"type\":\"ping\",\"ref\":\"\\\\u0000\"}", &f);
    ck_assert_str_eq(f.ref, "\\u0000");
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_depth)
{
    /* root object = level 1, body = level 2 */
    const char *pre = "{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c\","
                      "\"kind\":\"event\",\"body\":{\"a\":";
    cc__cframe f;
    OK(S("%s%s%s}}", pre, rep("[", 62), rep("]", 62)), &f);
    ck_assert_uint_eq(f.body_len, 5 + 124 + 1);
    cc__cframe_clear(&f);
    BAD(S("%s%s%s}}", pre, rep("[", 63), rep("]", 63)),
        "nested deeper than 64 levels");
    OK(S("{\"type\":\"ping\",\"x\":%s1%s}", rep("[", 63), rep("]", 63)), &f);
    cc__cframe_clear(&f);
    BAD(S("{\"type\":\"ping\",\"x\":%s1%s}", rep("{\"a\":", 64), rep("}", 64)),
        "nested deeper than 64 levels");
    /* hostile depth: no recursion, no crash */
    BAD(rep("[", 60000), "nested deeper than 64 levels");
    BAD(S("{\"x\":%s", rep("[", 60000)), "nested deeper than 64 levels");
    BAD(rep("[", 64), "not JSON");
    BAD(S("%s%s", rep("[", 64), rep("]", 64)), "not a JSON object");
}
END_TEST

START_TEST(test_extra_and_duplicate_fields)
{
    cc__cframe f;
    /* unknown fields are ignored, whatever their type or count */
    OK("{\"type\":\"ping\",\"v\":2,\"x\":{\"deep\":[1,2,{\"z\":null}]},"
       "\"x\":3,\"x\":\"again\",\"TYPE\":5}",
       &f);
    ck_assert_int_eq(f.type, CC__F_PING);
    cc__cframe_clear(&f);
    /* fields of other frame types are unknown fields here */
    OK("{\"type\":\"ping\",\"session\":1,\"session\":2,\"seq\":-5,"
       "\"body\":[],\"body\":[]}",
       &f);
    cc__cframe_clear(&f);
    OK("{\"type\":\"ack\",\"session\":\"S_1\",\"seq\":1,\"body\":\"x\","
       "\"cid\":5,\"to\":[]}",
       &f);
    cc__cframe_clear(&f);
    /* a send with everything twice names the first it checks */
    ERR("{\"type\":\"send\",\"session\":\"S_1\",\"session\":\"S_1\","
        "\"cid\":\"c\",\"kind\":\"text\",\"body\":{},\"body\":{}}",
        CC__E_BAD_REQUEST, "session: given more than once", "c");
    ERR("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c\",\"cid\":\"c\","
        "\"kind\":\"text\",\"body\":{}}",
        CC__E_BAD_REQUEST, "cid: given more than once", NOREF);
    /* duplicated keys inside the body are the client's business */
    OK("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c\",\"kind\":\"text\","
       "\"body\":{\"a\":1,\"a\":2}}",
       &f);
    ck_assert_str_eq(f.body_json, "{\"a\":1,\"a\":2}");
    cc__cframe_clear(&f);
}
END_TEST

/* ---- ids, limits, code points ---- */

START_TEST(test_session_id)
{
    const char *bad_id = "session: not a valid id ([A-Za-z0-9_.:-], 1 to 64)";
    cc__cframe f;
    OK(S("{\"type\":\"accept\",\"session\":\"%s\"}", rep("S", 64)), &f);
    ck_assert_uint_eq(strlen(f.session), 64);
    cc__cframe_clear(&f);
    BIG(S("{\"type\":\"accept\",\"session\":\"%s\"}", rep("S", 65)),
        "session: over 64 characters");
    /* over the limit wins over bad characters */
    BIG(S("{\"type\":\"accept\",\"session\":\"%s\"}", rep(" ", 65)),
        "session: over 64 characters");
    BIG(S("{\"type\":\"accept\",\"session\":\"%s\"}", rep("\xc3\xa9", 65)),
        "session: over 64 characters");
    /* 64 code points of a bad character: within the limit, bad content */
    BAD(S("{\"type\":\"accept\",\"session\":\"%s\"}", rep("\xc3\xa9", 64)),
        bad_id);
    static const char *const bad[] = {
        "", "S 1", "S/1", "S\\\\1", "S\\\"1", "S+1", "S@1", "S#1", "S,1",
        "\xc3\xa9", "S\\t1", "S\\u00e9", "S\\n", "S*", "S?", "S%20",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        BAD(S("{\"type\":\"accept\",\"session\":\"%s\"}", bad[i]), bad_id);
    /* escapes of allowed characters are fine: the decoded id counts */
    OK("{\"type\":\"accept\",\"session\":\"\\u0053_\\u0031\"}", &f);
    ck_assert_str_eq(f.session, "S_1");
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_cid)
{
    const char *pre = "{\"type\":\"send\",\"session\":\"S_1\",\"cid\":";
    const char *post = ",\"kind\":\"text\",\"body\":{}}";
    cc__cframe f;
    static const struct {
        const char *unit;
        size_t bytes;
    } units[] = {{"a", 1}, {"\xc3\xa9", 2}, {"\xe4\xb8\xad", 3},
                 {"\xf0\x9f\x98\x80", 4}, {"\\u00e9", 2},
                 {"\\ud83d\\ude00", 4}};
    for (size_t i = 0; i < CC__ARRAY_LEN(units); i++) {
        OK(S("%s\"%s\"%s", pre, rep(units[i].unit, 64), post), &f);
        ck_assert_uint_eq(strlen(f.cid), 64 * units[i].bytes);
        ck_assert_str_eq(f.ref, f.cid);
        cc__cframe_clear(&f);
        ERR(S("%s\"%s\"%s", pre, rep(units[i].unit, 65), post),
            CC__E_TOO_LARGE, "cid: over 64 characters", NOREF);
    }
    OK(S("%s\"%s\"%s", pre, "\\ud83d\\ude00", post), &f);
    ck_assert_str_eq(f.cid, "\xf0\x9f\x98\x80");
    cc__cframe_clear(&f);
    /* any printable text, ids or not */
    OK(S("%s\"%s\"%s", pre, "a b/c\\\"d\\\\ #1", post), &f);
    ck_assert_str_eq(f.cid, "a b/c\"d\\ #1");
    cc__cframe_clear(&f);
    const char *m = "cid: must be non-empty, without control characters";
    static const char *const bad[] = {
        "", "a\\tb", "a\\nb", "\\u0001", "\\u001f", "\\u007f", "a\x7f",
        "\\r", "\\b", "\\f",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        ERR(S("%s\"%s\"%s", pre, bad[i], post), CC__E_BAD_REQUEST, m, NOREF);
    /* C1 controls and other Unicode are not C0/DEL: allowed */
    OK(S("%s\"%s\"%s", pre, "\\u0080\\u2028", post), &f);
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_kind)
{
    const char *pre = "{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c1\","
                      "\"kind\":";
    static const char *const bad[] = {
        "\"\"", "\"Text\"", "\"TEXT\"", "\"video\"", "\"text \"",
        "\"txt\"", "\"images\"", "\"files\"", "\"events\"",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        ERR(S("%s%s,\"body\":{}}", pre, bad[i]), CC__E_BAD_REQUEST,
            "kind: must be text, image, file or event", "c1");
}
END_TEST

START_TEST(test_body_size)
{
    const char *pre = "{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c1\","
                      "\"kind\":\"text\",\"body\":";
    cc__cframe f;
    /* {"t":"x...x"}: 6 + k + 2 bytes; exactly 16384 */
    OK(S("%s{\"t\":\"%s\"}}", pre, rep("x", 16376)), &f);
    ck_assert_uint_eq(f.body_len, 16384);
    ck_assert_uint_eq(strlen(f.body_json), 16384);
    cc__cframe_clear(&f);
    ERR(S("%s{\"t\":\"%s\"}}", pre, rep("x", 16377)), CC__E_TOO_LARGE,
        "body: over 16384 bytes as JSON", "c1");
    /* bytes, not characters: 16376 bytes of 3-byte characters */
    OK(S("%s{\"t\":\"%s%s\"}}", pre, rep("\xe4\xb8\xad", 5458), "xx"), &f);
    ck_assert_uint_eq(f.body_len, 16384);
    cc__cframe_clear(&f);
    ERR(S("%s{\"t\":\"%s%s\"}}", pre, rep("\xe4\xb8\xad", 5458), "xxx"),
        CC__E_TOO_LARGE, "body: over 16384 bytes as JSON", "c1");
    /* escapes count as written: "\u00e9" is 6 bytes */
    OK(S("%s{\"t\":\"%s%s\"}}", pre, rep("\\u00e9", 2729), "xx"), &f);
    ck_assert_uint_eq(f.body_len, 16384);
    cc__cframe_clear(&f);
    ERR(S("%s{\"t\":\"%s%s\"}}", pre, rep("\\u00e9", 2729), "xxx"),
        CC__E_TOO_LARGE, "body: over 16384 bytes as JSON", "c1");
    /* insignificant whitespace does not count */
    OK(S("%s {\n \"t\" :\t\"%s\" \r\n}  }", pre, rep("x", 16376)), &f);
    ck_assert_uint_eq(f.body_len, 16384);
    ck_assert(strncmp(f.body_json, "{\"t\":\"xxx", 9) == 0);
    cc__cframe_clear(&f);
    OK(S("%s{\"t\":%s\"%s\"}}", pre, rep(" ", 40000), rep("x", 16376)), &f);
    ck_assert_uint_eq(f.body_len, 16384);
    cc__cframe_clear(&f);
    /* whitespace inside strings does */
    ERR(S("%s{\"t\":\"%s \"}}", pre, rep("x", 16376)), CC__E_TOO_LARGE,
        "body: over 16384 bytes as JSON", "c1");
    /* a too-large body that is not an object is a bad request */
    ERR(S("%s[\"%s\"]}", pre, rep("x", 20000)), CC__E_BAD_REQUEST,
        "body: must be an object", "c1");
}
END_TEST

START_TEST(test_ref)
{
    cc__cframe f;
    /* echoed on errors */
    ERR("{\"type\":\"nope\",\"ref\":\"r1\"}", CC__E_BAD_REQUEST,
        "type: unknown frame type", "r1");
    ERR("{\"ref\":\"r1\"}", CC__E_BAD_REQUEST, "type: missing", "r1");
    ERR("{\"ref\":\"r1\",\"type\":\"ack\",\"session\":\"S_1\"}",
        CC__E_BAD_REQUEST, "seq: missing", "r1");
    ERR("{\"type\":\"ack\",\"session\":\"S_1\",\"ref\":\"r\\\"\\\\\\n\"}",
        CC__E_BAD_REQUEST, "seq: missing", "r\"\\\n");
    /* not a valid ref: an error, and nothing to echo */
    ERR("{\"type\":\"ping\",\"ref\":5}", CC__E_BAD_REQUEST,
        "ref: must be a string", NOREF);
    ERR("{\"type\":\"ping\",\"ref\":[\"r\"]}", CC__E_BAD_REQUEST,
        "ref: must be a string", NOREF);
    ERR("{\"type\":\"ping\",\"ref\":\"a\",\"ref\":\"a\"}", CC__E_BAD_REQUEST,
        "ref: given more than once", NOREF);
    /* null = no ref */
    OK("{\"type\":\"ping\",\"ref\":null}", &f);
    ck_assert_int_eq(f.has_ref, 0);
    cc__cframe_clear(&f);
    /* any string, "" included */
    OK("{\"type\":\"ping\",\"ref\":\"\"}", &f);
    ck_assert_int_eq(f.has_ref, 1);
    ck_assert_str_eq(f.ref, "");
    cc__cframe_clear(&f);
    OK("{\"type\":\"ping\",\"ref\":\"a b\\t\\u0001 \xe4\xb8\xad\"}", &f);
    ck_assert_str_eq(f.ref, "a b\t\x01 \xe4\xb8\xad");
    cc__cframe_clear(&f);
    /* limits in code points */
    static const char *const units[] = {"r", "\xc3\xa9", "\xe4\xb8\xad",
                                        "\xf0\x9f\x98\x80"};
    for (size_t i = 0; i < CC__ARRAY_LEN(units); i++) {
        const char *r64 = rep(units[i], 64);
        OK(S("{\"type\":\"ping\",\"ref\":\"%s\"}", r64), &f);
        ck_assert_str_eq(f.ref, r64);
        cc__cframe_clear(&f);
        ERR(S("{\"type\":\"nope\",\"ref\":\"%s\"}", r64), CC__E_BAD_REQUEST,
            "type: unknown frame type", r64);
        ERR(S("{\"type\":\"ping\",\"ref\":\"%s\"}", rep(units[i], 65)),
            CC__E_TOO_LARGE, "ref: over 64 characters", NOREF);
    }
    /* nothing to echo before the text is a JSON object */
    ERR("{\"ref\":\"r1\",", CC__E_BAD_REQUEST, "not JSON", NOREF);
    ERR("[{\"ref\":\"r1\"}]", CC__E_BAD_REQUEST, "not a JSON object", NOREF);
    ERR("{\"ref\":\"r1\",\"x\":\"\xff\"}", CC__E_BAD_REQUEST, "invalid UTF-8",
        NOREF);
}
END_TEST

START_TEST(test_ref_send_cid)
{
    cc__cframe f;
    /* send: a valid ref wins over the cid */
    ERR("{\"type\":\"send\",\"ref\":\"r1\",\"session\":\"S_1\",\"cid\":\"c1\","
        "\"kind\":\"text\"}",
        CC__E_BAD_REQUEST, "body: missing", "r1");
    /* no ref: the cid */
    ERR("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c1\","
        "\"kind\":\"text\"}",
        CC__E_BAD_REQUEST, "body: missing", "c1");
    OK("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c1\",\"kind\":\"text\","
       "\"body\":{},\"ref\":\"r1\"}",
       &f);
    ck_assert_str_eq(f.ref, "r1");
    ck_assert_int_eq(f.ref_is_cid, 0);
    cc__cframe_clear(&f);
    /* the cid even for an error found before the cid is looked at */
    ERR("{\"type\":\"send\",\"session\":\"bad id\",\"cid\":\"c1\"}",
        CC__E_BAD_REQUEST,
        "session: not a valid id ([A-Za-z0-9_.:-], 1 to 64)", "c1");
    /* an invalid ref: its error, echoing the cid */
    ERR("{\"type\":\"send\",\"ref\":7,\"session\":\"S_1\",\"cid\":\"c1\"}",
        CC__E_BAD_REQUEST, "ref: must be a string", "c1");
    ERR(S("{\"type\":\"send\",\"ref\":\"%s\",\"session\":\"S_1\","
          "\"cid\":\"c1\",\"kind\":\"text\",\"body\":{}}",
          rep("r", 65)),
        CC__E_TOO_LARGE, "ref: over 64 characters", "c1");
    ERR("{\"type\":\"send\",\"ref\":null,\"session\":\"S_1\",\"cid\":\"c1\","
        "\"kind\":\"x\",\"body\":{}}",
        CC__E_BAD_REQUEST, "kind: must be text, image, file or event", "c1");
    /* an invalid cid is not echoed */
    ERR(S("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"%s\","
          "\"kind\":\"text\",\"body\":{}}",
          rep("c", 65)),
        CC__E_TOO_LARGE, "cid: over 64 characters", NOREF);
    ERR("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"\",\"kind\":\"text\","
        "\"body\":{}}",
        CC__E_BAD_REQUEST, "cid: must be non-empty, without control characters",
        NOREF);
    ERR("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":3,\"kind\":\"text\","
        "\"body\":{}}",
        CC__E_BAD_REQUEST, "cid: must be a string", NOREF);
    /* only for send */
    ERR("{\"type\":\"ack\",\"session\":\"S_1\",\"cid\":\"c1\"}",
        CC__E_BAD_REQUEST, "seq: missing", NOREF);
    ERR("{\"type\":\"nope\",\"cid\":\"c1\"}", CC__E_BAD_REQUEST,
        "type: unknown frame type", NOREF);
    ERR("{\"type\":\"send\",\"type\":\"send\",\"cid\":\"c1\"}",
        CC__E_BAD_REQUEST, "type: given more than once", NOREF);
    /* the frame type is known on later errors */
    const char *msg;
    ck_assert_int_eq(
        cc__proto_decode("{\"type\":\"send\",\"cid\":\"c1\"}", 26, &ta.a, &f,
                         &msg),
        CC__E_BAD_REQUEST);
    ck_assert_int_eq(f.type, CC__F_SEND);
    ck_assert_int_eq(f.ref_is_cid, 1);
    ck_assert_str_eq(msg, "session: missing");
    cc__cframe_clear(&f);
    ck_assert_int_eq(cc__proto_decode("{\"type\":\"x\"}", 12, &ta.a, &f, &msg),
                     CC__E_BAD_REQUEST);
    ck_assert_int_eq(f.type, 0);
    cc__cframe_clear(&f);
}
END_TEST

START_TEST(test_precedence)
{
    /* ref before type */
    ERR(S("{\"type\":\"bogus\",\"ref\":\"%s\"}", rep("r", 65)),
        CC__E_TOO_LARGE, "ref: over 64 characters", NOREF);
    ERR("{\"ref\":5}", CC__E_BAD_REQUEST, "ref: must be a string", NOREF);
    /* fields in table order: session before body */
    ERR(S("{\"type\":\"send\",\"cid\":\"c1\",\"kind\":\"text\","
          "\"body\":{\"t\":\"%s\"}}",
          rep("x", 20000)),
        CC__E_BAD_REQUEST, "session: missing", "c1");
    ERR(S("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"%s\","
          "\"kind\":\"text\",\"body\":{\"t\":\"%s\"}}",
          rep("c", 65), rep("x", 20000)),
        CC__E_TOO_LARGE, "cid: over 64 characters", NOREF);
    ERR(S("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c1\","
          "\"kind\":\"bogus\",\"body\":{\"t\":\"%s\"}}",
          rep("x", 20000)),
        CC__E_BAD_REQUEST, "kind: must be text, image, file or event", "c1");
    /* JSON first: a too-large frame that is not JSON is a bad request */
    ERR(S("{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c1\","
          "\"kind\":\"text\",\"body\":{\"t\":\"%s\"}",
          rep("x", 20000)),
        CC__E_BAD_REQUEST, "not JSON", NOREF);
    /* session: length before content */
    BIG(S("{\"type\":\"ack\",\"session\":\"%s\",\"seq\":\"x\"}", rep("/", 65)),
        "session: over 64 characters");
    BAD(S("{\"type\":\"ack\",\"session\":\"S\",\"seq\":\"x\"}"),
        "seq: must be an integer");
    /* close: session before reason */
    BAD(S("{\"type\":\"close\",\"reason\":\"%s\"}", rep("r", 201)),
        "session: missing");
}
END_TEST

START_TEST(test_reason)
{
    const char *pre = "{\"type\":\"close\",\"session\":\"S_1\",\"reason\":";
    static const char *const units[] = {"r", "\xc3\xa9", "\xe4\xb8\xad",
                                        "\xf0\x9f\x98\x80", "\\n"};
    for (size_t i = 0; i < CC__ARRAY_LEN(units); i++) {
        cc__cframe f;
        OK(S("%s\"%s\"}", pre, rep(units[i], 200)), &f);
        ck_assert_uint_gt(strlen(f.reason), 199);
        cc__cframe_clear(&f);
        BIG(S("%s\"%s\"}", pre, rep(units[i], 201)),
            "reason: over 200 characters");
    }
    cc__cframe f;
    OK(S("%s\"%s\"}", pre, rep("\xf0\x9f\x98\x80", 200)), &f);
    ck_assert_str_eq(f.reason, rep("\xf0\x9f\x98\x80", 200));
    cc__cframe_clear(&f);
}
END_TEST

/* ---- numbers ---- */

START_TEST(test_numbers)
{
    static const struct {
        const char *lit;
        int ok;           /* 1 ok, 0 not an integer, -1 out of range */
        uint64_t v;
    } nums[] = {
        {"0", 1, 0},
        {"1", 1, 1},
        {"-0", 1, 0},
        {"-0.0", 1, 0},
        {"0.000", 1, 0},
        {"0e400", 1, 0},
        {"-0.0e-5", 1, 0},
        {"0e-99999999999999999999", 1, 0},
        {"9007199254740991", 1, UINT64_C(9007199254740991)},
        {"9007199254740991.0", 1, UINT64_C(9007199254740991)},
        {"9007199254740991.000000000000000000000000000", 1,
         UINT64_C(9007199254740991)},
        {"90071992547409910e-1", 1, UINT64_C(9007199254740991)},
        {"900719925474099.1e1", 1, UINT64_C(9007199254740991)},
        {"9007199254740992", -1, 0},
        {"9007199254740993", -1, 0},
        {"18446744073709551615", -1, 0},
        {"18446744073709551616", -1, 0},
        {"99999999999999999999999999999999", -1, 0},
        {"1.0", 1, 1},
        {"1.00", 1, 1},
        {"1e2", 1, 100},
        {"1E2", 1, 100},
        {"1e+2", 1, 100},
        {"1e0", 1, 1},
        {"1e-0", 1, 1},
        {"100e-2", 1, 1},
        {"0.5e1", 1, 5},
        {"1.5e1", 1, 15},
        {"0.001e3", 1, 1},
        {"1e15", 1, UINT64_C(1000000000000000)},
        {"1e16", -1, 0},
        {"10000000000000000e-1", 1, UINT64_C(1000000000000000)},
        {"1e400", -1, 0},
        {"1e99999999999999999999", -1, 0},
        {"-1", -1, 0},
        {"-9007199254740991", -1, 0},
        {"-1e2", -1, 0},
        {"1.5", 0, 0},
        {"-1.5", 0, 0},
        {"0.1", 0, 0},
        {"123e-1", 0, 0},
        {"5e-1", 0, 0},
        {"1e-400", 0, 0},
        {"1e-99999999999999999999", 0, 0},
        {"9007199254740991.5", 0, 0},
        {"9007199254740990.7", 0, 0},
        {"1.0000000000000001", 0, 0},
        {"2.00000000000000000000000000000000000000000000000000000000001", 0,
         0},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(nums); i++) {
        const char *j =
            S("{\"type\":\"ack\",\"session\":\"S_1\",\"seq\":%s}", nums[i].lit);
        if (nums[i].ok == 1) {
            cc__cframe f;
            OK(j, &f);
            ck_assert_msg(f.seq == nums[i].v, "%s -> %llu", nums[i].lit,
                          (unsigned long long)f.seq);
            cc__cframe_clear(&f);
        } else if (nums[i].ok == 0) {
            BAD(j, "seq: must be an integer");
        } else {
            BAD(j, "seq: must be from 0 to 9007199254740991");
        }
    }
    /* 63-character literals are fine; 64 is over cJSON's buffer */
    cc__cframe f;
    const char *n63 = S("1.%s", rep("0", 61));
    OK(S("{\"type\":\"ack\",\"session\":\"S_1\",\"seq\":%s}", n63), &f);
    ck_assert(f.seq == 1);
    cc__cframe_clear(&f);
    BAD(S("{\"type\":\"ack\",\"session\":\"S_1\",\"seq\":1.%s}", rep("0", 62)),
        "a number literal is over 63 characters");
    BAD(S("{\"type\":\"ping\",\"x\":[%s]}", rep("1", 64)),
        "a number literal is over 63 characters");
    OK(S("{\"type\":\"ping\",\"x\":[%s]}", rep("1", 63)), &f);
    cc__cframe_clear(&f);
}
END_TEST

/* ---- memory ---- */

START_TEST(test_oom_decode)
{
    const char *send = "{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c1\","
                       "\"kind\":\"text\",\"body\":{\"t\":\"hi\"}}";
    const char *refresh = "{\"type\":\"refresh\",\"token\":\"tok\",\"ref\":\"r\"}";
    cc__cframe f;
    const char *msg;

    /* one allocation each (body, token): fail it */
    ta.fail_at = 1;
    ck_assert_int_eq(cc__proto_decode(send, strlen(send), &ta.a, &f, &msg),
                     CC__E_INTERNAL);
    ck_assert_str_eq(msg, "out of memory");
    ck_assert_int_eq(f.has_ref, 1);
    ck_assert_str_eq(f.ref, "c1");
    ck_assert_int_eq(f.type, CC__F_SEND);
    ck_assert_ptr_null(f.body_json);
    cc__cframe_clear(&f);
    ck_assert_uint_eq(ta.bytes, 0);

    cc_test_alloc_init(&ta);
    ta.fail_at = 1;
    ck_assert_int_eq(
        cc__proto_decode(refresh, strlen(refresh), &ta.a, &f, &msg),
        CC__E_INTERNAL);
    ck_assert_str_eq(f.ref, "r");
    ck_assert_ptr_null(f.token);
    cc__cframe_clear(&f);
    ck_assert_uint_eq(ta.bytes, 0);

    /* and exactly one: the second would succeed */
    cc_test_alloc_init(&ta);
    ta.fail_at = 2;
    ck_assert_int_eq(cc__proto_decode(send, strlen(send), &ta.a, &f, &msg),
                     CC__E_NONE);
    ck_assert_uint_eq(ta.nalloc, 1);
    cc__cframe_clear(&f);
    cc__cframe_clear(&f); /* idempotent */
    ck_assert_uint_eq(ta.bytes, 0);

    /* a zeroed frame clears fine */
    cc__cframe z;
    memset(&z, 0, sizeof z);
    cc__cframe_clear(&z);
    cc__cframe_clear(NULL);
}
END_TEST

static int cjson_fail_after;
static void *
cjson_failing_malloc(size_t n)
{
    if (cjson_fail_after-- <= 0)
        return NULL;
    return malloc(n);
}

START_TEST(test_oom_cjson)
{
    /* cJSON's own allocator failing on strict JSON: internal, not a
     * client error; every failure point, no leak (ASan) */
    const char *send = "{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"c1\","
                       "\"kind\":\"text\",\"body\":{\"t\":\"hi\"},\"ref\":\"r\"}";
    int saw_fail = 0, saw_ok = 0;
    for (int k = 0; k < 40; k++) {
        cJSON_Hooks h = {cjson_failing_malloc, free};
        cjson_fail_after = k;
        cJSON_InitHooks(&h);
        cc__cframe f;
        const char *msg;
        cc__perr e = cc__proto_decode(send, strlen(send), &ta.a, &f, &msg);
        cJSON_InitHooks(NULL);
        if (e == CC__E_INTERNAL) {
            ck_assert_str_eq(msg, "out of memory");
            ck_assert_int_eq(f.has_ref, 0);
            saw_fail = 1;
        } else {
            ck_assert_int_eq(e, CC__E_NONE);
            saw_ok = 1;
        }
        cc__cframe_clear(&f);
        ck_assert_uint_eq(ta.bytes, 0);
    }
    ck_assert(saw_fail && saw_ok);
}
END_TEST

/* ---- the whole table, through a failing allocator ---- */

START_TEST(test_decode_all_under_oom)
{
    for (size_t ti = 0; ti < CC__ARRAY_LEN(TSPECS); ti++) {
        const char *j = build(&TSPECS[ti], -1, NULL);
        for (size_t k = 1; k <= 3; k++) {
            cc_test_alloc_init(&ta);
            ta.fail_at = k;
            cc__cframe f;
            const char *msg;
            cc__perr e = cc__proto_decode(j, strlen(j), &ta.a, &f, &msg);
            ck_assert(e == CC__E_NONE || e == CC__E_INTERNAL);
            cc__cframe_clear(&f);
            ck_assert_uint_eq(ta.bytes, 0);
        }
    }
}
END_TEST

/* ---- encoding ---- */

static cc__jbuf jb;

/* The frame text is exact; it also parses with cJSON to an object. */
static void
expect_json(int line, const char *want)
{
    ck_assert_int_eq(jb.oom, 0);
    ck_assert_ptr_nonnull(jb.p);
    ck_assert_uint_eq(strlen(jb.p), jb.len);
    ck_assert_msg(strcmp(jb.p, want) == 0, "line %d:\n got  %s\n want %s",
                  line, jb.p, want);
    cJSON *o = cJSON_ParseWithLength(jb.p, jb.len);
    ck_assert_msg(o != NULL && cJSON_IsObject(o), "line %d: not JSON", line);
    cJSON_Delete(o);
    cc__jbuf_reset(&jb);
}

#define JSON_IS(want) expect_json(__LINE__, (want))

static void
jsetup(void)
{
    setup();
    cc__jbuf_init(&jb, &ta.a);
}

static void
jteardown(void)
{
    cc__jbuf_free(&jb);
    teardown();
}

static const cc__msgv M1 = {"S_1", 1, "visitor:v_1", CC__K_TEXT,
                            "{\"text\":\"hi\"}", 1700000000001, "c1"};
static const cc__msgv M2 = {"S_1", 2, "agent:a_7", CC__K_IMAGE,
                            "{\"object_url\":\"https://x/y.png\"}",
                            1700000000002, "c2"};
static const cc__msgv M3 = {"S_1", 3, "system", CC__K_EVENT, NULL,
                            1700000000003, NULL};

START_TEST(test_enc_simple)
{
    cc__enc_pong(&jb);
    JSON_IS("{\"type\":\"pong\"}");
    cc__enc_refreshed(&jb, 1700003600);
    JSON_IS("{\"type\":\"refreshed\",\"expires\":1700003600}");
    cc__enc_sent(&jb, "c1", "S_1", 42, 1700000000123);
    JSON_IS("{\"type\":\"sent\",\"cid\":\"c1\",\"session\":\"S_1\",\"seq\":42,"
            "\"ts\":1700000000123}");
    cc__enc_queued(&jb, "S_1", 3);
    JSON_IS("{\"type\":\"queued\",\"session\":\"S_1\",\"position\":3}");
    cc__enc_session_started(&jb, "S_2", "new");
    JSON_IS("{\"type\":\"session_started\",\"session\":\"S_2\","
            "\"state\":\"new\"}");
    cc__enc_session_accepted(&jb, "S_1", "a_7");
    JSON_IS("{\"type\":\"session_accepted\",\"session\":\"S_1\","
            "\"agent\":\"a_7\"}");
    cc__enc_session_closed(&jb, "S_1", "bye", "agent:a_7");
    JSON_IS("{\"type\":\"session_closed\",\"session\":\"S_1\","
            "\"reason\":\"bye\",\"by\":\"agent:a_7\"}");
    cc__enc_session_closed(&jb, "S_1", NULL, "system");
    JSON_IS("{\"type\":\"session_closed\",\"session\":\"S_1\","
            "\"reason\":\"\",\"by\":\"system\"}");
    cc__enc_peer(&jb, 0, "S_1", "visitor:v_1");
    JSON_IS("{\"type\":\"peer_offline\",\"session\":\"S_1\","
            "\"who\":\"visitor:v_1\"}");
    cc__enc_peer(&jb, 1, "S_1", "visitor:v_1");
    JSON_IS("{\"type\":\"peer_online\",\"session\":\"S_1\","
            "\"who\":\"visitor:v_1\"}");
    cc__enc_read(&jb, "S_1", "agent:a_7", 9);
    JSON_IS("{\"type\":\"read\",\"session\":\"S_1\",\"who\":\"agent:a_7\","
            "\"seq\":9}");
    cc__enc_typing(&jb, "S_1", "visitor:v_1", 1);
    JSON_IS("{\"type\":\"typing\",\"session\":\"S_1\","
            "\"who\":\"visitor:v_1\",\"on\":true}");
    cc__enc_typing(&jb, "S_1", "visitor:v_1", 0);
    JSON_IS("{\"type\":\"typing\",\"session\":\"S_1\","
            "\"who\":\"visitor:v_1\",\"on\":false}");
    cc__enc_reconnect(&jb, 2500);
    JSON_IS("{\"type\":\"reconnect\",\"after_ms\":2500}");
}
END_TEST

START_TEST(test_enc_error)
{
    static const char *const codes[] = {
        "bad_request", "unauthorized", "forbidden", "not_found",
        "not_in_session", "already_taken", "invalid_state", "rate_limited",
        "too_large", "internal",
    };
    for (int c = CC__E_BAD_REQUEST; c <= CC__E_INTERNAL; c++) {
        cc__enc_error(&jb, (cc__perr)c, "m", NULL, -1);
        JSON_IS(S("{\"type\":\"error\",\"code\":\"%s\",\"message\":\"m\"}",
                  codes[c - 1]));
    }
    cc__enc_error(&jb, CC__E_BAD_REQUEST, "seq: missing", "r1", -1);
    JSON_IS("{\"type\":\"error\",\"code\":\"bad_request\","
            "\"message\":\"seq: missing\",\"ref\":\"r1\"}");
    cc__enc_error(&jb, CC__E_RATE_LIMITED, "slow down", "c\"1", 250);
    JSON_IS("{\"type\":\"error\",\"code\":\"rate_limited\","
            "\"message\":\"slow down\",\"ref\":\"c\\\"1\","
            "\"retry_after_ms\":250}");
    cc__enc_error(&jb, CC__E_RATE_LIMITED, NULL, NULL, 0);
    JSON_IS("{\"type\":\"error\",\"code\":\"rate_limited\",\"message\":\"\","
            "\"retry_after_ms\":0}");
    cc__enc_error(&jb, CC__E_INTERNAL, "x", "", -1);
    JSON_IS("{\"type\":\"error\",\"code\":\"internal\",\"message\":\"x\","
            "\"ref\":\"\"}");
}
END_TEST

START_TEST(test_enc_msg)
{
    cc__enc_msg(&jb, &M1);
    JSON_IS("{\"type\":\"msg\",\"session\":\"S_1\",\"seq\":1,"
            "\"from\":\"visitor:v_1\",\"kind\":\"text\","
            "\"body\":{\"text\":\"hi\"},\"ts\":1700000000001,\"cid\":\"c1\"}");
    cc__enc_msg_obj(&jb, &M2, 0);
    JSON_IS("{\"session\":\"S_1\",\"seq\":2,\"from\":\"agent:a_7\","
            "\"kind\":\"image\",\"body\":{\"object_url\":\"https://x/y.png\"},"
            "\"ts\":1700000000002,\"cid\":\"c2\"}");
    /* a system message: no cid (null), no body ({}) */
    cc__enc_msg(&jb, &M3);
    JSON_IS("{\"type\":\"msg\",\"session\":\"S_1\",\"seq\":3,"
            "\"from\":\"system\",\"kind\":\"event\",\"body\":{},"
            "\"ts\":1700000000003,\"cid\":null}");

    /* field types, read back */
    cc__enc_msg(&jb, &M1);
    cJSON *o = cJSON_ParseWithLength(jb.p, jb.len);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(cJSON_GetArraySize(o), 8);
    ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "session")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "seq")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "from")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "kind")));
    ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "body")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "ts")));
    ck_assert(cJSON_GetObjectItemCaseSensitive(o, "ts")->valuedouble ==
              1700000000001.0);
    ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "cid")));
    cJSON_Delete(o);
    cc__jbuf_reset(&jb);
}
END_TEST

START_TEST(test_enc_history)
{
    cc__msgv ms[3] = {M1, M2, M3};
    cc__enc_history(&jb, "S_1", ms, 3, 1);
    JSON_IS(S("{\"type\":\"history\",\"session\":\"S_1\",\"messages\":["
              "{\"session\":\"S_1\",\"seq\":1,\"from\":\"visitor:v_1\","
              "\"kind\":\"text\",\"body\":{\"text\":\"hi\"},"
              "\"ts\":1700000000001,\"cid\":\"c1\"},"
              "{\"session\":\"S_1\",\"seq\":2,\"from\":\"agent:a_7\","
              "\"kind\":\"image\","
              "\"body\":{\"object_url\":\"https://x/y.png\"},"
              "\"ts\":1700000000002,\"cid\":\"c2\"},"
              "{\"session\":\"S_1\",\"seq\":3,\"from\":\"system\","
              "\"kind\":\"event\",\"body\":{},\"ts\":1700000000003,"
              "\"cid\":null}],\"more\":true}"));
    cc__enc_history(&jb, "S_1", NULL, 0, 0);
    JSON_IS("{\"type\":\"history\",\"session\":\"S_1\",\"messages\":[],"
            "\"more\":false}");
}
END_TEST

START_TEST(test_enc_accepted_transferred)
{
    cc__msgv ms[2] = {M1, M2};
    const char *arr =
        "[{\"session\":\"S_1\",\"seq\":1,\"from\":\"visitor:v_1\","
        "\"kind\":\"text\",\"body\":{\"text\":\"hi\"},\"ts\":1700000000001,"
        "\"cid\":\"c1\"},{\"session\":\"S_1\",\"seq\":2,"
        "\"from\":\"agent:a_7\",\"kind\":\"image\","
        "\"body\":{\"object_url\":\"https://x/y.png\"},"
        "\"ts\":1700000000002,\"cid\":\"c2\"}]";
    cc__enc_accepted(&jb, "S_1", "v_1", ms, 2, 2);
    JSON_IS(S("{\"type\":\"accepted\",\"session\":\"S_1\",\"visitor\":\"v_1\","
              "\"history\":%s,\"last_seq\":2}",
              arr));
    cc__enc_accepted(&jb, "S_1", "v_1", NULL, 0, 0);
    JSON_IS("{\"type\":\"accepted\",\"session\":\"S_1\",\"visitor\":\"v_1\","
            "\"history\":[],\"last_seq\":0}");
    /* to the visitor and the old agent */
    cc__enc_transferred(&jb, "S_1", "a_7", "a_8", NULL, 0, 0);
    JSON_IS("{\"type\":\"session_transferred\",\"session\":\"S_1\","
            "\"from\":\"a_7\",\"to\":\"a_8\"}");
    /* back to the queue */
    cc__enc_transferred(&jb, "S_1", "a_7", NULL, NULL, 0, 0);
    JSON_IS("{\"type\":\"session_transferred\",\"session\":\"S_1\","
            "\"from\":\"a_7\",\"to\":null}");
    /* to the new agent */
    cc__enc_transferred(&jb, "S_1", "a_7", "a_8", ms, 2, 2);
    JSON_IS(S("{\"type\":\"session_transferred\",\"session\":\"S_1\","
              "\"from\":\"a_7\",\"to\":\"a_8\",\"history\":%s,"
              "\"last_seq\":2}",
              arr));
    cc__enc_transferred(&jb, "S_1", "a_7", "a_8", ms, 0, 0);
    JSON_IS("{\"type\":\"session_transferred\",\"session\":\"S_1\","
            "\"from\":\"a_7\",\"to\":\"a_8\",\"history\":[],\"last_seq\":0}");
}
END_TEST

START_TEST(test_enc_queue_hello)
{
    cc__queue_item q[2] = {{"S_1", "v_1", 1700000000000, "hello?"},
                           {"S_2", "v_2", 1700000000500, NULL}};
    cc__enc_queue(&jb, q, 2);
    JSON_IS("{\"type\":\"queue\",\"waiting\":["
            "{\"session\":\"S_1\",\"visitor\":\"v_1\",\"since\":1700000000000,"
            "\"preview\":\"hello?\"},"
            "{\"session\":\"S_2\",\"visitor\":\"v_2\",\"since\":1700000000500,"
            "\"preview\":\"\"}]}");
    cc__enc_queue(&jb, NULL, 0);
    JSON_IS("{\"type\":\"queue\",\"waiting\":[]}");

    cc__hello hv = {0};
    hv.tenant = "t1";
    hv.user = "v_123";
    hv.node = "gw-1";
    hv.heartbeat_s = 20;
    hv.session = "S_9";
    hv.state = "new";
    hv.resumed = 0;
    cc__enc_hello(&jb, &hv);
    JSON_IS("{\"type\":\"hello\",\"v\":1,\"tenant\":\"t1\",\"user\":\"v_123\","
            "\"role\":\"visitor\",\"node\":\"gw-1\",\"heartbeat_s\":20,"
            "\"session\":\"S_9\",\"state\":\"new\",\"resumed\":false}");
    hv.resumed = 1;
    hv.state = "active";
    cc__enc_hello(&jb, &hv);
    JSON_IS("{\"type\":\"hello\",\"v\":1,\"tenant\":\"t1\",\"user\":\"v_123\","
            "\"role\":\"visitor\",\"node\":\"gw-1\",\"heartbeat_s\":20,"
            "\"session\":\"S_9\",\"state\":\"active\",\"resumed\":true}");

    cc__sess_item ss[2] = {{"S_1", "v_1", "active", 12},
                           {"S_3", "v_3", "offline", 0}};
    cc__hello ha = {0};
    ha.tenant = "t1";
    ha.user = "a_7";
    ha.node = "gw-1";
    ha.role_agent = 1;
    ha.heartbeat_s = 20;
    ha.status = "online";
    ha.queue = q;
    ha.nqueue = 1;
    ha.sessions = ss;
    ha.nsessions = 2;
    cc__enc_hello(&jb, &ha);
    JSON_IS("{\"type\":\"hello\",\"v\":1,\"tenant\":\"t1\",\"user\":\"a_7\","
            "\"role\":\"agent\",\"node\":\"gw-1\",\"heartbeat_s\":20,"
            "\"status\":\"online\",\"queue\":[{\"session\":\"S_1\","
            "\"visitor\":\"v_1\",\"since\":1700000000000,"
            "\"preview\":\"hello?\"}],\"sessions\":["
            "{\"session\":\"S_1\",\"visitor\":\"v_1\",\"state\":\"active\","
            "\"last_seq\":12},{\"session\":\"S_3\",\"visitor\":\"v_3\","
            "\"state\":\"offline\",\"last_seq\":0}]}");
    ha.nqueue = 0;
    ha.nsessions = 0;
    ha.status = "away";
    cc__enc_hello(&jb, &ha);
    JSON_IS("{\"type\":\"hello\",\"v\":1,\"tenant\":\"t1\",\"user\":\"a_7\","
            "\"role\":\"agent\",\"node\":\"gw-1\",\"heartbeat_s\":20,"
            "\"status\":\"away\",\"queue\":[],\"sessions\":[]}");
}
END_TEST

/* ---- escaping ---- */

static void
str_is(int line, const char *in, size_t n, const char *want)
{
    cc__jbuf_strn(&jb, in, n);
    ck_assert_int_eq(jb.oom, 0);
    ck_assert_msg(jb.len == strlen(want) && memcmp(jb.p, want, jb.len) == 0,
                  "line %d: got [%s] want [%s]", line, jb.p, want);
    cc__jbuf_reset(&jb);
}

#define STR_IS(in, want) str_is(__LINE__, (in), strlen(in), (want))

START_TEST(test_escape)
{
    STR_IS("", "\"\"");
    STR_IS("plain text 123", "\"plain text 123\"");
    STR_IS("a\"b", "\"a\\\"b\"");
    STR_IS("a\\b", "\"a\\\\b\"");
    STR_IS("\\\"", "\"\\\\\\\"\"");
    STR_IS("/</script>", "\"/</script>\"");
    STR_IS("\x7f", "\"\x7f\"");
    STR_IS("\n\r\t\b\f", "\"\\u000a\\u000d\\u0009\\u0008\\u000c\"");
    /* every control character as \u00XX, lowercase hex */
    for (int c = 1; c < 0x20; c++) {
        char in[2] = {(char)c, 0};
        char want[16];
        snprintf(want, sizeof want, "\"\\u%04x\"", c);
        STR_IS(in, want);
    }
    str_is(__LINE__, "a\0b", 3, "\"a\\u0000b\"");
    /* valid UTF-8 as is */
    STR_IS("\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80",
           "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"");
    STR_IS("\xe2\x80\xa8\xe2\x80\xa9", "\"\xe2\x80\xa8\xe2\x80\xa9\"");
    STR_IS("\xc2\x80\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf",
           "\"\xc2\x80\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
    /* invalid UTF-8: one U+FFFD per maximal subpart */
#define R "\xef\xbf\xbd"
    STR_IS("\xff", "\"" R "\"");
    STR_IS("a\x80z", "\"a" R "z\"");
    STR_IS("\xc3", "\"" R "\"");
    STR_IS("\xc3(", "\"" R "(\"");
    STR_IS("\xe4\xb8" "a", "\"" R "a\"");
    STR_IS("\xf0\x9f\x98", "\"" R "\"");
    STR_IS("\xf0\x9f\x98\xf0\x9f\x98\x80", "\"" R "\xf0\x9f\x98\x80\"");
    STR_IS("\xc0\xaf", "\"" R R "\"");
    STR_IS("\xed\xa0\x80", "\"" R R R "\"");
    STR_IS("\xe0\x80\xaf", "\"" R R R "\"");
    STR_IS("\xf4\x90\x80\x80", "\"" R R R R "\"");
    STR_IS("\xf8\x88\x80\x80\x80", "\"" R R R R R "\"");
#undef R
    cc__jbuf_str(&jb, NULL);
    ck_assert_str_eq(jb.p, "null");
    cc__jbuf_reset(&jb);
    cc__jbuf_str(&jb, "x");
    ck_assert_str_eq(jb.p, "\"x\"");
    cc__jbuf_reset(&jb);

    /* every escaped string reads back as the same bytes */
    static const char *const rt[] = {
        "a\"b\\c/d", "\x01\x02\x1f\x7f", "tab\there\nnl",
        "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80", "\xe2\x80\xa8",
        "}{][,:\"", "\\u0000 literal",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(rt); i++) {
        cc__jbuf_str(&jb, rt[i]);
        cJSON *o = cJSON_ParseWithLength(jb.p, jb.len);
        ck_assert_ptr_nonnull(o);
        ck_assert(cJSON_IsString(o));
        ck_assert_str_eq(o->valuestring, rt[i]);
        cJSON_Delete(o);
        cc__jbuf_reset(&jb);
    }

    /* in frames too */
    cc__enc_session_closed(&jb, "S_1", "a\"b\\c\n\xe4\xb8\xad\xff", "system");
    JSON_IS("{\"type\":\"session_closed\",\"session\":\"S_1\","
            "\"reason\":\"a\\\"b\\\\c\\u000a\xe4\xb8\xad\xef\xbf\xbd\","
            "\"by\":\"system\"}");
}
END_TEST

START_TEST(test_numbers_out)
{
    cc__jbuf_u64(&jb, 0);
    cc__jbuf_raw(&jb, " ", 1);
    cc__jbuf_u64(&jb, UINT64_MAX);
    cc__jbuf_raw(&jb, " ", 1);
    cc__jbuf_i64(&jb, -1);
    cc__jbuf_raw(&jb, " ", 1);
    cc__jbuf_i64(&jb, INT64_MIN);
    cc__jbuf_raw(&jb, " ", 1);
    cc__jbuf_i64(&jb, INT64_MAX);
    cc__jbuf_raw(&jb, " ", 1);
    cc__jbuf_i64(&jb, 0);
    cc__jbuf_raw(&jb, " ", 1);
    cc__jbuf_bool(&jb, 1);
    cc__jbuf_bool(&jb, 0);
    ck_assert_str_eq(jb.p, "0 18446744073709551615 -1 -9223372036854775808 "
                           "9223372036854775807 0 truefalse");
    cc__jbuf_reset(&jb);
    cc__enc_queued(&jb, "S", -1);
    JSON_IS("{\"type\":\"queued\",\"session\":\"S\",\"position\":-1}");
}
END_TEST

START_TEST(test_jbuf_growth)
{
    /* many appends: content intact, NUL kept, capacity grows */
    for (int i = 0; i < 20000; i++)
        cc__jbuf_raw(&jb, "0123456789", 10);
    ck_assert_int_eq(jb.oom, 0);
    ck_assert_uint_eq(jb.len, 200000);
    ck_assert_uint_ge(jb.cap, 200001);
    ck_assert_uint_eq(ta.bytes, jb.cap);
    ck_assert_uint_eq(strlen(jb.p), 200000);
    for (size_t i = 0; i < jb.len; i++)
        ck_assert_int_eq(jb.p[i], '0' + (int)(i % 10));
    size_t cap = jb.cap;
    cc__jbuf_reset(&jb);
    ck_assert_uint_eq(jb.len, 0);
    ck_assert_uint_eq(jb.cap, cap);
    ck_assert_str_eq(jb.p, "");
    /* a long escaped string in one go */
    const char *big = rep("\"\x01", 50000);
    cc__jbuf_str(&jb, big);
    ck_assert_uint_eq(jb.len, 2 + 50000 * 8);
    cJSON *o = cJSON_ParseWithLength(jb.p, jb.len);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(o->valuestring, big);
    cJSON_Delete(o);
    cc__jbuf_free(&jb);
    ck_assert_uint_eq(ta.bytes, 0);
    cc__jbuf_free(&jb); /* twice is fine */
    /* NULL allocator = libc */
    cc__jbuf b;
    cc__jbuf_init(&b, NULL);
    cc__enc_pong(&b);
    ck_assert_str_eq(b.p, "{\"type\":\"pong\"}");
    cc__jbuf_free(&b);
}
END_TEST

START_TEST(test_jbuf_oom)
{
    /* first allocation fails */
    ta.fail_at = 1;
    cc__jbuf_str(&jb, "x");
    ck_assert_int_eq(jb.oom, 1);
    ck_assert_uint_eq(jb.len, 0);
    ck_assert_ptr_null(jb.p);
    /* sticky: later appends do nothing */
    cc__enc_pong(&jb);
    cc__jbuf_u64(&jb, 5);
    ck_assert_int_eq(jb.oom, 1);
    ck_assert_uint_eq(jb.len, 0);
    ck_assert_uint_eq(ta.nalloc, 1);
    /* reset clears it; allocations work again */
    cc__jbuf_reset(&jb);
    cc__enc_pong(&jb);
    ck_assert_int_eq(jb.oom, 0);
    ck_assert_str_eq(jb.p, "{\"type\":\"pong\"}");

    /* a failed growth keeps what was there */
    cc__jbuf_reset(&jb);
    cc__jbuf_raw(&jb, "abc", 3);
    ta.fail_at = ta.nalloc + 1;
    const char *big = rep("y", 10000);
    cc__jbuf_str(&jb, big);
    ck_assert_int_eq(jb.oom, 1);
    ck_assert_uint_eq(jb.len, 3);
    ck_assert_str_eq(jb.p, "abc");
    cc__jbuf_free(&jb);
    ck_assert_uint_eq(ta.bytes, 0);

    /* every frame, failing at every allocation */
    cc__msgv ms[3] = {M1, M2, M3};
    cc__queue_item q[1] = {{"S_1", "v_1", 1, "p"}};
    cc__sess_item ss[1] = {{"S_1", "v_1", "active", 1}};
    cc__hello h = {"t1", "a_7", "gw-1", 1, 20, NULL, NULL, 0, "online",
                   q, 1, ss, 1};
    for (size_t k = 1; k <= 4; k++) {
        for (int frame = 0; frame < 8; frame++) {
            cc_test_alloc_init(&ta);
            cc__jbuf_init(&jb, &ta.a);
            /* a small first block so that growth happens */
            cc__jbuf_raw(&jb, "", 0);
            ta.fail_at = ta.nalloc + k;
            for (int r = 0; r < 100; r++) {
                switch (frame) {
                case 0: cc__enc_history(&jb, "S_1", ms, 3, 1); break;
                case 1: cc__enc_accepted(&jb, "S_1", "v_1", ms, 3, 3); break;
                case 2: cc__enc_transferred(&jb, "S_1", "a", "b", ms, 3, 3);
                    break;
                case 3: cc__enc_hello(&jb, &h); break;
                case 4: cc__enc_queue(&jb, q, 1); break;
                case 5: cc__enc_error(&jb, CC__E_RATE_LIMITED, "m", "r", 5);
                    break;
                case 6: cc__enc_msg(&jb, &M1); break;
                default: cc__enc_sent(&jb, "c", "S", 1, 2); break;
                }
            }
            ck_assert_int_eq(jb.oom, 1);
            /* what is there is a NUL-terminated prefix */
            if (jb.p)
                ck_assert_uint_eq(strlen(jb.p), jb.len);
            cc__jbuf_free(&jb);
            ck_assert_uint_eq(ta.bytes, 0);
        }
    }
}
END_TEST

/* ---- decode -> encode ---- */

START_TEST(test_roundtrip)
{
    const char *in =
        "{\"type\":\"send\",\"session\":\"S_1\",\"cid\":\"\xe4\xb8\xad-1\","
        "\"kind\":\"text\",\"body\":{ \"text\" : \"h\\u00e9 \\\"q\\\" "
        "\xf0\x9f\x98\x80\", \"n\":[1.5e3,-2,{\"a\":null}]}}";
    cc__cframe f;
    OK(in, &f);
    cc__msgv m = {f.session, 5, "visitor:v_1", f.kind, f.body_json, 77,
                  f.cid};
    cc__enc_msg(&jb, &m);
    cJSON *out = cJSON_ParseWithLength(jb.p, jb.len);
    cJSON *orig = cJSON_Parse(in);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(orig);
    ck_assert(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(out, "body"),
                            cJSON_GetObjectItemCaseSensitive(orig, "body"),
                            1));
    ck_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(out, "cid")->valuestring,
        "\xe4\xb8\xad-1");
    ck_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(out, "kind")->valuestring, "text");
    cJSON_Delete(out);
    cJSON_Delete(orig);
    cc__jbuf_reset(&jb);

    /* error frame echoing the decoded ref */
    cc__enc_error(&jb, CC__E_NOT_FOUND, "no such session",
                  f.has_ref ? f.ref : NULL, -1);
    JSON_IS("{\"type\":\"error\",\"code\":\"not_found\","
            "\"message\":\"no such session\",\"ref\":\"\xe4\xb8\xad-1\"}");
    cc__cframe_clear(&f);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("proto");

    TCase *tc = tcase_create("decode");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_valid_id);
    tcase_add_test(tc, test_ping);
    tcase_add_test(tc, test_refresh);
    tcase_add_test(tc, test_send);
    tcase_add_test(tc, test_ack_read);
    tcase_add_test(tc, test_typing);
    tcase_add_test(tc, test_sync);
    tcase_add_test(tc, test_accept);
    tcase_add_test(tc, test_transfer);
    tcase_add_test(tc, test_close);
    tcase_add_test(tc, test_status);
    tcase_add_test(tc, test_missing_and_wrong_types);
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_ping_is_fine_err_helper);
    tcase_add_test(tc, test_not_object);
    tcase_add_test(tc, test_type);
    tcase_add_test(tc, test_utf8);
    tcase_add_test(tc, test_nul);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_extra_and_duplicate_fields);
    tcase_add_test(tc, test_session_id);
    tcase_add_test(tc, test_cid);
    tcase_add_test(tc, test_kind);
    tcase_add_test(tc, test_body_size);
    tcase_add_test(tc, test_ref);
    tcase_add_test(tc, test_ref_send_cid);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_reason);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_oom_decode);
    tcase_add_test(tc, test_oom_cjson);
    tcase_add_test(tc, test_decode_all_under_oom);
    suite_add_tcase(s, tc);

    TCase *te = tcase_create("encode");
    tcase_add_checked_fixture(te, jsetup, jteardown);
    tcase_set_timeout(te, 60);
    tcase_add_test(te, test_enc_simple);
    tcase_add_test(te, test_enc_error);
    tcase_add_test(te, test_enc_msg);
    tcase_add_test(te, test_enc_history);
    tcase_add_test(te, test_enc_accepted_transferred);
    tcase_add_test(te, test_enc_queue_hello);
    tcase_add_test(te, test_escape);
    tcase_add_test(te, test_numbers_out);
    tcase_add_test(te, test_jbuf_growth);
    tcase_add_test(te, test_jbuf_oom);
    tcase_add_test(te, test_roundtrip);
    suite_add_tcase(s, te);
    return s;
}
