/*
 * tests/test_router.c - the router (lib/http/router.c) and the public
 * request accessors (lib/http/request.c): exact and prefix routes, "*"
 * methods, first match wins, 404 versus 405, HEAD on GET routes, argument
 * checks, allocation failures; accessors on a request built by the parser.
 */
#include <check.h>
#include <string.h>

#include "core/internal.h"
#include "http/http_int.h"
#include "testutil.h"

static void
cb_a(cc_server *srv, cc_http_req *req, void *data)
{
}

static void
cb_b(cc_server *srv, cc_http_req *req, void *data)
{
}

static int D1, D2, D3, D4, D5;

/* The data pointer of the route matched, NULL if none; *st its status. */
static void *
match(const cc__router *r, const char *method, const char *path, int *st)
{
    *st = -1;
    const cc__route *rt = cc__router_match(r, method, path, st);
    return rt ? rt->data : NULL;
}

START_TEST(test_exact_and_prefix)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc__router r;
    cc__router_init(&r, &ta.a);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/v1/sessions", cb_a, &D1), 0);
    ck_assert_int_eq(cc__router_add(&r, "POST", "/v1/sessions", cb_b, &D2), 0);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/v1/sessions/*", cb_a, &D3), 0);
    ck_assert_int_eq(cc__router_add(&r, "*", "/any", cb_b, &D4), 0);
    ck_assert_int_eq(r.n, 4);
    ck_assert_int_eq(r.routes[2].is_prefix, 1);
    ck_assert_str_eq(r.routes[2].path, "/v1/sessions/");
    ck_assert_uint_eq(r.routes[2].path_len, 13);
    ck_assert_int_eq(r.routes[0].is_prefix, 0);

    int st;
    ck_assert_ptr_eq(match(&r, "GET", "/v1/sessions", &st), &D1);
    ck_assert_int_eq(st, -1); /* untouched on a match */
    ck_assert_ptr_eq(match(&r, "POST", "/v1/sessions", &st), &D2);
    ck_assert_ptr_eq(match(&r, "GET", "/v1/sessions/S_1", &st), &D3);
    ck_assert_ptr_eq(match(&r, "GET", "/v1/sessions/S_1/messages", &st), &D3);
    ck_assert_ptr_eq(match(&r, "GET", "/v1/sessions/", &st), &D3);
    /* exact means exact */
    ck_assert_ptr_null(match(&r, "GET", "/v1/session", &st));
    ck_assert_int_eq(st, 404);
    ck_assert_ptr_null(match(&r, "GET", "/v1/sessionsX", &st));
    ck_assert_int_eq(st, 404);
    /* "*" takes any method */
    ck_assert_ptr_eq(match(&r, "DELETE", "/any", &st), &D4);
    ck_assert_ptr_eq(match(&r, "GET", "/any", &st), &D4);
    ck_assert_ptr_null(match(&r, "GET", "/any/more", &st));
    ck_assert_int_eq(st, 404);
    /* path known, method not */
    ck_assert_ptr_null(match(&r, "DELETE", "/v1/sessions", &st));
    ck_assert_int_eq(st, 405);
    ck_assert_ptr_null(match(&r, "PUT", "/v1/sessions/S_1", &st));
    ck_assert_int_eq(st, 405);
    ck_assert_ptr_null(match(&r, "GET", "/nothing", &st));
    ck_assert_int_eq(st, 404);
    /* methods are case-sensitive */
    ck_assert_ptr_null(match(&r, "get", "/v1/sessions", &st));
    ck_assert_int_eq(st, 405);

    cc__router_free(&r);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
    cc__router_free(&r); /* idempotent */
}
END_TEST

START_TEST(test_prefix_without_slash_and_root)
{
    cc__router r;
    cc__router_init(&r, NULL);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/static/*", cb_a, &D1), 0);
    int st;
    ck_assert_ptr_eq(match(&r, "GET", "/static", &st), &D1);
    ck_assert_ptr_eq(match(&r, "GET", "/static/a.css", &st), &D1);
    ck_assert_ptr_null(match(&r, "GET", "/stati", &st));
    ck_assert_ptr_null(match(&r, "GET", "/staticx", &st));
    ck_assert_int_eq(st, 404);
    ck_assert_int_eq(cc__router_add(&r, "*", "/*", cb_b, &D2), 0);
    ck_assert_ptr_eq(match(&r, "GET", "/staticx", &st), &D2);
    ck_assert_ptr_eq(match(&r, "POST", "/", &st), &D2);
    ck_assert_ptr_eq(match(&r, "POST", "/static/a.css", &st), &D2);
    cc__router_free(&r);
}
END_TEST

START_TEST(test_first_match_wins)
{
    cc__router r;
    cc__router_init(&r, NULL);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/a/*", cb_a, &D1), 0);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/a/b", cb_a, &D2), 0);
    ck_assert_int_eq(cc__router_add(&r, "*", "/c", cb_a, &D3), 0);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/c", cb_a, &D4), 0);
    int st;
    ck_assert_ptr_eq(match(&r, "GET", "/a/b", &st), &D1);
    ck_assert_ptr_eq(match(&r, "GET", "/c", &st), &D3);
    /* a 405 from one route does not hide a later matching one */
    ck_assert_int_eq(cc__router_add(&r, "POST", "/d", cb_a, &D4), 0);
    ck_assert_int_eq(cc__router_add(&r, "PUT", "/d", cb_a, &D5), 0);
    ck_assert_ptr_eq(match(&r, "PUT", "/d", &st), &D5);
    cc__router_free(&r);
}
END_TEST

START_TEST(test_head_uses_get)
{
    cc__router r;
    cc__router_init(&r, NULL);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/g", cb_a, &D1), 0);
    ck_assert_int_eq(cc__router_add(&r, "POST", "/p", cb_a, &D2), 0);
    ck_assert_int_eq(cc__router_add(&r, "HEAD", "/h", cb_a, &D3), 0);
    int st;
    ck_assert_ptr_eq(match(&r, "HEAD", "/g", &st), &D1);
    ck_assert_ptr_eq(match(&r, "HEAD", "/h", &st), &D3);
    ck_assert_ptr_null(match(&r, "GET", "/h", &st));
    ck_assert_int_eq(st, 405);
    ck_assert_ptr_null(match(&r, "HEAD", "/p", &st));
    ck_assert_int_eq(st, 405);
    cc__router_free(&r);
}
END_TEST

START_TEST(test_add_invalid)
{
    cc__router r;
    cc__router_init(&r, NULL);
    ck_assert_int_eq(cc__router_add(&r, NULL, "/x", cb_a, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__router_add(&r, "GET", NULL, cb_a, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/x", NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__router_add(&r, "GET", "x", cb_a, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__router_add(&r, "GET", "", cb_a, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__router_add(&r, "", "/x", cb_a, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__router_add(&r, "G T", "/x", cb_a, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/a*", cb_a, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__router_add(&r, "GET", "/*/b", cb_a, NULL), CC_EINVAL);
    ck_assert_uint_eq(r.n, 0);
    int st;
    ck_assert_ptr_null(cc__router_match(&r, "GET", "/x", &st));
    ck_assert_int_eq(st, 404);
    ck_assert_ptr_null(cc__router_match(&r, NULL, "/x", &st));
    ck_assert_int_eq(st, 404);
    cc__router_free(&r);
}
END_TEST

START_TEST(test_add_oom)
{
    /* fail each allocation of ten adds in turn: CC_ENOMEM, no leak, and the
     * routes added before stay usable */
    for (size_t fail = 1; fail < 40; fail++) {
        cc_test_alloc ta;
        cc_test_alloc_init(&ta);
        ta.fail_at = fail;
        cc__router r;
        cc__router_init(&r, &ta.a);
        size_t ok = 0;
        int failed = 0;
        for (int i = 0; i < 10; i++) {
            char path[16];
            snprintf(path, sizeof path, "/r%d", i);
            int rc = cc__router_add(&r, "GET", path, cb_a, NULL);
            if (rc) {
                ck_assert_int_eq(rc, CC_ENOMEM);
                failed++;
            } else {
                ok++;
            }
        }
        ck_assert_uint_eq(r.n, ok);
        /* 10 adds: 2 allocations each, plus the array's first allocation
         * and its one growth */
        ck_assert_int_eq(failed, fail <= 22 ? 1 : 0);
        int st;
        for (size_t i = 0; i < r.n; i++)
            ck_assert_ptr_nonnull(
                cc__router_match(&r, "GET", r.routes[i].path, &st));
        cc__router_free(&r);
        ck_assert_uint_eq(ta.bytes, 0);
        ck_assert_uint_eq(ta.blocks, 0);
    }
}
END_TEST

/* ---- request accessors ---- */

START_TEST(test_request_accessors)
{
    const char *s = "POST /v1/x%20y?a=1&b=two+words&c=%zz HTTP/1.1\r\n"
                    "X-Thing: one\r\nx-thing: two\r\n"
                    "Content-Length: 4\r\n\r\nbody";
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc__http_parser hp;
    cc__http_parser_init(&hp, &ta.a, HTTP_REQUEST, 8192, 8192);
    ck_assert_int_eq(cc__http_parser_feed(&hp, (uint8_t *)s, strlen(s)),
                     (ssize_t)strlen(s));
    ck_assert_int_eq(hp.ready, 1);
    cc_http_req req;
    memset(&req, 0, sizeof req);
    req.msg = hp.msg; /* moved out, as the server does */
    memset(&hp.msg, 0, sizeof hp.msg);
    hp.msg.a = &ta.a;
    cc__http_parser_next(&hp);

    ck_assert_str_eq(cc_http_req_method(&req), "POST");
    ck_assert_str_eq(cc_http_req_path(&req), "/v1/x y");
    ck_assert_str_eq(cc_http_req_query(&req), "a=1&b=two+words&c=%zz");
    char out[16];
    ck_assert_int_eq(cc_http_req_query_param(&req, "b", out, sizeof out), 9);
    ck_assert_str_eq(out, "two words");
    ck_assert_int_eq(cc_http_req_query_param(&req, "b", out, 5), CC_E2BIG);
    ck_assert_int_eq(cc_http_req_query_param(&req, "z", out, sizeof out),
                     CC_ENOENT);
    ck_assert_int_eq(cc_http_req_query_param(&req, "c", out, sizeof out),
                     CC_EINVAL);
    ck_assert_int_eq(cc_http_req_query_param(&req, "a", NULL, 4), CC_EINVAL);
    ck_assert_str_eq(cc_http_req_header(&req, "X-THING"), "one, two");
    ck_assert_ptr_null(cc_http_req_header(&req, "nope"));
    size_t len = 99;
    const uint8_t *b = cc_http_req_body(&req, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(b, "body", 4);
    int tag;
    ck_assert_ptr_null(cc_http_req_get_data(&req));
    cc_http_req_set_data(&req, &tag);
    ck_assert_ptr_eq(cc_http_req_get_data(&req), &tag);
    ck_assert_ptr_null(cc_http_req_server(&req));
    req.srv = (cc_server *)&tag;
    ck_assert_ptr_eq(cc_http_req_server(&req), (cc_server *)&tag);

    cc__http_msg_clear(&req.msg);
    cc__http_msg_clear(&req.msg); /* idempotent */
    /* an empty body reads as "" with length 0 */
    len = 99;
    b = cc_http_req_body(&req, &len);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(cc_http_req_path(&req), "/");
    ck_assert_str_eq(cc_http_req_query(&req), "");
    cc__http_parser_free(&hp);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);

    /* NULL requests */
    ck_assert_str_eq(cc_http_req_method(NULL), "");
    ck_assert_ptr_null(cc_http_req_header(NULL, "a"));
    ck_assert_ptr_null(cc_http_req_get_data(NULL));
    ck_assert_int_eq(cc_http_req_query_param(NULL, "a", out, 4), CC_EINVAL);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_add_test(tc, test_exact_and_prefix);
    tcase_add_test(tc, test_prefix_without_slash_and_root);
    tcase_add_test(tc, test_first_match_wins);
    tcase_add_test(tc, test_head_uses_get);
    tcase_add_test(tc, test_add_invalid);
    tcase_add_test(tc, test_add_oom);
    suite_add_tcase(s, tc);
    tc = tcase_create("request");
    tcase_add_test(tc, test_request_accessors);
    suite_add_tcase(s, tc);
    return s;
}
