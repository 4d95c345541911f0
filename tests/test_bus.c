/*
 * tests/test_bus.c - the owner role of distributed mode (chatcore/bus.h)
 * through the public API, with a transport that records what the engine
 * publishes and a real SQLite store: an open record makes a proxy
 * connection that gets `hello`; a `send` frame gets `sent` after the
 * store; a frame from a connection the owner never saw is answered with
 * close 1012; a node that restarts (new boot) loses its connections; and
 * an engine closed with proxies still open frees them (the sanitizer
 * build reports a leak otherwise); each session's cursors are written a
 * second after they moved, not all at once. The cluster itself is tested
 * over the wire (tests/cluster/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <chatcore/bus.h>

#include "store/store.h"
#include "support/testutil.h"

#define MAXREC 64

typedef struct rec {
    int topic;
    char key[64];
    char val[2048];
} rec;

typedef struct fx {
    uv_loop_t loop;
    cc_ctx *ctx;
    cc_store *st;
    cc_chat *chat;
    char dir[64], path[128];
    rec recs[MAXREC];
    int nrec;
} fx;

static int
pub(void *data, int topic, const char *key, size_t klen, const void *val,
    size_t vlen, cc_bus_done_cb done, void *arg)
{
    fx *f = data;
    if (f->nrec < MAXREC) {
        rec *r = &f->recs[f->nrec++];
        r->topic = topic;
        snprintf(r->key, sizeof(r->key), "%.*s", (int)klen, key);
        snprintf(r->val, sizeof(r->val), "%.*s", (int)vlen,
                 (const char *)val);
    }
    if (done)
        done(arg, 0);
    return 0;
}

static int32_t
part_of(void *data, const char *tenant)
{
    (void)data;
    (void)tenant;
    return 0;
}

static const cc_bus_ops ops = {sizeof(cc_bus_ops), pub, part_of};

static void
set_flag(void *obj, void *data)
{
    (void)obj;
    *(volatile int *)data = 1;
}

static void
fx_open(fx *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cc_test_bus.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/chat.db", f->dir);
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    ck_assert_int_eq(cc_ctx_new(&f->ctx, &f->loop, NULL), 0);
    ck_assert_int_eq(cc_store_sqlite_open(&f->st, f->ctx, f->path, 0), 0);
    cc_config *cfg = NULL;
    ck_assert_int_eq(cc_config_new(&cfg, NULL), 0);
    ck_assert_int_eq(cc_config_set_str(cfg, CC_OPT_CHAT_NODE, "svc-t"), 0);
    ck_assert_int_eq(cc_config_set_str(cfg, CC_OPT_CHAT_ADMIN_KEY, "k"), 0);
    ck_assert_int_eq(cc_chat_new(&f->chat, f->ctx, f->st, cfg), 0);
    cc_config_free(cfg);
    const char *err = NULL;
    ck_assert_int_eq(cc_chat_tenant_put(f->chat, "t1", "{\"name\":\"One\"}",
                                        NULL, 0, &err), 0);
    ck_assert_int_eq(cc_chat_set_bus(f->chat, CC_BUS_OWNER, 0, &ops, f), 0);
    ck_assert_int_eq(cc_chat_set_bus(f->chat, CC_BUS_OWNER, 0, &ops, f),
                     CC_ESTATE);
}

static void
fx_close(fx *f)
{
    volatile int done = 0;
    cc_chat_close(f->chat, set_flag, (void *)&done);
    ck_assert(cc_test_run_until(&f->loop, &done, 10000));
    done = 0;
    cc_store_close(f->st, set_flag, (void *)&done);
    ck_assert(cc_test_run_until(&f->loop, &done, 10000));
    cc_ctx_close(f->ctx, NULL, NULL);
    cc_test_loop_teardown(&f->loop);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void
in(fx *f, const char *json)
{
    ck_assert_int_eq(cc_chat_bus_input(f->chat, CC_BUS_IN, "t1:", 3, json,
                                       strlen(json)), 0);
}

/* index of the first record from `from` on whose value contains all of
 * the given pieces, running the loop up to 5 s for it; -1 if none */
static int
wait_rec(fx *f, int from, const char *a, const char *b)
{
    for (int spins = 0; spins < 500; spins++) {
        for (int i = from; i < f->nrec; i++)
            if (strstr(f->recs[i].val, a) && (!b || strstr(f->recs[i].val, b)))
                return i;
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    return -1;
}

#define OPEN_V1 "{\"op\":\"open\",\"node\":\"gw-1\",\"boot\":\"b1\",\"conn\":7," \
                "\"tenant\":\"t1\",\"role\":\"visitor\",\"user\":\"v_1\"," \
                "\"exp\":0,\"ip\":\"127.0.0.1\",\"session\":\"\"}"

START_TEST(owner_proxy_hello_sent_and_unknown_conn)
{
    fx f;
    fx_open(&f);
    /* the engine announced itself as the partition's owner */
    int i = wait_rec(&f, 0, "\"op\":\"owner\"", "\"partition\":0");
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(f.recs[i].topic, CC_BUS_CONTROL);
    in(&f, OPEN_V1);
    i = wait_rec(&f, 0, "\\\"type\\\":\\\"hello\\\"", "\"conn\":7");
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(f.recs[i].topic, CC_BUS_OUT);
    ck_assert_str_eq(f.recs[i].key, "gw-1");
    ck_assert_ptr_nonnull(strstr(f.recs[i].val, "\"node\":\"gw-1\""));
    ck_assert_ptr_nonnull(strstr(f.recs[i].val, "\"op\":\"text\""));
    /* the session id from hello, then a send on it */
    const char *s = strstr(f.recs[i].val, "S_");
    ck_assert_ptr_nonnull(s);
    char sid[23];
    memcpy(sid, s, 22);
    sid[22] = '\0';
    char frame[512];
    snprintf(frame, sizeof(frame),
             "{\"op\":\"frame\",\"node\":\"gw-1\",\"boot\":\"b1\",\"conn\":7,"
             "\"tenant\":\"t1\",\"text\":\"{\\\"type\\\":\\\"send\\\","
             "\\\"session\\\":\\\"%s\\\",\\\"cid\\\":\\\"c1\\\","
             "\\\"kind\\\":\\\"text\\\",\\\"body\\\":{\\\"text\\\":"
             "\\\"hi\\\"}}\"}", sid);
    int mark = f.nrec;
    in(&f, frame);
    i = wait_rec(&f, mark, "\\\"type\\\":\\\"sent\\\"", "\\\"cid\\\":\\\"c1\\\"");
    ck_assert_int_ge(i, 0);
    ck_assert_ptr_nonnull(strstr(f.recs[i].val, "\\\"seq\\\":1"));
    /* the same cid again (a replay after a crash): the same seq */
    mark = f.nrec;
    in(&f, frame);
    i = wait_rec(&f, mark, "\\\"type\\\":\\\"sent\\\"", "\\\"cid\\\":\\\"c1\\\"");
    ck_assert_int_ge(i, 0);
    ck_assert_ptr_nonnull(strstr(f.recs[i].val, "\\\"seq\\\":1"));
    /* a frame from a connection this owner never saw: 1012 */
    mark = f.nrec;
    in(&f, "{\"op\":\"frame\",\"node\":\"gw-2\",\"boot\":\"b9\",\"conn\":3,"
           "\"tenant\":\"t1\",\"text\":\"{\\\"type\\\":\\\"typing\\\"}\"}");
    i = wait_rec(&f, mark, "\"op\":\"close\"", "\"code\":1012");
    ck_assert_int_ge(i, 0);
    ck_assert_str_eq(f.recs[i].key, "gw-2");
    ck_assert_ptr_nonnull(strstr(f.recs[i].val, "\"conn\":3"));
    /* malformed records are refused, not fatal */
    ck_assert_int_eq(cc_chat_bus_input(f.chat, CC_BUS_IN, "t1:", 3, "{", 1),
                     CC_EPROTO);
    /* closed with the proxy still open: it is freed with the engine */
    fx_close(&f);
}
END_TEST

START_TEST(owner_node_restart_drops_its_proxies)
{
    fx f;
    fx_open(&f);
    in(&f, OPEN_V1);
    ck_assert_int_ge(wait_rec(&f, 0, "\\\"type\\\":\\\"hello\\\"", NULL), 0);
    /* gw-1 restarted: a record from its new boot; the old connection 7
     * is gone, so a frame for it is answered 1012 */
    in(&f, "{\"op\":\"open\",\"node\":\"gw-1\",\"boot\":\"b2\",\"conn\":1,"
           "\"tenant\":\"t1\",\"role\":\"visitor\",\"user\":\"v_2\","
           "\"exp\":0,\"ip\":\"127.0.0.1\",\"session\":\"\"}");
    int mark = f.nrec;
    in(&f, "{\"op\":\"frame\",\"node\":\"gw-1\",\"boot\":\"b1\",\"conn\":7,"
           "\"tenant\":\"t1\",\"text\":\"{\\\"type\\\":\\\"typing\\\"}\"}");
    int i = wait_rec(&f, mark, "\"op\":\"close\"", "\"code\":1012");
    ck_assert_int_ge(i, 0);
    ck_assert_ptr_nonnull(strstr(f.recs[i].val, "\"boot\":\"b1\""));
    fx_close(&f);
}
END_TEST

/* the session id in the hello sent to connection `conn` */
static void
hello_sid(fx *f, int conn, char sid[23])
{
    char c[32];
    snprintf(c, sizeof(c), "\"conn\":%d", conn);
    int i = wait_rec(f, 0, "\\\"type\\\":\\\"hello\\\"", c);
    ck_assert_int_ge(i, 0);
    const char *s = strstr(f->recs[i].val, "S_");
    ck_assert_ptr_nonnull(s);
    memcpy(sid, s, 22);
    sid[22] = '\0';
}

static void
frame(fx *f, int conn, const char *text)
{
    char rec[600];
    snprintf(rec, sizeof(rec),
             "{\"op\":\"frame\",\"node\":\"gw-1\",\"boot\":\"b1\",\"conn\":%d,"
             "\"tenant\":\"t1\",\"text\":\"%s\"}", conn, text);
    in(f, rec);
}

typedef struct cur_res {
    int done;
    uint64_t read;
} cur_res;

static void
on_cursor(cc_store_result *res, void *data)
{
    cur_res *r = data;
    ck_assert_int_eq(res->rc, 0);
    r->read = res->read;
    r->done = 1;
}

/* what the store holds as user's read cursor in session sid */
static uint64_t
stored_read(fx *f, const char *sid, const char *user)
{
    cur_res r = {0, 0};
    ck_assert_int_eq(cc__store_cursor_get(f->st, "t1", sid, user, on_cursor,
                                          &r), 0);
    ck_assert(cc_test_run_until(&f->loop, &r.done, 5000));
    return r.read;
}

/* Two visitors mark their sessions read 600 ms apart. Each cursor reaches the store a second
 * after it moved: the first is not there at 0.9 s, and when it is, the
 * second is not yet (a flush of every dirty session once a second wrote
 * both in the same burst, or the first too early). */
START_TEST(owner_cursors_written_a_second_after_they_move)
{
    fx f;
    fx_open(&f);
    in(&f, OPEN_V1);
    in(&f, "{\"op\":\"open\",\"node\":\"gw-1\",\"boot\":\"b1\",\"conn\":8,"
           "\"tenant\":\"t1\",\"role\":\"visitor\",\"user\":\"v_2\","
           "\"exp\":0,\"ip\":\"127.0.0.1\",\"session\":\"\"}");
    char a[23], b[23], text[300];
    hello_sid(&f, 7, a);
    hello_sid(&f, 8, b);
    const char *sids[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof(text),
                 "{\\\"type\\\":\\\"send\\\",\\\"session\\\":\\\"%s\\\","
                 "\\\"cid\\\":\\\"c1\\\",\\\"kind\\\":\\\"text\\\","
                 "\\\"body\\\":{\\\"text\\\":\\\"hi\\\"}}", sids[k]);
        int mark = f.nrec;
        frame(&f, 7 + k, text);
        ck_assert_int_ge(wait_rec(&f, mark, "\\\"type\\\":\\\"sent\\\"",
                                  "\\\"seq\\\":1"), 0);
    }
    snprintf(text, sizeof(text),
             "{\\\"type\\\":\\\"read\\\",\\\"session\\\":\\\"%s\\\","
             "\\\"seq\\\":1}", a);
    frame(&f, 7, text);
    uint64_t t0 = uv_now(&f.loop);
    while (uv_now(&f.loop) - t0 < 600) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(5000);
        uv_update_time(&f.loop);
    }
    snprintf(text, sizeof(text),
             "{\\\"type\\\":\\\"read\\\",\\\"session\\\":\\\"%s\\\","
             "\\\"seq\\\":1}", b);
    frame(&f, 8, text);
    while (uv_now(&f.loop) - t0 < 900) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(5000);
        uv_update_time(&f.loop);
    }
    ck_assert_uint_eq(stored_read(&f, a, "visitor:v_1"), 0);
    int spins = 0;
    while (stored_read(&f, a, "visitor:v_1") == 0 && spins++ < 500)
        usleep(5000);
    ck_assert_uint_eq(stored_read(&f, a, "visitor:v_1"), 1);
    ck_assert_uint_eq(stored_read(&f, b, "visitor:v_2"), 0);
    spins = 0;
    while (stored_read(&f, b, "visitor:v_2") == 0 && spins++ < 500)
        usleep(5000);
    ck_assert_uint_eq(stored_read(&f, b, "visitor:v_2"), 1);
    fx_close(&f);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("owner");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, owner_proxy_hello_sent_and_unknown_conn);
    tcase_add_test(tc, owner_node_restart_drops_its_proxies);
    tcase_add_test(tc, owner_cursors_written_a_second_after_they_move);
    suite_add_tcase(s, tc);
    return s;
}
