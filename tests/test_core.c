/* Core: errors, version, config validation, ctx lifecycle, cross-thread
 * posting, allocator hooks. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "testutil.h"

START_TEST(errors_are_libuv_or_ours)
{
    ck_assert_int_eq(CC_ENOMEM, UV_ENOMEM);
    ck_assert_int_eq(CC_EINVAL, UV_EINVAL);
    ck_assert_int_eq(CC_EPROTO, -5000);
    ck_assert_str_eq(cc_strerror(CC_EPROTO), "protocol error");
    ck_assert_str_eq(cc_err_name(CC_EPROTO), "CC_EPROTO");
    ck_assert_str_eq(cc_err_name(CC_ECLOSED), "CC_ECLOSED");
    ck_assert_str_eq(cc_strerror(CC_ENOMEM), "out of memory");
    /* libuv codes we do not list fall back to libuv's text */
    ck_assert_str_eq(cc_strerror(UV_EADDRINUSE), uv_strerror(UV_EADDRINUSE));
    ck_assert_str_eq(cc_err_name(UV_EADDRINUSE), "EADDRINUSE");
    ck_assert_str_eq(cc_strerror(0), "success");
}
END_TEST

START_TEST(version)
{
    ck_assert_uint_eq(cc_version(), CC_VERSION_HEX);
    ck_assert_str_eq(cc_version_string(), CC_VERSION_STRING);
    ck_assert_uint_eq(CC_VERSION_HEX, (CC_VERSION_MAJOR << 16) | (CC_VERSION_MINOR << 8) | CC_VERSION_PATCH);
}
END_TEST

START_TEST(config_defaults_and_validation)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    cc_config *cfg;
    cc_allocator half = {ta.a.alloc, NULL, NULL, NULL};
    ck_assert_int_eq(cc_config_new(&cfg, &half), CC_EINVAL);
    ck_assert_int_eq(cc_config_new(NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_config_new(&cfg, &ta.a), 0);
    ck_assert_int_eq(cc_config_get_int(cfg, CC_OPT_WS_MAX_MESSAGE), 65536);
    ck_assert_int_eq(cc_config_get_int(NULL, CC_OPT_HTTP_MAX_HEADER), 8192);
    ck_assert_int_eq(cc_config_set_int(cfg, CC_OPT_WS_MAX_MESSAGE, 1 << 20), 0);
    ck_assert_int_eq(cc_config_get_int(cfg, CC_OPT_WS_MAX_MESSAGE), 1 << 20);
    /* out of range, wrong kind, unknown option */
    ck_assert_int_eq(cc_config_set_int(cfg, CC_OPT_WS_MAX_MESSAGE, 10), CC_EINVAL);
    ck_assert_int_eq(cc_config_set_int(cfg, CC_OPT_REUSEPORT, 2), CC_EINVAL);
    ck_assert_int_eq(cc_config_set_str(cfg, CC_OPT_WS_MAX_MESSAGE, "x"), CC_EINVAL);
    ck_assert_int_eq(cc_config_set_int(cfg, CC_OPT_TLS_CERT_FILE, 1), CC_EINVAL);
    ck_assert_int_eq(cc_config_set_ms(cfg, CC_OPT_WS_MAX_MESSAGE, 5), CC_EINVAL);
    ck_assert_int_eq(cc_config_set_int(cfg, (cc_option)0, 1), CC_EINVAL);
    ck_assert_int_eq(cc_config_set_int(cfg, CC_OPT__MAX, 1), CC_EINVAL);
    ck_assert_int_eq(cc_config_set_int(cfg, (cc_option)9999, 1), CC_EINVAL);
    ck_assert_str_eq(cc_config_get_str(cfg, CC_OPT_TLS_CERT_FILE), "");
    ck_assert_int_eq(cc_config_set_str(cfg, CC_OPT_TLS_CERT_FILE, "a.pem"), 0);
    ck_assert_int_eq(cc_config_set_str(cfg, CC_OPT_TLS_CERT_FILE, "b.pem"), 0);
    ck_assert_str_eq(cc_config_get_str(cfg, CC_OPT_TLS_CERT_FILE), "b.pem");
    ck_assert_int_eq(cc_config_set_ms(cfg, CC_OPT_WS_IDLE_TIMEOUT_MS, 1500), 0);
    ck_assert_int_eq(cc_config_get_int(cfg, CC_OPT_WS_IDLE_TIMEOUT_MS), 1500);
    cc_config_free(cfg);
    cc_config_free(NULL);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}
END_TEST

START_TEST(config_oom)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    ta.fail_at = 1;
    cc_config *cfg = NULL;
    ck_assert_int_eq(cc_config_new(&cfg, &ta.a), CC_ENOMEM);
    ta.fail_at = 0;
    ck_assert_int_eq(cc_config_new(&cfg, &ta.a), 0);
    ta.fail_at = ta.nalloc + 1;
    ck_assert_int_eq(cc_config_set_str(cfg, CC_OPT_TLS_KEY_FILE, "k"), CC_ENOMEM);
    ck_assert_str_eq(cc_config_get_str(cfg, CC_OPT_TLS_KEY_FILE), "");
    cc_config_free(cfg);
    ck_assert_uint_eq(ta.bytes, 0);
}
END_TEST

static int closed;
static void
on_ctx_closed(void *obj, void *data)
{
    (void)obj;
    closed = *(int *)data;
}

START_TEST(ctx_lifecycle_frees_everything)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    uv_loop_t loop;
    uv_loop_init(&loop);
    cc_ctx *ctx;
    ck_assert_int_eq(cc_ctx_new(NULL, &loop, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_ctx_new(&ctx, NULL, NULL), CC_EINVAL);
    cc_allocator bad = {0};
    ck_assert_int_eq(cc_ctx_new(&ctx, &loop, &bad), CC_EINVAL);
    ck_assert_int_eq(cc_ctx_new(&ctx, &loop, &ta.a), 0);
    ck_assert_ptr_eq(cc_ctx_loop(ctx), &loop);
    int tag = 42;
    cc_ctx_set_data(ctx, &tag);
    ck_assert_ptr_eq(cc_ctx_get_data(ctx), &tag);
    void *p = cc_ctx_alloc(ctx, 100);
    ck_assert_ptr_nonnull(p);
    cc_ctx_free(ctx, p, 100);
    closed = 0;
    cc_ctx_close(ctx, on_ctx_closed, &tag);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(closed, 42);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(ctx_new_oom_paths)
{
    /* fail each allocation cc_ctx_new makes; nothing may leak */
    for (size_t n = 1; n <= 4; n++) {
        cc_test_alloc ta;
        cc_test_alloc_init(&ta);
        ta.fail_at = n;
        uv_loop_t loop;
        uv_loop_init(&loop);
        cc_ctx *ctx = NULL;
        int rc = cc_ctx_new(&ctx, &loop, &ta.a);
        if (rc == 0) {
            cc_ctx_close(ctx, NULL, NULL);
            uv_run(&loop, UV_RUN_DEFAULT);
        } else {
            ck_assert_int_eq(rc, CC_ENOMEM);
        }
        ck_assert_uint_eq(ta.bytes, 0);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
    }
}
END_TEST

/* ---- cross-thread posting ---- */

#define POSTERS 4
#define PER_POSTER 5000

typedef struct post_state {
    cc_ctx *ctx;
    int last[POSTERS];
    int count;
    int order_ok;
    int done;
} post_state;

typedef struct post_msg {
    post_state *st;
    int from, seq;
} post_msg;

static void
on_post(cc_ctx *ctx, void *data)
{
    post_msg *m = data;
    post_state *st = m->st;
    (void)ctx;
    if (m->seq != st->last[m->from] + 1)
        st->order_ok = 0;
    st->last[m->from] = m->seq;
    if (++st->count == POSTERS * PER_POSTER)
        st->done = 1;
    free(m);
}

typedef struct poster {
    post_state *st;
    int idx;
} poster;

static void
on_keep_expired(uv_timer_t *t)
{
    (void)t;
    ck_abort_msg("posts did not arrive in time");
}

static void
poster_run(void *arg)
{
    poster *p = arg;
    for (int i = 1; i <= PER_POSTER; i++) {
        post_msg *m = malloc(sizeof *m);
        m->st = p->st;
        m->from = p->idx;
        m->seq = i;
        while (cc_ctx_post(p->st->ctx, on_post, m) != 0)
            ;
    }
}

START_TEST(post_from_threads_in_order)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    post_state st;
    memset(&st, 0, sizeof st);
    st.order_ok = 1;
    ck_assert_int_eq(cc_ctx_new(&st.ctx, &loop, NULL), 0);
    /* keep the loop alive while posts arrive */
    uv_timer_t keep;
    uv_timer_init(&loop, &keep);
    uv_timer_start(&keep, on_keep_expired, 60000, 0);
    uv_thread_t t[POSTERS];
    poster ps[POSTERS];
    for (int i = 0; i < POSTERS; i++) {
        ps[i].st = &st;
        ps[i].idx = i;
        uv_thread_create(&t[i], poster_run, &ps[i]);
    }
    while (!st.done)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < POSTERS; i++)
        uv_thread_join(&t[i]);
    ck_assert_int_eq(st.count, POSTERS * PER_POSTER);
    ck_assert_int_eq(st.order_ok, 1);
    uv_close((uv_handle_t *)&keep, NULL);
    cc_ctx_close(st.ctx, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static void
never(cc_ctx *ctx, void *data)
{
    (void)ctx;
    *(int *)data = 1;
}

START_TEST(post_after_close_is_refused)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    cc_ctx *ctx;
    ck_assert_int_eq(cc_ctx_new(&ctx, &loop, NULL), 0);
    int ran = 0;
    ck_assert_int_eq(cc_ctx_post(ctx, NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_ctx_post(ctx, never, &ran), 0); /* queued, dropped at close */
    cc_ctx_close(ctx, NULL, NULL);
    ck_assert_int_eq(cc_ctx_post(ctx, never, &ran), CC_ECANCELED);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(ran, 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(header_tokens)
{
    ck_assert_int_eq(cc__header_has_token("keep-alive, Upgrade", "upgrade"), 1);
    ck_assert_int_eq(cc__header_has_token("keep-alive,upgrade ", "UPGRADE"), 1);
    ck_assert_int_eq(cc__header_has_token("upgrades", "upgrade"), 0);
    ck_assert_int_eq(cc__header_has_token("", "upgrade"), 0);
    ck_assert_int_eq(cc__header_has_token(NULL, "upgrade"), 0);
    ck_assert_int_eq(cc__strcaseeq("Sec-WebSocket-Key", "sec-websocket-key"), 1);
    ck_assert_int_eq(cc__strcaseeq("abc", "abcd"), 0);
    char b[24];
    ck_assert_uint_eq(cc__u64_to_str(b, 18446744073709551615u), 20);
    ck_assert_str_eq(b, "18446744073709551615");
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, errors_are_libuv_or_ours);
    tcase_add_test(tc, version);
    tcase_add_test(tc, config_defaults_and_validation);
    tcase_add_test(tc, config_oom);
    tcase_add_test(tc, ctx_lifecycle_frees_everything);
    tcase_add_test(tc, ctx_new_oom_paths);
    tcase_add_test(tc, post_from_threads_in_order);
    tcase_add_test(tc, post_after_close_is_refused);
    tcase_add_test(tc, header_tokens);
    suite_add_tcase(s, tc);
    return s;
}
