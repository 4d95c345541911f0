/*
 * tests/test_tenant.c - tenants and agents as data (lib/chat/tenant.c):
 * defaults, PUT validation with its exact messages, JSON merge patch, the
 * API and storage forms, secret rotation, agents, PBKDF2 password hashes
 * (against vectors computed independently with Python's hashlib) and the
 * kernel random source.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/tenant.h"
#include "core/internal.h"
#include "testutil.h"

#define DEFAULT_API                                                         \
    "{\"id\":\"t1\",\"name\":\"t1\",\"session_ttl\":600,\"heartbeat\":20,"  \
    "\"auto_assign\":false,\"agent_capacity\":5,\"rate_limits\":"           \
    "{\"messages_per_s\":20,\"burst\":40,\"tenant_messages_per_s\":2000,"   \
    "\"connections_per_ip_per_min\":60},\"uploads\":{\"max_bytes\":"       \
    "10485760,\"allowed_mime\":[\"image/png\",\"image/jpeg\","              \
    "\"application/pdf\"],\"presign_per_min\":30},\"webhook\":"             \
    "{\"url\":null,\"secret\":null}}"

#define SECRET_A "secret-aaaaaaaaaaaaaaaa"
#define SECRET_B "secret-bbbbbbbbbbbbbbbb"

#define FULL_BODY                                                           \
    "{\"id\":\"t1\",\"name\":\"Acme \\u00e9\",\"secret\":\"" SECRET_A "\"," \
    "\"session_ttl\":3600,\"heartbeat\":30,\"auto_assign\":true,"           \
    "\"agent_capacity\":7,\"rate_limits\":{\"messages_per_s\":2.5,"         \
    "\"burst\":10,\"tenant_messages_per_s\":500,"                           \
    "\"connections_per_ip_per_min\":9},\"uploads\":{\"max_bytes\":1024,"    \
    "\"allowed_mime\":[\"text/plain\",\"image/svg+xml\"],"                  \
    "\"presign_per_min\":3},\"webhook\":{\"url\":"                          \
    "\"https://hooks.example/x?a=1\",\"secret\":\"" SECRET_B "\"}}"

/* KATs from Python: hashlib.pbkdf2_hmac('sha256', pw, salt, iter, 32) */
#define KAT1                                                                \
    "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"                            \
    "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ"
#define KAT2                                                                \
    "pbkdf2-sha256$60000$AAAAAAAAAAAAAAAAAAAAAA$"                           \
    "o4UkOfbQghwBCKVlJueBF99hz0fBQBftuMBvCuosgdA"

static int
put(const char *body, cc__tenant_cfg *t, const char **err)
{
    return cc__tenant_from_put("t1", body, strlen(body), t, err);
}

static int
is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* The API (or storage) form of t, as a malloc'ed string. */
static char *
to_text(const cc__tenant_cfg *t, int mode)
{
    cc__jbuf b;
    cc__jbuf_init(&b, NULL);
    if (mode == 2)
        cc__tenant_to_storage(&b, t);
    else
        cc__tenant_to_json(&b, t, mode);
    ck_assert_int_eq(b.oom, 0);
    char *s = strdup(b.p);
    cc__jbuf_free(&b);
    return s;
}

static char *
agent_text(const cc__agent_cfg *a, int storage)
{
    cc__jbuf b;
    cc__jbuf_init(&b, NULL);
    if (storage)
        cc__agent_to_storage(&b, a);
    else
        cc__agent_to_json(&b, a);
    ck_assert_int_eq(b.oom, 0);
    char *s = strdup(b.p);
    cc__jbuf_free(&b);
    return s;
}

START_TEST(test_defaults)
{
    cc__tenant_cfg t;
    memset(&t, 0x5a, sizeof(t));
    cc__tenant_defaults(&t, "t1");
    ck_assert_str_eq(t.id, "t1");
    ck_assert_str_eq(t.name, "t1");
    ck_assert_str_eq(t.secret, "");
    ck_assert_str_eq(t.old_secret, "");
    ck_assert_int_eq(t.old_secret_until, 0);
    ck_assert_int_eq(t.session_ttl, 600);
    ck_assert_int_eq(t.heartbeat, 20);
    ck_assert_int_eq(t.auto_assign, 0);
    ck_assert_int_eq(t.agent_capacity, 5);
    ck_assert(t.messages_per_s == 20);
    ck_assert(t.burst == 40);
    ck_assert(t.tenant_messages_per_s == 2000);
    ck_assert_int_eq(t.connections_per_ip_per_min, 60);
    ck_assert_int_eq(t.upload_max_bytes, 10485760);
    ck_assert_int_eq(t.n_mime, 3);
    ck_assert_str_eq(t.allowed_mime[0], "image/png");
    ck_assert_str_eq(t.allowed_mime[1], "image/jpeg");
    ck_assert_str_eq(t.allowed_mime[2], "application/pdf");
    ck_assert_int_eq(t.presign_per_min, 30);
    ck_assert_str_eq(t.webhook_url, "");
    ck_assert_str_eq(t.webhook_secret, "");
    char *s = to_text(&t, 0);
    ck_assert_str_eq(s, DEFAULT_API);
    free(s);
}
END_TEST

START_TEST(test_put_full)
{
    cc__tenant_cfg t;
    const char *err = "x";
    ck_assert_int_eq(put(FULL_BODY, &t, &err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(t.id, "t1");
    ck_assert_str_eq(t.name, "Acme \xc3\xa9");
    ck_assert_str_eq(t.secret, SECRET_A);
    ck_assert_str_eq(t.old_secret, "");
    ck_assert_int_eq(t.session_ttl, 3600);
    ck_assert_int_eq(t.heartbeat, 30);
    ck_assert_int_eq(t.auto_assign, 1);
    ck_assert_int_eq(t.agent_capacity, 7);
    ck_assert(t.messages_per_s == 2.5);
    ck_assert(t.burst == 10);
    ck_assert(t.tenant_messages_per_s == 500);
    ck_assert_int_eq(t.connections_per_ip_per_min, 9);
    ck_assert_int_eq(t.upload_max_bytes, 1024);
    ck_assert_int_eq(t.n_mime, 2);
    ck_assert_str_eq(t.allowed_mime[0], "text/plain");
    ck_assert_str_eq(t.allowed_mime[1], "image/svg+xml");
    ck_assert_int_eq(t.presign_per_min, 3);
    ck_assert_str_eq(t.webhook_url, "https://hooks.example/x?a=1");
    ck_assert_str_eq(t.webhook_secret, SECRET_B);

    /* everything optional; edges of the ranges are in */
    ck_assert_int_eq(put("{}", &t, &err), 0);
    ck_assert_int_eq(t.session_ttl, 600);
    ck_assert_int_eq(put(" {\"session_ttl\":604800,\"heartbeat\":5,"
                         "\"agent_capacity\":1000,\"rate_limits\":"
                         "{\"messages_per_s\":100000,\"burst\":1,"
                         "\"tenant_messages_per_s\":0.001,"
                         "\"connections_per_ip_per_min\":100000},"
                         "\"uploads\":{\"max_bytes\":1099511627776,"
                         "\"allowed_mime\":[],\"presign_per_min\":1}} \n",
                         &t, &err), 0);
    ck_assert_int_eq(t.session_ttl, 604800);
    ck_assert_int_eq(t.heartbeat, 5);
    ck_assert_int_eq(t.agent_capacity, 1000);
    ck_assert(t.messages_per_s == 100000);
    ck_assert(t.burst == 1);
    ck_assert(t.tenant_messages_per_s == 0.001);
    ck_assert_int_eq(t.upload_max_bytes, 1099511627776LL);
    ck_assert_int_eq(t.n_mime, 0);
    ck_assert_int_eq(t.presign_per_min, 1);
    /* null is the default in a PUT too */
    ck_assert_int_eq(put("{\"session_ttl\":null,\"rate_limits\":null,"
                         "\"webhook\":{\"url\":null,\"secret\":null},"
                         "\"name\":null}", &t, &err), 0);
    ck_assert_int_eq(t.session_ttl, 600);
    ck_assert_str_eq(t.name, "t1");
    /* 200 two-byte characters; a URL of exactly 2048 bytes */
    char body[4200], name[401], url[2049];
    for (int i = 0; i < 200; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[400] = '\0';
    memset(url, 'a', 2048);
    memcpy(url, "http://", 7);
    url[2048] = '\0';
    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"webhook\":{\"url\":\"%s\"}}", name, url);
    ck_assert_int_eq(put(body, &t, &err), 0);
    ck_assert_str_eq(t.name, name);
    ck_assert_str_eq(t.webhook_url, url);
    /* the body need not be NUL-terminated */
    const char raw[] = "{\"heartbeat\":33}garbage";
    ck_assert_int_eq(cc__tenant_from_put("t1", raw, 16, &t, &err), 0);
    ck_assert_int_eq(t.heartbeat, 33);
}
END_TEST

/* A replace keeps the current secret (and a rotation's grace period)
 * unless the body sets another. */
START_TEST(test_replace_keeps_secret)
{
    cc__tenant_cfg cur, out;
    const char *err = NULL;
    ck_assert_int_eq(cc__tenant_from_put("t1", "{}", 2, &cur, &err), 0);
    ck_assert_int_eq(cc__tenant_rotate(&cur, 1000), 0);
    ck_assert_int_eq(cc__tenant_replace("t1", &cur, "{\"name\":\"N\"}", 12,
                                        &out, &err), 0);
    ck_assert_str_eq(out.name, "N");
    ck_assert_str_eq(out.secret, cur.secret);
    ck_assert_str_eq(out.old_secret, cur.old_secret);
    ck_assert_int_eq(out.old_secret_until, cur.old_secret_until);
    const char *body = "{\"secret\":\"0123456789abcdefXYZ\"}";
    ck_assert_int_eq(cc__tenant_replace("t1", &cur, body, strlen(body), &out,
                                        &err), 0);
    ck_assert_str_eq(out.secret, "0123456789abcdefXYZ");
    ck_assert_str_eq(out.old_secret, "");
    ck_assert_int_eq(cc__tenant_replace("t1", NULL, "{}", 2, &out, &err), 0);
    ck_assert_uint_eq(strlen(out.secret), 64);
    ck_assert_str_ne(out.secret, cur.secret);
}
END_TEST

START_TEST(test_put_secret)
{
    cc__tenant_cfg t, u;
    const char *err;
    ck_assert_int_eq(put("{}", &t, &err), 0);
    ck_assert_msg(is_hex64(t.secret), "secret %s", t.secret);
    ck_assert_int_eq(put("{\"secret\":null}", &u, &err), 0);
    ck_assert(is_hex64(u.secret));
    ck_assert_str_ne(t.secret, u.secret);
    ck_assert_int_eq(put("{\"secret\":\"" SECRET_A "\"}", &t, &err), 0);
    ck_assert_str_eq(t.secret, SECRET_A);
    /* bad URL id */
    ck_assert_int_eq(cc__tenant_from_put("a b", "{}", 2, &t, &err),
                     CC_EINVAL);
    ck_assert_str_eq(err, "id: not a valid id");
}
END_TEST

static const struct {
    const char *body, *msg;
} put_bad[] = {
    {"", "body: must be a JSON object"},
    {"  \n", "body: must be a JSON object"},
    {"[]", "body: must be a JSON object"},
    {"\"x\"", "body: must be a JSON object"},
    {"null", "body: must be a JSON object"},
    {"{", "body: not valid JSON"},
    {"{} x", "body: not valid JSON"},
    {"{}{}", "body: not valid JSON"},
    {"{\"session_ttl\":01}", "body: not valid JSON"},
    {"{\"session_ttl\":1.}", "body: not valid JSON"},
    {"{\"session_ttl\":+1}", "body: not valid JSON"},
    {"{\"name\":\"a\x01\"}", "body: not valid JSON"},
    {"{\"name\":\"\\x\"}", "body: not valid JSON"},
    {"{\"name\":\"\\udc00\"}", "body: not valid JSON"},
    {"{'name':1}", "body: not valid JSON"},
    {"{\"name\":\"\xff\"}", "body: not valid UTF-8"},
    {"{\"name\":\"\xc0\xaf\"}", "body: not valid UTF-8"},
    {"{\"name\":\"a\\u0000b\"}", "body: strings must not contain U+0000"},
    {"{\"a\":[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]}", "body: nested too deeply"},
    {"{\"session_ttl\":1000000000000000000000000000000000000000000000000000"
     "0000000000000}", "body: number literal too long"},
    {"{\"id\":\"t2\"}", "id: must match the id in the URL"},
    {"{\"id\":null}", "id: must match the id in the URL"},
    {"{\"id\":1}", "id: must match the id in the URL"},
    {"{\"name\":\"\"}", "name: must be 1 to 200 characters"},
    {"{\"name\":5}", "name: must be a string"},
    {"{\"name\":\"a\\tb\"}", "name: must not contain control characters"},
    {"{\"secret\":\"short\"}", "secret: must be 16 to 256 characters"},
    {"{\"secret\":\"has a space in it here\"}",
     "secret: must be printable ASCII without spaces"},
    {"{\"secret\":\"non-ascii-\xc3\xa9-secret-value\"}",
     "secret: must be printable ASCII without spaces"},
    {"{\"secret\":123}", "secret: must be a string"},
    {"{\"session_ttl\":1.5}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"session_ttl\":5.0}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"session_ttl\":5e0}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"session_ttl\":\"5\"}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"session_ttl\":true}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"session_ttl\":0}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"session_ttl\":-0}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"session_ttl\":604801}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"session_ttl\":1e400}", "session_ttl: must be an integer from 1 to 604800"},
    {"{\"heartbeat\":4}", "heartbeat: must be an integer from 5 to 300"},
    {"{\"heartbeat\":301}", "heartbeat: must be an integer from 5 to 300"},
    {"{\"auto_assign\":1}", "auto_assign: must be true or false"},
    {"{\"auto_assign\":\"true\"}", "auto_assign: must be true or false"},
    {"{\"agent_capacity\":0}", "agent_capacity: must be an integer from 1 to 1000"},
    {"{\"agent_capacity\":1001}", "agent_capacity: must be an integer from 1 to 1000"},
    {"{\"rate_limits\":5}", "rate_limits: must be an object"},
    {"{\"uploads\":[]}", "uploads: must be an object"},
    {"{\"webhook\":\"x\"}", "webhook: must be an object"},
    {"{\"rate_limits\":{\"messages_per_s\":0}}",
     "rate_limits.messages_per_s: must be a number greater than 0 and at "
     "most 100000"},
    {"{\"rate_limits\":{\"messages_per_s\":100000.5}}",
     "rate_limits.messages_per_s: must be a number greater than 0 and at "
     "most 100000"},
    {"{\"rate_limits\":{\"messages_per_s\":\"1\"}}",
     "rate_limits.messages_per_s: must be a number greater than 0 and at "
     "most 100000"},
    {"{\"rate_limits\":{\"burst\":0.5}}",
     "rate_limits.burst: must be a number from 1 to 1000000"},
    {"{\"rate_limits\":{\"burst\":1000001}}",
     "rate_limits.burst: must be a number from 1 to 1000000"},
    {"{\"rate_limits\":{\"tenant_messages_per_s\":-1}}",
     "rate_limits.tenant_messages_per_s: must be a number greater than 0 "
     "and at most 10000000"},
    {"{\"rate_limits\":{\"connections_per_ip_per_min\":1.5}}",
     "rate_limits.connections_per_ip_per_min: must be an integer from 1 to "
     "100000"},
    {"{\"uploads\":{\"max_bytes\":0}}",
     "uploads.max_bytes: must be an integer from 1 to 1099511627776"},
    {"{\"uploads\":{\"max_bytes\":1099511627777}}",
     "uploads.max_bytes: must be an integer from 1 to 1099511627776"},
    {"{\"uploads\":{\"max_bytes\":1e3}}",
     "uploads.max_bytes: must be an integer from 1 to 1099511627776"},
    {"{\"uploads\":{\"presign_per_min\":100001}}",
     "uploads.presign_per_min: must be an integer from 1 to 100000"},
    {"{\"uploads\":{\"allowed_mime\":\"image/png\"}}",
     "uploads.allowed_mime: must be an array of at most 16 strings"},
    {"{\"uploads\":{\"allowed_mime\":[1]}}",
     "uploads.allowed_mime: must be an array of at most 16 strings"},
    {"{\"uploads\":{\"allowed_mime\":[\"a/a\",\"a/a\",\"a/a\",\"a/a\","
     "\"a/a\",\"a/a\",\"a/a\",\"a/a\",\"a/a\",\"a/a\",\"a/a\",\"a/a\","
     "\"a/a\",\"a/a\",\"a/a\",\"a/a\",\"a/a\"]}}",
     "uploads.allowed_mime: must be an array of at most 16 strings"},
    {"{\"uploads\":{\"allowed_mime\":[\"Image/png\"]}}",
     "uploads.allowed_mime: each entry must be a type/subtype of a-z 0-9 . "
     "+ - of at most 127 bytes"},
    {"{\"uploads\":{\"allowed_mime\":[\"image\"]}}",
     "uploads.allowed_mime: each entry must be a type/subtype of a-z 0-9 . "
     "+ - of at most 127 bytes"},
    {"{\"uploads\":{\"allowed_mime\":[\"image/\"]}}",
     "uploads.allowed_mime: each entry must be a type/subtype of a-z 0-9 . "
     "+ - of at most 127 bytes"},
    {"{\"uploads\":{\"allowed_mime\":[\"/png\"]}}",
     "uploads.allowed_mime: each entry must be a type/subtype of a-z 0-9 . "
     "+ - of at most 127 bytes"},
    {"{\"uploads\":{\"allowed_mime\":[\"a/b/c\"]}}",
     "uploads.allowed_mime: each entry must be a type/subtype of a-z 0-9 . "
     "+ - of at most 127 bytes"},
    {"{\"uploads\":{\"allowed_mime\":[\"text/plain; charset=utf-8\"]}}",
     "uploads.allowed_mime: each entry must be a type/subtype of a-z 0-9 . "
     "+ - of at most 127 bytes"},
    {"{\"webhook\":{\"url\":5}}", "webhook.url: must be a string or null"},
    {"{\"webhook\":{\"url\":\"ftp://x\"}}",
     "webhook.url: must be an http:// or https:// URL with a host"},
    {"{\"webhook\":{\"url\":\"http://\"}}",
     "webhook.url: must be an http:// or https:// URL with a host"},
    {"{\"webhook\":{\"url\":\"https:///x\"}}",
     "webhook.url: must be an http:// or https:// URL with a host"},
    {"{\"webhook\":{\"url\":\"\"}}",
     "webhook.url: must be an http:// or https:// URL with a host"},
    {"{\"webhook\":{\"url\":\"http://a b\"}}",
     "webhook.url: must be printable ASCII without spaces"},
    {"{\"webhook\":{\"url\":\"http://a\\nb\"}}",
     "webhook.url: must be printable ASCII without spaces"},
    {"{\"webhook\":{\"secret\":\"short\"}}",
     "webhook.secret: must be 16 to 256 characters"},
    {"{\"webhook\":{\"secret\":\"\"}}",
     "webhook.secret: must be 16 to 256 characters"},
    {"{\"webhook\":{\"secret\":[]}}",
     "webhook.secret: must be a string or null"},
    {"{\"foo\":1}", "foo: unknown field"},
    {"{\"Name\":\"x\"}", "Name: unknown field"},
    {"{\"old_secret\":null}", "old_secret: unknown field"},
    {"{\"old_secret_until\":1}", "old_secret_until: unknown field"},
    {"{\"rate_limits\":{\"foo\":1}}", "rate_limits.foo: unknown field"},
    {"{\"uploads\":{\"mime\":[]}}", "uploads.mime: unknown field"},
    {"{\"webhook\":{\"URL\":null}}", "webhook.URL: unknown field"},
    {"{\"name\":\"a\",\"name\":\"b\"}", "name: duplicate field"},
    {"{\"webhook\":{\"url\":null,\"url\":null}}",
     "webhook.url: duplicate field"},
    /* document order: the first problem wins */
    {"{\"heartbeat\":1,\"foo\":1}", "heartbeat: must be an integer from 5 to 300"},
    {"{\"foo\":1,\"heartbeat\":1}", "foo: unknown field"},
};

START_TEST(test_put_errors)
{
    for (size_t i = 0; i < CC__ARRAY_LEN(put_bad); i++) {
        cc__tenant_cfg t;
        const char *err = NULL;
        int rc = put(put_bad[i].body, &t, &err);
        ck_assert_msg(rc == CC_EINVAL, "case %zu (%s): rc %d", i,
                      put_bad[i].body, rc);
        ck_assert_msg(err != NULL && strcmp(err, put_bad[i].msg) == 0,
                      "case %zu (%s): got \"%s\"", i, put_bad[i].body,
                      err ? err : "(null)");
    }
}
END_TEST

START_TEST(test_put_errors_long)
{
    cc__tenant_cfg t;
    const char *err;
    char body[3000];
    char s[2100];

    /* 201 characters */
    memset(s, 'n', 201);
    s[201] = '\0';
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", s);
    ck_assert_int_eq(put(body, &t, &err), CC_EINVAL);
    ck_assert_str_eq(err, "name: must be 1 to 200 characters");
    /* over the buffer in bytes */
    memset(s, 'n', 900);
    s[900] = '\0';
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", s);
    ck_assert_int_eq(put(body, &t, &err), CC_EINVAL);
    ck_assert_str_eq(err, "name: must be 1 to 200 characters");
    /* 257-byte secret; 256 is fine */
    memset(s, 'k', 257);
    s[257] = '\0';
    snprintf(body, sizeof(body), "{\"secret\":\"%s\"}", s);
    ck_assert_int_eq(put(body, &t, &err), CC_EINVAL);
    ck_assert_str_eq(err, "secret: must be 16 to 256 characters");
    s[256] = '\0';
    snprintf(body, sizeof(body), "{\"secret\":\"%s\"}", s);
    ck_assert_int_eq(put(body, &t, &err), 0);
    ck_assert_str_eq(t.secret, s);
    s[15] = '\0';
    snprintf(body, sizeof(body), "{\"secret\":\"%s\"}", s);
    ck_assert_int_eq(put(body, &t, &err), CC_EINVAL);
    ck_assert_str_eq(err, "secret: must be 16 to 256 characters");
    /* URL of 2049 bytes */
    memset(s, 'u', 2049);
    memcpy(s, "http://", 7);
    s[2049] = '\0';
    snprintf(body, sizeof(body), "{\"webhook\":{\"url\":\"%s\"}}", s);
    ck_assert_int_eq(put(body, &t, &err), CC_EINVAL);
    ck_assert_str_eq(err, "webhook.url: must be at most 2048 bytes");
    /* MIME entry of 128 bytes; 127 is fine */
    memset(s, 'm', 128);
    s[1] = '/';
    s[128] = '\0';
    snprintf(body, sizeof(body),
             "{\"uploads\":{\"allowed_mime\":[\"%s\"]}}", s);
    ck_assert_int_eq(put(body, &t, &err), CC_EINVAL);
    ck_assert_str_eq(err, "uploads.allowed_mime: each entry must be a "
                          "type/subtype of a-z 0-9 . + - of at most 127 "
                          "bytes");
    s[127] = '\0';
    snprintf(body, sizeof(body),
             "{\"uploads\":{\"allowed_mime\":[\"%s\"]}}", s);
    ck_assert_int_eq(put(body, &t, &err), 0);
    ck_assert_str_eq(t.allowed_mime[0], s);
    /* an unknown member's name is quoted up to 64 bytes */
    memset(s, 'k', 70);
    s[70] = '\0';
    snprintf(body, sizeof(body), "{\"rate_limits\":{\"%s\":1}}", s);
    ck_assert_int_eq(put(body, &t, &err), CC_EINVAL);
    s[64] = '\0';
    snprintf(body, sizeof(body), "rate_limits.%s...: unknown field", s);
    ck_assert_str_eq(err, body);
    /* ... cut at a character boundary: 63 ASCII + a 2-byte character */
    memset(s, 'k', 63);
    memcpy(s + 63, "\xc3\xa9z", 4);
    snprintf(body, sizeof(body), "{\"%s\":1}", s);
    ck_assert_int_eq(put(body, &t, &err), CC_EINVAL);
    s[63] = '\0';
    snprintf(body, sizeof(body), "%s...: unknown field", s);
    ck_assert_str_eq(err, body);
    /* 16 levels of nesting parse (then fail as unknown) */
    ck_assert_int_eq(put("{\"a\":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}", &t, &err),
                     CC_EINVAL);
    ck_assert_str_eq(err, "a: unknown field");
}
END_TEST

static void
full_tenant(cc__tenant_cfg *t)
{
    const char *err;
    ck_assert_int_eq(put(FULL_BODY, t, &err), 0);
    memcpy(t->old_secret, SECRET_B, sizeof(SECRET_B));
    t->old_secret_until = 1700000000;
}

static int
patch(const cc__tenant_cfg *cur, const char *p, cc__tenant_cfg *out,
      const char **err)
{
    return cc__tenant_patch(cur, p, strlen(p), out, err);
}

START_TEST(test_patch)
{
    cc__tenant_cfg cur, out, def;
    const char *err = "x";
    full_tenant(&cur);
    cc__tenant_defaults(&def, "t1");

    /* {} changes nothing, old secret included */
    ck_assert_int_eq(patch(&cur, "{}", &out, &err), 0);
    ck_assert_str_eq(err, "");
    char *a = to_text(&cur, 2), *b = to_text(&out, 2);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);

    /* nested merge: one member changes, its siblings stay */
    ck_assert_int_eq(patch(&cur, "{\"rate_limits\":{\"burst\":100},"
                                 "\"heartbeat\":60}", &out, &err), 0);
    ck_assert(out.burst == 100);
    ck_assert(out.messages_per_s == 2.5);
    ck_assert(out.tenant_messages_per_s == 500);
    ck_assert_int_eq(out.connections_per_ip_per_min, 9);
    ck_assert_int_eq(out.heartbeat, 60);
    ck_assert_int_eq(out.session_ttl, 3600);
    ck_assert_str_eq(out.secret, SECRET_A);
    ck_assert_str_eq(out.old_secret, SECRET_B);
    ck_assert_int_eq(out.old_secret_until, 1700000000);

    /* null member of a nested object: that member's default */
    ck_assert_int_eq(patch(&cur, "{\"rate_limits\":{\"burst\":null}}", &out,
                           &err), 0);
    ck_assert(out.burst == 40);
    ck_assert(out.messages_per_s == 2.5);

    /* null object: all its members' defaults */
    ck_assert_int_eq(patch(&cur, "{\"rate_limits\":null,\"uploads\":null,"
                                 "\"session_ttl\":null}", &out, &err), 0);
    ck_assert(out.messages_per_s == 20);
    ck_assert(out.burst == 40);
    ck_assert(out.tenant_messages_per_s == 2000);
    ck_assert_int_eq(out.connections_per_ip_per_min, 60);
    ck_assert_int_eq(out.upload_max_bytes, 10485760);
    ck_assert_int_eq(out.n_mime, 3);
    ck_assert_str_eq(out.allowed_mime[2], "application/pdf");
    ck_assert_int_eq(out.presign_per_min, 30);
    ck_assert_int_eq(out.session_ttl, 600);
    ck_assert_int_eq(out.heartbeat, 30);
    ck_assert_str_eq(out.webhook_url, "https://hooks.example/x?a=1");

    /* arrays are replaced, not merged */
    ck_assert_int_eq(patch(&cur, "{\"uploads\":{\"allowed_mime\":"
                                 "[\"audio/ogg\"]}}", &out, &err), 0);
    ck_assert_int_eq(out.n_mime, 1);
    ck_assert_str_eq(out.allowed_mime[0], "audio/ogg");
    ck_assert_int_eq(out.upload_max_bytes, 1024);
    ck_assert_int_eq(patch(&cur, "{\"uploads\":{\"allowed_mime\":null}}",
                           &out, &err), 0);
    ck_assert_int_eq(out.n_mime, 3);
    ck_assert_str_eq(out.allowed_mime[0], "image/png");

    /* webhook url and name removed; a new secret */
    ck_assert_int_eq(patch(&cur, "{\"webhook\":{\"url\":null},"
                                 "\"name\":null,\"secret\":\"" SECRET_B
                                 "\",\"id\":\"t1\"}", &out, &err), 0);
    ck_assert_str_eq(out.webhook_url, "");
    ck_assert_str_eq(out.webhook_secret, SECRET_B);
    ck_assert_str_eq(out.name, "t1");
    ck_assert_str_eq(out.secret, SECRET_B);
    ck_assert_int_eq(patch(&cur, "{\"webhook\":null}", &out, &err), 0);
    ck_assert_str_eq(out.webhook_url, "");
    ck_assert_str_eq(out.webhook_secret, "");

    /* a PATCH with the tenant's own GET form changes nothing, hidden
     * secrets included (with and without a webhook secret) */
    for (int k = 0; k < 2; k++) {
        cc__tenant_cfg base = cur;
        if (k == 1)
            base.webhook_secret[0] = '\0';
        char *api = to_text(&base, 0);
        ck_assert_int_eq(patch(&base, api, &out, &err), 0);
        a = to_text(&base, 2);
        b = to_text(&out, 2);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
        free(api);
    }

    /* scalars replace */
    ck_assert_int_eq(patch(&cur, "{\"auto_assign\":false,\"agent_capacity\":"
                                 "2}", &out, &err), 0);
    ck_assert_int_eq(out.auto_assign, 0);
    ck_assert_int_eq(out.agent_capacity, 2);
    ck_assert_str_eq(out.name, "Acme \xc3\xa9");
}
END_TEST

START_TEST(test_patch_errors)
{
    static const struct {
        const char *body, *msg;
    } c[] = {
        {"{\"secret\":null}", "secret: cannot be removed; rotate it instead"},
        {"{\"id\":\"t2\"}", "id: must match the id in the URL"},
        {"{\"id\":null}", "id: must match the id in the URL"},
        {"{\"bogus\":1}", "bogus: unknown field"},
        {"{\"rate_limits\":{\"bogus\":null}}",
         "rate_limits.bogus: unknown field"},
        {"{\"old_secret\":\"" SECRET_A "\"}", "old_secret: unknown field"},
        {"{\"rate_limits\":[]}", "rate_limits: must be an object"},
        {"{\"rate_limits\":{\"burst\":0}}",
         "rate_limits.burst: must be a number from 1 to 1000000"},
        {"{\"heartbeat\":\"20\"}", "heartbeat: must be an integer from 5 to 300"},
        {"[]", "body: must be a JSON object"},
        {"", "body: must be a JSON object"},
    };
    cc__tenant_cfg cur, out;
    full_tenant(&cur);
    for (size_t i = 0; i < CC__ARRAY_LEN(c); i++) {
        const char *err = NULL;
        int rc = patch(&cur, c[i].body, &out, &err);
        ck_assert_msg(rc == CC_EINVAL, "case %zu: rc %d", i, rc);
        ck_assert_msg(err && strcmp(err, c[i].msg) == 0,
                      "case %zu: got \"%s\"", i, err ? err : "(null)");
    }
    /* a current tenant that is itself invalid is caught */
    cur.heartbeat = 1;
    const char *err = NULL;
    ck_assert_int_eq(patch(&cur, "{}", &out, &err), CC_EINVAL);
    ck_assert_str_eq(err, "heartbeat: must be an integer from 5 to 300");
    ck_assert_int_eq(patch(&cur, "{\"heartbeat\":null}", &out, &err), 0);
    ck_assert_int_eq(out.heartbeat, 20);
}
END_TEST

#define FULL_API_TAIL                                                       \
    "\"session_ttl\":3600,\"heartbeat\":30,\"auto_assign\":true,"           \
    "\"agent_capacity\":7,\"rate_limits\":{\"messages_per_s\":2.5,"         \
    "\"burst\":10,\"tenant_messages_per_s\":500,"                           \
    "\"connections_per_ip_per_min\":9},\"uploads\":{\"max_bytes\":1024,"    \
    "\"allowed_mime\":[\"text/plain\",\"image/svg+xml\"],"                  \
    "\"presign_per_min\":3},\"webhook\":{\"url\":"                          \
    "\"https://hooks.example/x?a=1\""
#define WEBHOOK_SHOWN ",\"secret\":\"" SECRET_B "\"}}"
#define WEBHOOK_HIDDEN "}}"

START_TEST(test_api_json)
{
    cc__tenant_cfg t;
    full_tenant(&t);
    memcpy(t.old_secret, "old-secret-must-not-show", 25);
    char *s = to_text(&t, 0);
    /* both secrets are write-only: the webhook's is left out, not null */
    ck_assert_str_eq(s, "{\"id\":\"t1\",\"name\":\"Acme \xc3\xa9\","
                        FULL_API_TAIL WEBHOOK_HIDDEN);
    ck_assert_ptr_null(strstr(s, SECRET_A));
    ck_assert_ptr_null(strstr(s, SECRET_B));
    free(s);
    s = to_text(&t, 1);
    ck_assert_str_eq(s, "{\"id\":\"t1\",\"name\":\"Acme \xc3\xa9\","
                        "\"secret\":\"" SECRET_A "\"," FULL_API_TAIL
                        WEBHOOK_SHOWN);
    ck_assert_ptr_null(strstr(s, "old"));
    free(s);
    s = to_text(&t, 2);
    ck_assert_str_eq(s, "{\"id\":\"t1\",\"name\":\"Acme \xc3\xa9\","
                        "\"secret\":\"" SECRET_A "\",\"old_secret\":"
                        "\"old-secret-must-not-show\",\"old_secret_until\":"
                        "1700000000," FULL_API_TAIL WEBHOOK_SHOWN);
    free(s);
    /* names are escaped */
    const char *err;
    ck_assert_int_eq(put("{\"name\":\"a\\\"b\\\\c\\/d\\u2028\"}", &t, &err),
                     0);
    ck_assert_str_eq(t.name, "a\"b\\c/d\xe2\x80\xa8");
    s = to_text(&t, 0);
    ck_assert_ptr_nonnull(strstr(s, "\"name\":\"a\\\"b\\\\c/d\xe2\x80\xa8\","));
    free(s);
    /* the documented default tenant, the secret aside */
    cc__tenant_defaults(&t, "t1");
    s = to_text(&t, 0);
    ck_assert_str_eq(s, DEFAULT_API);
    free(s);
}
END_TEST

START_TEST(test_storage_roundtrip)
{
    static const char *const bodies[] = {
        FULL_BODY,
        "{}",
        "{\"name\":\"\xe4\xb8\xad \\\"q\\\" \\\\ \xf0\x9f\x98\x80\","
        "\"rate_limits\":{\"messages_per_s\":0.1,\"burst\":33.333333333333336,"
        "\"tenant_messages_per_s\":1234.5678},\"uploads\":"
        "{\"allowed_mime\":[]},\"webhook\":{\"secret\":\"" SECRET_B "\"}}",
        ("{\"rate_limits\":{\"messages_per_s\":1e-300,"
         "\"tenant_messages_per_s\":9999999.999999998}}"),
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bodies); i++) {
        cc__tenant_cfg t, u;
        const char *err;
        ck_assert_int_eq(put(bodies[i], &t, &err), 0);
        if (i == 0) {
            memcpy(t.old_secret, SECRET_B, sizeof(SECRET_B));
            t.old_secret_until = 1700000000;
        }
        char *s1 = to_text(&t, 2);
        ck_assert_msg(cc__tenant_from_storage("t1", s1, &u) == 0, "%s", s1);
        char *s2 = to_text(&u, 2);
        ck_assert_str_eq(s1, s2);
        ck_assert_str_eq(u.secret, t.secret);
        ck_assert_str_eq(u.old_secret, t.old_secret);
        ck_assert_int_eq(u.old_secret_until, t.old_secret_until);
        ck_assert(u.messages_per_s == t.messages_per_s);
        ck_assert(u.burst == t.burst);
        ck_assert(u.tenant_messages_per_s == t.tenant_messages_per_s);
        ck_assert_int_eq(u.n_mime, t.n_mime);
        ck_assert_str_eq(u.name, t.name);
        free(s1);
        free(s2);
    }
    /* shortest round-trip text for doubles */
    cc__tenant_cfg t;
    const char *err;
    ck_assert_int_eq(put(bodies[2], &t, &err), 0);
    char *s = to_text(&t, 0);
    ck_assert_ptr_nonnull(strstr(s, "{\"messages_per_s\":0.1,\"burst\":"
                                    "33.333333333333336,"
                                    "\"tenant_messages_per_s\":1234.5678,"));
    ck_assert_ptr_nonnull(strstr(s, "\"allowed_mime\":[]"));
    ck_assert_ptr_nonnull(strstr(s, "\"webhook\":{\"url\":null}}"));
    free(s);
    s = to_text(&t, 1);
    ck_assert_ptr_nonnull(strstr(s, "\"webhook\":{\"url\":null,\"secret\":\""
                                    SECRET_B "\"}}"));
    free(s);
    /* no old secret: null */
    s = to_text(&t, 2);
    ck_assert_ptr_nonnull(strstr(s, ",\"old_secret\":null,"
                                    "\"old_secret_until\":0,"));
    free(s);
}
END_TEST

START_TEST(test_storage_errors)
{
    cc__tenant_cfg t;
    ck_assert_int_eq(cc__tenant_from_storage("t1", "{\"secret\":\"" SECRET_A
                                             "\"}", &t), 0);
    ck_assert_str_eq(t.secret, SECRET_A);
    ck_assert_int_eq(t.heartbeat, 20);
    ck_assert_int_eq(cc__tenant_from_storage("t1", "{\"secret\":\"" SECRET_A
                                             "\",\"old_secret\":\"" SECRET_B
                                             "\",\"old_secret_until\":5}",
                                             &t), 0);
    ck_assert_str_eq(t.old_secret, SECRET_B);
    ck_assert_int_eq(t.old_secret_until, 5);
    static const char *const bad[] = {
        "{}",                                      /* no secret */
        "{\"secret\":null}",
        "",
        "[]",
        "{\"secret\":\"" SECRET_A "\",\"id\":\"t2\"}",
        "{\"secret\":\"" SECRET_A "\",\"password\":\"x\"}",
        "{\"secret\":\"" SECRET_A "\",\"old_secret\":\"short\"}",
        "{\"secret\":\"" SECRET_A "\",\"old_secret_until\":-1}",
        "{\"secret\":\"" SECRET_A "\",\"old_secret_until\":1.5}",
        "{\"secret\":\"" SECRET_A "\",\"heartbeat\":0}",
        "{\"secret\":\"" SECRET_A "\"} trailing",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        ck_assert_msg(cc__tenant_from_storage("t1", bad[i], &t) == CC_EINVAL,
                      "case %zu", i);
    ck_assert_int_eq(cc__tenant_from_storage("t 1", "{\"secret\":\""
                                             SECRET_A "\"}", &t), CC_EINVAL);
    ck_assert_int_eq(cc__tenant_from_storage("t1", NULL, &t), CC_EINVAL);
}
END_TEST

START_TEST(test_rotation)
{
    cc__tenant_cfg t;
    const char *sec[2];
    full_tenant(&t);
    t.old_secret[0] = '\0';
    t.old_secret_until = 0;
    ck_assert_int_eq(cc__tenant_secrets(&t, 1000, sec), 1);
    ck_assert_ptr_eq(sec[0], t.secret);

    ck_assert_int_eq(cc__tenant_rotate(&t, 1000), 0);
    ck_assert(is_hex64(t.secret));
    ck_assert_str_eq(t.old_secret, SECRET_A);
    ck_assert_int_eq(t.old_secret_until, 1000 + 24 * 3600);
    ck_assert_int_eq(cc__tenant_secrets(&t, 1000, sec), 2);
    ck_assert_ptr_eq(sec[0], t.secret);
    ck_assert_ptr_eq(sec[1], t.old_secret);
    ck_assert_int_eq(cc__tenant_secrets(&t, 1000 + 24 * 3600 - 1, sec), 2);
    ck_assert_int_eq(cc__tenant_secrets(&t, 1000 + 24 * 3600, sec), 1);
    ck_assert_ptr_eq(sec[0], t.secret);
    ck_assert_int_eq(cc__tenant_secrets(&t, 1000000, sec), 1);

    /* a second rotation replaces the old secret */
    char first[65];
    memcpy(first, t.secret, sizeof(first));
    ck_assert_int_eq(cc__tenant_rotate(&t, 5000), 0);
    ck_assert_str_eq(t.old_secret, first);
    ck_assert_str_ne(t.secret, first);
    ck_assert_int_eq(t.old_secret_until, 5000 + 24 * 3600);

    /* the API form shows the new secret only, never the old one */
    char *s = to_text(&t, 1);
    ck_assert_ptr_nonnull(strstr(s, t.secret));
    ck_assert_ptr_null(strstr(s, first));
    free(s);
    s = to_text(&t, 0);
    ck_assert_ptr_null(strstr(s, t.secret));
    ck_assert_ptr_nonnull(strstr(s, "\"name\":\"Acme \xc3\xa9\","
                                    "\"session_ttl\":"));
    free(s);

    /* an empty old secret never counts */
    t.old_secret[0] = '\0';
    ck_assert_int_eq(cc__tenant_secrets(&t, 0, sec), 1);
}
END_TEST

START_TEST(test_agent_put)
{
    cc__agent_cfg a;
    char pw[CC__PW_MAX + 1];
    const char *err = "x";
    const char *body = "{\"name\":\"Alice\",\"password\":\"password1\","
                       "\"capacity\":3}";
    ck_assert_int_eq(cc__agent_from_put("t1", "a1", body, strlen(body), &a, pw,
                                        &err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(a.tenant, "t1");
    ck_assert_str_eq(a.id, "a1");
    ck_assert_str_eq(a.name, "Alice");
    ck_assert_str_eq(a.pwhash, "");
    ck_assert_int_eq(a.capacity, 3);
    ck_assert_str_eq(pw, "password1");

    body = "{\"password\":\"p\xc3\xa4ssw\xc3\xb6rd\",\"capacity\":null,"
           "\"id\":\"a1\",\"tenant\":\"t1\"}";
    ck_assert_int_eq(cc__agent_from_put("t1", "a1", body, strlen(body), &a, pw,
                                        &err), 0);
    ck_assert_str_eq(a.name, "a1");
    ck_assert_int_eq(a.capacity, 0);
    ck_assert_str_eq(pw, "p\xc3\xa4ssw\xc3\xb6rd");

    /* 8 and 256 bytes are the limits */
    char big[400];
    memset(big, 'p', 256);
    big[256] = '\0';
    char b2[500];
    snprintf(b2, sizeof(b2), "{\"password\":\"%s\",\"capacity\":1000}", big);
    ck_assert_int_eq(cc__agent_from_put("t1", "a1", b2, strlen(b2), &a, pw,
                                        &err), 0);
    ck_assert_str_eq(pw, big);
    ck_assert_int_eq(a.capacity, 1000);
    body = "{\"password\":\"12345678\"}";
    ck_assert_int_eq(cc__agent_from_put("t1", "a1", body, strlen(body), &a, pw,
                                        &err), 0);
    ck_assert_str_eq(pw, "12345678");
}
END_TEST

START_TEST(test_agent_errors)
{
    static const struct {
        const char *tenant, *id, *body, *msg;
    } c[] = {
        {"t1", "a1", "{}", "password: required"},
        {"t1", "a1", "{\"name\":\"x\"}", "password: required"},
        {"t1", "a1", "{\"password\":null}", "password: required"},
        {"t1", "a1", "{\"password\":\"1234567\"}",
         "password: must be a string of 8 to 256 bytes"},
        {"t1", "a1", "{\"password\":12345678}",
         "password: must be a string of 8 to 256 bytes"},
        {"t1", "a1", "{\"password\":\"password1\",\"capacity\":0}",
         "capacity: must be an integer from 1 to 1000 or null"},
        {"t1", "a1", "{\"password\":\"password1\",\"capacity\":1001}",
         "capacity: must be an integer from 1 to 1000 or null"},
        {"t1", "a1", "{\"password\":\"password1\",\"capacity\":1.5}",
         "capacity: must be an integer from 1 to 1000 or null"},
        {"t1", "a1", "{\"password\":\"password1\",\"capacity\":2.0}",
         "capacity: must be an integer from 1 to 1000 or null"},
        {"t1", "a1", "{\"password\":\"password1\",\"capacity\":\"3\"}",
         "capacity: must be an integer from 1 to 1000 or null"},
        {"t1", "a1", "{\"password\":\"password1\",\"name\":\"\"}",
         "name: must be 1 to 200 characters"},
        {"t1", "a1", "{\"password\":\"password1\",\"name\":[]}",
         "name: must be a string"},
        {"t1", "a1", "{\"password\":\"password1\",\"name\":\"a\\u001fb\"}",
         "name: must not contain control characters"},
        {"t1", "a1", "{\"password\":\"password1\",\"role\":\"x\"}",
         "role: unknown field"},
        {"t1", "a1", "{\"password\":\"password1\",\"pwhash\":\"x\"}",
         "pwhash: unknown field"},
        {"t1", "a1", "{\"password\":\"password1\",\"id\":\"a2\"}",
         "id: must match the id in the URL"},
        {"t1", "a1", "{\"password\":\"password1\",\"tenant\":\"t2\"}",
         "tenant: must match the tenant in the URL"},
        {"t1", "a1", "{\"password\":\"password1\",\"password\":\"password2\"}",
         "password: duplicate field"},
        {"t1", "a1", "[]", "body: must be a JSON object"},
        {"t1", "a1", "{\"password\":\"password1\"", "body: not valid JSON"},
        {"t1", "a 1", "{\"password\":\"password1\"}", "id: not a valid id"},
        {"", "a1", "{\"password\":\"password1\"}", "tenant: not a valid id"},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(c); i++) {
        cc__agent_cfg a;
        char pw[CC__PW_MAX + 1];
        const char *err = NULL;
        int rc = cc__agent_from_put(c[i].tenant, c[i].id, c[i].body,
                                    strlen(c[i].body), &a, pw, &err);
        ck_assert_msg(rc == CC_EINVAL, "case %zu: rc %d", i, rc);
        ck_assert_msg(err && strcmp(err, c[i].msg) == 0,
                      "case %zu: got \"%s\"", i, err ? err : "(null)");
    }
    /* 257-byte password */
    char body[400], pw[CC__PW_MAX + 1];
    memset(body, 'p', sizeof(body));
    memcpy(body, "{\"password\":\"", 13);
    memcpy(body + 13 + 257, "\"}", 3);
    cc__agent_cfg a;
    const char *err;
    ck_assert_int_eq(cc__agent_from_put("t1", "a1", body, strlen(body), &a, pw,
                                        &err), CC_EINVAL);
    ck_assert_str_eq(err, "password: must be a string of 8 to 256 bytes");
    ck_assert_str_eq(pw, "");
}
END_TEST

START_TEST(test_agent_patch)
{
    cc__agent_cfg cur, out;
    char pw[CC__PW_MAX + 1];
    const char *err = "x";
    memset(&cur, 0, sizeof(cur));
    strcpy(cur.tenant, "t1");
    strcpy(cur.id, "a1");
    strcpy(cur.name, "Alice");
    strcpy(cur.pwhash, KAT1);
    cur.capacity = 4;

    const char *p = "{\"name\":\"Bob\"}";
    ck_assert_int_eq(cc__agent_patch(&cur, p, strlen(p), &out, pw, &err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(out.name, "Bob");
    ck_assert_str_eq(pw, "");
    ck_assert_str_eq(out.pwhash, KAT1);
    ck_assert_int_eq(out.capacity, 4);
    ck_assert_str_eq(out.id, "a1");
    ck_assert_str_eq(out.tenant, "t1");

    p = "{\"password\":\"newpassword\",\"capacity\":null,\"name\":null}";
    ck_assert_int_eq(cc__agent_patch(&cur, p, strlen(p), &out, pw, &err), 0);
    ck_assert_str_eq(pw, "newpassword");
    ck_assert_str_eq(out.pwhash, KAT1); /* the caller hashes and replaces */
    ck_assert_int_eq(out.capacity, 0);
    ck_assert_str_eq(out.name, "a1");

    p = "{}";
    ck_assert_int_eq(cc__agent_patch(&cur, p, strlen(p), &out, pw, &err), 0);
    ck_assert_str_eq(out.name, "Alice");
    ck_assert_str_eq(pw, "");

    p = "{\"password\":null}";
    ck_assert_int_eq(cc__agent_patch(&cur, p, strlen(p), &out, pw, &err),
                     CC_EINVAL);
    ck_assert_str_eq(err, "password: cannot be removed");
    p = "{\"password\":\"short\"}";
    ck_assert_int_eq(cc__agent_patch(&cur, p, strlen(p), &out, pw, &err),
                     CC_EINVAL);
    ck_assert_str_eq(err, "password: must be a string of 8 to 256 bytes");
    p = "{\"capacity\":0}";
    ck_assert_int_eq(cc__agent_patch(&cur, p, strlen(p), &out, pw, &err),
                     CC_EINVAL);
    ck_assert_str_eq(err, "capacity: must be an integer from 1 to 1000 or "
                          "null");
    p = "{\"nickname\":\"x\"}";
    ck_assert_int_eq(cc__agent_patch(&cur, p, strlen(p), &out, pw, &err),
                     CC_EINVAL);
    ck_assert_str_eq(err, "nickname: unknown field");
    p = "{\"id\":\"a2\"}";
    ck_assert_int_eq(cc__agent_patch(&cur, p, strlen(p), &out, pw, &err),
                     CC_EINVAL);
    ck_assert_str_eq(err, "id: must match the id in the URL");
}
END_TEST

START_TEST(test_agent_json)
{
    cc__agent_cfg a, b;
    memset(&a, 0, sizeof(a));
    strcpy(a.tenant, "t1");
    strcpy(a.id, "a1");
    strcpy(a.name, "Al \"x\"");
    strcpy(a.pwhash, KAT1);
    a.capacity = 3;
    char *s = agent_text(&a, 0);
    ck_assert_str_eq(s, "{\"id\":\"a1\",\"tenant\":\"t1\",\"name\":"
                        "\"Al \\\"x\\\"\",\"capacity\":3}");
    free(s);
    a.capacity = 0;
    s = agent_text(&a, 0);
    ck_assert_str_eq(s, "{\"id\":\"a1\",\"tenant\":\"t1\",\"name\":"
                        "\"Al \\\"x\\\"\",\"capacity\":null}");
    ck_assert_ptr_null(strstr(s, "pbkdf2"));
    free(s);

    /* storage keeps the hash and round-trips */
    for (int cap = 0; cap <= 7; cap += 7) {
        a.capacity = cap;
        s = agent_text(&a, 1);
        ck_assert_ptr_nonnull(strstr(s, "\"pwhash\":\"" KAT1 "\""));
        ck_assert_int_eq(cc__agent_from_storage("t1", "a1", s, &b), 0);
        char *s2 = agent_text(&b, 1);
        ck_assert_str_eq(s, s2);
        ck_assert_str_eq(b.pwhash, KAT1);
        ck_assert_int_eq(b.capacity, cap);
        ck_assert_str_eq(b.name, a.name);
        free(s);
        free(s2);
    }
    s = agent_text(&a, 1);
    ck_assert_str_eq(s, "{\"id\":\"a1\",\"tenant\":\"t1\",\"name\":"
                        "\"Al \\\"x\\\"\",\"pwhash\":\"" KAT1 "\","
                        "\"capacity\":7}");
    free(s);
    /* storage errors */
    ck_assert_int_eq(cc__agent_from_storage("t1", "a1", "{}", &b), 0);
    ck_assert_str_eq(b.name, "a1");
    ck_assert_str_eq(b.pwhash, "");
    ck_assert_int_eq(cc__agent_from_storage("t1", "a1", "{\"capacity\":0}",
                                            &b), 0);
    ck_assert_int_eq(cc__agent_from_storage("t1", "a1", "{\"id\":\"a2\"}", &b),
                     CC_EINVAL);
    ck_assert_int_eq(cc__agent_from_storage("t1", "a1", "{\"tenant\":\"t2\"}",
                                            &b), CC_EINVAL);
    ck_assert_int_eq(cc__agent_from_storage("t1", "a1",
                                            "{\"password\":\"password1\"}",
                                            &b), CC_EINVAL);
    ck_assert_int_eq(cc__agent_from_storage("t1", "a1",
                                            "{\"pwhash\":\"a b\"}", &b),
                     CC_EINVAL);
    ck_assert_int_eq(cc__agent_from_storage("t1", "a1", "{\"capacity\":-1}",
                                            &b), CC_EINVAL);
    ck_assert_int_eq(cc__agent_from_storage("t1", "a1", "nope", &b),
                     CC_EINVAL);
    ck_assert_int_eq(cc__agent_from_storage("t1", "a 1", "{}", &b),
                     CC_EINVAL);
}
END_TEST

START_TEST(test_pw_kat)
{
    ck_assert_int_eq(cc__pw_verify("correct horse", KAT1), 1);
    ck_assert_int_eq(cc__pw_verify("correct horsE", KAT1), 0);
    ck_assert_int_eq(cc__pw_verify("correct horse ", KAT1), 0);
    ck_assert_int_eq(cc__pw_verify("", KAT1), 0);
    ck_assert_int_eq(cc__pw_verify("hunter22", KAT2), 1);
    ck_assert_int_eq(cc__pw_verify("hunter23", KAT2), 0);
}
END_TEST

START_TEST(test_pw_malformed)
{
    static const char *const bad[] = {
        "",
        "pbkdf2-sha256$",
        "pbkdf2-sha1$1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "PBKDF2-SHA256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$01000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$+1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$999$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$10000001$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$10000000000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0OD$"   /* salt 21 digits */
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODwA$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODx$"  /* non-canonical */
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ=",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGR",  /* non-canonical */
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumG",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ$",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ ",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKK_mGQ",  /* base64url digit */
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$$"
        "yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ",
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++)
        ck_assert_msg(cc__pw_verify("correct horse", bad[i]) == 0, "case %zu",
                      i);
    ck_assert_int_eq(cc__pw_verify("correct horse", NULL), 0);
    ck_assert_int_eq(cc__pw_verify(NULL, KAT1), 0);
}
END_TEST

START_TEST(test_pw_hash)
{
    char h1[CC__PWHASH_MAX], h2[CC__PWHASH_MAX];
    ck_assert_int_eq(cc__pw_hash("s3cret pass", 1000, h1), 0);
    ck_assert_int_eq(cc__pw_hash("s3cret pass", 1000, h2), 0);
    /* prefix, iterations, 22 + 43 base64 digits */
    ck_assert_int_eq(strncmp(h1, "pbkdf2-sha256$1000$", 19), 0);
    ck_assert_uint_eq(strlen(h1), 19 + 22 + 1 + 43);
    ck_assert_int_eq(h1[19 + 22], '$');
    ck_assert_str_ne(h1, h2); /* different salts */
    ck_assert_int_ne(memcmp(h1 + 19, h2 + 19, 22), 0);
    ck_assert_int_eq(cc__pw_verify("s3cret pass", h1), 1);
    ck_assert_int_eq(cc__pw_verify("s3cret pass", h2), 1);
    ck_assert_int_eq(cc__pw_verify("s3cret pasS", h1), 0);
    ck_assert_int_eq(cc__pw_verify("s3cret pas", h1), 0);

    /* UTF-8 passwords are hashed as their bytes */
    ck_assert_int_eq(cc__pw_hash("p\xc3\xa4ss", 1000, h1), 0);
    ck_assert_int_eq(cc__pw_verify("p\xc3\xa4ss", h1), 1);
    ck_assert_int_eq(cc__pw_verify("pass", h1), 0);

    /* the default cost; 0 means the default */
    ck_assert_int_eq(cc__pw_hash("hunter22", CC__PW_ITER, h1), 0);
    ck_assert_int_eq(strncmp(h1, "pbkdf2-sha256$60000$", 20), 0);
    ck_assert_int_eq(cc__pw_verify("hunter22", h1), 1);
    ck_assert_int_eq(cc__pw_hash("hunter22", 0, h2), 0);
    ck_assert_int_eq(strncmp(h2, "pbkdf2-sha256$60000$", 20), 0);

    ck_assert_int_eq(cc__pw_hash("x", 999, h1), CC_EINVAL);
    ck_assert_str_eq(h1, "");
    ck_assert_int_eq(cc__pw_hash("x", 10000001, h1), CC_EINVAL);
    ck_assert_int_eq(cc__pw_hash("x", -5, h1), CC_EINVAL);
    ck_assert_int_eq(cc__pw_hash(NULL, 1000, h1), CC_EINVAL);
}
END_TEST

START_TEST(test_random)
{
    unsigned char a[64], b[64];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    ck_assert_int_eq(cc__random(a, 0), 0);
    ck_assert_int_eq(cc__random(a, sizeof(a)), 0);
    ck_assert_int_eq(cc__random(b, sizeof(b)), 0);
    ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
    /* a large request is filled to its end (getrandom may return short) */
    size_t n = 1 << 20;
    unsigned char *big = calloc(1, n);
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(cc__random(big, n), 0);
    size_t zeros = 0, tail_zeros = 0;
    for (size_t i = 0; i < n; i++)
        zeros += big[i] == 0;
    for (size_t i = n - 4096; i < n; i++)
        tail_zeros += big[i] == 0;
    ck_assert_uint_lt(zeros, n / 128);      /* expect n/256 */
    ck_assert_uint_lt(tail_zeros, 64);      /* expect 16 */
    free(big);

    char s1[65], s2[65];
    ck_assert_int_eq(cc__secret_gen(s1), 0);
    ck_assert_int_eq(cc__secret_gen(s2), 0);
    ck_assert(is_hex64(s1));
    ck_assert(is_hex64(s2));
    ck_assert_str_ne(s1, s2);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("tenant");
    TCase *tc = tcase_create("tenant");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_put_full);
    tcase_add_test(tc, test_put_secret);
    tcase_add_test(tc, test_replace_keeps_secret);
    tcase_add_test(tc, test_put_errors);
    tcase_add_test(tc, test_put_errors_long);
    tcase_add_test(tc, test_patch);
    tcase_add_test(tc, test_patch_errors);
    tcase_add_test(tc, test_api_json);
    tcase_add_test(tc, test_storage_roundtrip);
    tcase_add_test(tc, test_storage_errors);
    tcase_add_test(tc, test_rotation);
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("agent");
    tcase_add_test(ta, test_agent_put);
    tcase_add_test(ta, test_agent_errors);
    tcase_add_test(ta, test_agent_patch);
    tcase_add_test(ta, test_agent_json);
    suite_add_tcase(s, ta);
    TCase *tp = tcase_create("password");
    tcase_set_timeout(tp, 60);
    tcase_add_test(tp, test_pw_kat);
    tcase_add_test(tp, test_pw_malformed);
    tcase_add_test(tp, test_pw_hash);
    tcase_add_test(tp, test_random);
    suite_add_tcase(s, tp);
    return s;
}
