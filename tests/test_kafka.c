/*
 * tests/test_kafka.c - the Kafka adapter (chatcore/kafka.h) against a real
 * Kafka protocol peer: librdkafka's mock cluster, run by
 * examples/chatcore-kafka-mock as a child process of each test (so a test
 * can take its brokers down). The tool's path comes from $CC_KAFKA_MOCK or
 * the CC_KAFKA_MOCK_BIN compile definition (tests/kafka/tests.cmake); a
 * test that needs it fails when neither names an executable.
 *
 * The mock's group coordinator waits 3 s before the first assignment of a
 * group and session.timeout.ms - 1 s after a member leaves, so the tests
 * use session.timeout.ms=4000 and start the consumers of one group
 * together.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chatcore/kafka.h"
#include "testutil.h"

/* ---- the mock cluster process ---- */

typedef struct mock {
    pid_t pid;
    int in_fd, out_fd;
    char bootstrap[512];
} mock;

static const char *
mock_path(void)
{
    const char *p = getenv("CC_KAFKA_MOCK");
    if (p && *p)
        return p;
#ifdef CC_KAFKA_MOCK_BIN
    return CC_KAFKA_MOCK_BIN;
#else
    return NULL;
#endif
}

/* Read one line (without the newline) within timeout_ms; 0 on success. */
static int
mock_line(mock *m, char *buf, size_t size, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < size) {
        struct pollfd pf = {m->out_fd, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) <= 0)
            return -1;
        char c;
        ssize_t r = read(m->out_fd, &c, 1);
        if (r <= 0)
            return -1;
        if (c == '\n') {
            buf[n] = '\0';
            return 0;
        }
        buf[n++] = c;
    }
    return -1;
}

static void
mock_start(mock *m, const char *const *topics)
{
    const char *path = mock_path();
    ck_assert_msg(path && access(path, X_OK) == 0,
                  "chatcore-kafka-mock not found (set CC_KAFKA_MOCK or "
                  "build the chatcore-kafka-mock target): %s",
                  path ? path : "(no path configured)");
    int in[2], out[2];
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    const char *argv[32];
    int argc = 0;
    argv[argc++] = path;
    for (size_t i = 0; topics && topics[i] && argc < 29; i++) {
        argv[argc++] = "--topic";
        argv[argc++] = topics[i];
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* a test killed by its timeout takes its cluster with it */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(in[0], 0);
        dup2(out[1], 1);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    m->pid = pid;
    m->in_fd = in[1];
    m->out_fd = out[0];
    char line[sizeof m->bootstrap + 10];
    ck_assert_msg(mock_line(m, line, sizeof line, 10000) == 0,
                  "chatcore-kafka-mock printed no bootstrap line");
    ck_assert_msg(strncmp(line, "bootstrap=", 10) == 0, "got '%s'", line);
    memcpy(m->bootstrap, line + 10, strlen(line + 10) + 1);
}

/* Send a command; returns the answer line in ans. */
static void
mock_cmd(mock *m, const char *cmd, char *ans, size_t size)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s\n", cmd);
    ck_assert_int_eq(write(m->in_fd, buf, (size_t)n), n);
    ck_assert_int_eq(mock_line(m, ans, size, 5000), 0);
}

static void
mock_ok(mock *m, const char *cmd)
{
    char ans[128];
    mock_cmd(m, cmd, ans, sizeof ans);
    ck_assert_msg(!strcmp(ans, "ok"), "%s: %s", cmd, ans);
}

static void
mock_stop(mock *m)
{
    if (m->pid <= 0)
        return;
    char ans[128];
    mock_cmd(m, "quit", ans, sizeof ans);
    ck_assert_str_eq(ans, "ok");
    close(m->in_fd);
    int st = 0;
    ck_assert_int_eq(waitpid(m->pid, &st, 0), m->pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(m->out_fd);
    m->pid = 0;
}

/* ---- loop helpers ---- */

typedef int (*pred_fn)(void *arg);

static void
tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until pred(arg) holds or ms pass; returns pred's value. */
static int
run_until(uv_loop_t *loop, pred_fn pred, void *arg, unsigned ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + ms;
    int ok;
    while (!(ok = pred(arg)) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static int
never(void *arg)
{
    (void)arg;
    return 0;
}

static void
run_for(uv_loop_t *loop, unsigned ms)
{
    run_until(loop, never, NULL, ms);
}

static int
flag_set(void *arg)
{
    return *(int *)arg != 0;
}

/* ---- per-test environment ---- */

typedef struct env {
    uv_loop_t loop;
    cc_test_alloc ta;
    cc_ctx *ctx;
    mock m;
} env;

static const char *const FAST[] = {
    "consumer.session.timeout.ms", "4000",
    "consumer.heartbeat.interval.ms", "500",
    "reconnect.backoff.ms", "50",
    "reconnect.backoff.max.ms", "500",
    "statistics.interval.ms", "200",
    NULL,
};

/* topics NULL: no cluster; {NULL}: the tool's default chat.* topics */
static void
env_init(env *e, const char *const *topics)
{
    memset(e, 0, sizeof *e);
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    cc_test_alloc_init(&e->ta);
    ck_assert_int_eq(cc_ctx_new(&e->ctx, &e->loop, &e->ta.a), 0);
    if (topics)
        mock_start(&e->m, topics);
}

static void
on_ctx_closed(void *obj, void *data)
{
    (void)obj;
    *(int *)data = 1;
}

static void
env_done(env *e)
{
    int closed = 0;
    cc_ctx_close(e->ctx, on_ctx_closed, &closed);
    ck_assert(run_until(&e->loop, flag_set, &closed, 5000));
    ck_assert_uint_eq(e->ta.bytes, 0);
    ck_assert_uint_eq(e->ta.blocks, 0);
    cc_test_loop_teardown(&e->loop);
    mock_stop(&e->m);
}

static void
on_k_closed(void *obj, void *data)
{
    (void)obj;
    (*(int *)data)++;
}

static void
kclose(env *e, cc_kafka *k)
{
    int closed = 0;
    cc_kafka_close(k, on_k_closed, &closed);
    ck_assert_msg(run_until(&e->loop, flag_set, &closed, 20000),
                  "cc_kafka_close did not complete");
    ck_assert_int_eq(closed, 1);
}

/* CC_KAFKA_TEST_LOG=1: librdkafka's and the adapter's log on stderr */
static void
log_stderr(cc_kafka *k, int level, const char *msg, void *data)
{
    (void)k;
    fprintf(stderr, "[%s] %d %s\n", (const char *)data, level, msg);
}

static void
debug_log(cc_kafka *k, const char *name)
{
    if (getenv("CC_KAFKA_TEST_LOG"))
        cc_kafka_set_log_cb(k, log_stderr, (void *)name);
}

/* ---- delivery bookkeeping ---- */

typedef struct dr {
    int calls;
    int status;
    int32_t partition;
    int64_t offset;
    int *done; /* incremented on each call */
} dr;

static void
on_dr(cc_kafka *k, int status, int32_t partition, int64_t offset,
      void *data)
{
    (void)k;
    dr *d = data;
    d->calls++;
    d->status = status;
    d->partition = partition;
    d->offset = offset;
    (*d->done)++;
}

typedef struct atleast {
    const int *v;
    int want;
} atleast;

static int
atleast_ok(void *arg)
{
    atleast *a = arg;
    return *a->v >= a->want;
}

/* Run the loop until *v >= want or ms pass; returns whether it got there. */
static int
wait_ge(uv_loop_t *loop, const int *v, int want, unsigned ms)
{
    atleast a = {v, want};
    return run_until(loop, atleast_ok, &a, ms);
}

static void
produce1(cc_kafka *p, const char *topic, const char *key, const char *val,
         dr *d, int *done)
{
    memset(d, 0, sizeof *d);
    d->done = done;
    ck_assert_int_eq(cc_kafka_produce(p, topic, key, key ? strlen(key) : 0,
                                      val, strlen(val), on_dr, d),
                     0);
}

/* ---- a consumer that records what it gets ---- */

#define MAXP 16
#define MAXEV 32
#define NKEYS 50

typedef struct rb_event {
    int assigned;
    unsigned mask;
} rb_event;

typedef struct cons {
    uv_loop_t *loop;
    cc_kafka *k;
    const char *topic;
    unsigned mask; /* partitions currently assigned */
    rb_event ev[MAXEV];
    int nev;
    int nmsg;
    int nw;        /* records with value "w" */
    int part_ok;   /* every record was of an assigned partition */
    char vals[16][32];
    int nvals;
    int64_t maxoff[MAXP];
    int next_seq[NKEYS]; /* keys "kNN", values "kNN:seq": per-key order */
    /* defer the revoke that close causes; finish it from a timer */
    int defer_revoke;
    uv_timer_t defer_timer;
    int defer_rc, done_rc, deferred_at_nev;
    /* close from inside on_msg when this value arrives */
    const char *close_on;
    int closed;
    /* commit partition 0 at commit_off from the revoke callback */
    int commit_on_revoke;
    int64_t commit_off;
    int revoke_commit_rc, revoke_commit_calls, revoke_commit_status;
    int closed_at_commit; /* c->closed when the commit result came */
} cons;

static void
on_defer_timer(uv_timer_t *t)
{
    cons *c = t->data;
    c->done_rc = cc_kafka_rebalance_done(c->k);
    uv_close((uv_handle_t *)t, NULL);
}

static void
on_revoke_commit(cc_kafka *k, int status, void *data)
{
    (void)k;
    cons *c = data;
    c->revoke_commit_calls++;
    c->revoke_commit_status = status;
    c->closed_at_commit = c->closed;
}

static void
on_rebalance(cc_kafka *k, int assigned, const cc_kafka_partition *parts,
             size_t n, void *data)
{
    cons *c = data;
    ck_assert_ptr_eq(k, c->k);
    ck_assert_uint_gt(n, 0);
    unsigned mask = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(parts[i].topic, c->topic);
        ck_assert(parts[i].partition >= 0 && parts[i].partition < MAXP);
        mask |= 1u << parts[i].partition;
    }
    if (assigned) {
        ck_assert_uint_eq(c->mask & mask, 0);
        c->mask |= mask;
    } else {
        ck_assert_uint_eq(c->mask & mask, mask);
        c->mask &= ~mask;
        ck_assert_int_eq(cc_kafka_assignment_lost(k), 0);
    }
    ck_assert_int_lt(c->nev, MAXEV);
    c->ev[c->nev].assigned = assigned;
    c->ev[c->nev].mask = mask;
    c->nev++;
    if (!assigned && c->commit_on_revoke && (mask & 1)) {
        c->commit_on_revoke = 0;
        c->revoke_commit_rc = cc_kafka_commit(k, c->topic, 0, c->commit_off,
                                              on_revoke_commit, c);
    }
    if (!assigned && c->defer_revoke) {
        c->defer_revoke = 0;
        c->defer_rc = cc_kafka_rebalance_defer(k);
        c->deferred_at_nev = c->nev;
        uv_timer_init(c->loop, &c->defer_timer);
        c->defer_timer.data = c;
        uv_timer_start(&c->defer_timer, on_defer_timer, 300, 0);
    }
}

static void
on_msg(cc_kafka *k, const cc_kafka_msg *m, void *data)
{
    cons *c = data;
    ck_assert_ptr_eq(k, c->k);
    ck_assert_str_eq(m->topic, c->topic);
    ck_assert(m->partition >= 0 && m->partition < MAXP);
    if (!(c->mask & (1u << m->partition)))
        c->part_ok = 0;
    if (m->offset > c->maxoff[m->partition])
        c->maxoff[m->partition] = m->offset;
    ck_assert(m->timestamp_ms > 0);
    ck_assert_ptr_nonnull(m->value.base);
    c->nmsg++;
    if (m->value.len == 1 && m->value.base[0] == 'w')
        c->nw++;
    if (m->key.len == 3 && m->key.base[0] == 'k') {
        int key = (m->key.base[1] - '0') * 10 + (m->key.base[2] - '0');
        ck_assert(key >= 0 && key < NKEYS);
        char v[32];
        ck_assert_uint_lt(m->value.len, sizeof v);
        memcpy(v, m->value.base, m->value.len);
        v[m->value.len] = '\0';
        int seq = atoi(v + 4);
        /* per-key order and exactly once: each key's values come 0,1,2,.. */
        ck_assert_int_eq(seq, c->next_seq[key]);
        c->next_seq[key]++;
    } else if (c->nvals < 16) {
        size_t len = m->value.len < 31 ? m->value.len : 31;
        memcpy(c->vals[c->nvals], m->value.base, len);
        c->vals[c->nvals][len] = '\0';
        c->nvals++;
    }
    if (c->close_on && m->value.len == strlen(c->close_on) &&
        !memcmp(m->value.base, c->close_on, m->value.len)) {
        c->close_on = NULL;
        cc_kafka_close(k, on_k_closed, &c->closed); /* from a callback */
    }
}

static void
cons_init(cons *c, env *e, const char *topic)
{
    memset(c, 0, sizeof *c);
    c->loop = &e->loop;
    c->topic = topic;
    c->part_ok = 1;
    for (int i = 0; i < MAXP; i++)
        c->maxoff[i] = -1;
}

static void
cons_start(env *e, cons *c, const char *group, const char *const *conf)
{
    ck_assert_int_eq(
        cc_kafka_new(&c->k, e->ctx, e->m.bootstrap, group, conf), 0);
    debug_log(c->k, group);
    const char *topics[] = {c->topic};
    ck_assert_int_eq(
        cc_kafka_subscribe(c->k, topics, 1, on_msg, on_rebalance, c), 0);
}


/* ---- commit bookkeeping ---- */

typedef struct commit_res {
    int calls, status;
    int *done;
} commit_res;

static void
on_commit(cc_kafka *k, int status, void *data)
{
    (void)k;
    commit_res *r = data;
    r->calls++;
    r->status = status;
    (*r->done)++;
}

/*
 * 1,000 keyed records: every delivery succeeds once, offsets rise per
 * partition; a group consumer gets each exactly once in per-key order;
 * committed offsets hold for the group's next consumer, while a record
 * delivered but not committed is delivered again; pause holds records
 * back until resume.
 */
START_TEST(produce_consume_commit)
{
    static const char *const topics[] = {"t.order:8", NULL};
    env e;
    env_init(&e, topics);
    cc_kafka *p;
    ck_assert_int_eq(cc_kafka_new(&p, e.ctx, e.m.bootstrap, NULL, FAST), 0);

    enum { N = 1000 };
    static dr d[N];
    int done = 0;
    for (int i = 0; i < N; i++) {
        char key[8], val[16];
        snprintf(key, sizeof key, "k%02d", i % NKEYS);
        snprintf(val, sizeof val, "k%02d:%d", i % NKEYS, i / NKEYS);
        produce1(p, "t.order", key, val, &d[i], &done);
    }
    ck_assert_msg(wait_ge(&e.loop, &done, N, 15000), "%d of %d delivered",
                  done, N);
    int64_t last[8];
    for (int i = 0; i < 8; i++)
        last[i] = -1;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(d[i].calls, 1);
        ck_assert_int_eq(d[i].status, 0);
        ck_assert(d[i].partition >= 0 && d[i].partition < 8);
        /* produce order is offset order within a partition */
        ck_assert_int_gt(d[i].offset, last[d[i].partition]);
        last[d[i].partition] = d[i].offset;
    }
    ck_assert_int_eq(cc_kafka_healthy(p), 1);

    cons c1;
    cons_init(&c1, &e, "t.order");
    cons_start(&e, &c1, "g1", FAST);
    ck_assert_msg(wait_ge(&e.loop, &c1.nmsg, N, 20000),
                  "consumer got %d of %d", c1.nmsg, N);
    run_for(&e.loop, 200);
    ck_assert_int_eq(c1.nmsg, N);
    ck_assert_uint_eq(c1.mask, 0xff);
    ck_assert_int_eq(c1.nev, 1);
    ck_assert(c1.part_ok);
    for (int key = 0; key < NKEYS; key++)
        ck_assert_int_eq(c1.next_seq[key], N / NKEYS);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(c1.maxoff[i], last[i]);

    /* commit everything consumed */
    commit_res cr[8];
    memset(cr, 0, sizeof cr);
    int cdone = 0, ncommit = 0;
    for (int i = 0; i < 8; i++) {
        if (c1.maxoff[i] < 0)
            continue;
        cr[i].done = &cdone;
        ck_assert_int_eq(cc_kafka_commit(c1.k, "t.order", i,
                                         c1.maxoff[i] + 1, on_commit,
                                         &cr[i]),
                         0);
        ncommit++;
    }
    ck_assert_int_gt(ncommit, 1);
    ck_assert(wait_ge(&e.loop, &cdone, ncommit, 10000));
    for (int i = 0; i < 8; i++)
        if (cr[i].done) {
            ck_assert_int_eq(cr[i].calls, 1);
            ck_assert_int_eq(cr[i].status, 0);
        }

    /* M: delivered to c1, never committed; c1 closes from its on_msg */
    dr dm;
    int mdone = 0;
    c1.close_on = "M";
    c1.commit_on_revoke = 1;
    c1.commit_off = c1.maxoff[0] + 1; /* what is committed already: not M */
    c1.revoke_commit_rc = -1;
    produce1(p, "t.order", "m", "M", &dm, &mdone);
    ck_assert(wait_ge(&e.loop, &c1.closed, 1, 20000));
    ck_assert_int_eq(c1.closed, 1);
    ck_assert_int_eq(dm.calls, 1);
    ck_assert_int_eq(dm.status, 0);
    ck_assert_int_eq(c1.nvals, 1);
    ck_assert_str_eq(c1.vals[0], "M");
    ck_assert_int_eq(c1.nmsg, N + 1);
    /* leaving the group revoked all 8 partitions, in one callback */
    ck_assert_int_eq(c1.nev, 2);
    ck_assert_int_eq(c1.ev[1].assigned, 0);
    ck_assert_uint_eq(c1.ev[1].mask, 0xff);
    /* a commit from that revoke callback still completes, before close */
    ck_assert_int_eq(c1.revoke_commit_rc, 0);
    ck_assert_int_eq(c1.revoke_commit_calls, 1);
    ck_assert_int_eq(c1.revoke_commit_status, 0);
    ck_assert_int_eq(c1.closed_at_commit, 0);

    /* the group's next consumer: M again (not committed), nothing older */
    cons c2;
    cons_init(&c2, &e, "t.order");
    cons_start(&e, &c2, "g1", FAST);
    ck_assert_msg(wait_ge(&e.loop, &c2.nvals, 1, 20000),
                  "M was not delivered again");
    dr dn;
    int ndone = 0;
    produce1(p, "t.order", "n", "N", &dn, &ndone);
    ck_assert(wait_ge(&e.loop, &c2.nvals, 2, 10000));
    ck_assert_int_eq(dn.status, 0);
    ck_assert_int_eq(c2.nmsg, 2);
    ck_assert_str_eq(c2.vals[0], "M");
    ck_assert_str_eq(c2.vals[1], "N");

    /* pause: P is stored but not delivered until resume */
    ck_assert_int_eq(cc_kafka_pause(c2.k), 0);
    dr dp;
    int pdone = 0;
    produce1(p, "t.order", "p", "P", &dp, &pdone);
    ck_assert(wait_ge(&e.loop, &pdone, 1, 10000));
    ck_assert_int_eq(dp.status, 0);
    run_for(&e.loop, 1000);
    ck_assert_int_eq(c2.nmsg, 2);
    ck_assert_int_eq(cc_kafka_resume(c2.k), 0);
    ck_assert(wait_ge(&e.loop, &c2.nvals, 3, 10000));
    ck_assert_str_eq(c2.vals[2], "P");
    run_for(&e.loop, 300);
    ck_assert_int_eq(c2.nmsg, 3);

    kclose(&e, c2.k);
    kclose(&e, p);
    env_done(&e);
}
END_TEST

typedef struct health {
    cc_kafka *a, *b;
    int want;
} health;

static int
health_is(void *arg)
{
    health *h = arg;
    return cc_kafka_healthy(h->a) == h->want &&
           (!h->b || cc_kafka_healthy(h->b) == h->want);
}

/*
 * Every broker down: a produce is neither confirmed nor failed while they
 * are down, health drops; brokers up: the same produce is confirmed and
 * the consumer gets the record exactly once.
 */
START_TEST(brokers_down_then_up)
{
    static const char *const topics[] = {"t.down:2", NULL};
    /* a session that outlives the outage, so the group does not move */
    static const char *const conf[] = {
        "session.timeout.ms", "15000",
        "heartbeat.interval.ms", "500",
        "reconnect.backoff.ms", "50",
        "reconnect.backoff.max.ms", "300",
        "statistics.interval.ms", "200",
        NULL,
    };
    env e;
    env_init(&e, topics);
    cc_kafka *p;
    ck_assert_int_eq(cc_kafka_new(&p, e.ctx, e.m.bootstrap, NULL, conf), 0);
    ck_assert_int_eq(cc_kafka_healthy(p), 0); /* nothing seen yet */
    cons c;
    cons_init(&c, &e, "t.down");
    cons_start(&e, &c, "g2", conf);
    ck_assert(run_until(&e.loop, flag_set, &c.nev, 20000));
    ck_assert_uint_eq(c.mask, 0x3);
    health h = {p, c.k, 1};
    ck_assert_msg(run_until(&e.loop, health_is, &h, 10000), "not healthy");

    mock_ok(&e.m, "down 1");
    mock_ok(&e.m, "down 2");
    mock_ok(&e.m, "down 3");
    h.want = 0;
    ck_assert_msg(run_until(&e.loop, health_is, &h, 10000),
                  "still healthy with every broker down");
    ck_assert_str_ne(cc_kafka_last_error(p), "");

    dr dx;
    int xdone = 0;
    produce1(p, "t.down", "x", "X", &dx, &xdone);
    run_for(&e.loop, 1500);
    ck_assert_int_eq(dx.calls, 0); /* neither success nor failure */
    ck_assert_int_eq(c.nmsg, 0);

    mock_ok(&e.m, "up all");
    ck_assert_msg(wait_ge(&e.loop, &xdone, 1, 20000), "no delivery after up");
    ck_assert_int_eq(dx.calls, 1);
    ck_assert_int_eq(dx.status, 0);
    ck_assert_int_eq(dx.offset, 0);
    ck_assert(wait_ge(&e.loop, &c.nmsg, 1, 20000));
    h.want = 1;
    ck_assert(run_until(&e.loop, health_is, &h, 10000));
    run_for(&e.loop, 500);
    ck_assert_int_eq(c.nmsg, 1);
    ck_assert_int_eq(c.nvals, 1);
    ck_assert_str_eq(c.vals[0], "X");
    ck_assert_int_eq(c.nev, 1); /* the group never moved */

    kclose(&e, c.k);
    kclose(&e, p);
    env_done(&e);
}
END_TEST

/* Two consumers of one group, as pairs a/b per assignor. */
typedef struct pair {
    cons a, b;
    const char *topic;
} pair;

static int
pairs_split(void *arg)
{
    pair *ps = arg;
    for (int i = 0; i < 2; i++) {
        pair *q = &ps[i];
        if (!q->a.mask || !q->b.mask || (q->a.mask | q->b.mask) != 0x3f ||
            (q->a.mask & q->b.mask))
            return 0;
    }
    return 1;
}

static int
pairs_a_all(void *arg)
{
    pair *ps = arg;
    return ps[0].a.mask == 0x3f && ps[1].a.mask == 0x3f &&
           ps[0].b.closed && ps[1].b.closed;
}

static void
produce_n(cc_kafka *p, const char *topic, int n, const char *val, dr *d,
          int *done)
{
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "key-%d", i);
        produce1(p, topic, key, val, &d[i], done);
    }
}

/*
 * Two consumers split the partitions; when one closes, the rebalance
 * callback reports exactly its partitions as revoked, and the other one
 * gets them: incrementally under cooperative-sticky, as revoke-all then
 * assign-all under the eager range assignor. The closing consumer of the
 * cooperative group defers its revoke for 300 ms.
 */
START_TEST(group_split_and_rebalance)
{
    static const char *const topics[] = {"t.coop:6", "t.eager:6", NULL};
    static const char *const eager[] = {
        "consumer.session.timeout.ms", "4000",
        "consumer.heartbeat.interval.ms", "500",
        "consumer.partition.assignment.strategy", "range",
        NULL,
    };
    env e;
    env_init(&e, topics);
    pair ps[2];
    ps[0].topic = "t.coop";
    ps[1].topic = "t.eager";
    for (int i = 0; i < 2; i++) {
        cons_init(&ps[i].a, &e, ps[i].topic);
        cons_init(&ps[i].b, &e, ps[i].topic);
    }
    cons_start(&e, &ps[0].a, "gc", FAST);
    cons_start(&e, &ps[0].b, "gc", FAST);
    cons_start(&e, &ps[1].a, "ge", eager);
    cons_start(&e, &ps[1].b, "ge", eager);
    ck_assert_msg(run_until(&e.loop, pairs_split, ps, 20000),
                  "no split: coop %x/%x eager %x/%x", ps[0].a.mask,
                  ps[0].b.mask, ps[1].a.mask, ps[1].b.mask);

    cc_kafka *p;
    ck_assert_int_eq(cc_kafka_new(&p, e.ctx, e.m.bootstrap, NULL, FAST), 0);
    static dr d[2][72];
    int done = 0;
    for (int i = 0; i < 2; i++)
        produce_n(p, ps[i].topic, 60, "v", d[i], &done);
    ck_assert(wait_ge(&e.loop, &done, 120, 15000));
    for (int i = 0; i < 2; i++) {
        pair *q = &ps[i];
        for (int j = 0; j < 60; j++)
            ck_assert_int_eq(d[i][j].status, 0);
        int total = 0;
        for (int t = 0; t < 2000 && total < 60; t += 10) {
            total = q->a.nmsg + q->b.nmsg;
            if (total < 60)
                run_for(&e.loop, 10);
        }
        ck_assert_int_eq(q->a.nmsg + q->b.nmsg, 60);
        ck_assert_int_gt(q->a.nmsg, 0);
        ck_assert_int_gt(q->b.nmsg, 0);
        ck_assert(q->a.part_ok && q->b.part_ok);
    }

    unsigned amask[2], bmask[2];
    int anev[2];
    for (int i = 0; i < 2; i++) {
        amask[i] = ps[i].a.mask;
        bmask[i] = ps[i].b.mask;
        anev[i] = ps[i].a.nev;
    }
    ps[0].b.defer_revoke = 1;
    for (int i = 0; i < 2; i++)
        cc_kafka_close(ps[i].b.k, on_k_closed, &ps[i].b.closed);
    ck_assert_msg(run_until(&e.loop, pairs_a_all, ps, 20000),
                  "survivors: coop %x eager %x", ps[0].a.mask,
                  ps[1].a.mask);
    for (int i = 0; i < 2; i++) {
        cons *b = &ps[i].b;
        ck_assert_int_eq(b->closed, 1);
        ck_assert_int_eq(b->mask, 0);
        /* its last rebalance: exactly its partitions, revoked */
        ck_assert_int_eq(b->ev[b->nev - 1].assigned, 0);
        ck_assert_uint_eq(b->ev[b->nev - 1].mask, bmask[i]);
    }
    ck_assert_int_eq(ps[0].b.defer_rc, 0);
    ck_assert_int_eq(ps[0].b.done_rc, 0);
    ck_assert_int_eq(ps[0].b.deferred_at_nev, ps[0].b.nev);

    /* cooperative: one incremental assignment of b's partitions */
    cons *a = &ps[0].a;
    ck_assert_int_eq(a->nev, anev[0] + 1);
    ck_assert_int_eq(a->ev[a->nev - 1].assigned, 1);
    ck_assert_uint_eq(a->ev[a->nev - 1].mask, bmask[0]);
    /* eager: everything revoked, then everything assigned */
    a = &ps[1].a;
    ck_assert_int_eq(a->nev, anev[1] + 2);
    ck_assert_int_eq(a->ev[a->nev - 2].assigned, 0);
    ck_assert_uint_eq(a->ev[a->nev - 2].mask, amask[1]);
    ck_assert_int_eq(a->ev[a->nev - 1].assigned, 1);
    ck_assert_uint_eq(a->ev[a->nev - 1].mask, 0x3f);

    /* the survivor now gets every partition's records (and, again, the
     * uncommitted ones of the partitions it took over) */
    int done2 = 0;
    for (int i = 0; i < 2; i++)
        produce_n(p, ps[i].topic, 12, "w", d[i] + 60, &done2);
    ck_assert(wait_ge(&e.loop, &done2, 24, 15000));
    for (int i = 0; i < 2; i++) {
        cons *s1 = &ps[i].a;
        char hist[256] = "";
        for (int j = 0; j < s1->nev; j++)
            snprintf(hist + strlen(hist), sizeof hist - strlen(hist),
                     " %c%x", s1->ev[j].assigned ? '+' : '-', s1->ev[j].mask);
        ck_assert_msg(wait_ge(&e.loop, &s1->nw, 12, 15000),
                      "%s: %d of 12 new records, %d in all, rebalances%s",
                      ps[i].topic, s1->nw, s1->nmsg, hist);
    }
    run_for(&e.loop, 300);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(ps[i].a.nw, 12);
        ck_assert_int_ge(ps[i].a.nmsg, 72);
        ck_assert(ps[i].a.part_ok);
    }

    for (int i = 0; i < 2; i++)
        kclose(&e, ps[i].a.k);
    kclose(&e, p);
    env_done(&e);
}
END_TEST

/* Every pending callback runs exactly once when a client closes. */
START_TEST(close_with_pending)
{
    static const char *const topics[] = {"t.close:2", NULL};
    /* librdkafka 2.0.2 holds a consumer's close while a commit waits for
     * an unreachable coordinator, for up to session.timeout.ms */
    static const char *const quick_close[] = {
        "chatcore.close.timeout.ms", "300",
        "reconnect.backoff.max.ms", "300",
        "consumer.session.timeout.ms", "2000",
        "consumer.heartbeat.interval.ms", "500",
        NULL,
    };
    env e;
    env_init(&e, topics);

    /* brokers up: close waits for the results, all successes */
    cc_kafka *p;
    ck_assert_int_eq(cc_kafka_new(&p, e.ctx, e.m.bootstrap, NULL, NULL), 0);
    enum { N = 200 };
    static dr d[N];
    int done = 0;
    for (int i = 0; i < N; i++)
        produce1(p, "t.close", NULL, "v", &d[i], &done);
    ck_assert_int_eq(done, 0);
    int closed = 0;
    cc_kafka_close(p, on_k_closed, &closed);
    cc_kafka_close(p, on_k_closed, &closed); /* a second close: no-op */
    ck_assert_int_eq(cc_kafka_produce(p, "t.close", NULL, 0, "v", 1, on_dr,
                                      &d[0]),
                     CC_ESTATE);
    ck_assert_int_eq(cc_kafka_healthy(p), 0);
    ck_assert(run_until(&e.loop, flag_set, &closed, 20000));
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(done, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(d[i].calls, 1);
        ck_assert_int_eq(d[i].status, 0);
    }

    /* brokers down: close gives up after 300 ms, every produce cancelled;
     * a consumer's pending commit is cancelled too */
    mock_ok(&e.m, "down all");
    ck_assert_int_eq(
        cc_kafka_new(&p, e.ctx, e.m.bootstrap, "g4", quick_close), 0);
    done = 0;
    for (int i = 0; i < 50; i++)
        produce1(p, "t.close", "k", "v", &d[i], &done);
    commit_res cr = {0, 0, NULL};
    int cdone = 0;
    cr.done = &cdone;
    ck_assert_int_eq(cc_kafka_commit(p, "t.close", 0, 5, on_commit, &cr), 0);
    run_for(&e.loop, 200);
    ck_assert_int_eq(done, 0);
    closed = 0;
    cc_kafka_close(p, on_k_closed, &closed);
    ck_assert(run_until(&e.loop, flag_set, &closed, 20000));
    ck_assert_int_eq(done, 50);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(d[i].calls, 1);
        ck_assert_int_eq(d[i].status, CC_ECANCELED);
        ck_assert_int_eq(d[i].partition, -1);
        ck_assert_int_eq(d[i].offset, -1);
    }
    ck_assert_int_eq(cr.calls, 1);
    ck_assert_int_ne(cr.status, 0);
    mock_ok(&e.m, "up all");
    env_done(&e);
}
END_TEST

static void
never_cb(cc_kafka *k, int status, void *data)
{
    (void)k;
    (void)status;
    (void)data;
    ck_abort_msg("callback of a failed call ran");
}

static void
never_dr(cc_kafka *k, int status, int32_t partition, int64_t offset,
         void *data)
{
    (void)k;
    (void)status;
    (void)partition;
    (void)offset;
    (void)data;
    ck_abort_msg("callback of a failed call ran");
}

static void
never_msg(cc_kafka *k, const cc_kafka_msg *m, void *data)
{
    (void)k;
    (void)m;
    (void)data;
}

/* ---- manual assignment, explicit partitions, partition counts ---- */

#define RMAX 64

/* A reader of a cc_kafka_assign() assignment that records what it gets. */
typedef struct reader {
    cc_kafka *k;
    int n;
    int32_t part[RMAX];
    int64_t off[RMAX];
    char val[RMAX][16];
} reader;

static void
on_read(cc_kafka *k, const cc_kafka_msg *m, void *data)
{
    reader *r = data;
    ck_assert_ptr_eq(k, r->k);
    ck_assert_int_lt(r->n, RMAX);
    ck_assert_ptr_nonnull(m->value.base);
    ck_assert_uint_lt(m->value.len, sizeof r->val[0]);
    r->part[r->n] = m->partition;
    r->off[r->n] = m->offset;
    memcpy(r->val[r->n], m->value.base, m->value.len);
    r->val[r->n][m->value.len] = '\0';
    r->n++;
}

static int
assign_settled(void *arg)
{
    return cc_kafka_assigned(arg) != 0;
}

/* Assign and wait until the assignment is live (or failed: returns the
 * final cc_kafka_assigned() value). */
static int
reader_start(env *e, reader *r, const cc_kafka_partition *parts, size_t n,
             int64_t start)
{
    memset(r, 0, sizeof *r);
    ck_assert_int_eq(cc_kafka_new(&r->k, e->ctx, e->m.bootstrap, "readers",
                                  FAST),
                     0);
    debug_log(r->k, "reader");
    ck_assert_int_eq(cc_kafka_assign(r->k, parts, n, start, on_read, r), 0);
    ck_assert_int_eq(cc_kafka_assigned(r->k), 0); /* never at once */
    ck_assert_msg(run_until(&e->loop, assign_settled, r->k, 15000),
                  "assignment still not live");
    return cc_kafka_assigned(r->k);
}

/* The records of partition `part` that r got, "v1,v2,..". */
static void
reader_vals(const reader *r, int32_t part, char *out, size_t size)
{
    out[0] = '\0';
    int64_t last = -1;
    for (int i = 0; i < r->n; i++) {
        if (r->part[i] != part)
            continue;
        ck_assert_int_gt(r->off[i], last); /* offset order */
        last = r->off[i];
        snprintf(out + strlen(out), size - strlen(out), "%s%s",
                 *out ? "," : "", r->val[i]);
    }
}

/*
 * cc_kafka_produce_to() lands on the asked partition (delivery report, and
 * a reader of that partition); an assignment of 1 of 4 partitions from the
 * beginning gets exactly that partition's records, one of all 4 gets
 * everything; pause/resume hold records of an assignment; a cc_kafka that
 * assigned can neither subscribe nor commit; a missing partition or topic
 * ends the assignment with CC_ENOENT.
 */
START_TEST(produce_to_and_assign)
{
    static const char *const topics[] = {"t.part:4", NULL};
    env e;
    env_init(&e, topics);
    cc_kafka *p;
    ck_assert_int_eq(cc_kafka_new(&p, e.ctx, e.m.bootstrap, NULL, FAST), 0);
    debug_log(p, "producer");

    static dr d[13];
    int done = 0;
    for (int i = 0; i < 12; i++) {
        char val[16];
        snprintf(val, sizeof val, "p%d-%d", i % 4, i / 4);
        memset(&d[i], 0, sizeof d[i]);
        d[i].done = &done;
        ck_assert_int_eq(cc_kafka_produce_to(p, "t.part", i % 4, NULL, 0,
                                             val, strlen(val), on_dr, &d[i]),
                         0);
    }
    /* -1: the partitioner, so a keyed record goes where the hash says */
    memset(&d[12], 0, sizeof d[12]);
    d[12].done = &done;
    ck_assert_int_eq(cc_kafka_produce_to(p, "t.part", -1, "any", 3, "any", 3,
                                         on_dr, &d[12]),
                     0);
    ck_assert(wait_ge(&e.loop, &done, 13, 15000));
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(d[i].calls, 1);
        ck_assert_int_eq(d[i].status, 0);
        ck_assert_int_eq(d[i].partition, i % 4);
        ck_assert_int_eq(d[i].offset, i / 4);
    }
    int32_t anyp = (int32_t)(cc_kafka_hash("any", 3) % 4);
    ck_assert_int_eq(d[12].status, 0);
    ck_assert_int_eq(d[12].partition, anyp);
    ck_assert_int_eq(d[12].offset, 3);
    /* the producer knows the count now: a partition beyond it fails at
     * once, and no callback runs */
    ck_assert_int_eq(cc_kafka_produce_to(p, "t.part", 4, NULL, 0, "x", 1,
                                         never_dr, NULL),
                     CC_ENOENT);
    ck_assert_int_eq(cc_kafka_produce_to(p, "t.part", -2, NULL, 0, "x", 1,
                                         never_dr, NULL),
                     CC_EINVAL);
    /* a fresh producer does not know it yet: the callback says so */
    cc_kafka *p2;
    ck_assert_int_eq(cc_kafka_new(&p2, e.ctx, e.m.bootstrap, NULL, FAST), 0);
    dr dx;
    int xdone = 0;
    memset(&dx, 0, sizeof dx);
    dx.done = &xdone;
    ck_assert_int_eq(cc_kafka_produce_to(p2, "t.part", 9, NULL, 0, "x", 1,
                                         on_dr, &dx),
                     0);
    ck_assert(wait_ge(&e.loop, &xdone, 1, 10000));
    ck_assert_int_eq(dx.status, CC_ENOENT);
    ck_assert_int_eq(dx.partition, -1);
    ck_assert_int_eq(dx.offset, -1);
    kclose(&e, p2);

    /* one partition of four, from the beginning */
    reader r2, all;
    const cc_kafka_partition two[] = {{"t.part", 2}};
    ck_assert_int_eq(reader_start(&e, &r2, two, 1,
                                  CC_KAFKA_OFFSET_BEGINNING),
                     1);
    int want2 = anyp == 2 ? 4 : 3;
    ck_assert_msg(wait_ge(&e.loop, &r2.n, want2, 10000), "got %d of %d",
                  r2.n, want2);
    /* all four, from the beginning */
    const cc_kafka_partition four[] = {
        {"t.part", 0}, {"t.part", 1}, {"t.part", 2}, {"t.part", 3}};
    ck_assert_int_eq(reader_start(&e, &all, four, 4,
                                  CC_KAFKA_OFFSET_BEGINNING),
                     1);
    ck_assert_msg(wait_ge(&e.loop, &all.n, 13, 10000), "got %d of 13",
                  all.n);
    run_for(&e.loop, 300);
    ck_assert_int_eq(r2.n, want2);
    ck_assert_int_eq(all.n, 13);
    for (int32_t q = 0; q < 4; q++) {
        char got[128], want[128];
        snprintf(want, sizeof want, "p%d-0,p%d-1,p%d-2%s", (int)q, (int)q,
                 (int)q, q == anyp ? ",any" : "");
        reader_vals(&all, q, got, sizeof got);
        ck_assert_str_eq(got, want);
        if (q == 2) {
            reader_vals(&r2, 2, got, sizeof got);
            ck_assert_str_eq(got, want); /* and nothing of another one */
        }
    }

    /* pause holds the records of an assignment until resume */
    ck_assert_int_eq(cc_kafka_pause(r2.k), 0);
    dr dl;
    int ldone = 0;
    memset(&dl, 0, sizeof dl);
    dl.done = &ldone;
    ck_assert_int_eq(cc_kafka_produce_to(p, "t.part", 2, NULL, 0, "late", 4,
                                         on_dr, &dl),
                     0);
    ck_assert(wait_ge(&e.loop, &ldone, 1, 10000));
    ck_assert_int_eq(dl.status, 0);
    ck_assert_int_eq(dl.partition, 2);
    ck_assert_msg(wait_ge(&e.loop, &all.n, 14, 10000), "all: %d", all.n);
    run_for(&e.loop, 500);
    ck_assert_int_eq(r2.n, want2);
    ck_assert_int_eq(cc_kafka_resume(r2.k), 0);
    ck_assert(wait_ge(&e.loop, &r2.n, want2 + 1, 10000));
    ck_assert_str_eq(r2.val[want2], "late");
    ck_assert_int_eq(r2.part[want2], 2);
    ck_assert_int_eq(r2.off[want2], dl.offset);

    /* either assign or subscribe, once; no commits */
    const char *t[] = {"t.part"};
    ck_assert_int_eq(cc_kafka_subscribe(r2.k, t, 1, never_msg, NULL, NULL),
                     CC_EBUSY);
    ck_assert_int_eq(cc_kafka_assign(r2.k, four, 4, CC_KAFKA_OFFSET_END,
                                     on_read, &r2),
                     CC_EBUSY);
    ck_assert_int_eq(cc_kafka_commit(r2.k, "t.part", 2, 1, never_cb, NULL),
                     CC_ESTATE);

    /* a partition or a topic that does not exist */
    reader bad;
    const cc_kafka_partition nine[] = {{"t.part", 1}, {"t.part", 9}};
    ck_assert_int_eq(reader_start(&e, &bad, nine, 2, CC_KAFKA_OFFSET_END),
                     CC_ENOENT);
    ck_assert_str_eq(cc_kafka_last_error(bad.k),
                     "assign: t.part [9] does not exist");
    kclose(&e, bad.k);
    const cc_kafka_partition none[] = {{"t.none", 0}};
    ck_assert_int_eq(reader_start(&e, &bad, none, 1,
                                  CC_KAFKA_OFFSET_BEGINNING),
                     CC_ENOENT);
    kclose(&e, bad.k);

    ck_assert_int_eq(cc_kafka_assigned(r2.k), 1);
    kclose(&e, r2.k);
    kclose(&e, all.k);
    kclose(&e, p);
    env_done(&e);
}
END_TEST

/* Produce n values "<prefix><i>" to one partition and wait for them. */
static void
produce_seq(env *e, cc_kafka *p, const char *topic, int32_t part,
            const char *prefix, int n)
{
    static dr d[16];
    int done = 0;
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++) {
        char val[16];
        snprintf(val, sizeof val, "%s%d", prefix, i);
        memset(&d[i], 0, sizeof d[i]);
        d[i].done = &done;
        ck_assert_int_eq(cc_kafka_produce_to(p, topic, part, NULL, 0, val,
                                             strlen(val), on_dr, &d[i]),
                         0);
    }
    ck_assert(wait_ge(&e->loop, &done, n, 15000));
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(d[i].status, 0);
        ck_assert_int_eq(d[i].partition, part);
    }
}

/*
 * From the end: 5 records before the assignment is live are not
 * delivered, the 5 produced right after it are, all of them, in order;
 * from an absolute offset: the records from there on.
 */
START_TEST(assign_from_end)
{
    static const char *const topics[] = {"t.end:2", NULL};
    env e;
    env_init(&e, topics);
    cc_kafka *p;
    ck_assert_int_eq(cc_kafka_new(&p, e.ctx, e.m.bootstrap, NULL, FAST), 0);
    produce_seq(&e, p, "t.end", 0, "b", 5);

    reader r, abs3;
    const cc_kafka_partition both[] = {{"t.end", 0}, {"t.end", 1}};
    ck_assert_int_eq(reader_start(&e, &r, both, 2, CC_KAFKA_OFFSET_END), 1);
    /* produced the moment the assignment is live */
    produce_seq(&e, p, "t.end", 0, "a", 5);
    produce_seq(&e, p, "t.end", 1, "c", 2);
    ck_assert_msg(wait_ge(&e.loop, &r.n, 7, 10000), "got %d of 7", r.n);
    const cc_kafka_partition zero[] = {{"t.end", 0}};
    ck_assert_int_eq(reader_start(&e, &abs3, zero, 1, 3), 1);
    ck_assert_msg(wait_ge(&e.loop, &abs3.n, 7, 10000), "got %d of 7",
                  abs3.n);
    run_for(&e.loop, 300);
    ck_assert_int_eq(r.n, 7);
    char got[128];
    reader_vals(&r, 0, got, sizeof got);
    ck_assert_str_eq(got, "a0,a1,a2,a3,a4");
    reader_vals(&r, 1, got, sizeof got);
    ck_assert_str_eq(got, "c0,c1");
    for (int i = 0; i < r.n; i++)
        if (r.part[i] == 0)
            ck_assert_int_ge(r.off[i], 5);
    ck_assert_int_eq(abs3.n, 7);
    reader_vals(&abs3, 0, got, sizeof got);
    ck_assert_str_eq(got, "b3,b4,a0,a1,a2,a3,a4");
    ck_assert_int_eq(abs3.off[0], 3);

    kclose(&e, r.k);
    kclose(&e, abs3.k);
    kclose(&e, p);
    env_done(&e);
}
END_TEST

typedef struct pcount {
    int calls, status;
    int32_t count;
    int *done;
} pcount;

static void
on_count(cc_kafka *k, int status, int32_t count, void *data)
{
    (void)k;
    pcount *c = data;
    c->calls++;
    c->status = status;
    c->count = count;
    if (c->done)
        (*c->done)++;
}

static uint32_t
xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/*
 * The mock's default topics have the partition counts the distributed mode
 * expects, and cc_kafka_partitions() reports them (several look-ups at
 * once), CC_ENOENT for a missing topic (which it does not create);
 * cc_kafka_hash() matches the Java client's murmur2 and, modulo the
 * count, the partition librdkafka's murmur2_random partitioner picks.
 */
START_TEST(partitions_and_hash)
{
    static const char *const chat_defaults[] = {NULL};
    env e;
    env_init(&e, chat_defaults);
    cc_kafka *p;
    ck_assert_int_eq(cc_kafka_new(&p, e.ctx, e.m.bootstrap, NULL, FAST), 0);
    debug_log(p, "producer");
    static const struct {
        const char *topic;
        int status;
        int32_t count;
    } want[] = {
        {"chat.in", 0, 16},   {"chat.out", 0, 16},
        {"chat.control", 0, 1}, {"chat.dlq", 0, 4},
        {"chat.nope", CC_ENOENT, -1},
    };
    enum { NT = sizeof want / sizeof want[0] };
    pcount pc[NT];
    int done = 0;
    memset(pc, 0, sizeof pc);
    for (int i = 0; i < NT; i++) {
        pc[i].done = &done;
        ck_assert_int_eq(cc_kafka_partitions(p, want[i].topic, on_count,
                                             &pc[i]),
                         0);
    }
    ck_assert_int_eq(done, 0); /* never from inside the call */
    ck_assert(wait_ge(&e.loop, &done, NT, 15000));
    for (int i = 0; i < NT; i++) {
        ck_assert_int_eq(pc[i].calls, 1);
        ck_assert_msg(pc[i].status == want[i].status, "%s: %d",
                      want[i].topic, pc[i].status);
        ck_assert_int_eq(pc[i].count, want[i].count);
    }
    /* asking did not create it */
    pcount again = {0, 0, 0, &done};
    ck_assert_int_eq(cc_kafka_partitions(p, "chat.nope", on_count, &again),
                     0);
    ck_assert(wait_ge(&e.loop, &done, NT + 1, 15000));
    ck_assert_int_eq(again.status, CC_ENOENT);
    kclose(&e, p);

    /* Kafka's own murmur2 test vectors (Utils.murmur2, made positive) */
    static const struct {
        const char *key;
        int32_t java; /* the signed value Java's murmur2 returns */
    } vec[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
        ck_assert_uint_eq(cc_kafka_hash(vec[i].key, strlen(vec[i].key)),
                          (uint32_t)vec[i].java & 0x7fffffffu);
    ck_assert_uint_eq(cc_kafka_hash(NULL, 0), cc_kafka_hash("", 0));

    /* against the partitioner, on a topic whose count is no power of 2 */
    static const char *const hashed[] = {"t.hash:7", NULL};
    mock m2;
    memset(&m2, 0, sizeof m2);
    mock_start(&m2, hashed);
    ck_assert_int_eq(cc_kafka_new(&p, e.ctx, m2.bootstrap, NULL, FAST), 0);
    enum { NK = 256 };
    static unsigned char keys[NK][32];
    static size_t klen[NK];
    static dr d[NK];
    uint32_t seed = 0x2545f491u;
    done = 0;
    int hits[7] = {0};
    for (int i = 0; i < NK; i++) {
        klen[i] = 1 + xorshift(&seed) % 32;
        for (size_t j = 0; j < klen[i]; j++)
            keys[i][j] = (unsigned char)xorshift(&seed); /* any byte */
        memset(&d[i], 0, sizeof d[i]);
        d[i].done = &done;
        ck_assert_int_eq(cc_kafka_produce(p, "t.hash", keys[i], klen[i], "h",
                                          1, on_dr, &d[i]),
                         0);
    }
    ck_assert(wait_ge(&e.loop, &done, NK, 15000));
    for (int i = 0; i < NK; i++) {
        ck_assert_int_eq(d[i].status, 0);
        ck_assert_msg(d[i].partition ==
                          (int32_t)(cc_kafka_hash(keys[i], klen[i]) % 7),
                      "key %d (%zu bytes): partition %d, hash says %u", i,
                      klen[i], (int)d[i].partition,
                      cc_kafka_hash(keys[i], klen[i]) % 7);
        hits[d[i].partition]++;
    }
    for (int i = 0; i < 7; i++)
        ck_assert_int_gt(hits[i], 0); /* the keys did spread */
    pcount h7 = {0, 0, 0, &done};
    ck_assert_int_eq(cc_kafka_partitions(p, "t.hash", on_count, &h7), 0);
    ck_assert(wait_ge(&e.loop, &done, NK + 1, 15000));
    ck_assert_int_eq(h7.status, 0);
    ck_assert_int_eq(h7.count, 7);
    kclose(&e, p);
    mock_stop(&m2);
    env_done(&e);
}
END_TEST

static void
never_count(cc_kafka *k, int status, int32_t count, void *data)
{
    (void)k;
    (void)status;
    (void)count;
    (void)data;
    ck_abort_msg("callback of a failed call ran");
}

/* Argument and state errors, and the allocation failure paths; no broker
 * needed (nothing listens on port 1). */
START_TEST(api_errors)
{
    static const char *const quick[] = {"chatcore.close.timeout.ms", "500",
                                        "chatcore.metadata.timeout.ms", "300",
                                        NULL};
    static const char *const badmeta[] = {"chatcore.metadata.timeout.ms",
                                          "0", NULL};
    static const char *const odd[] = {"acks", NULL};
    static const char *const badkey[] = {"no.such.property", "1", NULL};
    static const char *const badval[] = {"acks", "banana", NULL};
    static const char *const badown[] = {"chatcore.nope", "1", NULL};
    static const char *const badms[] = {"chatcore.close.timeout.ms", "x",
                                        NULL};
    static const char *const badpfx[] = {"producer.", "1", NULL};
    static const char *const badpkey[] = {"producer.no.such", "1", NULL};
    static const char *const badckey[] = {"consumer.no.such", "1", NULL};
    /* each key is fine, together they are not: idempotence needs acks=all */
    static const char *const clash[] = {"acks", "1", NULL};
    env e;
    env_init(&e, NULL);
    size_t base = e.ta.bytes; /* what the ctx itself holds */
    const char *b = "127.0.0.1:1";
    cc_kafka *k = (cc_kafka *)&e; /* must be reset to NULL on failure */
    ck_assert_int_eq(cc_kafka_new(NULL, e.ctx, b, NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, NULL, b, NULL, NULL), CC_EINVAL);
    ck_assert_ptr_null(k);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, NULL, NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, "", NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, "", NULL), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, odd), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, badkey), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, badval), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, badown), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, badms), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, badmeta), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, badpfx), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, badpkey), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, "g", badckey), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, clash), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, "g", clash), CC_EINVAL);
    ck_assert_ptr_null(k);
    ck_assert_uint_eq(e.ta.bytes, base);
    e.ta.fail_at = e.ta.nalloc + 1;
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, "g", NULL), CC_ENOMEM);
    ck_assert_uint_eq(e.ta.bytes, base);

    /* a producer only */
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, NULL, quick), 0);
    ck_assert_int_eq(cc_kafka_healthy(k), 0);
    ck_assert_str_eq(cc_kafka_last_error(k), "");
    cc_kafka_set_data(k, &e);
    ck_assert_ptr_eq(cc_kafka_get_data(k), &e);
    const char *t[] = {"t"};
    ck_assert_int_eq(cc_kafka_subscribe(k, t, 1, never_msg, NULL, NULL),
                     CC_ESTATE);
    ck_assert_int_eq(cc_kafka_commit(k, "t", 0, 1, never_cb, NULL),
                     CC_ESTATE);
    ck_assert_int_eq(cc_kafka_pause(k), CC_ESTATE);
    ck_assert_int_eq(cc_kafka_resume(k), CC_ESTATE);
    ck_assert_int_eq(cc_kafka_rebalance_defer(k), CC_ESTATE);
    ck_assert_int_eq(cc_kafka_rebalance_done(k), CC_ESTATE);
    ck_assert_int_eq(cc_kafka_assignment_lost(k), 0);
    ck_assert_int_eq(cc_kafka_produce(NULL, "t", NULL, 0, NULL, 0, NULL,
                                      NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_produce(k, NULL, NULL, 0, NULL, 0, NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_produce(k, "", NULL, 0, NULL, 0, NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_produce(k, "t", NULL, 3, NULL, 0, NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_produce(k, "t", NULL, 0, NULL, 3, NULL, NULL),
                     CC_EINVAL);
    e.ta.fail_at = e.ta.nalloc + 1;
    ck_assert_int_eq(cc_kafka_produce(k, "t", "k", 1, "v", 1,
                                      never_dr, NULL),
                     CC_ENOMEM);
    ck_assert_int_eq(cc_kafka_produce_to(NULL, "t", 0, NULL, 0, NULL, 0,
                                         NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_produce_to(k, "t", -2, NULL, 0, NULL, 0, NULL,
                                         NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_produce_to(k, "", 0, NULL, 0, NULL, 0, NULL,
                                         NULL),
                     CC_EINVAL);
    e.ta.fail_at = e.ta.nalloc + 1;
    ck_assert_int_eq(cc_kafka_produce_to(k, "t", 1, "k", 1, "v", 1,
                                         never_dr, NULL),
                     CC_ENOMEM);
    const cc_kafka_partition tp[] = {{"t", 0}, {"t", 1}};
    ck_assert_int_eq(cc_kafka_assign(k, tp, 1, CC_KAFKA_OFFSET_END,
                                     never_msg, NULL),
                     CC_ESTATE);
    ck_assert_int_eq(cc_kafka_assigned(k), CC_ESTATE);
    ck_assert_int_eq(cc_kafka_assigned(NULL), CC_EINVAL);
    ck_assert_int_eq(cc_kafka_partitions(NULL, "t", never_count, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_partitions(k, NULL, never_count, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_partitions(k, "", never_count, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_partitions(k, "t", NULL, NULL), CC_EINVAL);
    e.ta.fail_at = e.ta.nalloc + 1;
    ck_assert_int_eq(cc_kafka_partitions(k, "t", never_count, NULL),
                     CC_ENOMEM);
    /* no broker answers: CC_ETIMEDOUT after chatcore.metadata.timeout.ms */
    int pdone = 0;
    pcount pc = {0, 0, 0, &pdone};
    ck_assert_int_eq(cc_kafka_partitions(k, "t", on_count, &pc), 0);
    ck_assert(wait_ge(&e.loop, &pdone, 1, 5000));
    ck_assert_int_eq(pc.calls, 1);
    ck_assert_int_eq(pc.status, CC_ETIMEDOUT);
    ck_assert_int_eq(pc.count, -1);
    /* a look-up pending at close: close waits for it, its cb runs once */
    pcount pend = {0, 0, 0, &pdone};
    ck_assert_int_eq(cc_kafka_partitions(k, "t", on_count, &pend), 0);
    kclose(&e, k);
    ck_assert_int_eq(pend.calls, 1);
    ck_assert_int_eq(pend.status, CC_ETIMEDOUT);

    /* a consumer */
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, "g", quick), 0);
    ck_assert_int_eq(cc_kafka_subscribe(k, t, 0, never_msg, NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_subscribe(k, NULL, 1, never_msg, NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_subscribe(k, t, 1, NULL, NULL, NULL),
                     CC_EINVAL);
    const char *empty[] = {""};
    ck_assert_int_eq(cc_kafka_subscribe(k, empty, 1, never_msg, NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_commit(k, "t", 0, -1, never_cb, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_commit(k, "t", -1, 0, never_cb, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_commit(k, NULL, 0, 0, never_cb, NULL),
                     CC_EINVAL);
    e.ta.fail_at = e.ta.nalloc + 1;
    ck_assert_int_eq(cc_kafka_commit(k, "t", 0, 1, never_cb, NULL),
                     CC_ENOMEM);
    ck_assert_int_eq(cc_kafka_subscribe(k, t, 1, never_msg, NULL, NULL), 0);
    ck_assert_int_eq(cc_kafka_subscribe(k, t, 1, never_msg, NULL, NULL),
                     CC_EBUSY);
    ck_assert_int_eq(cc_kafka_assign(k, tp, 2, CC_KAFKA_OFFSET_END,
                                     never_msg, NULL),
                     CC_EBUSY);
    ck_assert_int_eq(cc_kafka_assigned(k), CC_ESTATE);
    ck_assert_int_eq(cc_kafka_pause(k), 0);
    ck_assert_int_eq(cc_kafka_pause(k), 0);
    ck_assert_int_eq(cc_kafka_resume(k), 0);
    int closed = 0;
    cc_kafka_close(k, on_k_closed, &closed);
    ck_assert_int_eq(cc_kafka_subscribe(k, t, 1, never_msg, NULL, NULL),
                     CC_ESTATE);
    ck_assert_int_eq(cc_kafka_pause(k), CC_ESTATE);
    ck_assert(run_until(&e.loop, flag_set, &closed, 10000));
    ck_assert_int_eq(closed, 1);

    /* a consumer that assigns */
    ck_assert_int_eq(cc_kafka_new(&k, e.ctx, b, "g", quick), 0);
    const cc_kafka_partition dup[] = {{"t", 0}, {"t", 0}};
    const cc_kafka_partition neg[] = {{"t", -1}};
    const cc_kafka_partition noname[] = {{NULL, 0}};
    const cc_kafka_partition emptyname[] = {{"", 0}};
    ck_assert_int_eq(cc_kafka_assign(NULL, tp, 2, CC_KAFKA_OFFSET_END,
                                     never_msg, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_assign(k, NULL, 2, CC_KAFKA_OFFSET_END,
                                     never_msg, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_assign(k, tp, 0, CC_KAFKA_OFFSET_END,
                                     never_msg, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_assign(k, tp, 2, CC_KAFKA_OFFSET_END, NULL,
                                     NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_assign(k, tp, 2, -3, never_msg, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_assign(k, dup, 2, 0, never_msg, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_assign(k, neg, 1, 0, never_msg, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_assign(k, noname, 1, 0, never_msg, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc_kafka_assign(k, emptyname, 1, 0, never_msg, NULL),
                     CC_EINVAL);
    e.ta.fail_at = e.ta.nalloc + 1;
    ck_assert_int_eq(cc_kafka_assign(k, tp, 2, CC_KAFKA_OFFSET_END,
                                     never_msg, NULL),
                     CC_ENOMEM);
    ck_assert_int_eq(cc_kafka_assigned(k), CC_ESTATE);
    ck_assert_int_eq(cc_kafka_assign(k, tp, 2, CC_KAFKA_OFFSET_END,
                                     never_msg, NULL),
                     0);
    ck_assert_int_eq(cc_kafka_assign(k, tp, 2, CC_KAFKA_OFFSET_END,
                                     never_msg, NULL),
                     CC_EBUSY);
    ck_assert_int_eq(cc_kafka_subscribe(k, t, 1, never_msg, NULL, NULL),
                     CC_EBUSY);
    ck_assert_int_eq(cc_kafka_commit(k, "t", 0, 1, never_cb, NULL),
                     CC_ESTATE);
    ck_assert_int_eq(cc_kafka_pause(k), 0);
    ck_assert_int_eq(cc_kafka_resume(k), 0);
    /* no broker: the look-up fails and is retried, never live */
    run_for(&e.loop, 800);
    ck_assert_int_eq(cc_kafka_assigned(k), 0);
    ck_assert_str_ne(cc_kafka_last_error(k), "");
    closed = 0;
    cc_kafka_close(k, on_k_closed, &closed);
    ck_assert_int_eq(cc_kafka_assigned(k), CC_ESTATE);
    ck_assert(run_until(&e.loop, flag_set, &closed, 10000));
    ck_assert_int_eq(closed, 1);
    env_done(&e);
}
END_TEST

/* The mock tool's command protocol. */
START_TEST(mock_tool)
{
    static const char *const topics[] = {"a:1", NULL};
    mock m;
    memset(&m, 0, sizeof m);
    mock_start(&m, topics);
    ck_assert_ptr_nonnull(strstr(m.bootstrap, "127.0.0.1:"));
    /* three brokers by default: three addresses */
    int commas = 0;
    for (const char *s = m.bootstrap; *s; s++)
        commas += *s == ',';
    ck_assert_int_eq(commas, 2);
    char ans[128];
    mock_cmd(&m, "down 2", ans, sizeof ans);
    ck_assert_str_eq(ans, "ok");
    mock_cmd(&m, "up 2", ans, sizeof ans);
    ck_assert_str_eq(ans, "ok");
    mock_cmd(&m, "down 4", ans, sizeof ans);
    ck_assert_str_eq(ans, "error: no broker '4'");
    mock_cmd(&m, "sideways 1", ans, sizeof ans);
    ck_assert_str_eq(ans, "error: unknown command 'sideways'");
    mock_stop(&m);

    /* usage: --help exits 0, a bad --topic 2 (before any cluster exists) */
    static const struct {
        const char *arg1, *arg2;
        int status;
    } runs[] = {
        {"--help", NULL, 0},         {"--topic", "chat.in", 2},
        {"--topic", "chat.in:0", 2}, {"--topic", ":3", 2},
        {"--topic", "t:3:4", 2}, /* RF above the 3 brokers */
        {"--bogus", NULL, 2},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execl(mock_path(), mock_path(), runs[i].arg1, runs[i].arg2,
                  (char *)NULL);
            _exit(127);
        }
        int st = 0;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == runs[i].status,
                      "%s %s: status %d", runs[i].arg1,
                      runs[i].arg2 ? runs[i].arg2 : "", st);
    }
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("kafka");
    const struct {
        const char *name;
        const TTest *fn;
    } tests[] = {
        {"api_errors", api_errors},
        {"mock_tool", mock_tool},
        {"close_with_pending", close_with_pending},
        {"produce_consume_commit", produce_consume_commit},
        {"brokers_down_then_up", brokers_down_then_up},
        {"group_split_and_rebalance", group_split_and_rebalance},
        {"produce_to_and_assign", produce_to_and_assign},
        {"assign_from_end", assign_from_end},
        {"partitions_and_hash", partitions_and_hash},
    };
    /* one case each, so CK_RUN_CASE=<name> runs one */
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        TCase *tc = tcase_create(tests[i].name);
        tcase_set_timeout(tc, 90); /* normally 1..10 s; ASan is slower */
        tcase_add_test(tc, tests[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}
