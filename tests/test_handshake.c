/*
 * tests/test_handshake.c - the WebSocket handshake helpers
 * (lib/http/handshake.c): Sec-WebSocket-Accept from RFC 6455's sample,
 * every refusal of cc__ws_handshake_check with its status, subprotocol
 * choice, client keys, and base64 against RFC 4648 §10.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "http/http_int.h"
#include "testutil.h"

/* ---- base64 ---- */

START_TEST(test_base64_rfc4648)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
        {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(v); i++) {
        char out[16];
        memset(out, 'x', sizeof out);
        ssize_t n = cc__base64_encode((const uint8_t *)v[i].in,
                                      strlen(v[i].in), out, sizeof out);
        ck_assert_int_eq(n, (ssize_t)strlen(v[i].out));
        ck_assert_str_eq(out, v[i].out);
        /* exactly enough room (with the NUL), and one byte less */
        ck_assert_int_eq(cc__base64_encode((const uint8_t *)v[i].in,
                                           strlen(v[i].in), out,
                                           strlen(v[i].out) + 1),
                         n);
        ck_assert_int_eq(cc__base64_encode((const uint8_t *)v[i].in,
                                           strlen(v[i].in), out,
                                           strlen(v[i].out)),
                         -1);
    }
    /* all byte values, and the whole alphabet */
    uint8_t all[3] = {0xfb, 0xff, 0xbf};
    char out[8];
    ck_assert_int_eq(cc__base64_encode(all, 3, out, sizeof out), 4);
    ck_assert_str_eq(out, "+/+/");
    uint8_t zeros[3] = {0, 0, 0};
    ck_assert_int_eq(cc__base64_encode(zeros, 3, out, sizeof out), 4);
    ck_assert_str_eq(out, "AAAA");
}
END_TEST

/* ---- accept key ---- */

START_TEST(test_accept_key)
{
    char out[29];
    ck_assert_int_eq(cc__ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ck_assert_uint_eq(strlen(out), 28);
    /* a second known pair (computed with openssl sha1 | base64) */
    ck_assert_int_eq(cc__ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out), 0);
    ck_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    ck_assert_int_eq(cc__ws_accept_key(NULL, out), CC_EINVAL);
    ck_assert_int_eq(cc__ws_accept_key("", out), CC_EINVAL);
    char longkey[300];
    memset(longkey, 'A', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    ck_assert_int_eq(cc__ws_accept_key(longkey, out), CC_EINVAL);
}
END_TEST

START_TEST(test_make_key)
{
    uint8_t rnd[16];
    for (int i = 0; i < 16; i++)
        rnd[i] = (uint8_t)i;
    char key[25];
    memset(key, 'x', sizeof key);
    cc__ws_make_key(rnd, key);
    ck_assert_str_eq(key, "AAECAwQFBgcICQoLDA0ODw==");
    memset(rnd, 0xff, sizeof rnd);
    cc__ws_make_key(rnd, key);
    ck_assert_str_eq(key, "/////////////////////w==");
}
END_TEST

/* ---- handshake check ---- */

/* Parse a request head into *hp and return its message. */
static const cc__http_msg *
parse(cc__http_parser *hp, const char *req)
{
    cc__http_parser_init(hp, NULL, HTTP_REQUEST, 8192, 8192);
    ssize_t k = cc__http_parser_feed(hp, (const uint8_t *)req, strlen(req));
    ck_assert_int_eq(k, (ssize_t)strlen(req));
    ck_assert_int_eq(hp->ready, 1);
    return &hp->msg;
}

static int
check(const char *method, const char *version, const char *headers,
      const char **why)
{
    char req[1024];
    snprintf(req, sizeof req, "%s /ws %s\r\nHost: h\r\n%s\r\n", method,
             version, headers);
    cc__http_parser hp;
    const cc__http_msg *m = parse(&hp, req);
    *why = "unset";
    int st = cc__ws_handshake_check(m, why);
    cc__http_parser_free(&hp);
    return st;
}

#define UP "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VER "Sec-WebSocket-Version: 13\r\n"

START_TEST(test_check_valid)
{
    const char *why;
    ck_assert_int_eq(check("GET", "HTTP/1.1", UP CONN KEY VER, &why), 0);
    ck_assert_ptr_null(why);
    /* tokens inside lists, any case */
    ck_assert_int_eq(check("GET", "HTTP/1.1",
                           "Upgrade: foo/2, WebSocket\r\n"
                           "Connection: keep-alive, UPGRADE\r\n" KEY VER,
                           &why),
                     0);
    /* HTTP/1.1 "or later" (llhttp itself parses only 1.x versions, so
     * set it by hand) */
    cc__http_parser hp;
    cc__http_msg *m = (cc__http_msg *)parse(
        &hp, "GET /ws HTTP/1.1\r\n" UP CONN KEY VER "\r\n");
    ck_assert_int_eq(cc__ws_handshake_check(m, &why), 0);
    m->http_minor = 2;
    ck_assert_int_eq(cc__ws_handshake_check(m, &why), 0);
    m->http_major = 2;
    m->http_minor = 0;
    ck_assert_int_eq(cc__ws_handshake_check(m, &why), 0);
    m->http_major = 0;
    m->http_minor = 9;
    ck_assert_int_eq(cc__ws_handshake_check(m, &why), 400);
    cc__http_parser_free(&hp);
    /* another 16-byte key */
    ck_assert_int_eq(check("GET", "HTTP/1.1",
                           UP CONN "Sec-WebSocket-Key: "
                                   "AAECAwQFBgcICQoLDA0ODw==\r\n" VER,
                           &why),
                     0);
}
END_TEST

START_TEST(test_check_refusals)
{
    static const struct {
        const char *method, *version, *headers;
        int status;
        const char *why;
    } c[] = {
        {"POST", "HTTP/1.1", UP CONN KEY VER, 400,
         "WebSocket upgrade needs GET"},
        {"HEAD", "HTTP/1.1", UP CONN KEY VER, 400,
         "WebSocket upgrade needs GET"},
        {"GET", "HTTP/1.0", UP CONN KEY VER, 400,
         "WebSocket upgrade needs HTTP/1.1"},
        {"GET", "HTTP/1.1", CONN KEY VER, 400, "Upgrade: websocket missing"},
        {"GET", "HTTP/1.1", "Upgrade: h2c\r\n" CONN KEY VER, 400,
         "Upgrade: websocket missing"},
        {"GET", "HTTP/1.1", "Upgrade: websockets\r\n" CONN KEY VER, 400,
         "Upgrade: websocket missing"},
        {"GET", "HTTP/1.1", UP KEY VER, 400, "Connection: upgrade missing"},
        {"GET", "HTTP/1.1", UP "Connection: keep-alive\r\n" KEY VER, 400,
         "Connection: upgrade missing"},
        {"GET", "HTTP/1.1", UP CONN VER, 400, "bad Sec-WebSocket-Key"},
        {"GET", "HTTP/1.1", UP CONN "Sec-WebSocket-Key:\r\n" VER, 400,
         "bad Sec-WebSocket-Key"},
        /* 15 and 17 bytes */
        {"GET", "HTTP/1.1",
         UP CONN "Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0O\r\n" VER, 400,
         "bad Sec-WebSocket-Key"},
        {"GET", "HTTP/1.1",
         UP CONN "Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODxA=\r\n" VER, 400,
         "bad Sec-WebSocket-Key"},
        /* not base64, bad padding, non-canonical last character */
        {"GET", "HTTP/1.1",
         UP CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=\r\n" VER, 400,
         "bad Sec-WebSocket-Key"},
        {"GET", "HTTP/1.1",
         UP CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n" VER, 400,
         "bad Sec-WebSocket-Key"},
        {"GET", "HTTP/1.1",
         UP CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n" VER, 400,
         "bad Sec-WebSocket-Key"},
        /* two keys joined */
        {"GET", "HTTP/1.1", UP CONN KEY KEY VER, 400,
         "bad Sec-WebSocket-Key"},
        {"GET", "HTTP/1.1", UP CONN KEY, 426,
         "unsupported Sec-WebSocket-Version (use 13)"},
        {"GET", "HTTP/1.1", UP CONN KEY "Sec-WebSocket-Version: 8\r\n", 426,
         "unsupported Sec-WebSocket-Version (use 13)"},
        {"GET", "HTTP/1.1", UP CONN KEY "Sec-WebSocket-Version: 130\r\n", 426,
         "unsupported Sec-WebSocket-Version (use 13)"},
        {"GET", "HTTP/1.1",
         UP CONN KEY "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Version: 8\r\n",
         426, "unsupported Sec-WebSocket-Version (use 13)"},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(c); i++) {
        const char *why;
        int st = check(c[i].method, c[i].version, c[i].headers, &why);
        ck_assert_msg(st == c[i].status, "case %zu: %d", i, st);
        ck_assert_ptr_nonnull(why);
        ck_assert_str_eq(why, c[i].why);
    }
    const char *why = "unset";
    ck_assert_int_eq(cc__ws_handshake_check(NULL, &why), 400);
    ck_assert_ptr_nonnull(why);
}
END_TEST

/* ---- subprotocols ---- */

START_TEST(test_pick_subprotocol)
{
    char out[32];
    cc__ws_pick_subprotocol("chat, superchat", "superchat,chat", out,
                            sizeof out);
    ck_assert_str_eq(out, "chat"); /* the client's preference order */
    cc__ws_pick_subprotocol(" a ,  chatcore.v1 ", "chatcore.v1", out,
                            sizeof out);
    ck_assert_str_eq(out, "chatcore.v1");
    cc__ws_pick_subprotocol("x, y", "chatcore.v1", out, sizeof out);
    ck_assert_str_eq(out, "");
    cc__ws_pick_subprotocol(NULL, "chatcore.v1", out, sizeof out);
    ck_assert_str_eq(out, "");
    cc__ws_pick_subprotocol("chatcore.v1", NULL, out, sizeof out);
    ck_assert_str_eq(out, "");
    cc__ws_pick_subprotocol("", "", out, sizeof out);
    ck_assert_str_eq(out, "");
    /* names are compared exactly */
    cc__ws_pick_subprotocol("Chat", "chat", out, sizeof out);
    ck_assert_str_eq(out, "");
    cc__ws_pick_subprotocol("chat", "chatty, cha", out, sizeof out);
    ck_assert_str_eq(out, "");
    cc__ws_pick_subprotocol(",,chat,,", " , chat", out, sizeof out);
    ck_assert_str_eq(out, "chat");
    /* one that does not fit is passed over for the next */
    cc__ws_pick_subprotocol("averyveryverylongname, b",
                            "b, averyveryverylongname", out, 8);
    ck_assert_str_eq(out, "b");
    cc__ws_pick_subprotocol("abcdefg", "abcdefg", out, 8);
    ck_assert_str_eq(out, "abcdefg");
    cc__ws_pick_subprotocol("abcdefgh", "abcdefgh", out, 8);
    ck_assert_str_eq(out, "");
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("handshake");
    TCase *tc = tcase_create("handshake");
    tcase_add_test(tc, test_base64_rfc4648);
    tcase_add_test(tc, test_accept_key);
    tcase_add_test(tc, test_make_key);
    tcase_add_test(tc, test_check_valid);
    tcase_add_test(tc, test_check_refusals);
    tcase_add_test(tc, test_pick_subprotocol);
    suite_add_tcase(s, tc);
    return s;
}
