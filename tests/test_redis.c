/*
 * tests/test_redis.c - the Redis adapter (chatcore/redis.h) against a real
 * redis-server.
 *
 * Most tests use the shared server that tests/redis/run.sh starts (ctest
 * does, through the fixture in tests/redis/tests.cmake): its port comes
 * from CC_REDIS_PORT or the file named by CC_REDIS_PORT_FILE. Without
 * either, every such test FAILS: a missing Redis is not a pass. Each test
 * works under a namespace of its own ("t<pid>.<n>:<sub>:").
 *
 * The restart, timeout and AUTH tests run a private redis-server as a
 * child (fork/exec of CC_REDIS_SERVER, default redis-server from PATH) so
 * that they can kill -9 it and start it again on the same port.
 *
 * SIGPIPE is deliberately left at its default: the adapter must not need
 * the application to ignore it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "chatcore/redis.h"
#include "testutil.h"

#define WAIT_MS 5000

/* ---- fixture: one loop, a counting allocator, a ctx ---- */

#define MAX_R 8
#define MAX_EV 64

typedef struct fx {
    uv_loop_t loop;
    cc_test_alloc ta;
    cc_ctx *ctx;
    cc_redis *r[MAX_R];
    int nr;
    int closed[MAX_R];
    /* state callback events of r[0] */
    int ev_ready[MAX_EV], ev_status[MAX_EV];
    int nev;
    char ns[64];
} fx;

static fx F;

static void
on_state(cc_redis *r, int ready, int status, void *data)
{
    fx *f = data;
    ck_assert_ptr_eq(f->r[0], r);
    if (f->nev < MAX_EV) {
        f->ev_ready[f->nev] = ready;
        f->ev_status[f->nev] = status;
    }
    f->nev++;
}

static void
setup(void)
{
    memset(&F, 0, sizeof F);
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
    cc_test_alloc_init(&F.ta);
    ck_assert_int_eq(cc_ctx_new(&F.ctx, &F.loop, &F.ta.a), 0);
    /* unique per test even with CK_FORK=no (one process for all) */
    static int seq;
    snprintf(F.ns, sizeof F.ns, "t%ld.%d:", (long)getpid(), ++seq);
}

static void
on_r_closed(void *obj, void *data)
{
    int *flag = data;
    ck_assert_ptr_nonnull(obj);
    (*flag)++;
}

static void
close_r(int i)
{
    if (!F.r[i])
        return;
    cc_redis_close(F.r[i], on_r_closed, &F.closed[i]);
    F.r[i] = NULL;
    ck_assert_msg(cc_test_run_until(&F.loop, &F.closed[i], WAIT_MS),
                  "close callback did not run");
    ck_assert_int_eq(F.closed[i], 1);
}

static void
teardown(void)
{
    for (int i = 0; i < F.nr; i++)
        close_r(i);
    cc_ctx_close(F.ctx, NULL, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&F.loop), 0);
    ck_assert_uint_eq(F.ta.bytes, 0);
    ck_assert_uint_eq(F.ta.blocks, 0);
}

static void
wait_flag(volatile int *flag)
{
    ck_assert_msg(cc_test_run_until(&F.loop, flag, WAIT_MS),
                  "timed out waiting for a callback");
}

/* Run the loop for ms milliseconds. */
static void
run_for(unsigned ms)
{
    int never = 0;
    cc_test_run_until(&F.loop, &never, ms);
}

/* Run the loop until the state callback has seen n events. */
static void
wait_events(int n)
{
    uint64_t end = uv_now(&F.loop) + WAIT_MS;
    while (F.nev < n && uv_now(&F.loop) < end)
        run_for(5);
    ck_assert_msg(F.nev >= n, "%d state events, wanted %d", F.nev, n);
}

static int
ready_flag_poll(cc_redis *r, unsigned ms)
{
    uint64_t end = uv_now(&F.loop) + ms;
    while (!cc_redis_ready(r) && uv_now(&F.loop) < end)
        run_for(5);
    return cc_redis_ready(r);
}

/* A new adapter as F.r[slot] on port with ns "<F.ns><sub>". opts may be
 * NULL for the test defaults (fast backoff). */
static cc_redis *
open_r(int port, const char *sub, cc_redis_opts *o, int wait_ready)
{
    int own = 0;
    if (!o) {
        ck_assert_int_eq(cc_redis_opts_new(&o, F.ctx), 0);
        ck_assert_int_eq(
            cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MIN_MS, 20), 0);
        ck_assert_int_eq(
            cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MAX_MS, 100), 0);
        own = 1;
    }
    if (sub) {
        char ns[160];
        snprintf(ns, sizeof ns, "%s%s:", F.ns, sub);
        ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_NAMESPACE, ns),
                         0);
    }
    ck_assert_int_lt(F.nr, MAX_R);
    cc_redis *r = NULL;
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "127.0.0.1", port, o), 0);
    ck_assert_ptr_nonnull(r);
    if (F.nr == 0)
        ck_assert_int_eq(cc_redis_on_state(r, on_state, &F), 0);
    F.r[F.nr++] = r;
    if (own)
        cc_redis_opts_free(o);
    if (wait_ready)
        ck_assert_msg(ready_flag_poll(r, WAIT_MS), "not ready: %s",
                      cc_redis_last_error(r));
    return r;
}

static cc_redis *
open_shared(const char *sub)
{
    return open_r(cc_test_redis_env_port(), sub, NULL, 1);
}

/* ---- results ---- */

typedef struct res {
    int done;
    int status;
    int64_t v;
    int type;
    char s[512];
    size_t len;
    int isnull;
    size_t count;
    /* list results */
    char ids[64][72];
    int64_t nums[64];
    size_t lens[64];
    char datas[64][64];
    size_t n;
} res;

static void
int_cb(cc_redis *r, int status, int64_t v, void *data)
{
    res *x = data;
    ck_assert_ptr_nonnull(r);
    x->done++;
    x->status = status;
    x->v = v;
}

static void
str_cb(cc_redis *r, int status, const char *s, size_t len, void *data)
{
    res *x = data;
    ck_assert_ptr_nonnull(r);
    x->done++;
    x->status = status;
    x->isnull = s == NULL;
    x->len = len;
    if (s) {
        ck_assert_uint_lt(len, sizeof x->s);
        memcpy(x->s, s, len);
        x->s[len] = '\0';
    }
}

static void
raw_cb(cc_redis *r, int status, const cc_redis_reply *rep, void *data)
{
    res *x = data;
    ck_assert_ptr_nonnull(r);
    x->done++;
    x->status = status;
    x->isnull = rep == NULL;
    if (status) {
        ck_assert_ptr_null(rep);
        return;
    }
    x->type = cc_redis_reply_type(rep);
    x->v = cc_redis_reply_int(rep);
    size_t len = 0;
    const char *s = cc_redis_reply_str(rep, &len);
    x->len = len;
    if (s && len < sizeof x->s) {
        memcpy(x->s, s, len);
        x->s[len] = '\0';
    }
    x->count = cc_redis_reply_count(rep);
    for (size_t i = 0; i < x->count && i < 64; i++) {
        const cc_redis_reply *e = cc_redis_reply_at(rep, i);
        const char *es = cc_redis_reply_str(e, &len);
        x->nums[i] = cc_redis_reply_type(e);
        if (es && len < sizeof x->datas[i]) {
            memcpy(x->datas[i], es, len);
            x->datas[i][len] = '\0';
        }
    }
}

static void
queue_cb(cc_redis *r, int status, const cc_redis_queue_entry *e, size_t n,
         void *data)
{
    res *x = data;
    ck_assert_ptr_nonnull(r);
    x->done++;
    x->status = status;
    x->n = n;
    if (!n)
        ck_assert_ptr_null(e);
    for (size_t i = 0; i < n && i < 64; i++) {
        ck_assert_uint_eq(strlen(e[i].sid), e[i].sid_len);
        snprintf(x->ids[i], sizeof x->ids[i], "%s", e[i].sid);
        x->nums[i] = e[i].since_ms;
    }
}

static void
inbox_cb(cc_redis *r, int status, const cc_redis_inbox_item *it, size_t n,
         void *data)
{
    res *x = data;
    ck_assert_ptr_nonnull(r);
    x->done++;
    x->status = status;
    x->n = n;
    for (size_t i = 0; i < n && i < 64; i++) {
        x->nums[i] = (int64_t)it[i].seq;
        x->lens[i] = it[i].len;
        ck_assert_uint_lt(it[i].len, sizeof x->datas[i]);
        memcpy(x->datas[i], it[i].data, it[i].len);
    }
}

/* Synchronous raw command: cmd(r, &x, "SET", "k", "v", NULL). */
static void
cmd(cc_redis *r, res *x, ...)
{
    const char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, x);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 16)
        argv[argc++] = a;
    va_end(ap);
    memset(x, 0, sizeof *x);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, x, argc, argv, NULL), 0);
    wait_flag(&x->done);
    ck_assert_int_eq(x->done, 1);
    ck_assert_int_eq(x->status, 0);
}

/* "<F.ns><sub>:<rest>" */
static const char *
key(const char *sub, const char *rest)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s%s:%s", F.ns, sub, rest);
    return buf;
}

#define DO(call, x)                                                          \
    do {                                                                     \
        memset(&(x), 0, sizeof(x));                                          \
        ck_assert_int_eq((call), 0);                                         \
        wait_flag(&(x).done);                                                \
        ck_assert_int_eq((x).done, 1);                                       \
    } while (0)

/* ---- argument checks ---- */

START_TEST(test_args)
{
    setup();
    cc_redis_opts *o = NULL;
    ck_assert_int_eq(cc_redis_opts_new(NULL, F.ctx), CC_EINVAL);
    ck_assert_int_eq(cc_redis_opts_new(&o, NULL), CC_EINVAL);
    ck_assert_ptr_null(o);
    ck_assert_int_eq(cc_redis_opts_new(&o, F.ctx), 0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_NAMESPACE, 1),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_QUEUE_MAX, "1"),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_QUEUE_MAX, -1),
                     CC_EINVAL);
    ck_assert_int_eq(
        cc_redis_opts_set_int(o, CC_REDIS_OPT_CONNECT_TIMEOUT_MS, 0),
        CC_EINVAL);
    ck_assert_int_eq(
        cc_redis_opts_set_int(o, CC_REDIS_OPT_COMMAND_TIMEOUT_MS, 0), 0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_DB, -1),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_opts_set_int(o, (cc_redis_option)99, 1),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_NAMESPACE, "a b"),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_NAMESPACE, "{x}"),
                     CC_EINVAL);
    char big[80];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_NAMESPACE, big),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_NAMESPACE, ""), 0);
    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_NAMESPACE, NULL),
                     CC_EINVAL);

    cc_redis *r = (cc_redis *)&F; /* must be reset to NULL on error */
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, NULL, 6379, NULL), CC_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "", 6379, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "h", 0, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "h", 65536, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_redis_new(&r, NULL, "h", 1, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_redis_new(NULL, F.ctx, "h", 1, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MIN_MS,
                                           500), 0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MAX_MS,
                                           100), 0);
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "h", 1, o), CC_EINVAL);
    cc_redis_opts_free(o);
    cc_redis_opts_free(NULL);

    /* an adapter that never connects is enough for argument checks */
    r = open_r(cc_test_free_port(), "args", NULL, 0);
    const char *id65 =
        "a2345678901234567890123456789012345678901234567890123456789012345";
    res x;
    ck_assert_int_eq(cc_redis_presence_set(r, "t", "u", "n", 0, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_presence_set(r, "t", "u", "", 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_presence_set(r, "t{", "u", "n", 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_presence_set(r, "t", id65, "n", 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_presence_set(r, "t", "u u", "n", 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_presence_get(r, "t", "u", NULL, &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_presence_del(r, NULL, "u", NULL, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_session_node_del(r, "t", "s", "", int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_queue_add(r, "t", "s", -1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_queue_add(r, "t", "s", (int64_t)1 << 53,
                                        int_cb, &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_queue_list(r, "t", 0, queue_cb, &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_queue_list(r, "t", 100001, queue_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_queue_rank(r, "t", "s", NULL, &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_claim(r, "t", "s", "a", 0, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_claim_release(r, "t", "s", NULL, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_bucket_take(r, "k", 0, 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_bucket_take(r, "k", -1, 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_bucket_take(r, "k", NAN, 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_bucket_take(r, "k", INFINITY, 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_bucket_take(r, "k", 1, 0.5, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_bucket_take(r, "", 1, 1, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_bucket_take(r, "k", 1, 1, NULL, &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_nonce_use(r, "t", "n", 0, int_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_inbox_push(r, "t", "u", (uint64_t)1 << 53, "x",
                                         1, 0, 0, int_cb, &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_inbox_push(r, "t", "u", 1, NULL, 1, 0, 0,
                                         int_cb, &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_inbox_range(r, "t", "u", 0, 0, inbox_cb, &x),
                     CC_EINVAL);
    ck_assert_int_eq(cc_redis_tenant_config_set(r, "t", NULL, 2, 0, int_cb,
                                                &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_tenant_config_get(r, "t", NULL, &x), CC_EINVAL);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &x, 0, NULL, NULL), CC_EINVAL);
    const char *nul[] = {"GET", NULL};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &x, 2, nul, NULL), CC_EINVAL);
    const char *sub[] = {"subscribe", "ch"};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &x, 2, sub, NULL), CC_ENOTSUP);
    const char *mon[] = {"MONITOR"};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &x, 1, mon, NULL), CC_ENOTSUP);
    ck_assert_int_eq(cc_redis_cmd(NULL, raw_cb, &x, 1, mon, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_redis_on_state(NULL, NULL, NULL), CC_EINVAL);
    /* nothing was queued by the refused calls */
    ck_assert_uint_eq(cc_redis_queued(r), 0);
    /* accessors take NULL */
    ck_assert_int_eq(cc_redis_reply_type(NULL), 0);
    ck_assert_int_eq(cc_redis_reply_int(NULL), 0);
    size_t l = 7;
    ck_assert_ptr_null(cc_redis_reply_str(NULL, &l));
    ck_assert_uint_eq(l, 0);
    ck_assert_uint_eq(cc_redis_reply_count(NULL), 0);
    ck_assert_ptr_null(cc_redis_reply_at(NULL, 0));
    ck_assert_int_eq(cc_redis_ready(NULL), 0);
    cc_redis_set_data(r, &x);
    ck_assert_ptr_eq(cc_redis_get_data(r), &x);

    /* closing: new commands are refused, the close callback runs once */
    cc_redis_close(r, on_r_closed, &F.closed[0]);
    cc_redis_close(r, on_r_closed, &F.closed[0]); /* no-op */
    const char *ping[] = {"PING"};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &x, 1, ping, NULL),
                     CC_ECANCELED);
    ck_assert_int_eq(cc_redis_presence_get(r, "t", "u", str_cb, &x),
                     CC_ECANCELED);
    F.r[0] = NULL;
    wait_flag(&F.closed[0]);
    run_for(20);
    ck_assert_int_eq(F.closed[0], 1);
    teardown();
}
END_TEST

/* ---- connection, generic commands, queue before ready ---- */

START_TEST(test_generic)
{
    setup();
    cc_redis *r = open_r(cc_test_redis_env_port(), "gen", NULL, 0);
    /* issued before the connection is ready: queued, then sent in order */
    res a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    const char *k = key("gen", "k");
    char kbuf[256];
    snprintf(kbuf, sizeof kbuf, "%s", k);
    const char *set[] = {"SET", kbuf, "v1"};
    const char *app[] = {"APPEND", kbuf, "+2"};
    const char *get[] = {"GET", kbuf};
    ck_assert_int_eq(cc_redis_ready(r), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &a, 3, set, NULL), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &b, 3, app, NULL), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c, 2, get, NULL), 0);
    ck_assert_uint_eq(cc_redis_queued(r), 3);
    ck_assert_uint_eq(cc_redis_inflight(r), 0);
    ck_assert_int_eq(a.done + b.done + c.done, 0); /* never synchronous */
    wait_flag(&c.done);
    ck_assert_int_eq(a.done, 1);
    ck_assert_int_eq(a.type, CC_REDIS_REPLY_STATUS);
    ck_assert_str_eq(a.s, "OK");
    ck_assert_int_eq(b.type, CC_REDIS_REPLY_INT);
    ck_assert_int_eq(b.v, 4);
    ck_assert_int_eq(c.type, CC_REDIS_REPLY_STR);
    ck_assert_str_eq(c.s, "v1+2");
    ck_assert_uint_eq(c.len, 4);
    ck_assert_int_eq(cc_redis_ready(r), 1);
    ck_assert_uint_eq(cc_redis_queued(r), 0);
    ck_assert_uint_eq(cc_redis_inflight(r), 0);
    /* the state callback saw exactly one event: ready */
    ck_assert_int_eq(F.nev, 1);
    ck_assert_int_eq(F.ev_ready[0], 1);
    ck_assert_int_eq(F.ev_status[0], 0);

    /* binary-safe arguments */
    const char bin[] = {'a', '\0', 'b', '\r', '\n'};
    const char *bs[] = {"SET", kbuf, bin};
    const size_t bl[] = {3, strlen(kbuf), sizeof bin};
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &a, 3, bs, bl), 0);
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &b, 2, get, NULL), 0);
    wait_flag(&b.done);
    ck_assert_uint_eq(b.len, sizeof bin);
    ck_assert_int_eq(memcmp(b.s, bin, sizeof bin), 0);

    /* reply types: nil, error, nested array */
    cmd(r, &a, "GET", key("gen", "missing"), NULL);
    ck_assert_int_eq(a.type, CC_REDIS_REPLY_NIL);
    ck_assert_int_eq(a.isnull, 0);
    cmd(r, &a, "INCR", kbuf, NULL);
    ck_assert_int_eq(a.type, CC_REDIS_REPLY_ERROR);
    ck_assert_msg(strstr(a.s, "not an integer") != NULL, "%s", a.s);
    cmd(r, &a, "EVAL", "return {7, 'x', {1, 2}, redis.status_reply('S')}",
        "0", NULL);
    ck_assert_int_eq(a.type, CC_REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(a.count, 4);
    ck_assert_int_eq(a.nums[0], CC_REDIS_REPLY_INT);
    ck_assert_int_eq(a.nums[1], CC_REDIS_REPLY_STR);
    ck_assert_str_eq(a.datas[1], "x");
    ck_assert_int_eq(a.nums[2], CC_REDIS_REPLY_ARRAY);
    ck_assert_int_eq(a.nums[3], CC_REDIS_REPLY_STATUS);
    ck_assert_str_eq(a.datas[3], "S");

    /* fire and forget, then a reply behind it proves it ran */
    const char *inc[] = {"INCRBY", key("gen", "ctr"), "5"};
    ck_assert_int_eq(cc_redis_cmd(r, NULL, NULL, 3, inc, NULL), 0);
    cmd(r, &a, "GET", key("gen", "ctr"), NULL);
    ck_assert_str_eq(a.s, "5");
    ck_assert_str_eq(cc_redis_last_error(r), "");
    /* the SIGPIPE guard around writes leaves the thread's mask as it was */
    sigset_t m;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &m), 0);
    ck_assert_int_eq(sigismember(&m, SIGPIPE), 0);
    teardown();
}
END_TEST

START_TEST(test_resolve_name)
{
    setup();
    cc_redis *r = NULL;
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "localhost", cc_test_redis_env_port(), NULL),
                     0);
    F.r[F.nr++] = r;
    ck_assert_msg(ready_flag_poll(r, WAIT_MS), "%s", cc_redis_last_error(r));
    res a;
    cmd(r, &a, "PING", NULL);
    ck_assert_str_eq(a.s, "PONG");
    /* closed while the name is (probably) being resolved on the pool */
    cc_redis *r2 = NULL;
    int closed = 0;
    ck_assert_int_eq(cc_redis_new(&r2, F.ctx, "localhost", cc_test_redis_env_port(), NULL),
                     0);
    uv_run(&F.loop, UV_RUN_NOWAIT); /* the first attempt starts */
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(cc_redis_presence_get(r2, "t", "u", str_cb, &a), 0);
    cc_redis_close(r2, on_r_closed, &closed);
    ck_assert_int_eq(a.done, 1);
    ck_assert_int_eq(a.status, CC_ECANCELED);
    wait_flag(&closed);
    ck_assert_int_eq(closed, 1);
    teardown();
}
END_TEST

/* ---- domain operations ---- */

START_TEST(test_presence)
{
    setup();
    cc_redis *r = open_shared("pr");
    res x, y;
    DO(cc_redis_presence_set(r, "t1", "visitor:v_1", "gw-1", 60000, int_cb,
                             &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_presence_get(r, "t1", "visitor:v_1", str_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_str_eq(x.s, "gw-1");
    ck_assert_uint_eq(x.len, 4);
    /* the key, exactly, and its TTL */
    cmd(r, &y, "PTTL", key("pr", "presence:{t1}:visitor:v_1"), NULL);
    ck_assert_int_gt(y.v, 59000);
    ck_assert_int_le(y.v, 60000);
    /* refresh: another node, shorter TTL */
    DO(cc_redis_presence_set(r, "t1", "visitor:v_1", "gw-2", 5000, int_cb,
                             &x), x);
    cmd(r, &y, "PTTL", key("pr", "presence:{t1}:visitor:v_1"), NULL);
    ck_assert_int_gt(y.v, 4000);
    ck_assert_int_le(y.v, 5000);
    /* delete-if-owner: gw-1 no longer owns it */
    DO(cc_redis_presence_del(r, "t1", "visitor:v_1", "gw-1", int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_presence_get(r, "t1", "visitor:v_1", str_cb, &x), x);
    ck_assert_str_eq(x.s, "gw-2");
    DO(cc_redis_presence_del(r, "t1", "visitor:v_1", "gw-2", int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_presence_get(r, "t1", "visitor:v_1", str_cb, &x), x);
    ck_assert_int_eq(x.status, CC_ENOENT);
    ck_assert_int_eq(x.isnull, 1);
    ck_assert_uint_eq(x.len, 0);
    /* unconditional delete */
    DO(cc_redis_presence_set(r, "t1", "agent:a1", "gw-1", 60000, int_cb, &x),
       x);
    DO(cc_redis_presence_del(r, "t1", "agent:a1", NULL, int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_presence_del(r, "t1", "agent:a1", NULL, int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    /* expiry */
    DO(cc_redis_presence_set(r, "t1", "u2", "gw-1", 30, int_cb, &x), x);
    run_for(80);
    DO(cc_redis_presence_get(r, "t1", "u2", str_cb, &x), x);
    ck_assert_int_eq(x.status, CC_ENOENT);
    teardown();
}
END_TEST

START_TEST(test_session_node)
{
    setup();
    cc_redis *r = open_shared("sn");
    res x, y;
    /* ids with ':' cannot collide: tid "a:b" + "c" vs tid "a" + "b:c" */
    DO(cc_redis_session_node_set(r, "a:b", "c", "gw-1", 60000, int_cb, &x),
       x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_session_node_set(r, "a", "b:c", "gw-2", 60000, int_cb, &x),
       x);
    DO(cc_redis_session_node_get(r, "a:b", "c", str_cb, &x), x);
    ck_assert_str_eq(x.s, "gw-1");
    DO(cc_redis_session_node_get(r, "a", "b:c", str_cb, &x), x);
    ck_assert_str_eq(x.s, "gw-2");
    cmd(r, &y, "GET", key("sn", "session:{a:b}:c"), NULL);
    ck_assert_str_eq(y.s, "gw-1");
    cmd(r, &y, "GET", key("sn", "session:{a}:b:c"), NULL);
    ck_assert_str_eq(y.s, "gw-2");
    /* delete-if-owner */
    DO(cc_redis_session_node_del(r, "a", "b:c", "gw-1", int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_session_node_del(r, "a", "b:c", "gw-2", int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_session_node_get(r, "a", "b:c", str_cb, &x), x);
    ck_assert_int_eq(x.status, CC_ENOENT);
    DO(cc_redis_session_node_del(r, "a:b", "c", NULL, int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_session_node_del(r, "a:b", "c", "gw-1", int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    teardown();
}
END_TEST

START_TEST(test_queue)
{
    setup();
    cc_redis *r = open_shared("q");
    res x, y;
    DO(cc_redis_queue_add(r, "t1", "s1", 1000, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_queue_add(r, "t1", "s2", 500, int_cb, &x), x);
    DO(cc_redis_queue_add(r, "t1", "s3", 1500, int_cb, &x), x);
    DO(cc_redis_queue_add(r, "t1", "s4", 500, int_cb, &x), x);
    DO(cc_redis_queue_add(r, "t2", "s9", 1, int_cb, &x), x); /* elsewhere */
    DO(cc_redis_queue_list(r, "t1", 10, queue_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_uint_eq(x.n, 4);
    ck_assert_str_eq(x.ids[0], "s2");
    ck_assert_int_eq(x.nums[0], 500);
    ck_assert_str_eq(x.ids[1], "s4"); /* same time: by id */
    ck_assert_int_eq(x.nums[1], 500);
    ck_assert_str_eq(x.ids[2], "s1");
    ck_assert_int_eq(x.nums[2], 1000);
    ck_assert_str_eq(x.ids[3], "s3");
    ck_assert_int_eq(x.nums[3], 1500);
    DO(cc_redis_queue_rank(r, "t1", "s1", int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 3);
    DO(cc_redis_queue_rank(r, "t1", "s2", int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_queue_rank(r, "t1", "nope", int_cb, &x), x);
    ck_assert_int_eq(x.status, CC_ENOENT);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_queue_len(r, "t1", int_cb, &x), x);
    ck_assert_int_eq(x.v, 4);
    /* re-adding updates the time: value 0 */
    DO(cc_redis_queue_add(r, "t1", "s3", 100, int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_queue_list(r, "t1", 2, queue_cb, &x), x);
    ck_assert_uint_eq(x.n, 2);
    ck_assert_str_eq(x.ids[0], "s3");
    ck_assert_int_eq(x.nums[0], 100);
    ck_assert_str_eq(x.ids[1], "s2");
    DO(cc_redis_queue_remove(r, "t1", "s2", int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_queue_remove(r, "t1", "s2", int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_queue_rank(r, "t1", "s4", int_cb, &x), x);
    ck_assert_int_eq(x.v, 2);
    /* large times are exact */
    DO(cc_redis_queue_add(r, "t1", "s5", 1700000000123LL, int_cb, &x), x);
    DO(cc_redis_queue_list(r, "t1", 100, queue_cb, &x), x);
    ck_assert_uint_eq(x.n, 4);
    ck_assert_str_eq(x.ids[3], "s5");
    ck_assert_int_eq(x.nums[3], 1700000000123LL);
    cmd(r, &y, "TYPE", key("q", "queue:{t1}"), NULL);
    ck_assert_str_eq(y.s, "zset");
    /* an empty queue */
    DO(cc_redis_queue_list(r, "t3", 5, queue_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_uint_eq(x.n, 0);
    DO(cc_redis_queue_len(r, "t3", int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    teardown();
}
END_TEST

START_TEST(test_claim)
{
    setup();
    cc_redis *r = open_shared("cl");
    res x, y;
    DO(cc_redis_claim(r, "t1", "s1", "agent:a", 30000, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_claim(r, "t1", "s1", "agent:b", 30000, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 0);
    cmd(r, &y, "GET", key("cl", "claim:{t1}:s1"), NULL);
    ck_assert_str_eq(y.s, "agent:a");
    cmd(r, &y, "PTTL", key("cl", "claim:{t1}:s1"), NULL);
    ck_assert_int_gt(y.v, 29000);
    ck_assert_int_le(y.v, 30000);
    DO(cc_redis_claim_release(r, "t1", "s1", "agent:b", int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    cmd(r, &y, "GET", key("cl", "claim:{t1}:s1"), NULL);
    ck_assert_str_eq(y.s, "agent:a");
    DO(cc_redis_claim_release(r, "t1", "s1", "agent:a", int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_claim_release(r, "t1", "s1", "agent:a", int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_claim(r, "t1", "s1", "agent:b", 30, int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    /* a claim expires */
    run_for(80);
    DO(cc_redis_claim(r, "t1", "s1", "agent:c", 30000, int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    teardown();
}
END_TEST

#define RACE 100

typedef struct race {
    int done, won, lost, bad;
    int winner;
} race;

typedef struct racer {
    race *rc;
    int idx;
} racer;

static void
race_cb(cc_redis *r, int status, int64_t v, void *data)
{
    racer *p = data;
    p->rc->done++;
    if (status != 0 || (v != 0 && v != 1)) {
        p->rc->bad++;
        return;
    }
    if (v == 1) {
        p->rc->won++;
        p->rc->winner = p->idx;
    } else {
        p->rc->lost++;
    }
}

static void
run_race(int nconn)
{
    cc_redis *rs[4];
    for (int i = 0; i < nconn; i++)
        rs[i] = open_shared("race");
    race rc;
    memset(&rc, 0, sizeof rc);
    racer p[RACE];
    char agent[RACE][16];
    /* interleaved: claim i goes out on connection i % nconn */
    for (int i = 0; i < RACE; i++) {
        p[i].rc = &rc;
        p[i].idx = i;
        snprintf(agent[i], sizeof agent[i], "agent:%d", i);
        ck_assert_int_eq(cc_redis_claim(rs[i % nconn], "t1", "s1", agent[i],
                                        30000, race_cb, &p[i]), 0);
    }
    uint64_t end = uv_now(&F.loop) + WAIT_MS;
    while (rc.done < RACE && uv_now(&F.loop) < end)
        run_for(5);
    ck_assert_int_eq(rc.done, RACE);
    ck_assert_int_eq(rc.bad, 0);
    ck_assert_int_eq(rc.won, 1);
    ck_assert_int_eq(rc.lost, RACE - 1);
    res y;
    cmd(rs[0], &y, "GET", key("race", "claim:{t1}:s1"), NULL);
    ck_assert_str_eq(y.s, agent[rc.winner]);
}

START_TEST(test_claim_race_one_conn)
{
    setup();
    run_race(1);
    teardown();
}
END_TEST

START_TEST(test_claim_race_four_conns)
{
    setup();
    run_race(4);
    teardown();
}
END_TEST

/* Replay the bucket's recorded clock through cc_bucket_take (auth.h): the
 * script must give exactly the same answers. */
typedef struct btrace {
    uint64_t now[32];
    int64_t got[32];
    int n;
} btrace;

static int64_t
take(cc_redis *r, const char *k, double rate, double burst, btrace *t)
{
    res x, y;
    DO(cc_redis_bucket_take(r, k, rate, burst, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    char full[256];
    snprintf(full, sizeof full, "%sbk:bucket:%s", F.ns, k);
    cmd(r, &y, "HGET", full, "a", NULL);
    ck_assert_int_eq(y.type, CC_REDIS_REPLY_STR);
    ck_assert_int_lt(t->n, 32);
    t->now[t->n] = strtoull(y.s, NULL, 10);
    t->got[t->n] = x.v;
    t->n++;
    return x.v;
}

static void
replay(const btrace *t, double rate, double burst)
{
    cc_bucket b = {0, 0};
    for (int i = 0; i < t->n; i++)
        ck_assert_int_eq(cc_bucket_take(&b, rate, burst, t->now[i]),
                         t->got[i]);
}

START_TEST(test_bucket_burst)
{
    setup();
    cc_redis *r = open_shared("bk");
    btrace t;
    memset(&t, 0, sizeof t);
    /* 2 per second, burst 3: three allowed, then ~500 ms */
    ck_assert_int_eq(take(r, "u1", 2.0, 3.0, &t), 0);
    ck_assert_int_eq(take(r, "u1", 2.0, 3.0, &t), 0);
    ck_assert_int_eq(take(r, "u1", 2.0, 3.0, &t), 0);
    /* at most 500 ms, less by however long the four calls took (the
     * replay below checks the exact value) */
    int64_t w = take(r, "u1", 2.0, 3.0, &t);
    ck_assert_int_ge(w, 1);
    ck_assert_int_le(w, 500);
    int64_t w2 = take(r, "u1", 2.0, 3.0, &t);
    ck_assert_int_ge(w2, 1);
    ck_assert_int_le(w2, w);
    replay(&t, 2.0, 3.0);
    /* its own key, expiring once full again (+1 s) */
    res y;
    char full[256];
    snprintf(full, sizeof full, "%sbk:bucket:u1", F.ns);
    cmd(r, &y, "PTTL", full, NULL);
    ck_assert_int_gt(y.v, 1000);
    ck_assert_int_le(y.v, 2500);
    /* a slow bucket: 0.5/s, burst 1 -> 2000 ms */
    memset(&t, 0, sizeof t);
    ck_assert_int_eq(take(r, "slow", 0.5, 1.0, &t), 0);
    w = take(r, "slow", 0.5, 1.0, &t);
    ck_assert_int_ge(w, 1000);
    ck_assert_int_le(w, 2000);
    replay(&t, 0.5, 1.0);
    /* other keys are independent */
    memset(&t, 0, sizeof t);
    ck_assert_int_eq(take(r, "u2", 2.0, 3.0, &t), 0);
    teardown();
}
END_TEST

typedef struct sleeper {
    int done;
    uv_timer_t t;
} sleeper;

static void
on_sleep(uv_timer_t *t)
{
    ((sleeper *)t->data)->done = 1;
}

START_TEST(test_bucket_refill)
{
    setup();
    cc_redis *r = open_shared("bk");
    btrace t;
    memset(&t, 0, sizeof t);
    /* 20 per second, burst 2: refused for <= 50 ms, then allowed */
    ck_assert_int_eq(take(r, "r1", 20.0, 2.0, &t), 0);
    ck_assert_int_eq(take(r, "r1", 20.0, 2.0, &t), 0);
    int64_t w = take(r, "r1", 20.0, 2.0, &t);
    ck_assert_int_ge(w, 1);
    ck_assert_int_le(w, 50);
    /* sleep exactly the advised time (on the Redis clock: a little more
     * on ours is fine, a little less is not) */
    sleeper s;
    memset(&s, 0, sizeof s);
    uv_timer_init(&F.loop, &s.t);
    s.t.data = &s;
    uv_timer_start(&s.t, on_sleep, (uint64_t)w + 2, 0);
    wait_flag(&s.done);
    uv_close((uv_handle_t *)&s.t, NULL);
    ck_assert_int_eq(take(r, "r1", 20.0, 2.0, &t), 0);
    w = take(r, "r1", 20.0, 2.0, &t);
    ck_assert_int_ge(w, 1);
    ck_assert_int_le(w, 50);
    /* a full refill: burst again */
    run_for(120);
    ck_assert_int_eq(take(r, "r1", 20.0, 2.0, &t), 0);
    ck_assert_int_eq(take(r, "r1", 20.0, 2.0, &t), 0);
    ck_assert_int_gt(take(r, "r1", 20.0, 2.0, &t), 0);
    replay(&t, 20.0, 2.0);
    teardown();
}
END_TEST

/* After SCRIPT FLUSH, EVALSHA gets NOSCRIPT and the command is resent as
 * EVAL, transparently. */
START_TEST(test_noscript)
{
    setup();
    cc_redis *r = open_shared("ns");
    res x, y;
    DO(cc_redis_claim(r, "t1", "s1", "a1", 30000, int_cb, &x), x);
    cmd(r, &y, "SCRIPT", "FLUSH", NULL);
    ck_assert_str_eq(y.s, "OK");
    DO(cc_redis_claim_release(r, "t1", "s1", "a2", int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_claim_release(r, "t1", "s1", "a1", int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 1);
    cmd(r, &y, "SCRIPT", "FLUSH", NULL);
    DO(cc_redis_bucket_take(r, "b", 1.0, 1.0, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 0);
    cmd(r, &y, "SCRIPT", "FLUSH", NULL);
    DO(cc_redis_inbox_push(r, "t1", "u1", 1, "m", 1, 0, 0, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 1);
    ck_assert_uint_eq(cc_redis_inflight(r), 0);
    teardown();
}
END_TEST

START_TEST(test_nonce)
{
    setup();
    cc_redis *r = open_shared("no");
    res x, y;
    DO(cc_redis_nonce_use(r, "t1", "n-1_A", 60, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_nonce_use(r, "t1", "n-1_A", 60, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_nonce_use(r, "t2", "n-1_A", 60, int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    cmd(r, &y, "TTL", key("no", "nonce:{t1}:n-1_A"), NULL);
    ck_assert_int_gt(y.v, 55);
    ck_assert_int_le(y.v, 60);
    teardown();
}
END_TEST

START_TEST(test_inbox)
{
    setup();
    cc_redis *r = open_shared("ib");
    res x, y;
    char m[8];
    for (int i = 1; i <= 5; i++) {
        snprintf(m, sizeof m, "m%d", i);
        DO(cc_redis_inbox_push(r, "t1", "visitor:v1", (uint64_t)i, m,
                               strlen(m), 60000, 0, int_cb, &x), x);
        ck_assert_int_eq(x.status, 0);
        ck_assert_int_eq(x.v, i);
    }
    const char bin[] = {'x', '\0', ':', 'y'};
    DO(cc_redis_inbox_push(r, "t1", "visitor:v1", 6, bin, sizeof bin, 60000,
                           0, int_cb, &x), x);
    ck_assert_int_eq(x.v, 6);
    DO(cc_redis_inbox_range(r, "t1", "visitor:v1", 0, 100, inbox_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_uint_eq(x.n, 6);
    for (int i = 0; i < 5; i++) {
        snprintf(m, sizeof m, "m%d", i + 1);
        ck_assert_int_eq(x.nums[i], i + 1);
        ck_assert_uint_eq(x.lens[i], 2);
        ck_assert_int_eq(memcmp(x.datas[i], m, 2), 0);
    }
    ck_assert_int_eq(x.nums[5], 6);
    ck_assert_uint_eq(x.lens[5], sizeof bin);
    ck_assert_int_eq(memcmp(x.datas[5], bin, sizeof bin), 0);
    DO(cc_redis_inbox_range(r, "t1", "visitor:v1", 2, 2, inbox_cb, &x), x);
    ck_assert_uint_eq(x.n, 2);
    ck_assert_int_eq(x.nums[0], 3);
    ck_assert_int_eq(x.nums[1], 4);
    cmd(r, &y, "PTTL", key("ib", "inbox:{t1}:visitor:v1"), NULL);
    ck_assert_int_gt(y.v, 59000);
    ck_assert_int_le(y.v, 60000);
    /* trim up to seq 3 */
    DO(cc_redis_inbox_trim(r, "t1", "visitor:v1", 3, int_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 3);
    DO(cc_redis_inbox_trim(r, "t1", "visitor:v1", 3, int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_inbox_range(r, "t1", "visitor:v1", 0, 10, inbox_cb, &x), x);
    ck_assert_uint_eq(x.n, 3);
    ck_assert_int_eq(x.nums[0], 4);
    ck_assert_int_eq(x.nums[2], 6);
    /* max_items keeps the newest */
    DO(cc_redis_inbox_push(r, "t1", "visitor:v1", 7, "m7", 2, 60000, 3,
                           int_cb, &x), x);
    ck_assert_int_eq(x.v, 3);
    DO(cc_redis_inbox_range(r, "t1", "visitor:v1", 0, 10, inbox_cb, &x), x);
    ck_assert_uint_eq(x.n, 3);
    ck_assert_int_eq(x.nums[0], 5);
    ck_assert_int_eq(x.nums[1], 6);
    ck_assert_int_eq(x.nums[2], 7);
    /* trim beyond everything removes the key */
    DO(cc_redis_inbox_trim(r, "t1", "visitor:v1", UINT64_MAX, int_cb, &x), x);
    ck_assert_int_eq(x.v, 3);
    cmd(r, &y, "EXISTS", key("ib", "inbox:{t1}:visitor:v1"), NULL);
    ck_assert_int_eq(y.v, 0);
    DO(cc_redis_inbox_range(r, "t1", "visitor:v1", 0, 10, inbox_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_uint_eq(x.n, 0);
    /* ttl 0: no expiry; an empty item */
    DO(cc_redis_inbox_push(r, "t1", "u2", 9, NULL, 0, 0, 0, int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    cmd(r, &y, "PTTL", key("ib", "inbox:{t1}:u2"), NULL);
    ck_assert_int_eq(y.v, -1);
    DO(cc_redis_inbox_range(r, "t1", "u2", 0, 1, inbox_cb, &x), x);
    ck_assert_uint_eq(x.n, 1);
    ck_assert_int_eq(x.nums[0], 9);
    ck_assert_uint_eq(x.lens[0], 0);
    /* a foreign item in the list is reported, not misread */
    cmd(r, &y, "RPUSH", key("ib", "inbox:{t1}:u2"), "garbage", NULL);
    DO(cc_redis_inbox_range(r, "t1", "u2", 0, 5, inbox_cb, &x), x);
    ck_assert_int_eq(x.status, CC_EBACKEND);
    ck_assert_uint_eq(x.n, 0);
    DO(cc_redis_inbox_trim(r, "t1", "u2", 100, int_cb, &x), x);
    ck_assert_int_eq(x.v, 1); /* stops at the malformed item */
    teardown();
}
END_TEST

START_TEST(test_tenant_config)
{
    setup();
    cc_redis *r = open_shared("tc");
    res x, y;
    const char *json = "{\"messages_per_s\":20,\"burst\":40}";
    DO(cc_redis_tenant_config_set(r, "acme", json, strlen(json), 0, int_cb,
                                  &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_tenant_config_get(r, "acme", str_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_str_eq(x.s, json);
    ck_assert_uint_eq(x.len, strlen(json));
    cmd(r, &y, "PTTL", key("tc", "tenant:{acme}:config"), NULL);
    ck_assert_int_eq(y.v, -1);
    DO(cc_redis_tenant_config_set(r, "acme", "{}", 2, 5000, int_cb, &x), x);
    cmd(r, &y, "PTTL", key("tc", "tenant:{acme}:config"), NULL);
    ck_assert_int_gt(y.v, 4000);
    ck_assert_int_le(y.v, 5000);
    DO(cc_redis_tenant_config_get(r, "acme", str_cb, &x), x);
    ck_assert_str_eq(x.s, "{}");
    DO(cc_redis_tenant_config_del(r, "acme", int_cb, &x), x);
    ck_assert_int_eq(x.v, 1);
    DO(cc_redis_tenant_config_del(r, "acme", int_cb, &x), x);
    ck_assert_int_eq(x.v, 0);
    DO(cc_redis_tenant_config_get(r, "acme", str_cb, &x), x);
    ck_assert_int_eq(x.status, CC_ENOENT);
    DO(cc_redis_tenant_config_set(r, "acme", NULL, 0, 0, int_cb, &x), x);
    DO(cc_redis_tenant_config_get(r, "acme", str_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_uint_eq(x.len, 0);
    ck_assert_int_eq(x.isnull, 0);
    /* a Redis error reply on a domain operation: CC_EBACKEND + text */
    cmd(r, &y, "HSET", key("tc", "tenant:{bad}:config"), "f", "v", NULL);
    DO(cc_redis_tenant_config_get(r, "bad", str_cb, &x), x);
    ck_assert_int_eq(x.status, CC_EBACKEND);
    ck_assert_msg(strstr(cc_redis_last_error(r), "WRONGTYPE") != NULL, "%s",
                  cc_redis_last_error(r));
    teardown();
}
END_TEST

START_TEST(test_namespace_default)
{
    setup();
    /* no options at all: namespace "cc:" */
    cc_redis *r = NULL;
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "127.0.0.1", cc_test_redis_env_port(), NULL),
                     0);
    F.r[F.nr++] = r;
    ck_assert(ready_flag_poll(r, WAIT_MS));
    char tid[32], k[96];
    snprintf(tid, sizeof tid, "nsd%ld", (long)getpid());
    res x, y;
    DO(cc_redis_presence_set(r, tid, "u1", "gw", 10000, int_cb, &x), x);
    snprintf(k, sizeof k, "cc:presence:{%s}:u1", tid);
    cmd(r, &y, "GET", k, NULL);
    ck_assert_str_eq(y.s, "gw");
    cmd(r, &y, "DEL", k, NULL);
    ck_assert_int_eq(y.v, 1);
    teardown();
}
END_TEST

/* ---- pipelining ---- */

#define PIPE_N 10000

typedef struct pipe_st {
    int next; /* expected index of the next reply */
    int bad;
    int done;
} pipe_st;

typedef struct pipe_item {
    pipe_st *st;
    int idx;
} pipe_item;

static void
pipe_cb(cc_redis *r, int status, const cc_redis_reply *rep, void *data)
{
    pipe_item *it = data;
    pipe_st *st = it->st;
    if (status != 0 || it->idx != st->next ||
        cc_redis_reply_int(rep) != it->idx + 1)
        st->bad++;
    st->next++;
    if (st->next == PIPE_N)
        st->done = 1;
}

START_TEST(test_pipeline)
{
    setup();
    cc_redis *r = open_shared("pipe");
    pipe_st st = {0, 0, 0};
    pipe_item *items = calloc(PIPE_N, sizeof *items);
    ck_assert_ptr_nonnull(items);
    char k[256];
    snprintf(k, sizeof k, "%s", key("pipe", "list"));
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < PIPE_N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        const char *argv[] = {"RPUSH", k, v};
        items[i].st = &st;
        items[i].idx = i;
        ck_assert_int_eq(cc_redis_cmd(r, pipe_cb, &items[i], 3, argv, NULL),
                         0);
    }
    ck_assert_uint_eq(cc_redis_inflight(r), PIPE_N);
    wait_flag(&st.done);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_int_eq(st.bad, 0);
    ck_assert_int_eq(st.next, PIPE_N);
    ck_assert_uint_eq(cc_redis_inflight(r), 0);
    ck_assert_msg(ms < 8000, "10k pipelined commands took %llu ms",
                  (unsigned long long)ms);
    res y;
    cmd(r, &y, "LINDEX", k, "9999", NULL);
    ck_assert_str_eq(y.s, "9999");
    free(items);
    teardown();
}
END_TEST

/* ---- close from callbacks ---- */

typedef struct cl_st {
    int n;
    int status[8];
    cc_redis *r;
    int closed;
} cl_st;

static void
cl_closed(void *obj, void *data)
{
    ((cl_st *)data)->closed++;
}

static void
cl_cb(cc_redis *r, int status, const cc_redis_reply *rep, void *data)
{
    cl_st *s = data;
    if (s->n < 8)
        s->status[s->n] = status;
    s->n++;
    if (s->n == 1) {
        cc_redis_close(r, cl_closed, s);
        /* refused once closing, from inside a callback too */
        const char *p[] = {"PING"};
        ck_assert_int_eq(cc_redis_cmd(r, cl_cb, s, 1, p, NULL),
                         CC_ECANCELED);
    }
}

START_TEST(test_close_in_callback)
{
    setup();
    cc_redis *r = open_shared("cl");
    F.nr = 0; /* closed by the test itself */
    cl_st s;
    memset(&s, 0, sizeof s);
    const char *p[] = {"PING"};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(cc_redis_cmd(r, cl_cb, &s, 1, p, NULL), 0);
    wait_flag(&s.closed);
    ck_assert_int_eq(s.closed, 1);
    ck_assert_int_eq(s.n, 5);
    ck_assert_int_eq(s.status[0], 0);
    for (int i = 1; i < 5; i++)
        ck_assert_int_eq(s.status[i], CC_ECANCELED);
    teardown();
}
END_TEST

static void
close_on_ready(cc_redis *r, int ready, int status, void *data)
{
    if (ready)
        cc_redis_close(r, cl_closed, data);
}

START_TEST(test_close_in_state_cb)
{
    setup();
    cc_redis *r = NULL;
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "127.0.0.1", cc_test_redis_env_port(), NULL),
                     0);
    cl_st s;
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(cc_redis_on_state(r, close_on_ready, &s), 0);
    const char *p[] = {"PING"};
    ck_assert_int_eq(cc_redis_cmd(r, cl_cb, &s, 1, p, NULL), 0);
    wait_flag(&s.closed);
    /* the queued PING was sent when ready, then canceled by the close */
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.status[0], CC_ECANCELED);
    teardown();
}
END_TEST

/* ---- allocation failures ---- */

START_TEST(test_alloc_failures)
{
    setup();
    size_t base = F.ta.bytes; /* the ctx's own */
    cc_redis_opts *o = (cc_redis_opts *)&F;
    F.ta.fail_at = F.ta.nalloc + 1;
    ck_assert_int_eq(cc_redis_opts_new(&o, F.ctx), CC_ENOMEM);
    ck_assert_ptr_null(o);
    cc_redis *r = (cc_redis *)&F;
    F.ta.fail_at = F.ta.nalloc + 1;
    ck_assert_int_eq(cc_redis_new(&r, F.ctx, "127.0.0.1", cc_test_redis_env_port(), NULL),
                     CC_ENOMEM);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(F.ta.bytes, base);

    /* the first connection attempt cannot allocate: reported, retried */
    r = open_r(cc_test_redis_env_port(), "oom", NULL, 0);
    F.ta.fail_at = F.ta.nalloc + 1;
    ck_assert(ready_flag_poll(r, WAIT_MS));
    ck_assert_int_ge(F.nev, 2);
    ck_assert_int_eq(F.ev_ready[0], 0);
    ck_assert_int_eq(F.ev_status[0], CC_ENOMEM);
    ck_assert_int_eq(F.ev_ready[F.nev - 1], 1);

    res x;
    memset(&x, 0, sizeof x);
    const char *p[] = {"PING"};
    F.ta.fail_at = F.ta.nalloc + 1;
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &x, 1, p, NULL), CC_ENOMEM);
    F.ta.fail_at = F.ta.nalloc + 1;
    ck_assert_int_eq(cc_redis_presence_set(r, "t", "u", "n", 1000, int_cb,
                                           &x), CC_ENOMEM);
    F.ta.fail_at = 0;
    /* inbox push: the element, then the command */
    for (int k = 1; k <= 2; k++) {
        size_t before = F.ta.bytes;
        F.ta.fail_at = F.ta.nalloc + (size_t)k;
        ck_assert_int_eq(cc_redis_inbox_push(r, "t", "u", 1, "m", 1, 0, 0,
                                             int_cb, &x), CC_ENOMEM);
        ck_assert_uint_eq(F.ta.bytes, before);
    }
    F.ta.fail_at = 0;
    run_for(20);
    ck_assert_int_eq(x.done, 0); /* no callback for refused calls */

    /* a result array that cannot be allocated: the callback says so */
    DO(cc_redis_queue_add(r, "t1", "s1", 5, int_cb, &x), x);
    memset(&x, 0, sizeof x);
    F.ta.fail_at = F.ta.nalloc + 2; /* the command, then the array */
    ck_assert_int_eq(cc_redis_queue_list(r, "t1", 10, queue_cb, &x), 0);
    wait_flag(&x.done);
    F.ta.fail_at = 0;
    ck_assert_int_eq(x.status, CC_ENOMEM);
    ck_assert_uint_eq(x.n, 0);
    DO(cc_redis_inbox_push(r, "t1", "u", 1, "m", 1, 0, 0, int_cb, &x), x);
    memset(&x, 0, sizeof x);
    F.ta.fail_at = F.ta.nalloc + 2;
    ck_assert_int_eq(cc_redis_inbox_range(r, "t1", "u", 0, 10, inbox_cb, &x),
                     0);
    wait_flag(&x.done);
    F.ta.fail_at = 0;
    ck_assert_int_eq(x.status, CC_ENOMEM);
    /* and everything still works */
    DO(cc_redis_queue_list(r, "t1", 10, queue_cb, &x), x);
    ck_assert_int_eq(x.status, 0);
    ck_assert_uint_eq(x.n, 1);
    teardown();
}
END_TEST

/* ---- a private server: restart, timeouts, AUTH ---- */

typedef struct cmdres {
    res x[8];
} cmdres;

START_TEST(test_restart)
{
    setup();
    int port = cc_test_free_port();
    pid_t pid = cc_test_redis_spawn(port, NULL);
    cc_redis *r = open_r(port, "rs", NULL, 1);
    ck_assert_int_eq(F.nev, 1);
    ck_assert_int_eq(F.ev_ready[0], 1);

    /* in flight: a BLPOP that blocks, and three commands behind it */
    cmdres c;
    memset(&c, 0, sizeof c);
    const char *blpop[] = {"BLPOP", "never", "0"};
    const char *ping[] = {"PING"};
    const char *set[] = {"SET", "k", "v"};
    const char *incr[] = {"INCR", "n"};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[0], 3, blpop, NULL), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[1], 1, ping, NULL), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[2], 3, set, NULL), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[3], 2, incr, NULL), 0);
    run_for(50); /* written, and BLPOP is blocking */
    ck_assert_uint_eq(cc_redis_inflight(r), 4);
    ck_assert_int_eq(c.x[0].done, 0);

    cc_test_redis_kill(pid);
    wait_flag(&c.x[3].done);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(c.x[i].done, 1);
        ck_assert_int_eq(c.x[i].status, CC_ECONNRESET);
        ck_assert_int_eq(c.x[i].isnull, 1);
    }
    ck_assert_int_eq(cc_redis_ready(r), 0);
    ck_assert_uint_eq(cc_redis_inflight(r), 0);
    run_for(10);
    ck_assert_int_ge(F.nev, 2);
    ck_assert_int_eq(F.ev_ready[1], 0);
    ck_assert_int_eq(F.ev_status[1], CC_ECONNRESET);

    /* while down: queued, not failed; attempts fail with CC_EIO */
    const char *set2[] = {"SET", "k2", "v2"};
    const char *get2[] = {"GET", "k2"};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[4], 3, set2, NULL), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[5], 2, get2, NULL), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[6], 2, incr, NULL), 0);
    ck_assert_uint_eq(cc_redis_queued(r), 3);
    wait_events(4); /* two failed attempts at least */
    ck_assert_int_eq(c.x[4].done + c.x[5].done + c.x[6].done, 0);
    ck_assert_uint_eq(cc_redis_queued(r), 3);
    ck_assert_int_eq(cc_redis_ready(r), 0);
    ck_assert_int_eq(F.ev_ready[2], 0);
    ck_assert_int_eq(F.ev_status[2], CC_EIO);
    int nev_down = F.nev;

    /* back on the same port: reconnect, queued commands go out in order */
    pid = cc_test_redis_spawn(port, NULL);
    wait_flag(&c.x[6].done);
    ck_assert_int_eq(c.x[4].status, 0);
    ck_assert_str_eq(c.x[4].s, "OK");
    ck_assert_int_eq(c.x[5].status, 0);
    ck_assert_str_eq(c.x[5].s, "v2");
    ck_assert_int_eq(c.x[6].status, 0);
    ck_assert_int_eq(c.x[6].v, 1); /* a fresh server: n did not exist */
    ck_assert_int_eq(cc_redis_ready(r), 1);
    ck_assert_uint_eq(cc_redis_queued(r), 0);
    /* an attempt already under way when the server came back may still
     * have failed; then exactly one "ready" */
    ck_assert_int_gt(F.nev, nev_down);
    ck_assert_int_lt(F.nev, MAX_EV);
    for (int i = nev_down; i < F.nev - 1; i++) {
        ck_assert_int_eq(F.ev_ready[i], 0);
        ck_assert_int_eq(F.ev_status[i], CC_EIO);
    }
    ck_assert_int_eq(F.ev_ready[F.nev - 1], 1);
    ck_assert_int_eq(F.ev_status[F.nev - 1], 0);
    /* later commands, and scripts (preloaded on the new connection) */
    res y;
    cmd(r, &y, "PING", NULL);
    ck_assert_str_eq(y.s, "PONG");
    DO(cc_redis_claim_release(r, "t", "s", "a", int_cb, &y), y);
    ck_assert_int_eq(y.status, 0);
    ck_assert_int_eq(y.v, 0);
    teardown();
    cc_test_redis_kill(pid);
}
END_TEST

START_TEST(test_close_while_down)
{
    setup();
    int port = cc_test_free_port();
    pid_t pid = cc_test_redis_spawn(port, NULL);
    cc_redis *r = open_r(port, "cd", NULL, 1);
    cc_test_redis_kill(pid);
    uint64_t end = uv_now(&F.loop) + WAIT_MS;
    while (cc_redis_ready(r) && uv_now(&F.loop) < end)
        run_for(5);
    ck_assert_int_eq(cc_redis_ready(r), 0);
    cmdres c;
    memset(&c, 0, sizeof c);
    const char *ping[] = {"PING"};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[0], 1, ping, NULL), 0);
    ck_assert_int_eq(cc_redis_presence_get(r, "t", "u", str_cb, &c.x[1]), 0);
    ck_assert_uint_eq(cc_redis_queued(r), 2);
    run_for(150); /* a reconnect attempt or two */
    close_r(0);
    ck_assert_int_eq(c.x[0].done, 1);
    ck_assert_int_eq(c.x[0].status, CC_ECANCELED);
    ck_assert_int_eq(c.x[1].done, 1);
    ck_assert_int_eq(c.x[1].status, CC_ECANCELED);
    ck_assert_int_eq(c.x[1].isnull, 1);
    teardown();
}
END_TEST

START_TEST(test_queue_bounds)
{
    setup();
    cc_redis_opts *o;
    ck_assert_int_eq(cc_redis_opts_new(&o, F.ctx), 0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_QUEUE_MAX, 3), 0);
    ck_assert_int_eq(
        cc_redis_opts_set_int(o, CC_REDIS_OPT_QUEUE_MAX_BYTES, 220), 0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MIN_MS, 10),
                     0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MAX_MS, 40),
                     0);
    /* nobody listens there */
    cc_redis *r = open_r(cc_test_free_port(), "qb", o, 0);
    cc_redis_opts_free(o);
    cmdres c;
    memset(&c, 0, sizeof c);
    char big[160];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *bigc[] = {"ECHO", big};
    const char *ping[] = {"PING"};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[0], 2, bigc, NULL), 0);
    /* 220 bytes: a second big one (181) does not fit, small ones (14) do */
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[1], 2, bigc, NULL),
                     CC_ENOBUFS);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[1], 1, ping, NULL), 0);
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[2], 1, ping, NULL), 0);
    /* 3 commands: full */
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &c.x[3], 1, ping, NULL),
                     CC_ENOBUFS);
    ck_assert_int_eq(cc_redis_nonce_use(r, "t", "n", 5, int_cb, &c.x[3]),
                     CC_ENOBUFS);
    ck_assert_uint_eq(cc_redis_queued(r), 3);
    wait_events(3); /* retried, and each failure reported */
    ck_assert_int_eq(cc_redis_ready(r), 0);
    for (int i = 0; i < F.nev && i < MAX_EV; i++) {
        ck_assert_int_eq(F.ev_ready[i], 0);
        ck_assert_int_eq(F.ev_status[i], CC_EIO);
    }
    ck_assert_str_ne(cc_redis_last_error(r), "");
    close_r(0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(c.x[i].done, 1);
        ck_assert_int_eq(c.x[i].status, CC_ECANCELED);
    }
    ck_assert_int_eq(c.x[3].done, 0);
    teardown();
}
END_TEST

START_TEST(test_command_timeout)
{
    setup();
    int port = cc_test_free_port();
    pid_t pid = cc_test_redis_spawn(port, NULL);
    cc_redis_opts *o;
    ck_assert_int_eq(cc_redis_opts_new(&o, F.ctx), 0);
    ck_assert_int_eq(
        cc_redis_opts_set_int(o, CC_REDIS_OPT_COMMAND_TIMEOUT_MS, 400), 0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MIN_MS, 20),
                     0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MAX_MS, 50),
                     0);
    cc_redis *r = open_r(port, "to", o, 1);
    cc_redis_opts_free(o);
    res y, z;
    uint64_t t0 = uv_now(&F.loop);
    cmd(r, &y, "CLIENT", "PAUSE", "1500", NULL);
    ck_assert_str_eq(y.s, "OK");
    memset(&z, 0, sizeof z);
    const char *ping[] = {"PING"};
    ck_assert_int_eq(cc_redis_cmd(r, raw_cb, &z, 1, ping, NULL), 0);
    wait_flag(&z.done);
    uint64_t took = uv_now(&F.loop) - t0;
    ck_assert_int_eq(z.status, CC_ETIMEDOUT);
    ck_assert_int_ge(took, 390);
    ck_assert_int_lt(took, 1400);
    /* it reconnects; once the pause is over, commands succeed */
    while (uv_now(&F.loop) < t0 + 1600)
        run_for(20);
    ck_assert(ready_flag_poll(r, WAIT_MS));
    cmd(r, &y, "PING", NULL);
    ck_assert_str_eq(y.s, "PONG");
    ck_assert_int_eq(F.ev_ready[0], 1);
    ck_assert_int_eq(F.ev_ready[1], 0);
    ck_assert_int_eq(F.ev_status[1], CC_ETIMEDOUT);
    teardown();
    cc_test_redis_kill(pid);
}
END_TEST

START_TEST(test_auth_and_db)
{
    setup();
    int port = cc_test_free_port();
    const char *extra[] = {"--requirepass", "s3cret", NULL};
    pid_t pid = cc_test_redis_spawn(port, extra);
    cc_redis_opts *o;
    ck_assert_int_eq(cc_redis_opts_new(&o, F.ctx), 0);
    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_PASSWORD, "wrong"),
                     0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MIN_MS, 20),
                     0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MAX_MS, 50),
                     0);
    cc_redis *bad = open_r(port, "au", o, 0);
    res q;
    memset(&q, 0, sizeof q);
    const char *ping[] = {"PING"};
    ck_assert_int_eq(cc_redis_cmd(bad, raw_cb, &q, 1, ping, NULL), 0);
    wait_events(2);
    ck_assert_int_eq(cc_redis_ready(bad), 0);
    ck_assert_int_eq(F.ev_ready[0], 0);
    ck_assert_int_eq(F.ev_status[0], CC_EAUTH);
    /* the queued command is neither sent nor failed by a refused AUTH */
    ck_assert_int_eq(q.done, 0);
    ck_assert_uint_eq(cc_redis_queued(bad), 1);
    ck_assert_msg(strstr(cc_redis_last_error(bad), "WRONGPASS") ||
                      strstr(cc_redis_last_error(bad), "invalid"),
                  "%s", cc_redis_last_error(bad));

    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_PASSWORD, "s3cret"),
                     0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_DB, 3), 0);
    cc_redis *db3 = open_r(port, "au", o, 1);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_DB, 0), 0);
    ck_assert_int_eq(cc_redis_opts_set_str(o, CC_REDIS_OPT_USERNAME,
                                           "default"), 0);
    cc_redis *db0 = open_r(port, "au", o, 1);
    cc_redis_opts_free(o);
    res y;
    cmd(db3, &y, "SET", "where", "three", NULL);
    cmd(db0, &y, "GET", "where", NULL);
    ck_assert_int_eq(y.type, CC_REDIS_REPLY_NIL);
    cmd(db0, &y, "SELECT", "3", NULL);
    cmd(db0, &y, "GET", "where", NULL);
    ck_assert_str_eq(y.s, "three");
    teardown();
    ck_assert_int_eq(q.done, 1);
    ck_assert_int_eq(q.status, CC_ECANCELED);
    cc_test_redis_kill(pid);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("shared");
    tcase_set_timeout(tc, 30);
    tcase_set_tags(tc, "integration");
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_generic);
    tcase_add_test(tc, test_resolve_name);
    tcase_add_test(tc, test_presence);
    tcase_add_test(tc, test_session_node);
    tcase_add_test(tc, test_queue);
    tcase_add_test(tc, test_claim);
    tcase_add_test(tc, test_claim_race_one_conn);
    tcase_add_test(tc, test_claim_race_four_conns);
    tcase_add_test(tc, test_bucket_burst);
    tcase_add_test(tc, test_bucket_refill);
    tcase_add_test(tc, test_noscript);
    tcase_add_test(tc, test_nonce);
    tcase_add_test(tc, test_inbox);
    tcase_add_test(tc, test_tenant_config);
    tcase_add_test(tc, test_namespace_default);
    tcase_add_test(tc, test_pipeline);
    tcase_add_test(tc, test_close_in_callback);
    tcase_add_test(tc, test_close_in_state_cb);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("private");
    tcase_set_timeout(tp, 30);
    tcase_set_tags(tp, "integration");
    tcase_add_test(tp, test_restart);
    tcase_add_test(tp, test_close_while_down);
    tcase_add_test(tp, test_queue_bounds);
    tcase_add_test(tp, test_command_timeout);
    tcase_add_test(tp, test_auth_and_db);
    suite_add_tcase(s, tp);
    return s;
}
