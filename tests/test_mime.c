/*
 * tests/test_mime.c - the pure parts of static file serving
 * (lib/http/static.c): content types by extension, the mapping of a
 * request path to a path under the mount (no "..", no hidden names),
 * If-None-Match comparison, and IMF-fixdate formatting. Serving itself
 * goes through a real server and is tested end to end elsewhere.
 */
#include <check.h>
#include <string.h>
#include <sys/types.h>

#include "core/internal.h"
#include "http/http_int.h"
#include "testutil.h"


START_TEST(test_mime_types)
{
    static const struct {
        const char *name, *type;
    } c[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"a/b/INDEX.HTM", "text/html; charset=utf-8"},
        {"style.css", "text/css; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"mod.mjs", "text/javascript; charset=utf-8"},
        {"data.json", "application/json; charset=utf-8"},
        {"app.js.map", "application/json; charset=utf-8"},
        {"logo.svg", "image/svg+xml; charset=utf-8"},
        {"a.png", "image/png"},
        {"a.jpg", "image/jpeg"},
        {"a.JPEG", "image/jpeg"},
        {"a.gif", "image/gif"},
        {"a.webp", "image/webp"},
        {"favicon.ico", "image/x-icon"},
        {"notes.txt", "text/plain; charset=utf-8"},
        {"m.wasm", "application/wasm"},
        {"f.woff", "font/woff"},
        {"f.woff2", "font/woff2"},
        {"doc.pdf", "application/pdf"},
        {"s.mp3", "audio/mpeg"},
        {"s.wav", "audio/wav"},
        {"archive.tar.gz", "application/octet-stream"},
        {"README", "application/octet-stream"},
        {".txt", "application/octet-stream"},
        {"dir.html/file", "application/octet-stream"},
        {"x.", "application/octet-stream"},
        {"x.htmlx", "application/octet-stream"},
        {"", "application/octet-stream"},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(c); i++)
        ck_assert_msg(strcmp(cc__mime_type(c[i].name), c[i].type) == 0,
                      "%s -> %s", c[i].name, cc__mime_type(c[i].name));
    ck_assert_str_eq(cc__mime_type(NULL), "application/octet-stream");
}
END_TEST

START_TEST(test_relpath)
{
    static const struct {
        const char *prefix, *path;
        ssize_t ret;
        const char *out;
    } c[] = {
        {"/", "/", 0, ""},
        {"/", "/index.html", 10, "index.html"},
        {"/", "/a/b/c.css", 9, "a/b/c.css"},
        {"/", "//a///b.css", 7, "a/b.css"},
        {"/", "/dir/", 4, "dir/"},
        {"/static/", "/static/app.js", 6, "app.js"},
        {"/static/", "/static/", 0, ""},
        {"/static/", "/static", 0, ""},
        {"/static/", "/static/sub/", 4, "sub/"},
        {"/static/", "/staticx/a", CC_ENOENT, NULL},
        {"/static/", "/other/a", CC_ENOENT, NULL},
        {"/static/", "/stat", CC_ENOENT, NULL},
        {"/", "/../etc/passwd", CC_ENOENT, NULL},
        {"/", "/a/../../b", CC_ENOENT, NULL},
        {"/", "/a/..", CC_ENOENT, NULL},
        {"/", "/..", CC_ENOENT, NULL},
        {"/", "/./a", CC_ENOENT, NULL},
        {"/", "/.git/config", CC_ENOENT, NULL},
        {"/", "/a/.env", CC_ENOENT, NULL},
        {"/static/", "/static/../secret", CC_ENOENT, NULL},
        {"/", "/a..b/c", 6, "a..b/c"},
        {"/", "/a/b..", 5, "a/b.."},
    };
    for (size_t i = 0; i < CC__ARRAY_LEN(c); i++) {
        char out[64];
        ssize_t r = cc__static_relpath(c[i].prefix, c[i].path, out,
                                       sizeof out);
        ck_assert_msg(r == c[i].ret, "case %zu: %zd", i, r);
        if (r >= 0)
            ck_assert_str_eq(out, c[i].out);
    }
    char small[6];
    ck_assert_int_eq(cc__static_relpath("/", "/abcde", small, sizeof small),
                     5);
    ck_assert_str_eq(small, "abcde");
    ck_assert_int_eq(cc__static_relpath("/", "/abcdef", small, sizeof small),
                     CC_E2BIG);
    ck_assert_int_eq(cc__static_relpath("/", "/ab/cd", small, sizeof small),
                     5);
    ck_assert_int_eq(cc__static_relpath("/", "/ab/cde", small, sizeof small),
                     CC_E2BIG);
    ck_assert_int_eq(cc__static_relpath("/", "/abcde/", small, sizeof small),
                     CC_E2BIG);
    ck_assert_int_eq(cc__static_relpath(NULL, "/a", small, sizeof small),
                     CC_EINVAL);
    ck_assert_int_eq(cc__static_relpath("/", "/a", small, 0), CC_EINVAL);
}
END_TEST

START_TEST(test_etag_match)
{
    const char *tag = "W/\"1a-5f5e100\"";
    ck_assert_int_eq(cc__static_etag_match("W/\"1a-5f5e100\"", tag), 1);
    ck_assert_int_eq(cc__static_etag_match("\"1a-5f5e100\"", tag), 1);
    ck_assert_int_eq(cc__static_etag_match("\"x\", W/\"1a-5f5e100\"", tag), 1);
    ck_assert_int_eq(cc__static_etag_match(" \"x\" ,W/\"1a-5f5e100\" ", tag),
                     1);
    ck_assert_int_eq(cc__static_etag_match("*", tag), 1);
    ck_assert_int_eq(cc__static_etag_match("W/\"1a-5f5e101\"", tag), 0);
    ck_assert_int_eq(cc__static_etag_match("W/\"1a-5f5e10\"", tag), 0);
    ck_assert_int_eq(cc__static_etag_match("1a-5f5e100", tag), 0);
    ck_assert_int_eq(cc__static_etag_match("\"1a-5f5e100", tag), 0);
    ck_assert_int_eq(cc__static_etag_match("", tag), 0);
    ck_assert_int_eq(cc__static_etag_match(NULL, tag), 0);
    /* a comma inside a tag is part of it */
    ck_assert_int_eq(cc__static_etag_match("\"a,b\"", "\"a,b\""), 1);
    ck_assert_int_eq(cc__static_etag_match("\"a,b\"", "\"a\""), 0);
}
END_TEST

START_TEST(test_imf_date)
{
    char out[30];
    ck_assert_uint_eq(cc__http_imf_date(784111777, out), 29);
    ck_assert_str_eq(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    ck_assert_uint_eq(cc__http_imf_date(0, out), 29);
    ck_assert_str_eq(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    cc__http_imf_date(951782400, out); /* a leap day */
    ck_assert_str_eq(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    cc__http_imf_date(1700000000, out);
    ck_assert_str_eq(out, "Tue, 14 Nov 2023 22:13:20 GMT");
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("mime");
    TCase *tc = tcase_create("static");
    tcase_add_test(tc, test_mime_types);
    tcase_add_test(tc, test_relpath);
    tcase_add_test(tc, test_etag_match);
    tcase_add_test(tc, test_imf_date);
    suite_add_tcase(s, tc);
    return s;
}
