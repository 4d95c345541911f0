/*
 * tests/test_redis_store.c - the Redis store backend (cc_store_redis_open,
 * lib/adapters/redis_store.c) against a real redis-server, through the
 * store dispatcher (lib/store/store.h) as the chat engine calls it.
 *
 * The semantic checks mirror tests/test_store.c (the SQLite backend):
 * append numbering, cid de-duplication per sender, reads forward and
 * tail, session rows and lists, cursors, tenant deletion, loading. Then
 * what is Redis's own: callbacks never inside the call and in call order
 * across kinds, retries across a kill -9 and restart of an AOF server, a
 * reply lost after its command ran (DEBUG SLEEP past the command timeout),
 * close with work queued (served, or cancelled when Redis is gone), the
 * queue bound, allocation failures.
 *
 * The shared server comes from CC_REDIS_PORT or CC_REDIS_PORT_FILE (ctest's
 * fixture, tests/redis/tests.cmake); without one every test FAILS. Each
 * test works under a namespace of its own. The restart, lost-reply and
 * close-while-down tests fork private servers (CC_REDIS_SERVER, default
 * redis-server from PATH).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
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
#include "chatcore/store.h"
#include "store/store.h"
#include "testutil.h"

#define WAIT_MS 10000

/* ---- redis-server processes (tests/support/redisproc.c) ---- */

/* A private redis-server on port with its files in dir; aof: appendonly
 * with an fsync per write. Waits until it answers. Dies with us. */
static pid_t
spawn_redis(int port, const char *dir, int aof)
{
    const char *extra[] = {"--dir", dir, "--appendonly", aof ? "yes" : "no",
                           "--appendfsync", "always",
                           "--enable-debug-command", "yes", NULL};
    return cc_test_redis_spawn(port, extra);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void
rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- fixture ---- */

#define MAX_ORDER 4096

typedef struct env {
    uv_loop_t loop;
    cc_test_alloc ta;
    cc_ctx *ctx;
    cc_redis *r;
    cc_store *st;
    char ns[64];
    int closed, rclosed;
    int ncb;
    int order[MAX_ORDER];
    int in_call;           /* a store call is running */
    int inside;            /* a callback ran inside one */
} env;

static env E;

static void
run_for(unsigned ms)
{
    int never = 0;
    cc_test_run_until(&E.loop, &never, ms);
}

/* Run the loop until *counter >= n (or fail after ms). */
static void
wait_count(volatile int *counter, int n, unsigned ms)
{
    uint64_t end = uv_now(&E.loop) + ms;
    while (*counter < n && uv_now(&E.loop) < end)
        run_for(5);
    ck_assert_msg(*counter >= n, "%d of %d callbacks", *counter, n);
}

static cc_redis *
new_redis(int port, int cmd_timeout_ms)
{
    cc_redis_opts *o;
    ck_assert_int_eq(cc_redis_opts_new(&o, E.ctx), 0);
    ck_assert_int_eq(cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MIN_MS, 20),
                     0);
    ck_assert_int_eq(
        cc_redis_opts_set_int(o, CC_REDIS_OPT_BACKOFF_MAX_MS, 100), 0);
    if (cmd_timeout_ms)
        ck_assert_int_eq(cc_redis_opts_set_int(
                             o, CC_REDIS_OPT_COMMAND_TIMEOUT_MS,
                             cmd_timeout_ms), 0);
    cc_redis *r = NULL;
    ck_assert_int_eq(cc_redis_new(&r, E.ctx, "127.0.0.1", port, o), 0);
    cc_redis_opts_free(o);
    return r;
}

static void
wait_ready(cc_redis *r)
{
    uint64_t end = uv_now(&E.loop) + WAIT_MS;
    while (!cc_redis_ready(r) && uv_now(&E.loop) < end)
        run_for(5);
    ck_assert_msg(cc_redis_ready(r), "not ready: %s", cc_redis_last_error(r));
}

static void
env_init(void)
{
    memset(&E, 0, sizeof E);
    ck_assert_int_eq(uv_loop_init(&E.loop), 0);
    cc_test_alloc_init(&E.ta);
    ck_assert_int_eq(cc_ctx_new(&E.ctx, &E.loop, &E.ta.a), 0);
    /* unique per test even with CK_FORK=no (one process for all) */
    static int seq;
    snprintf(E.ns, sizeof E.ns, "rs%ld.%d:", (long)getpid(), ++seq);
}

static void
env_open(void)
{
    ck_assert_int_eq(cc_store_redis_open(&E.st, E.ctx, E.r, E.ns), 0);
}

/* the shared server, ready, and a store on it */
static void
env_shared(void)
{
    env_init();
    E.r = new_redis(cc_test_redis_env_port(), 0);
    wait_ready(E.r);
    env_open();
}

static void
on_store_closed(void *obj, void *data)
{
    ck_assert_ptr_eq(obj, E.st);
    (*(int *)data)++;
}

static void
env_close_store(void)
{
    E.closed = 0;
    cc_store_close(E.st, on_store_closed, &E.closed);
    ck_assert_msg(cc_test_run_until(&E.loop, &E.closed, WAIT_MS),
                  "store close did not complete");
    ck_assert_int_eq(E.closed, 1);
    E.st = NULL;
}

static void
on_r_closed(void *obj, void *data)
{
    (void)obj;
    (*(int *)data)++;
}

static void
env_fini(void)
{
    if (E.st)
        env_close_store();
    if (E.r) {
        cc_redis_close(E.r, on_r_closed, &E.rclosed);
        ck_assert(cc_test_run_until(&E.loop, &E.rclosed, WAIT_MS));
        E.r = NULL;
    }
    cc_ctx_close(E.ctx, NULL, NULL);
    uv_run(&E.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&E.loop), 0);
    ck_assert_uint_eq(E.ta.bytes, 0);
    ck_assert_uint_eq(E.ta.blocks, 0);
    ck_assert_int_eq(E.inside, 0);
}

/* Every store call goes through CALL: a callback that runs inside one is
 * counted (and fails the test at env_fini). */
#define CALL(expr)                                                         \
    __extension__({                                                        \
        E.in_call++;                                                       \
        int rc_ = (expr);                                                  \
        E.in_call--;                                                       \
        rc_;                                                               \
    })

/* What one callback saw, copied out of the borrowed result. */
typedef struct slot {
    int idx;
    int counted;
    int done;
    int rc;
    uint64_t seq, ts, acked, read;
    int dup, more;
    size_t nmsgs, nsess;
    cc_store_msg msgs[40];
    char bodies[40][128];
    cc_store_session sess[12];
} slot;

static void
on_res(cc_store_result *r, void *data)
{
    slot *s = data;
    if (E.in_call)
        E.inside++;
    ck_assert_int_eq(s->done, 0);
    s->done = 1;
    s->rc = r->rc;
    s->seq = r->seq;
    s->ts = r->ts;
    s->dup = r->dup;
    s->more = r->more;
    s->acked = r->acked;
    s->read = r->read;
    s->nmsgs = r->nmsgs;
    s->nsess = r->nsess;
    for (size_t i = 0; i < r->nmsgs && i < 40; i++) {
        s->msgs[i] = r->msgs[i];
        ck_assert_uint_eq(strlen(r->msgs[i].body), r->msgs[i].body_len);
        snprintf(s->bodies[i], sizeof s->bodies[i], "%s", r->msgs[i].body);
        s->msgs[i].body = s->bodies[i];
    }
    for (size_t i = 0; i < r->nsess && i < 12; i++)
        s->sess[i] = r->sess[i];
    if (s->counted) {
        if (E.ncb < MAX_ORDER)
            E.order[E.ncb] = s->idx;
        E.ncb++;
    }
}

static slot *
slots(size_t n)
{
    slot *s = calloc(n, sizeof *s);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++) {
        s[i].idx = (int)i;
        s[i].counted = 1;
    }
    return s;
}

static void
reset_slots(slot *s, size_t n)
{
    memset(s, 0, n * sizeof *s);
    for (size_t i = 0; i < n; i++) {
        s[i].idx = (int)i;
        s[i].counted = 1;
    }
    E.ncb = 0;
}

/* Wait for the callbacks of s[0..n-1]. */
static void
wait_slots(slot *s, int n)
{
    uint64_t end = uv_now(&E.loop) + WAIT_MS;
    for (int i = 0; i < n; i++) {
        while (!s[i].done && uv_now(&E.loop) < end)
            run_for(5);
        ck_assert_msg(s[i].done, "callback %d did not run", i);
    }
}

/* A barrier's callback: everything before it has completed. */
static void
drain(void)
{
    slot b = {.counted = 0};
    ck_assert_int_eq(CALL(cc__store_barrier(E.st, on_res, &b)), 0);
    wait_slots(&b, 1);
    ck_assert_int_eq(b.rc, 0);
}

typedef struct keys_res {
    int done;
    long n;
} keys_res;

static void
on_keys(cc_redis *r, int status, const cc_redis_reply *rep, void *data)
{
    keys_res *k = data;
    (void)r;
    k->n = status ? -1 : (long)cc_redis_reply_count(rep);
    k->done = 1;
}

/* How many keys of this test's namespace match <ns><pattern>. */
static long
count_keys(const char *pattern)
{
    char pat[128];
    snprintf(pat, sizeof pat, "%s%s", E.ns, pattern);
    const char *argv[] = {"KEYS", pat};
    keys_res k = {0, 0};
    ck_assert_int_eq(cc_redis_cmd(E.r, on_keys, &k, 2, argv, NULL), 0);
    ck_assert(cc_test_run_until(&E.loop, &k.done, WAIT_MS));
    return k.n;
}

static void
mk_sess(cc_store_session *r, const char *tenant, const char *id,
        const char *visitor, int state, uint64_t updated)
{
    memset(r, 0, sizeof *r);
    snprintf(r->tenant, sizeof r->tenant, "%s", tenant);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->visitor, sizeof r->visitor, "%s", visitor);
    r->state = state;
    r->created = 1000;
    r->updated = updated;
    r->since = state == CC_STORE_QUEUED ? 1500 : 0;
    snprintf(r->preview, sizeof r->preview, "hello from %s", visitor);
}

static void
put_sess(const char *tenant, const char *id, const char *visitor, int state,
         uint64_t updated)
{
    cc_store_session r;
    mk_sess(&r, tenant, id, visitor, state, updated);
    slot s = {.counted = 0};
    ck_assert_int_eq(CALL(cc__store_session_put(E.st, &r, on_res, &s)), 0);
    wait_slots(&s, 1);
    ck_assert_int_eq(s.rc, 0);
}

static int
append(const char *tenant, const char *session, const char *cid,
       const char *body, uint64_t ts, slot *s)
{
    return CALL(cc__store_msg_append(E.st, tenant, session, cid,
                                     "visitor:v1", 1, body, strlen(body), ts,
                                     s ? on_res : NULL, s));
}

/* ---- loader capture ---- */

typedef struct loaded {
    char text[16384];       /* "kind:fields;" in load order */
    int nsess, ncur, nten, done, rc;
    cc_store_session sess[8];
    const char *want;       /* want_tenant: only this one (NULL: all) */
} loaded;

static void
cat(loaded *l, const char *s)
{
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s;", s);
}

static void
ld_meta(void *d, const char *k, const char *v)
{
    char b[256];
    snprintf(b, sizeof b, "m:%s=%s", k, v);
    cat(d, b);
}

static void
ld_tenant(void *d, const char *id, const char *json)
{
    char b[256];
    snprintf(b, sizeof b, "t:%s=%s", id, json);
    cat(d, b);
}

static void
ld_agent(void *d, const char *t, const char *id, const char *json)
{
    char b[256];
    snprintf(b, sizeof b, "a:%s/%s=%s", t, id, json);
    cat(d, b);
}

static void
ld_session(void *d, const cc_store_session *s)
{
    loaded *l = d;
    char b[256];
    if (l->nsess < 8) {
        snprintf(b, sizeof b, "s:%s/%s", s->tenant, s->id);
        cat(l, b);
        l->sess[l->nsess] = *s;
    }
    l->nsess++;
}

static void
ld_cursor(void *d, const char *t, const char *s, const char *u, uint64_t a,
          uint64_t r)
{
    loaded *l = d;
    char b[256];
    if (l->ncur < 8) {
        snprintf(b, sizeof b, "c:%s/%s/%s=%llu,%llu", t, s, u,
                 (unsigned long long)a, (unsigned long long)r);
        cat(l, b);
    }
    l->ncur++;
}

static int
ld_want(void *d, const char *id)
{
    loaded *l = d;
    l->nten++;
    return !l->want || strcmp(l->want, id) == 0;
}

static void
ld_done(cc_store_result *r, void *data)
{
    loaded *l = data;
    if (E.in_call)
        E.inside++;
    l->rc = r->rc;
    l->done = 1;
}

static void
load_all(loaded *l, const char *want)
{
    memset(l, 0, sizeof *l);
    l->want = want;
    cc_store_loader ld = {.meta = ld_meta, .tenant = ld_tenant,
                          .agent = ld_agent, .session = ld_session,
                          .cursor = ld_cursor, .want_tenant = ld_want,
                          .data = l};
    ck_assert_int_eq(CALL(cc__store_load_async(E.st, &ld, ld_done, l)), 0);
    ck_assert(cc_test_run_until(&E.loop, &l->done, WAIT_MS));
    ck_assert_int_eq(l->rc, 0);
}

/* ---- tests ---- */

START_TEST(open_args)
{
    env_init();
    E.r = new_redis(cc_test_redis_env_port(), 0);
    cc_store *st;
    ck_assert_int_eq(cc_store_redis_open(NULL, E.ctx, E.r, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_store_redis_open(&st, NULL, E.r, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_store_redis_open(&st, E.ctx, NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_store_redis_open(&st, E.ctx, E.r, "a b"), CC_EINVAL);
    ck_assert_int_eq(cc_store_redis_open(&st, E.ctx, E.r, "{x}"), CC_EINVAL);
    char ns[80];
    memset(ns, 'n', sizeof ns);
    ns[65] = '\0';
    ck_assert_int_eq(cc_store_redis_open(&st, E.ctx, E.r, ns), CC_EINVAL);
    ns[64] = '\0';
    ck_assert_int_eq(cc_store_redis_open(&E.st, E.ctx, E.r, ns), 0);
    /* load is not offered, load_async is */
    cc_store_loader none = {0};
    ck_assert_int_eq(cc__store_load(E.st, &none), CC_ENOTSUP);
    /* an idle store closes at once (not inside the call) */
    int n = 0;
    cc_store_close(E.st, on_store_closed, &n);
    cc_store_close(E.st, on_store_closed, &n);   /* ignored */
    ck_assert_int_eq(n, 0);
    ck_assert(cc_test_run_until(&E.loop, &n, WAIT_MS));
    ck_assert_int_eq(n, 1);
    /* the default namespace, before the adapter is even connected */
    ck_assert_int_eq(cc_store_redis_open(&E.st, E.ctx, E.r, NULL), 0);
    drain();
    env_fini();
}
END_TEST

START_TEST(append_numbering)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    put_sess("t1", "s2", "v1", CC_STORE_ACTIVE, 1);
    enum { N = 300 };
    slot *s = slots(N + 2);
    for (int i = 0; i < N; i++) {
        char cid[32], body[64];
        snprintf(cid, sizeof cid, "c%d", i);
        snprintf(body, sizeof body, "{\"text\":\"m%d\"}", i);
        /* interleave two sessions: each counts on its own */
        ck_assert_int_eq(append("t1", i % 3 ? "s1" : "s2", i % 5 ? cid : NULL,
                                body, 10000 + (uint64_t)i, &s[i]), 0);
    }
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s1", on_res,
                                                &s[N])), 0);
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s2", on_res,
                                                &s[N + 1])), 0);
    wait_slots(s, N + 2);
    uint64_t n1 = 0, n2 = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(s[i].rc, 0);
        ck_assert_int_eq(s[i].dup, 0);
        ck_assert_uint_eq(s[i].seq, i % 3 ? ++n1 : ++n2);
        ck_assert_uint_eq(s[i].ts, 10000 + (uint64_t)i);
    }
    ck_assert_uint_eq(n1, 200);
    ck_assert_uint_eq(s[N].sess[0].last_seq, 200);
    ck_assert_uint_eq(s[N].sess[0].updated, 10000 + 299);
    ck_assert_uint_eq(s[N + 1].sess[0].last_seq, 100);
    ck_assert_uint_eq(s[N + 1].sess[0].updated, 10000 + 297);
    for (int i = 0; i < N + 2; i++)
        ck_assert_int_eq(E.order[i], i);
    /* argument checks: the dispatcher's, and the sizes of the fields a
     * message is read back into */
    ck_assert_int_eq(append("t1", "", NULL, "{}", 1, NULL), CC_EINVAL);
    ck_assert_int_eq(CALL(cc__store_msg_append(E.st, "t1", "s1", NULL, NULL,
                                               1, "{}", 2, 1, NULL, NULL)),
                     CC_EINVAL);
    char big[300];
    memset(big, 'f', sizeof big);
    big[80] = '\0';
    ck_assert_int_eq(CALL(cc__store_msg_append(E.st, "t1", "s1", NULL, big, 1,
                                               "{}", 2, 1, NULL, NULL)),
                     CC_EINVAL);
    big[79] = '\0';   /* 79 bytes: fits */
    slot f[2];
    reset_slots(f, 2);
    ck_assert_int_eq(CALL(cc__store_msg_append(E.st, "t1", "s1", NULL, big, 1,
                                               "{}", 2, 1, on_res, &f[0])),
                     0);
    memset(big, 'c', sizeof big);
    big[260] = '\0';
    ck_assert_int_eq(append("t1", "s1", big, "{}", 1, NULL), CC_EINVAL);
    big[259] = '\0';
    ck_assert_int_eq(append("t1", "s1", big, "{}", 1, &f[1]), 0);
    wait_slots(f, 2);
    ck_assert_uint_eq(f[0].seq, 201);
    ck_assert_uint_eq(f[1].seq, 202);
    /* the appends' retry tokens are deleted once the store is idle */
    ck_assert_int_gt(count_keys("tok:*"), 0);
    run_for(1300);
    ck_assert_int_eq(count_keys("tok:*"), 0);
    free(s);
    env_fini();
}
END_TEST

START_TEST(dup_cid)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    put_sess("t1", "s2", "v1", CC_STORE_ACTIVE, 1);
    slot *s = slots(12);
    ck_assert_int_eq(append("t1", "s1", "a", "{\"n\":1}", 100, &s[0]), 0);
    ck_assert_int_eq(append("t1", "s1", "a", "{\"n\":2}", 200, &s[1]), 0);
    ck_assert_int_eq(append("t1", "s1", "b", "{\"n\":3}", 300, &s[2]), 0);
    ck_assert_int_eq(append("t1", "s1", "a", "{\"n\":4}", 400, &s[3]), 0);
    /* the same cid in another session is another message */
    ck_assert_int_eq(append("t1", "s2", "a", "{\"n\":5}", 500, &s[4]), 0);
    /* cids are per sender: the agent's "a" is not the visitor's */
    ck_assert_int_eq(CALL(cc__store_msg_append(E.st, "t1", "s1", "a",
                                               "agent:a1", 1, "{\"n\":6}", 7,
                                               600, on_res, &s[5])), 0);
    ck_assert_int_eq(CALL(cc__store_msg_append(E.st, "t1", "s1", "a",
                                               "agent:a1", 1, "{\"n\":7}", 7,
                                               700, on_res, &s[6])), 0);
    ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "s1", 0, 100, 0,
                                              on_res, &s[7])), 0);
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s1", on_res,
                                                &s[8])), 0);
    wait_slots(s, 9);
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_int_eq(s[0].dup, 0);
    ck_assert_uint_eq(s[0].seq, 1);
    ck_assert_uint_eq(s[0].ts, 100);
    ck_assert_int_eq(s[1].rc, 0);
    ck_assert_int_eq(s[1].dup, 1);
    ck_assert_uint_eq(s[1].seq, 1);
    ck_assert_uint_eq(s[1].ts, 100);
    ck_assert_int_eq(s[2].dup, 0);
    ck_assert_uint_eq(s[2].seq, 2);
    ck_assert_int_eq(s[3].dup, 1);
    ck_assert_uint_eq(s[3].seq, 1);
    ck_assert_uint_eq(s[3].ts, 100);
    ck_assert_int_eq(s[4].dup, 0);
    ck_assert_uint_eq(s[4].seq, 1);
    ck_assert_int_eq(s[5].dup, 0);
    ck_assert_uint_eq(s[5].seq, 3);
    ck_assert_int_eq(s[6].dup, 1);
    ck_assert_uint_eq(s[6].seq, 3);
    ck_assert_uint_eq(s[6].ts, 600);
    ck_assert_uint_eq(s[7].nmsgs, 3);
    ck_assert_str_eq(s[7].msgs[0].body, "{\"n\":1}");
    ck_assert_str_eq(s[7].msgs[1].body, "{\"n\":3}");
    ck_assert_str_eq(s[7].msgs[2].body, "{\"n\":6}");
    ck_assert_str_eq(s[7].msgs[2].from, "agent:a1");
    ck_assert_uint_eq(s[8].sess[0].last_seq, 3);
    /* a dup writes nothing: `updated` is the last real append's */
    ck_assert_uint_eq(s[8].sess[0].updated, 600);
    /* and in another store on the same keys (a restarted node) */
    env_close_store();
    env_open();
    reset_slots(s, 1);
    ck_assert_int_eq(append("t1", "s1", "b", "{}", 900, &s[0]), 0);
    wait_slots(s, 1);
    ck_assert_int_eq(s[0].dup, 1);
    ck_assert_uint_eq(s[0].seq, 2);
    ck_assert_uint_eq(s[0].ts, 300);
    free(s);
    env_fini();
}
END_TEST

/* An append with a cid keeps its retry token in the cid hash: it leaves
 * no tok: key behind, while one without a cid does (until the next
 * append or the idle flush deletes it). */
START_TEST(cid_append_no_token_key)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    slot *s = slots(4);
    for (int i = 0; i < 3; i++) {
        char cid[8];
        snprintf(cid, sizeof cid, "c%d", i);
        ck_assert_int_eq(append("t1", "s1", cid, "{}", 100 + (uint64_t)i,
                                &s[i]), 0);
    }
    wait_slots(s, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(s[i].rc, 0);
        ck_assert_int_eq(s[i].dup, 0);
        ck_assert_uint_eq(s[i].seq, (uint64_t)i + 1);
    }
    ck_assert_int_eq(count_keys("tok:*"), 0);
    ck_assert_int_eq(CALL(cc__store_msg_append(E.st, "t1", "s1", NULL,
                                               "system", 1, "{}", 2, 200,
                                               on_res, &s[3])), 0);
    wait_slots(&s[3], 1);
    ck_assert_uint_eq(s[3].seq, 4);
    ck_assert_int_eq(count_keys("tok:*"), 1);
    free(s);
    env_fini();
}
END_TEST

START_TEST(append_enoent)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    slot *s = slots(8);
    ck_assert_int_eq(append("t1", "s1", "x1", "{}", 10, &s[0]), 0);
    ck_assert_int_eq(append("t1", "ghost", "x2", "{}", 11, &s[1]), 0);
    ck_assert_int_eq(append("t9", "s1", NULL, "{}", 12, &s[2]), 0);
    ck_assert_int_eq(append("t1", "s1", "x3", "{}", 13, &s[3]), 0);
    ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "ghost", 0, 10, 0,
                                              on_res, &s[4])), 0);
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "ghost", on_res,
                                                &s[5])), 0);
    wait_slots(s, 6);
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_uint_eq(s[0].seq, 1);
    ck_assert_int_eq(s[1].rc, CC_ENOENT);
    ck_assert_uint_eq(s[1].seq, 0);
    ck_assert_int_eq(s[2].rc, CC_ENOENT);
    ck_assert_int_eq(s[3].rc, 0);
    ck_assert_uint_eq(s[3].seq, 2);
    ck_assert_int_eq(s[4].rc, 0);     /* unknown session: no messages */
    ck_assert_uint_eq(s[4].nmsgs, 0);
    ck_assert_int_eq(s[4].more, 0);
    ck_assert_int_eq(s[5].rc, CC_ENOENT);
    ck_assert_uint_eq(s[5].nsess, 0);
    /* nothing was written for the ghost: a later put starts it at 1 */
    put_sess("t1", "ghost", "v1", CC_STORE_NEW, 1);
    reset_slots(s, 1);
    ck_assert_int_eq(append("t1", "ghost", "x2", "{}", 20, &s[0]), 0);
    wait_slots(s, 1);
    ck_assert_int_eq(s[0].dup, 0);
    ck_assert_uint_eq(s[0].seq, 1);
    free(s);
    env_fini();
}
END_TEST

START_TEST(msgs_read_forward_and_tail)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    for (int i = 1; i <= 25; i++) {
        char body[64], cid[16];
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        snprintf(cid, sizeof cid, "c%d", i);
        ck_assert_int_eq(CALL(cc__store_msg_append(
                             E.st, "t1", "s1", i == 7 ? NULL : cid,
                             i == 7 ? "system" : "agent:a1", i == 7 ? 4 : 1,
                             body, strlen(body), 500 + (uint64_t)i, NULL,
                             NULL)), 0);
    }
    slot *s = slots(10);
    int c[10][3] = {{0, 10, 0},  {20, 10, 0}, {25, 10, 0}, {15, 10, 0},
                    {0, 10, 1},  {20, 10, 1}, {15, 10, 1}, {0, 1000, 1},
                    {0, 1, 0},   {30, 5, 1}};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "s1",
                                                  (uint64_t)c[i][0], c[i][1],
                                                  c[i][2], on_res, &s[i])),
                         0);
    ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "s1", 0, 0, 0, NULL,
                                              NULL)), CC_EINVAL);
    ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "s1", 0, 1001, 0,
                                              NULL, NULL)), CC_EINVAL);
    wait_slots(s, 10);
    /* forward */
    ck_assert_uint_eq(s[0].nmsgs, 10);
    ck_assert_int_eq(s[0].more, 1);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(s[0].msgs[i].seq, (uint64_t)i + 1);
    cc_store_msg *m = &s[0].msgs[0];
    ck_assert_uint_eq(m->ts, 501);
    ck_assert_str_eq(m->from, "agent:a1");
    ck_assert_int_eq(m->kind, 1);
    ck_assert_int_eq(m->has_cid, 1);
    ck_assert_str_eq(m->cid, "c1");
    ck_assert_str_eq(m->body, "{\"i\":1}");
    ck_assert_uint_eq(m->body_len, 7);
    m = &s[0].msgs[6];
    ck_assert_str_eq(m->from, "system");
    ck_assert_int_eq(m->kind, 4);
    ck_assert_int_eq(m->has_cid, 0);
    ck_assert_str_eq(m->cid, "");
    ck_assert_uint_eq(m->ts, 507);
    ck_assert_uint_eq(s[1].nmsgs, 5);
    ck_assert_int_eq(s[1].more, 0);
    ck_assert_uint_eq(s[1].msgs[0].seq, 21);
    ck_assert_uint_eq(s[1].msgs[4].seq, 25);
    ck_assert_str_eq(s[1].msgs[4].body, "{\"i\":25}");
    ck_assert_uint_eq(s[2].nmsgs, 0);
    ck_assert_int_eq(s[2].more, 0);
    ck_assert_uint_eq(s[3].nmsgs, 10);   /* exactly the rest */
    ck_assert_int_eq(s[3].more, 0);
    /* tail */
    ck_assert_uint_eq(s[4].nmsgs, 10);
    ck_assert_int_eq(s[4].more, 1);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(s[4].msgs[i].seq, (uint64_t)i + 16);
    ck_assert_str_eq(s[4].msgs[0].body, "{\"i\":16}");
    ck_assert_str_eq(s[4].msgs[9].body, "{\"i\":25}");
    ck_assert_uint_eq(s[5].nmsgs, 5);
    ck_assert_int_eq(s[5].more, 0);
    ck_assert_uint_eq(s[5].msgs[0].seq, 21);
    ck_assert_uint_eq(s[6].nmsgs, 10);
    ck_assert_int_eq(s[6].more, 0);
    ck_assert_uint_eq(s[6].msgs[0].seq, 16);
    ck_assert_uint_eq(s[7].nmsgs, 25);
    ck_assert_int_eq(s[7].more, 0);
    ck_assert_uint_eq(s[7].msgs[0].seq, 1);
    ck_assert_uint_eq(s[7].msgs[24].seq, 25);
    ck_assert_str_eq(s[7].msgs[12].body, "{\"i\":13}");
    ck_assert_uint_eq(s[8].nmsgs, 1);
    ck_assert_int_eq(s[8].more, 1);
    ck_assert_uint_eq(s[9].nmsgs, 0);
    ck_assert_int_eq(s[9].more, 0);
    free(s);
    env_fini();
}
END_TEST

/* A 16 KiB body with every byte value a JSON string may carry raw. */
START_TEST(big_body)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    size_t n = 16384;
    char *body = malloc(n + 1);
    ck_assert_ptr_nonnull(body);
    body[0] = '{';
    for (size_t i = 1; i < n - 1; i++)
        body[i] = (char)(0x20 + i % 90);
    body[n - 1] = '}';
    body[n] = '\0';
    slot a = {.counted = 0};
    ck_assert_int_eq(CALL(cc__store_msg_append(E.st, "t1", "s1", "x y:z",
                                               "agent:a1", 2, body, n, 7,
                                               on_res, &a)), 0);
    wait_slots(&a, 1);
    ck_assert_int_eq(a.rc, 0);
    /* the slot keeps the first 127 bytes; the length says the rest */
    slot r = {.counted = 0};
    ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "s1", 0, 1, 0,
                                              on_res, &r)), 0);
    wait_slots(&r, 1);
    ck_assert_uint_eq(r.nmsgs, 1);
    ck_assert_uint_eq(r.msgs[0].body_len, n);
    ck_assert_int_eq(strncmp(r.bodies[0], body, 127), 0);
    ck_assert_str_eq(r.msgs[0].cid, "x y:z");
    ck_assert_int_eq(r.msgs[0].kind, 2);
    /* kinds are stored as given, even ones the engine does not use */
    slot k[2];
    reset_slots(k, 2);
    ck_assert_int_eq(CALL(cc__store_msg_append(E.st, "t1", "s1", NULL,
                                               "system", -7, "{}", 2, 8,
                                               on_res, &k[0])), 0);
    ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "s1", 1, 5, 0,
                                              on_res, &k[1])), 0);
    wait_slots(k, 2);
    ck_assert_uint_eq(k[0].seq, 2);
    ck_assert_uint_eq(k[1].nmsgs, 1);
    ck_assert_int_eq(k[1].msgs[0].kind, -7);
    ck_assert_int_eq(k[1].msgs[0].has_cid, 0);
    free(body);
    env_fini();
}
END_TEST

START_TEST(session_put_get_list)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_QUEUED, 100);
    put_sess("t1", "s2", "v2", CC_STORE_ACTIVE, 300);
    put_sess("t1", "s3", "v1", CC_STORE_CLOSED, 200);
    put_sess("t1", "s4", "v3", CC_STORE_ACTIVE, 400);
    put_sess("t2", "s1", "v1", CC_STORE_ACTIVE, 999);

    slot *s = slots(10);
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s2", on_res,
                                                &s[0])), 0);
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "nope", on_res,
                                                &s[1])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, NULL, 100,
                                                  on_res, &s[2])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, NULL, 2,
                                                  on_res, &s[3])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", CC_STORE_ACTIVE,
                                                  NULL, 100, on_res, &s[4])),
                     0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, "v1", 100,
                                                  on_res, &s[5])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", CC_STORE_CLOSED,
                                                  "v1", 100, on_res, &s[6])),
                     0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t3", 0, NULL, 100,
                                                  on_res, &s[7])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, "v1", 1,
                                                  on_res, &s[8])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, NULL, 0,
                                                  NULL, NULL)), CC_EINVAL);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, NULL, 1001,
                                                  NULL, NULL)), CC_EINVAL);
    wait_slots(s, 9);
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_uint_eq(s[0].nsess, 1);
    cc_store_session *g = &s[0].sess[0];
    ck_assert_str_eq(g->tenant, "t1");
    ck_assert_str_eq(g->id, "s2");
    ck_assert_str_eq(g->visitor, "v2");
    ck_assert_int_eq(g->state, CC_STORE_ACTIVE);
    ck_assert_uint_eq(g->created, 1000);
    ck_assert_uint_eq(g->updated, 300);
    ck_assert_uint_eq(g->last_seq, 0);
    ck_assert_str_eq(g->preview, "hello from v2");
    ck_assert_str_eq(g->agent, "");
    ck_assert_int_eq(s[1].rc, CC_ENOENT);
    ck_assert_uint_eq(s[1].nsess, 0);
    /* any state, most recently updated first */
    ck_assert_uint_eq(s[2].nsess, 4);
    ck_assert_str_eq(s[2].sess[0].id, "s4");
    ck_assert_str_eq(s[2].sess[1].id, "s2");
    ck_assert_str_eq(s[2].sess[2].id, "s3");
    ck_assert_str_eq(s[2].sess[3].id, "s1");
    ck_assert_str_eq(s[2].sess[3].tenant, "t1");
    ck_assert_uint_eq(s[2].sess[3].since, 1500);
    ck_assert_uint_eq(s[3].nsess, 2);
    ck_assert_str_eq(s[3].sess[1].id, "s2");
    ck_assert_uint_eq(s[4].nsess, 2);
    ck_assert_str_eq(s[4].sess[0].id, "s4");
    ck_assert_str_eq(s[4].sess[1].id, "s2");
    ck_assert_uint_eq(s[5].nsess, 2);
    ck_assert_str_eq(s[5].sess[0].id, "s3");
    ck_assert_str_eq(s[5].sess[1].id, "s1");
    ck_assert_uint_eq(s[6].nsess, 1);
    ck_assert_str_eq(s[6].sess[0].id, "s3");
    ck_assert_int_eq(s[7].rc, 0);
    ck_assert_uint_eq(s[7].nsess, 0);
    ck_assert_uint_eq(s[8].nsess, 1);
    ck_assert_str_eq(s[8].sess[0].id, "s3");

    /* a put replaces every field but last_seq, which appends own; moving
     * state and visitor moves the indexes */
    reset_slots(s, 10);
    ck_assert_int_eq(append("t1", "s1", "c1", "{}", 5000, &s[0]), 0);
    cc_store_session r;
    mk_sess(&r, "t1", "s1", "v9", CC_STORE_ACTIVE, 4000);
    snprintf(r.agent, sizeof r.agent, "ag1");
    snprintf(r.closed_by, sizeof r.closed_by, "agent:ag1");
    snprintf(r.close_reason, sizeof r.close_reason, "done \"here\"");
    r.prev_state = CC_STORE_QUEUED;
    r.last_seq = 77;   /* ignored */
    ck_assert_int_eq(CALL(cc__store_session_put(E.st, &r, on_res, &s[1])), 0);
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s1", on_res,
                                                &s[2])), 0);
    ck_assert_int_eq(append("t1", "s1", "c2", "{}", 6000, &s[3]), 0);
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s1", on_res,
                                                &s[4])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, "v1", 100,
                                                  on_res, &s[5])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, "v9", 100,
                                                  on_res, &s[6])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", CC_STORE_QUEUED,
                                                  NULL, 100, on_res, &s[7])),
                     0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", CC_STORE_ACTIVE,
                                                  NULL, 100, on_res, &s[8])),
                     0);
    wait_slots(s, 9);
    ck_assert_uint_eq(s[0].seq, 1);
    g = &s[2].sess[0];
    ck_assert_uint_eq(g->last_seq, 1);
    ck_assert_uint_eq(g->updated, 4000);   /* the put came later */
    ck_assert_int_eq(g->state, CC_STORE_ACTIVE);
    ck_assert_int_eq(g->prev_state, CC_STORE_QUEUED);
    ck_assert_str_eq(g->agent, "ag1");
    ck_assert_str_eq(g->visitor, "v9");
    ck_assert_str_eq(g->closed_by, "agent:ag1");
    ck_assert_str_eq(g->close_reason, "done \"here\"");
    ck_assert_uint_eq(s[3].seq, 2);
    ck_assert_uint_eq(s[4].sess[0].last_seq, 2);
    ck_assert_uint_eq(s[4].sess[0].updated, 6000);
    ck_assert_uint_eq(s[5].nsess, 1);      /* v1 keeps only s3 */
    ck_assert_str_eq(s[5].sess[0].id, "s3");
    ck_assert_uint_eq(s[6].nsess, 1);
    ck_assert_str_eq(s[6].sess[0].id, "s1");
    ck_assert_uint_eq(s[7].nsess, 0);      /* no longer queued */
    ck_assert_uint_eq(s[8].nsess, 3);      /* s1 (6000) first */
    ck_assert_str_eq(s[8].sess[0].id, "s1");
    ck_assert_str_eq(s[8].sess[1].id, "s4");
    ck_assert_str_eq(s[8].sess[2].id, "s2");

    /* equal `updated`: ids in descending byte order, whichever index
     * serves the list */
    put_sess("t4", "b", "vx", CC_STORE_NEW, 50);
    put_sess("t4", "a", "vx", CC_STORE_NEW, 50);
    put_sess("t4", "C", "vx", CC_STORE_NEW, 50);
    put_sess("t4", "c", "vx", CC_STORE_NEW, 60);
    reset_slots(s, 3);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t4", 0, NULL, 10,
                                                  on_res, &s[0])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t4", 0, "vx", 10,
                                                  on_res, &s[1])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t4", CC_STORE_NEW,
                                                  "vx", 3, on_res, &s[2])),
                     0);
    wait_slots(s, 3);
    const char *want[4] = {"c", "b", "a", "C"};
    for (int k = 0; k < 2; k++) {
        ck_assert_uint_eq(s[k].nsess, 4);
        for (int i = 0; i < 4; i++)
            ck_assert_str_eq(s[k].sess[i].id, want[i]);
    }
    ck_assert_uint_eq(s[2].nsess, 3);
    ck_assert_str_eq(s[2].sess[2].id, "a");
    free(s);
    env_fini();
}
END_TEST

START_TEST(cursors_never_lower)
{
    env_shared();
    slot *s = slots(8);
    ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, "t1", "s1", "visitor:v1",
                                               5, 3, on_res, &s[0])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, "t1", "s1", "visitor:v1",
                                               2, 4, on_res, &s[1])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, "t1", "s1", "agent:a1",
                                               9, 1, NULL, NULL)), 0);
    /* past 2^53: compared exactly, not as doubles */
    ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, "t1", "s1", "agent:big",
                                               9007199254740993ull, 10, NULL,
                                               NULL)), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, "t1", "s1", "agent:big",
                                               9007199254740992ull, 9, NULL,
                                               NULL)), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_get(E.st, "t1", "s1", "visitor:v1",
                                               on_res, &s[2])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_get(E.st, "t1", "s1", "agent:a1",
                                               on_res, &s[3])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_get(E.st, "t1", "s1", "agent:zz",
                                               on_res, &s[4])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_get(E.st, "t1", "s2", "visitor:v1",
                                               on_res, &s[5])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_get(E.st, "t1", "s1", "agent:big",
                                               on_res, &s[6])), 0);
    wait_slots(s, 7);
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_int_eq(s[2].rc, 0);
    ck_assert_uint_eq(s[2].acked, 5);
    ck_assert_uint_eq(s[2].read, 4);
    ck_assert_uint_eq(s[3].acked, 9);
    ck_assert_uint_eq(s[3].read, 1);
    ck_assert_int_eq(s[4].rc, 0);
    ck_assert_uint_eq(s[4].acked, 0);
    ck_assert_uint_eq(s[4].read, 0);
    ck_assert_uint_eq(s[5].acked, 0);
    ck_assert_uint_eq(s[6].acked, 9007199254740993ull);
    ck_assert_uint_eq(s[6].read, 10);
    free(s);
    env_fini();
}
END_TEST

START_TEST(meta_tenant_agent)
{
    env_shared();
    slot *s = slots(9);
    ck_assert_int_eq(CALL(cc__store_meta_put(E.st, "k1", "v1", on_res,
                                             &s[0])), 0);
    ck_assert_int_eq(CALL(cc__store_meta_put(E.st, "k1", "v2", on_res,
                                             &s[1])), 0);
    ck_assert_int_eq(CALL(cc__store_meta_put(E.st, "k0", "x", NULL, NULL)),
                     0);
    ck_assert_int_eq(CALL(cc__store_tenant_put(E.st, "t1", "{\"a\":1}",
                                               on_res, &s[2])), 0);
    ck_assert_int_eq(CALL(cc__store_tenant_put(E.st, "t2", "{}", on_res,
                                               &s[3])), 0);
    ck_assert_int_eq(CALL(cc__store_tenant_put(E.st, "t1", "{\"a\":2}",
                                               on_res, &s[4])), 0);
    ck_assert_int_eq(CALL(cc__store_agent_put(E.st, "t1", "a2", "{\"n\":2}",
                                              on_res, &s[5])), 0);
    ck_assert_int_eq(CALL(cc__store_agent_put(E.st, "t1", "a1", "{\"n\":1}",
                                              on_res, &s[6])), 0);
    ck_assert_int_eq(CALL(cc__store_agent_put(E.st, "t2", "a1", "{\"n\":3}",
                                              on_res, &s[7])), 0);
    ck_assert_int_eq(CALL(cc__store_agent_del(E.st, "t1", "a2", on_res,
                                              &s[8])), 0);
    ck_assert_int_eq(CALL(cc__store_tenant_put(E.st, "bad id", "{}", NULL,
                                               NULL)), CC_EINVAL);
    wait_slots(s, 9);
    ck_assert_int_eq(E.ncb, 9);
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(s[i].rc, 0);
        ck_assert_int_eq(E.order[i], i);
    }
    loaded l;
    load_all(&l, NULL);
    ck_assert_str_eq(l.text, "m:k0=x;m:k1=v2;t:t1={\"a\":2};t:t2={};"
                             "a:t1/a1={\"n\":1};a:t2/a1={\"n\":3};");
    ck_assert_int_eq(l.nten, 2);
    free(s);
    env_fini();
}
END_TEST

START_TEST(tenant_del_removes_everything)
{
    env_shared();
    const char *ts[2] = {"t1", "t2"};
    for (int t = 0; t < 2; t++) {
        ck_assert_int_eq(CALL(cc__store_tenant_put(E.st, ts[t], "{}", NULL,
                                                   NULL)), 0);
        ck_assert_int_eq(CALL(cc__store_agent_put(E.st, ts[t], "a1", "{}",
                                                  NULL, NULL)), 0);
        put_sess(ts[t], "s1", "v1", CC_STORE_ACTIVE, 10);
        put_sess(ts[t], "s2", "v2", CC_STORE_CLOSED, 11);
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(append(ts[t], "s1", NULL, "{}", 20, NULL), 0);
            ck_assert_int_eq(append(ts[t], "s2", "k", "{}", 20, NULL), 0);
        }
        ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, ts[t], "s1",
                                                   "agent:a1", 2, 2, NULL,
                                                   NULL)), 0);
        /* a cursor of a session that has no row */
        ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, ts[t], "s9",
                                                   "agent:a1", 7, 7, NULL,
                                                   NULL)), 0);
    }
    slot *s = slots(10);
    ck_assert_int_eq(CALL(cc__store_tenant_del(E.st, "t1", on_res, &s[0])),
                     0);
    ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 0,
                                              on_res, &s[1])), 0);
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s1", on_res,
                                                &s[2])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_get(E.st, "t1", "s1", "agent:a1",
                                               on_res, &s[3])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, NULL, 10,
                                                  on_res, &s[4])), 0);
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 30, &s[5]), 0);
    ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t2", "s1", 0, 10, 0,
                                              on_res, &s[6])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_get(E.st, "t1", "s9", "agent:a1",
                                               on_res, &s[7])), 0);
    ck_assert_int_eq(CALL(cc__store_sessions_list(E.st, "t1", 0, "v1", 10,
                                                  on_res, &s[8])), 0);
    ck_assert_int_eq(CALL(cc__store_cursor_get(E.st, "t2", "s9", "agent:a1",
                                               on_res, &s[9])), 0);
    wait_slots(s, 10);
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_uint_eq(s[1].nmsgs, 0);
    ck_assert_int_eq(s[2].rc, CC_ENOENT);
    ck_assert_uint_eq(s[3].acked, 0);
    ck_assert_uint_eq(s[4].nsess, 0);
    ck_assert_int_eq(s[5].rc, CC_ENOENT);
    ck_assert_uint_eq(s[6].nmsgs, 3);
    ck_assert_uint_eq(s[7].acked, 0);
    ck_assert_uint_eq(s[8].nsess, 0);
    ck_assert_uint_eq(s[9].acked, 7);
    loaded l;
    load_all(&l, NULL);
    ck_assert_str_eq(l.text, "t:t2={};a:t2/a1={};s:t2/s1;"
                             "c:t2/s1/agent:a1=2,2;");
    /* the tenant can come back; its sessions count from 1 again, and an
     * old cid is new again */
    put_sess("t1", "s1", "v1", CC_STORE_NEW, 40);
    put_sess("t1", "s2", "v1", CC_STORE_NEW, 40);
    reset_slots(s, 2);
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 50, &s[0]), 0);
    ck_assert_int_eq(append("t1", "s2", "k", "{}", 50, &s[1]), 0);
    wait_slots(s, 2);
    ck_assert_uint_eq(s[0].seq, 1);
    ck_assert_int_eq(s[1].dup, 0);
    ck_assert_uint_eq(s[1].seq, 1);
    free(s);
    env_fini();
}
END_TEST

START_TEST(load_filters)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 10);
    put_sess("t1", "s2", "v2", CC_STORE_CLOSED, 20);
    put_sess("t1", "s3", "v3", CC_STORE_QUEUED, 30);
    put_sess("t2", "s1", "v1", CC_STORE_OFFLINE, 40);
    ck_assert_int_eq(CALL(cc__store_tenant_put(E.st, "t2", "{\"x\":2}", NULL,
                                               NULL)), 0);
    ck_assert_int_eq(CALL(cc__store_agent_put(E.st, "t1", "a1", "{}", NULL,
                                              NULL)), 0);
    const char *ids[3] = {"s1", "s2", "s3"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, "t1", ids[i],
                                                   "visitor:v",
                                                   (uint64_t)i + 1, 1, NULL,
                                                   NULL)), 0);
        ck_assert_int_eq(append("t1", ids[i], NULL, "{}", 100, NULL), 0);
    }
    /* queued right behind the writes, without waiting: it sees them */
    ck_assert_int_eq(append("t1", "s3", NULL, "{}", 200, NULL), 0);
    loaded l;
    load_all(&l, NULL);
    /* tenants sorted; per tenant: sessions by state (NEW..OFFLINE) */
    ck_assert_str_eq(l.text, "t:t2={\"x\":2};a:t1/a1={};"
                             "s:t1/s3;s:t1/s1;s:t2/s1;"
                             "c:t1/s3/visitor:v=3,1;"
                             "c:t1/s1/visitor:v=1,1;");
    ck_assert_int_eq(l.nsess, 3);
    ck_assert_uint_eq(l.sess[0].last_seq, 2);
    ck_assert_uint_eq(l.sess[0].updated, 200);
    ck_assert_uint_eq(l.sess[0].since, 1500);
    ck_assert_int_eq(l.sess[0].state, CC_STORE_QUEUED);
    ck_assert_int_eq(l.sess[2].state, CC_STORE_OFFLINE);
    ck_assert_str_eq(l.sess[2].tenant, "t2");
    ck_assert_int_eq(l.nten, 2);
    /* one tenant only */
    load_all(&l, "t2");
    ck_assert_str_eq(l.text, "t:t2={\"x\":2};s:t2/s1;");
    load_all(&l, "t1");
    ck_assert_str_eq(l.text, "a:t1/a1={};s:t1/s3;s:t1/s1;"
                             "c:t1/s3/visitor:v=3,1;"
                             "c:t1/s1/visitor:v=1,1;");
    load_all(&l, "nobody");
    ck_assert_str_eq(l.text, "");
    /* NULL hooks: nothing read, still completes in order */
    memset(&l, 0, sizeof l);
    cc_store_loader none = {.data = &l};
    slot b[2];
    reset_slots(b, 2);
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 300, &b[0]), 0);
    ck_assert_int_eq(CALL(cc__store_load_async(E.st, &none, ld_done, &l)), 0);
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 301, &b[1]), 0);
    wait_slots(b, 2);
    ck_assert_int_eq(l.done, 1);
    ck_assert_int_eq(l.rc, 0);
    ck_assert_uint_eq(b[1].seq, b[0].seq + 1);
    ck_assert_int_eq(CALL(cc__store_load_async(E.st, NULL, ld_done, &l)),
                     CC_EINVAL);
    env_fini();
}
END_TEST

/* More open sessions than one page of the loader holds. */
START_TEST(load_pages)
{
    env_shared();
    enum { N = 1203 };
    slot *s = slots(N);
    for (int i = 0; i < N; i++) {
        cc_store_session r;
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        mk_sess(&r, "tp", id, "v", i % 7 == 0 ? CC_STORE_CLOSED
                                              : CC_STORE_ACTIVE,
                (uint64_t)i);
        ck_assert_int_eq(CALL(cc__store_session_put(E.st, &r, on_res, &s[i])),
                         0);
        ck_assert_int_eq(CALL(cc__store_cursor_put(E.st, "tp", id, "agent:a",
                                                   (uint64_t)i, 0, NULL,
                                                   NULL)), 0);
    }
    loaded l;
    load_all(&l, "tp");
    int closed = (N + 6) / 7;
    ck_assert_int_eq(l.nsess, N - closed);
    ck_assert_int_eq(l.ncur, N - closed);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(s[i].rc, 0);
    free(s);
    env_fini();
}
END_TEST

/* Callbacks never run inside the call, and run in call order across
 * kinds; a barrier completes after everything before it. */
START_TEST(order_and_stats)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    put_sess("t1", "s2", "v1", CC_STORE_ACTIVE, 1);
    cc_store_stats st0;
    cc__store_get_stats(E.st, &st0);
    enum { N = 1200 };
    slot *s = slots(N);
    uint64_t n1 = 0, n2 = 0;
    uint64_t want[N] = {0};
    for (int i = 0; i < N; i++) {
        int rc;
        switch (i % 8) {
        case 0:
            rc = append("t1", "s1", NULL, "{}", (uint64_t)i, &s[i]);
            want[i] = ++n1;
            break;
        case 1:
            rc = append("t1", "s2", NULL, "{}", (uint64_t)i, &s[i]);
            want[i] = ++n2;
            break;
        case 2:
            rc = CALL(cc__store_msgs_read(E.st, "t1", "s1", n1 - 1, 5, 0,
                                          on_res, &s[i]));
            want[i] = n1;   /* sees the append just before it */
            break;
        case 3:
            rc = CALL(cc__store_cursor_put(E.st, "t1", "s1", "visitor:v1",
                                           (uint64_t)i, 0, on_res, &s[i]));
            break;
        case 4:
            rc = CALL(cc__store_session_get(E.st, "t1", "s2", on_res, &s[i]));
            want[i] = n2;
            break;
        case 5:
            rc = CALL(cc__store_cursor_get(E.st, "t1", "s1", "visitor:v1",
                                           on_res, &s[i]));
            want[i] = (uint64_t)i - 2;   /* the put two before */
            break;
        case 6:
            rc = CALL(cc__store_barrier(E.st, on_res, &s[i]));
            break;
        default:
            rc = CALL(cc__store_meta_put(E.st, "k", "v", on_res, &s[i]));
            break;
        }
        ck_assert_int_eq(rc, 0);
        if (i == N / 2)
            uv_run(&E.loop, UV_RUN_NOWAIT);   /* some complete meanwhile */
    }
    cc_store_stats mid;
    cc__store_get_stats(E.st, &mid);
    ck_assert_uint_gt(mid.pending, 0);
    wait_slots(s, N);
    ck_assert_int_eq(E.ncb, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(E.order[i], i);
        ck_assert_int_eq(s[i].rc, 0);
        switch (i % 8) {
        case 0:
        case 1:
            ck_assert_uint_eq(s[i].seq, want[i]);
            break;
        case 2:
            ck_assert_uint_eq(s[i].nmsgs, 1);
            ck_assert_uint_eq(s[i].msgs[0].seq, want[i]);
            break;
        case 4:
            ck_assert_uint_eq(s[i].sess[0].last_seq, want[i]);
            break;
        case 5:
            ck_assert_uint_eq(s[i].acked, want[i]);
            break;
        default:
            break;
        }
    }
    cc_store_stats st;
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.ops - st0.ops, N);
    ck_assert_uint_eq(st.failures, 0);
    ck_assert_uint_eq(st.commits - st0.commits, N);   /* one trip each */
    uint64_t h = 0;
    for (int i = 0; i < CC_STORE_HIST_N; i++)
        h += st.hist[i];
    ck_assert_uint_eq(h, st.commits);
    ck_assert(st.commit_seconds_sum > 0);
    free(s);
    env_fini();
}
END_TEST

START_TEST(close_with_queued)
{
    env_shared();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    slot *s = slots(51);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(append("t1", "s1", NULL, "{}", 1, &s[i]), 0);
    loaded l;
    memset(&l, 0, sizeof l);
    cc_store_loader ld = {.session = ld_session, .data = &l};
    ck_assert_int_eq(CALL(cc__store_load_async(E.st, &ld, ld_done, &l)), 0);
    E.closed = 0;
    cc_store_close(E.st, on_store_closed, &E.closed);
    /* after close began, nothing more is taken */
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 1, NULL), CC_ESTATE);
    ck_assert_int_eq(CALL(cc__store_meta_put(E.st, "k", "v", NULL, NULL)),
                     CC_ESTATE);
    ck_assert_int_eq(E.ncb, 0);
    ck_assert(cc_test_run_until(&E.loop, &E.closed, WAIT_MS));
    E.st = NULL;
    ck_assert_int_eq(E.ncb, 50);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(s[i].rc, 0);
        ck_assert_uint_eq(s[i].seq, (uint64_t)i + 1);
    }
    ck_assert_int_eq(l.done, 1);
    ck_assert_int_eq(l.rc, 0);
    ck_assert_int_eq(l.nsess, 1);
    ck_assert_uint_eq(l.sess[0].last_seq, 50);
    /* and the retry tokens went with the close */
    ck_assert_int_eq(count_keys("tok:*"), 0);
    ck_assert_int_eq(count_keys("m:{t1}:s1"), 1);
    free(s);
    env_fini();
}
END_TEST

static void
close_in_cb(cc_store_result *r, void *data)
{
    on_res(r, data);
    E.closed = 0;
    cc_store_close(E.st, on_store_closed, &E.closed);
    ck_assert_int_eq(cc__store_meta_put(E.st, "k", "v", NULL, NULL),
                     CC_ESTATE);
}

START_TEST(close_from_callback)
{
    env_shared();
    slot *s = slots(3);
    ck_assert_int_eq(CALL(cc__store_meta_put(E.st, "a", "1", close_in_cb,
                                             &s[0])), 0);
    ck_assert_int_eq(CALL(cc__store_meta_put(E.st, "b", "2", on_res, &s[1])),
                     0);
    ck_assert_int_eq(CALL(cc__store_meta_put(E.st, "c", "3", on_res, &s[2])),
                     0);
    ck_assert(cc_test_run_until(&E.loop, &E.closed, WAIT_MS));
    E.st = NULL;
    ck_assert_int_eq(E.ncb, 3);
    ck_assert_int_eq(s[2].rc, 0);
    env_open();
    loaded l;
    load_all(&l, NULL);
    ck_assert_str_eq(l.text, "m:a=1;m:b=2;m:c=3;");
    free(s);
    env_fini();
}
END_TEST

/* A private server that goes away for good: close cancels what is left
 * after its grace period, in order, and frees everything. */
START_TEST(close_while_down)
{
    env_init();
    char dir[] = "/tmp/cc_rstore_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int port = cc_test_free_port();
    pid_t pid = spawn_redis(port, dir, 0);
    E.r = new_redis(port, 0);
    wait_ready(E.r);
    env_open();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    cc_test_redis_kill(pid);
    slot *s = slots(20);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(append("t1", "s1", NULL, "{}", 1, &s[i]), 0);
    run_for(300);
    ck_assert_int_eq(E.ncb, 0);   /* waiting, not failing */
    E.closed = 0;
    uint64_t t0 = uv_now(&E.loop);
    cc_store_close(E.st, on_store_closed, &E.closed);
    ck_assert(cc_test_run_until(&E.loop, &E.closed, 15000));
    E.st = NULL;
    ck_assert_uint_ge(uv_now(&E.loop) - t0, 4900);
    ck_assert_int_eq(E.ncb, 20);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(E.order[i], i);
        ck_assert_int_eq(s[i].rc, CC_ECANCELED);
    }
    free(s);
    env_fini();
    rm_tree(dir);
}
END_TEST

/* ---- kill -9 and restart of a server that fsyncs every write ---- */

/* {"text":"message <i>","pad":"..."}, about 6 KiB */
static void
mk_body(char *b, size_t cap, int i)
{
    int n = snprintf(b, cap, "{\"text\":\"message %d\",\"pad\":\"", i);
    size_t k = (size_t)n;
    for (; k < cap - 3; k++)
        b[k] = (char)('a' + k % 26);
    b[k++] = '"';
    b[k++] = '}';
    b[k] = '\0';
}

static void
on_raw(cc_redis *r, int status, const cc_redis_reply *rep, void *data)
{
    (void)r;
    (void)rep;
    (void)status;
    (*(int *)data)++;
}

static int
append_big(const char *body, int i, slot *s)
{
    char cid[16];
    snprintf(cid, sizeof cid, "k%d", i);
    /* cid messages and system ones (no cid) */
    return CALL(cc__store_msg_append(E.st, "t1", "s1", i % 2 ? cid : NULL,
                                     i % 2 ? "visitor:v1" : "system", 1, body,
                                     strlen(body), 1000 + (uint64_t)i, on_res,
                                     s));
}

/* 100 appends complete (fsynced); the next 80 are sent while the server
 * is paused (CLIENT PAUSE from another connection), so they are in
 * flight, not run, when it is killed; 20 more are queued while it is
 * down. After the restart every one completes with rc 0 and its own seq:
 * the session holds exactly 1..200, in call order. */
START_TEST(restart_kill9)
{
    env_init();
    char dir[] = "/tmp/cc_rstore_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int port = cc_test_free_port();
    pid_t pid = spawn_redis(port, dir, 1);
    E.r = new_redis(port, 0);
    cc_redis *r2 = new_redis(port, 0);
    wait_ready(E.r);
    wait_ready(r2);
    env_open();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    enum { N = 200 };
    slot *s = slots(N + 1);
    static char body[N][6200];
    for (int i = 0; i < N; i++)
        mk_body(body[i], sizeof body[i], i);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(append_big(body[i], i, &s[i]), 0);
    wait_count(&E.ncb, 100, WAIT_MS);
    int paused = 0;
    const char *pa[] = {"CLIENT", "PAUSE", "60000", "ALL"};
    ck_assert_int_eq(cc_redis_cmd(r2, on_raw, &paused, 4, pa, NULL), 0);
    wait_count(&paused, 1, WAIT_MS);
    for (int i = 100; i < 180; i++)
        ck_assert_int_eq(append_big(body[i], i, &s[i]), 0);
    run_for(200);   /* sent, held by the pause */
    ck_assert_int_eq(E.ncb, 100);
    cc_test_redis_kill(pid);
    /* down for a while: ops wait, nothing fails */
    run_for(300);
    for (int i = 180; i < N; i++)
        ck_assert_int_eq(append_big(body[i], i, &s[i]), 0);
    run_for(200);
    ck_assert_int_eq(E.ncb, 100);
    pid = spawn_redis(port, dir, 1);
    wait_count(&E.ncb, N, 20000);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(E.order[i], i);
        ck_assert_msg(s[i].rc == 0, "op %d: %d", i, s[i].rc);
        ck_assert_int_eq(s[i].dup, 0);
        ck_assert_uint_eq(s[i].seq, (uint64_t)i + 1);
        ck_assert_uint_eq(s[i].ts, 1000 + (uint64_t)i);
    }
    cc_store_stats st;
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_ge(st.failures, 1);
    ck_assert_uint_eq(st.pending, 0);
    /* exactly 1..200, in order, no duplicate */
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s1", on_res,
                                                &s[N])), 0);
    wait_slots(&s[N], 1);
    ck_assert_uint_eq(s[N].sess[0].last_seq, N);
    uint64_t after = 0;
    for (;;) {
        slot p = {.counted = 0};
        ck_assert_int_eq(CALL(cc__store_msgs_read(E.st, "t1", "s1", after, 40,
                                                  0, on_res, &p)), 0);
        wait_slots(&p, 1);
        for (size_t i = 0; i < p.nmsgs; i++) {
            ck_assert_uint_eq(p.msgs[i].seq, after + 1);
            /* the slot keeps the first 127 bytes */
            ck_assert_uint_eq(p.msgs[i].body_len, strlen(body[after]));
            ck_assert_int_eq(strncmp(p.msgs[i].body, body[after], 127), 0);
            ck_assert_int_eq(p.msgs[i].has_cid, after % 2 == 1);
            after++;
        }
        if (!p.more)
            break;
    }
    ck_assert_uint_eq(after, N);
    free(s);
    int rcl = 0;
    cc_redis_close(r2, on_r_closed, &rcl);
    ck_assert(cc_test_run_until(&E.loop, &rcl, WAIT_MS));
    env_fini();
    cc_test_redis_kill(pid);
    rm_tree(dir);
}
END_TEST

/* A reply lost after its command ran: the server sleeps (DEBUG SLEEP) past
 * the adapter's command timeout, so the connection is dropped with the
 * appends sent on it; the server runs them when it wakes, and the store
 * sends them again on a new connection. The tokens make the re-runs
 * answer what the first runs did: no message twice, system ones
 * included. */
typedef struct stats_text {
    int done;
    char text[8192];
} stats_text;

static void
on_info(cc_redis *r, int status, const cc_redis_reply *rep, void *data)
{
    stats_text *t = data;
    (void)r;
    size_t n = 0;
    const char *s = status ? NULL : cc_redis_reply_str(rep, &n);
    snprintf(t->text, sizeof t->text, "%.*s", (int)n, s ? s : "");
    t->done = 1;
}

/* calls=N of "cmdstat_<name>:" in INFO commandstats, 0 when absent */
static long
cmd_calls(const char *text, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", name);
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

START_TEST(lost_reply_not_applied_twice)
{
    env_init();
    char dir[] = "/tmp/cc_rstore_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int port = cc_test_free_port();
    pid_t pid = spawn_redis(port, dir, 0);
    E.r = new_redis(port, 150);
    cc_redis *r2 = new_redis(port, 0);
    wait_ready(E.r);
    wait_ready(r2);
    env_open();
    put_sess("t1", "s1", "v1", CC_STORE_ACTIVE, 1);
    int slept = 0;
    const char *argv[] = {"DEBUG", "SLEEP", "0.8"};
    ck_assert_int_eq(cc_redis_cmd(r2, on_raw, &slept, 3, argv, NULL), 0);
    run_for(50);   /* the server is asleep now */
    enum { N = 100 };
    slot *s = slots(N + 1);
    for (int i = 0; i < N; i++) {
        char cid[16], body[64];
        snprintf(cid, sizeof cid, "k%d", i);
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        ck_assert_int_eq(CALL(cc__store_msg_append(
                             E.st, "t1", "s1", i % 2 ? cid : NULL,
                             i % 2 ? "visitor:v1" : "system", 1, body,
                             strlen(body), 1000 + (uint64_t)i, on_res,
                             &s[i])), 0);
    }
    wait_count(&E.ncb, N, 20000);
    ck_assert_int_eq(slept, 1);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(s[i].rc == 0, "op %d: %d", i, s[i].rc);
        ck_assert_int_eq(s[i].dup, 0);
        ck_assert_uint_eq(s[i].seq, (uint64_t)i + 1);
    }
    cc_store_stats st;
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_ge(st.failures, 1);   /* it did time out */
    ck_assert_int_eq(CALL(cc__store_session_get(E.st, "t1", "s1", on_res,
                                                &s[N])), 0);
    wait_slots(&s[N], 1);
    ck_assert_uint_eq(s[N].sess[0].last_seq, N);
    /* and the appends did run more than once: the server counted more
     * script calls than this test made (1 put + N appends) */
    stats_text t = {0};
    const char *ia[] = {"INFO", "commandstats"};
    ck_assert_int_eq(cc_redis_cmd(r2, on_info, &t, 2, ia, NULL), 0);
    ck_assert(cc_test_run_until(&E.loop, &t.done, WAIT_MS));
    long calls = cmd_calls(t.text, "eval") + cmd_calls(t.text, "evalsha");
    ck_assert_msg(calls > N + 1, "%ld script calls", calls);
    free(s);
    int rcl = 0;
    cc_redis_close(r2, on_r_closed, &rcl);
    ck_assert(cc_test_run_until(&E.loop, &rcl, WAIT_MS));
    env_fini();
    cc_test_redis_kill(pid);
    rm_tree(dir);
}
END_TEST

/* Several users of one store (as the partition engines of a service share
 * one): each user's load, barrier and append are interleaved with the
 * others', a load's loader issues barriers of its own, and each append's
 * callback issues the session_put that follows it (as the engine's first
 * message queues its session). Every callback runs once, in call order,
 * and each chained session_put lands. */
#define NUSERS 8

typedef struct user {
    int u, seqno;           /* seqno: when each callback ran */
    int app_at, put_at, bar_at, ld_at, ldbar_at, chain_bar_at;
    slot app, put, bar, ldbar, chain_bar;
    loaded ld;
    cc_store_session rec;
} user;

static int g_tick;

static void
on_put_chained(cc_store_result *r, void *data)
{
    user *us = data;
    on_res(r, &us->put);
    us->put_at = ++g_tick;
}

static void
on_chain_bar(cc_store_result *r, void *data)
{
    user *us = data;
    on_res(r, &us->chain_bar);
    us->chain_bar_at = ++g_tick;
}

static void
on_app_chained(cc_store_result *r, void *data)
{
    user *us = data;
    on_res(r, &us->app);
    us->app_at = ++g_tick;
    /* from inside the callback, as session.c's do_send/persist do */
    char id[16];
    snprintf(id, sizeof id, "S%d", us->u);
    mk_sess(&us->rec, "tu", id, "v1", CC_STORE_QUEUED, 3000);
    ck_assert_int_eq(cc__store_session_put(E.st, &us->rec, on_put_chained,
                                           us), 0);
    ck_assert_int_eq(cc__store_barrier(E.st, on_chain_bar, us), 0);
}

static void
on_bar_user(cc_store_result *r, void *data)
{
    user *us = data;
    on_res(r, &us->bar);
    us->bar_at = ++g_tick;
}

static void
on_ldbar(cc_store_result *r, void *data)
{
    user *us = data;
    on_res(r, &us->ldbar);
    us->ldbar_at = ++g_tick;
}

static void
ld_session_bar(void *d, const cc_store_session *s)
{
    user *us = d;
    (void)s;
    /* an op issued from inside a load: it queues behind the load */
    if (!us->ldbar_at && !us->ldbar.counted) {
        us->ldbar.counted = 1;
        ck_assert_int_eq(cc__store_barrier(E.st, on_ldbar, us), 0);
    }
    us->ld.nsess++;
}

static void
ld_done_user(cc_store_result *r, void *data)
{
    user *us = data;
    if (E.in_call)
        E.inside++;
    us->ld.rc = r->rc;
    us->ld.done = 1;
    us->ld_at = ++g_tick;
}

START_TEST(shared_users_chained)
{
    env_shared();
    user *us = calloc(NUSERS, sizeof *us);
    ck_assert_ptr_nonnull(us);
    g_tick = 0;
    for (int i = 0; i < NUSERS; i++) {
        us[i].u = i;
        char id[16];
        snprintf(id, sizeof id, "S%d", i);
        put_sess("tu", id, "v1", CC_STORE_NEW, 2000);
        snprintf(us[i].rec.id, sizeof us[i].rec.id, "%s", id);
        snprintf(us[i].rec.tenant, sizeof us[i].rec.tenant, "tu");
    }
    /* two rounds, so loads are queued behind appends and chained puts */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < NUSERS; i++) {
            user *x = &us[i];
            if (round == 0) {
                cc_store_loader ld = {.session = ld_session_bar,
                                      .data = x};
                ck_assert_int_eq(CALL(cc__store_load_async(
                                     E.st, &ld, ld_done_user, x)), 0);
                ck_assert_int_eq(CALL(cc__store_msg_append(
                                     E.st, "tu", x->rec.id, "c1",
                                     "visitor:v1", 1, "hi", 2, 2500,
                                     on_app_chained, x)), 0);
            } else {
                ck_assert_int_eq(CALL(cc__store_barrier(E.st, on_bar_user,
                                                        x)), 0);
            }
        }
    }
    for (int i = 0; i < NUSERS; i++) {
        wait_count(&us[i].ld.done, 1, WAIT_MS);
        wait_slots(&us[i].app, 1);
        wait_slots(&us[i].put, 1);
        wait_slots(&us[i].chain_bar, 1);
        wait_slots(&us[i].bar, 1);
        wait_slots(&us[i].ldbar, 1);
    }
    for (int i = 0; i < NUSERS; i++) {
        user *x = &us[i];
        ck_assert_int_eq(x->ld.rc, 0);
        ck_assert_int_eq(x->ld.nsess, NUSERS);
        ck_assert_int_eq(x->app.rc, 0);
        ck_assert_uint_eq(x->app.seq, 1);
        ck_assert_int_eq(x->app.dup, 0);
        ck_assert_int_eq(x->put.rc, 0);
        ck_assert_int_eq(x->bar.rc, 0);
        ck_assert_int_eq(x->chain_bar.rc, 0);
        ck_assert_int_eq(x->ldbar.rc, 0);
        /* call order: load, append, then what the append's callback
         * issued, after everything queued before it ran */
        ck_assert_int_lt(x->ld_at, x->app_at);
        ck_assert_int_lt(x->app_at, x->put_at);
        ck_assert_int_lt(x->put_at, x->chain_bar_at);
        ck_assert_int_gt(x->put_at, us[NUSERS - 1].bar_at);
        ck_assert_int_gt(x->ldbar_at, us[NUSERS - 1].bar_at);
        if (i)
            ck_assert_int_lt(us[i - 1].app_at, x->app_at);
    }
    /* every chained put landed: queued, and the append's last_seq kept */
    for (int i = 0; i < NUSERS; i++) {
        slot g = {.counted = 0};
        ck_assert_int_eq(CALL(cc__store_session_get(E.st, "tu", us[i].rec.id,
                                                    on_res, &g)), 0);
        wait_slots(&g, 1);
        ck_assert_int_eq(g.rc, 0);
        ck_assert_uint_eq(g.nsess, 1);
        ck_assert_int_eq(g.sess[0].state, CC_STORE_QUEUED);
        ck_assert_uint_eq(g.sess[0].last_seq, 1);
    }
    cc_store_stats st;
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_eq(st.pending, 0);
    free(us);
    env_fini();
}
END_TEST

START_TEST(queue_full)
{
    env_shared();
    int i, rc = 0;
    for (i = 0; i <= CC__STORE_MAX_PENDING; i++)
        if ((rc = CALL(cc__store_cursor_get(E.st, "t", "s", "u", NULL,
                                            NULL))))
            break;
    ck_assert_int_eq(rc, CC_EQUEUEFULL);
    ck_assert_int_eq(i, CC__STORE_MAX_PENDING);
    cc_store_stats st;
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_eq(st.pending, CC__STORE_MAX_PENDING);
    slot b = {.counted = 0};
    uint64_t end = uv_now(&E.loop) + 120000;
    while (CALL(cc__store_barrier(E.st, on_res, &b)) == CC_EQUEUEFULL &&
           uv_now(&E.loop) < end)
        run_for(5);
    wait_count(&b.done, 1, 120000);
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_ge(st.ops, CC__STORE_MAX_PENDING + 1);
    env_fini();
}
END_TEST

/* Every allocation from the store's open on fails in turn: a failure is
 * CC_ENOMEM at the call or in a result (or, for a command, a retry that
 * succeeds), and nothing leaks. */
START_TEST(allocation_failures)
{
    int saw_open = 0, saw_call = 0;
    for (size_t k = 1;; k++) {
        env_init();
        E.r = new_redis(cc_test_redis_env_port(), 0);
        wait_ready(E.r);
        E.ta.fail_at = E.ta.nalloc + k;
        int rc = cc_store_redis_open(&E.st, E.ctx, E.r, E.ns);
        if (rc) {
            ck_assert_int_eq(rc, CC_ENOMEM);
            saw_open = 1;
            E.st = NULL;
            E.ta.fail_at = 0;
            env_fini();
            continue;
        }
        slot *s = slots(7);
        cc_store_session r;
        mk_sess(&r, "t1", "s1", "v1", CC_STORE_ACTIVE, 1);
        int calls[7];
        calls[0] = CALL(cc__store_session_put(E.st, &r, on_res, &s[0]));
        calls[1] = append("t1", "s1", "c", "{\"a\":1}", 5, &s[1]);
        calls[2] = CALL(cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 0,
                                            on_res, &s[2]));
        calls[3] = CALL(cc__store_sessions_list(E.st, "t1", 0, NULL, 10,
                                                on_res, &s[3]));
        calls[4] = append("t1", "s1", NULL, "{\"a\":2}", 6, &s[4]);
        calls[5] = CALL(cc__store_session_get(E.st, "t1", "s1", on_res,
                                              &s[5]));
        calls[6] = CALL(cc__store_barrier(E.st, on_res, &s[6]));
        int want = 0;
        for (int i = 0; i < 7; i++)
            want += calls[i] == 0;
        wait_count(&E.ncb, want, WAIT_MS);
        int reached = E.ta.nalloc >= E.ta.fail_at;
        E.ta.fail_at = 0;
        for (int i = 0; i < 7; i++) {
            if (calls[i]) {
                ck_assert_int_eq(calls[i], CC_ENOMEM);
                ck_assert_int_eq(s[i].done, 0);
                saw_call = 1;
            } else if (s[i].rc) {
                ck_assert_msg(s[i].rc == CC_ENOMEM ||
                                  (s[i].rc == CC_ENOENT &&
                                   (calls[0] || s[0].rc)),
                              "op %d: %d", i, s[i].rc);
                ck_assert_uint_eq(s[i].nmsgs, 0);
                ck_assert_uint_eq(s[i].nsess, 0);
            }
        }
        free(s);
        env_fini();   /* asserts 0 bytes, 0 blocks outstanding */
        if (!reached)
            break;
        ck_assert_uint_lt(k, 200);
    }
    ck_assert_int_eq(saw_open, 1);
    ck_assert_int_eq(saw_call, 1);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("redis_store");
    TCase *tc = tcase_create("shared");
    tcase_set_timeout(tc, 60);
    tcase_set_tags(tc, "integration");
    tcase_add_test(tc, open_args);
    tcase_add_test(tc, append_numbering);
    tcase_add_test(tc, dup_cid);
    tcase_add_test(tc, cid_append_no_token_key);
    tcase_add_test(tc, append_enoent);
    tcase_add_test(tc, msgs_read_forward_and_tail);
    tcase_add_test(tc, big_body);
    tcase_add_test(tc, session_put_get_list);
    tcase_add_test(tc, cursors_never_lower);
    tcase_add_test(tc, meta_tenant_agent);
    tcase_add_test(tc, tenant_del_removes_everything);
    tcase_add_test(tc, load_filters);
    tcase_add_test(tc, load_pages);
    tcase_add_test(tc, order_and_stats);
    tcase_add_test(tc, close_with_queued);
    tcase_add_test(tc, close_from_callback);
    tcase_add_test(tc, allocation_failures);
    tcase_add_test(tc, shared_users_chained);
    suite_add_tcase(s, tc);
    TCase *tb = tcase_create("bound");
    tcase_set_timeout(tb, 240);
    tcase_set_tags(tb, "integration");
    tcase_add_test(tb, queue_full);
    suite_add_tcase(s, tb);
    TCase *tp = tcase_create("private");
    tcase_set_timeout(tp, 60);
    tcase_set_tags(tp, "integration");
    tcase_add_test(tp, restart_kill9);
    tcase_add_test(tp, lost_reply_not_applied_twice);
    tcase_add_test(tp, close_while_down);
    suite_add_tcase(s, tp);
    return s;
}
