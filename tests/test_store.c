/* Store (lib/store/store.h on lib/adapters/sqlite.c): schema and version
 * checks, every operation's semantics, group commit (one batch holding a
 * failing op, duplicates, a failed transaction), callback order,
 * durability across reopen and across kill -9, close, allocation
 * failures. CC_STORE_BENCH=1 adds a throughput probe. */
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chatcore/store.h"
#include "core/internal.h"
#include "store/store.h"
#include "testutil.h"

/* ---- fixtures ---- */

/* The worker allocates results, so the allocator must be thread-safe:
 * the counting one of testutil behind a mutex. */
typedef struct lalloc {
    cc_test_alloc t;
    uv_mutex_t mu;
    cc_allocator a;
} lalloc;

static void *
l_alloc(void *ud, size_t n)
{
    lalloc *l = ud;
    uv_mutex_lock(&l->mu);
    void *p = l->t.a.alloc(l->t.a.ud, n);
    uv_mutex_unlock(&l->mu);
    return p;
}

static void
l_free(void *ud, void *p, size_t n)
{
    lalloc *l = ud;
    uv_mutex_lock(&l->mu);
    l->t.a.free(l->t.a.ud, p, n);
    uv_mutex_unlock(&l->mu);
}

static void *
l_realloc(void *ud, void *p, size_t o, size_t n)
{
    lalloc *l = ud;
    uv_mutex_lock(&l->mu);
    void *q = l->t.a.realloc(l->t.a.ud, p, o, n);
    uv_mutex_unlock(&l->mu);
    return q;
}

static void
lalloc_init(lalloc *l)
{
    cc_test_alloc_init(&l->t);
    ck_assert_int_eq(uv_mutex_init(&l->mu), 0);
    l->a.alloc = l_alloc;
    l->a.free = l_free;
    l->a.realloc = l_realloc;
    l->a.ud = l;
}

#define MAX_ORDER 4096

typedef struct env {
    uv_loop_t loop;
    lalloc al;
    cc_ctx *ctx;
    cc_store *st;
    char dir[96];
    char path[128];
    int closed;
    int ncb;
    int order[MAX_ORDER];
} env;

static env E;

/* One directory per run, made and removed by the unchecked fixture (in
 * the runner process), so that a test that fails (its forked process
 * exits at the failed check) leaves nothing behind either. */
static char root[64];

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

static void
root_setup(void)
{
    strcpy(root, "/tmp/cc_store_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void
root_teardown(void)
{
    rm_tree(root);
}

static void
env_init(env *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "%s/t_XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(e->dir));
    snprintf(e->path, sizeof e->path, "%s/chat.db", e->dir);
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    lalloc_init(&e->al);
    ck_assert_int_eq(cc_ctx_new(&e->ctx, &e->loop, &e->al.a), 0);
}

static void
env_open(env *e, unsigned flags)
{
    ck_assert_int_eq(cc_store_sqlite_open(&e->st, e->ctx, e->path, flags), 0);
}

static void
on_store_closed(void *obj, void *data)
{
    env *e = data;
    ck_assert_ptr_eq(obj, e->st);
    e->closed++;
}

static void
env_close_store(env *e)
{
    e->closed = 0;
    cc_store_close(e->st, on_store_closed, e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(e->closed, 1);
    e->st = NULL;
}

static void
env_fini(env *e)
{
    if (e->st)
        env_close_store(e);
    cc_ctx_close(e->ctx, NULL, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&e->loop), 0);
    ck_assert_uint_eq(e->al.t.bytes, 0);
    ck_assert_uint_eq(e->al.t.blocks, 0);
    uv_mutex_destroy(&e->al.mu);
    rm_tree(e->dir);
}

/* What one callback saw, copied out of the borrowed result. */
typedef struct slot {
    env *e;
    int idx;
    int done;
    int rc;
    uint64_t seq, ts, acked, read;
    int dup, more;
    size_t nmsgs, nsess;
    cc__smsg msgs[40];
    char bodies[40][128];
    cc__sess_rec sess[12];
} slot;

static void
on_res(cc__store_res *r, void *data)
{
    slot *s = data;
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
    if (s->e) {
        if (s->e->ncb < MAX_ORDER)
            s->e->order[s->e->ncb] = s->idx;
        s->e->ncb++;
    }
}

static slot *
slots(size_t n)
{
    slot *s = calloc(n, sizeof *s);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++) {
        s[i].e = &E;
        s[i].idx = (int)i;
    }
    return s;
}

/* Run the loop until every queued op completed: the store's async handle
 * is referenced exactly while operations are in flight. */
static void
drain(void)
{
    uv_run(&E.loop, UV_RUN_DEFAULT);
}

static void
mk_sess(cc__sess_rec *r, const char *tenant, const char *id,
        const char *visitor, int state, uint64_t updated)
{
    memset(r, 0, sizeof *r);
    snprintf(r->tenant, sizeof r->tenant, "%s", tenant);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->visitor, sizeof r->visitor, "%s", visitor);
    r->state = state;
    r->created = 1000;
    r->updated = updated;
    r->since = state == CC__S_QUEUED ? 1500 : 0;
    snprintf(r->preview, sizeof r->preview, "hello from %s", visitor);
}

static void
put_sess(const char *tenant, const char *id, const char *visitor, int state,
         uint64_t updated)
{
    cc__sess_rec r;
    mk_sess(&r, tenant, id, visitor, state, updated);
    slot *s = slots(1);
    s->e = NULL;   /* not counted in E.order */
    ck_assert_int_eq(cc__store_session_put(E.st, &r, on_res, s), 0);
    drain();
    ck_assert_int_eq(s->done, 1);
    ck_assert_int_eq(s->rc, 0);
    free(s);
}

static int
append(const char *tenant, const char *session, const char *cid,
       const char *body, uint64_t ts, slot *s)
{
    return cc__store_msg_append(E.st, tenant, session, cid, "visitor:v1", 1,
                                body, strlen(body), ts, s ? on_res : NULL, s);
}

/* A second connection holding the write lock stalls the worker's BEGIN
 * IMMEDIATE (busy_timeout). */
static sqlite3 *
block_writer(const char *path)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

/* Stall the worker on a first, throw-away op: whatever is queued after
 * this (until unblock_writer) is then one batch. Were the worker slower
 * than the sleep, the throw-away op would just join that batch. */
static sqlite3 *
block_worker(const char *path)
{
    sqlite3 *db = block_writer(path);
    ck_assert_int_eq(cc__store_cursor_get(E.st, "t0", "s0", "u", NULL, NULL),
                     0);
    usleep(30000);
    return db;
}

static void
unblock_writer(sqlite3 *db)
{
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* ---- loader capture ---- */

typedef struct loaded {
    char text[8192];          /* "kind:fields;" in load order */
    int nsess, ncur;
    cc__sess_rec sess[8];
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
ld_session(void *d, const cc__sess_rec *s)
{
    loaded *l = d;
    char b[256];
    snprintf(b, sizeof b, "s:%s/%s", s->tenant, s->id);
    cat(l, b);
    if (l->nsess < 8)
        l->sess[l->nsess] = *s;
    l->nsess++;
}

static void
ld_cursor(void *d, const char *t, const char *s, const char *u, uint64_t a,
          uint64_t r)
{
    loaded *l = d;
    char b[256];
    snprintf(b, sizeof b, "c:%s/%s/%s=%llu,%llu", t, s, u,
             (unsigned long long)a, (unsigned long long)r);
    cat(l, b);
    l->ncur++;
}

static void
load_all(loaded *l)
{
    memset(l, 0, sizeof *l);
    cc__store_loader ld = {.meta = ld_meta, .tenant = ld_tenant,
                           .agent = ld_agent, .session = ld_session,
                           .cursor = ld_cursor, .data = l};
    ck_assert_int_eq(cc__store_load(E.st, &ld), 0);
}

/* ---- tests ---- */

static void
on_closed_count(void *obj, void *data)
{
    (void)obj;
    (*(int *)data)++;
}

START_TEST(open_close)
{
    env_init(&E);
    cc_store *st;
    ck_assert_int_eq(cc_store_sqlite_open(NULL, E.ctx, E.path, 0), CC_EINVAL);
    ck_assert_int_eq(cc_store_sqlite_open(&st, NULL, E.path, 0), CC_EINVAL);
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, NULL, 0), CC_EINVAL);
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, "", 0), CC_EINVAL);
    /* not a file: WAL is impossible, so it is refused */
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, ":memory:", 0),
                     CC_EBACKEND);
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, E.path, 1u << 5),
                     CC_EINVAL);
    /* a directory that does not exist */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/nope/x.db", E.dir);
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, bad, 0), CC_EBACKEND);
    /* a file that is not a database */
    snprintf(bad, sizeof bad, "%s/junk.db", E.dir);
    FILE *f = fopen(bad, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database file at all. ", f);
    fclose(f);
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, bad, 0), CC_EBACKEND);
    ck_assert_uint_eq(E.al.t.bytes > 0, 1);   /* only the ctx's */

    env_open(&E, 0);
    /* idle store: the loop has nothing to wait for */
    ck_assert_int_eq(uv_run(&E.loop, UV_RUN_NOWAIT), 0);
    env_close_store(&E);
    /* reopen, with FULL this time; close without running anything */
    env_open(&E, CC_STORE_SYNC_FULL);
    int n = 0;
    cc_store_close(E.st, on_closed_count, &n);
    cc_store_close(E.st, on_closed_count, &n);   /* second call ignored */
    uv_run(&E.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(n, 1);
    E.st = NULL;
    /* the WAL went away with the last connection */
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", E.path);
    ck_assert_int_eq(access(wal, F_OK), -1);
    env_fini(&E);
}
END_TEST

START_TEST(schema_version_refused)
{
    env_init(&E);
    env_open(&E, 0);
    env_close_store(&E);
    sqlite3 *db;
    int v = -1;
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_open(E.path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s,
                                        NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version=2", NULL, NULL,
                                  NULL), SQLITE_OK);
    sqlite3_close(db);
    cc_store *st;
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, E.path, 0),
                     CC_EBACKEND);
    /* back at 1 it opens again */
    ck_assert_int_eq(sqlite3_open(E.path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version=1", NULL, NULL,
                                  NULL), SQLITE_OK);
    sqlite3_close(db);
    env_open(&E, 0);
    env_close_store(&E);

    /* someone else's database (tables, no version) is refused too */
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", E.dir);
    ck_assert_int_eq(sqlite3_open(other, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE x(a)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, other, 0), CC_EBACKEND);
    /* and one with a foreign application_id */
    snprintf(other, sizeof other, "%s/other2.db", E.dir);
    ck_assert_int_eq(sqlite3_open(other, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA application_id=7", NULL, NULL,
                                  NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(cc_store_sqlite_open(&st, E.ctx, other, 0), CC_EBACKEND);
    env_fini(&E);
}
END_TEST

START_TEST(meta_tenant_agent_roundtrip)
{
    env_init(&E);
    env_open(&E, 0);
    slot *s = slots(9);
    ck_assert_int_eq(cc__store_meta_put(E.st, "k1", "v1", on_res, &s[0]), 0);
    ck_assert_int_eq(cc__store_meta_put(E.st, "k1", "v2", on_res, &s[1]), 0);
    ck_assert_int_eq(cc__store_meta_put(E.st, "k0", "x", NULL, NULL), 0);
    ck_assert_int_eq(cc__store_tenant_put(E.st, "t1", "{\"a\":1}", on_res,
                                          &s[2]), 0);
    ck_assert_int_eq(cc__store_tenant_put(E.st, "t2", "{}", on_res, &s[3]),
                     0);
    ck_assert_int_eq(cc__store_tenant_put(E.st, "t1", "{\"a\":2}", on_res,
                                          &s[4]), 0);
    ck_assert_int_eq(cc__store_agent_put(E.st, "t1", "a1", "{\"n\":1}",
                                         on_res, &s[5]), 0);
    ck_assert_int_eq(cc__store_agent_put(E.st, "t1", "a2", "{\"n\":2}",
                                         on_res, &s[6]), 0);
    ck_assert_int_eq(cc__store_agent_put(E.st, "t2", "a1", "{\"n\":3}",
                                         on_res, &s[7]), 0);
    ck_assert_int_eq(cc__store_agent_del(E.st, "t1", "a2", on_res, &s[8]),
                     0);
    /* bad arguments are refused at the call, and nothing is queued */
    ck_assert_int_eq(cc__store_meta_put(E.st, NULL, "v", NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc__store_tenant_put(E.st, "bad id", "{}", NULL, NULL),
                     CC_EINVAL);
    ck_assert_int_eq(cc__store_agent_put(E.st, "t1", "", "{}", NULL, NULL),
                     CC_EINVAL);
    drain();
    ck_assert_int_eq(E.ncb, 9);
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(s[i].done, 1);
        ck_assert_int_eq(s[i].rc, 0);
        ck_assert_int_eq(E.order[i], i);
    }
    env_close_store(&E);
    env_open(&E, 0);
    loaded l;
    load_all(&l);
    ck_assert_str_eq(l.text, "m:k0=x;m:k1=v2;t:t1={\"a\":2};t:t2={};"
                             "a:t1/a1={\"n\":1};a:t2/a1={\"n\":3};");
    /* NULL hooks are skipped */
    cc__store_loader none = {0};
    ck_assert_int_eq(cc__store_load(E.st, &none), 0);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(session_put_get_list)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_QUEUED, 100);
    put_sess("t1", "s2", "v2", CC__S_ACTIVE, 300);
    put_sess("t1", "s3", "v1", CC__S_CLOSED, 200);
    put_sess("t1", "s4", "v3", CC__S_ACTIVE, 400);
    put_sess("t2", "s1", "v1", CC__S_ACTIVE, 999);

    cc__sess_rec r;
    mk_sess(&r, "t1", "s1", "v1", CC__S_NEW, 1);
    r.state = 0;
    ck_assert_int_eq(cc__store_session_put(E.st, &r, NULL, NULL), CC_EINVAL);
    r.state = 6;
    ck_assert_int_eq(cc__store_session_put(E.st, &r, NULL, NULL), CC_EINVAL);
    mk_sess(&r, "t1", "s9", "v1", CC__S_NEW, 1);
    memset(r.closed_by, 'x', sizeof r.closed_by);   /* unterminated */
    ck_assert_int_eq(cc__store_session_put(E.st, &r, NULL, NULL), CC_EINVAL);

    slot *s = slots(10);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s2", on_res, &s[0]),
                     0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "nope", on_res, &s[1]),
                     0);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", 0, NULL, 100, on_res,
                                             &s[2]), 0);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", 0, NULL, 2, on_res,
                                             &s[3]), 0);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", CC__S_ACTIVE, NULL,
                                             100, on_res, &s[4]), 0);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", 0, "v1", 100, on_res,
                                             &s[5]), 0);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", CC__S_CLOSED, "v1",
                                             100, on_res, &s[6]), 0);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t3", 0, NULL, 100, on_res,
                                             &s[7]), 0);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", 0, NULL, 0, NULL,
                                             NULL), CC_EINVAL);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", 0, NULL, 1001, NULL,
                                             NULL), CC_EINVAL);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", 7, NULL, 10, NULL,
                                             NULL), CC_EINVAL);
    drain();
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_uint_eq(s[0].nsess, 1);
    cc__sess_rec *g = &s[0].sess[0];
    ck_assert_str_eq(g->tenant, "t1");
    ck_assert_str_eq(g->id, "s2");
    ck_assert_str_eq(g->visitor, "v2");
    ck_assert_int_eq(g->state, CC__S_ACTIVE);
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

    /* a put replaces every field but last_seq, which appends own */
    memset(s, 0, sizeof *s * 10);
    for (int i = 0; i < 10; i++)
        s[i].e = &E;
    ck_assert_int_eq(append("t1", "s1", "c1", "{}", 5000, &s[0]), 0);
    mk_sess(&r, "t1", "s1", "v1", CC__S_ACTIVE, 4000);
    snprintf(r.agent, sizeof r.agent, "ag1");
    snprintf(r.closed_by, sizeof r.closed_by, "agent:ag1");
    snprintf(r.close_reason, sizeof r.close_reason, "done");
    r.prev_state = CC__S_QUEUED;
    r.last_seq = 77;   /* ignored */
    ck_assert_int_eq(cc__store_session_put(E.st, &r, on_res, &s[1]), 0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", on_res, &s[2]),
                     0);
    ck_assert_int_eq(append("t1", "s1", "c2", "{}", 6000, &s[3]), 0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", on_res, &s[4]),
                     0);
    drain();
    ck_assert_uint_eq(s[0].seq, 1);
    g = &s[2].sess[0];
    ck_assert_uint_eq(g->last_seq, 1);
    ck_assert_uint_eq(g->updated, 4000);   /* the put came later */
    ck_assert_int_eq(g->state, CC__S_ACTIVE);
    ck_assert_int_eq(g->prev_state, CC__S_QUEUED);
    ck_assert_str_eq(g->agent, "ag1");
    ck_assert_str_eq(g->closed_by, "agent:ag1");
    ck_assert_str_eq(g->close_reason, "done");
    ck_assert_uint_eq(s[3].seq, 2);
    ck_assert_uint_eq(s[4].sess[0].last_seq, 2);
    ck_assert_uint_eq(s[4].sess[0].updated, 6000);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(msg_append_contiguous)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    put_sess("t1", "s2", "v1", CC__S_ACTIVE, 1);
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
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", on_res, &s[N]),
                     0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s2", on_res,
                                           &s[N + 1]), 0);
    drain();
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
    /* argument checks */
    ck_assert_int_eq(append("t1", "", NULL, "{}", 1, NULL), CC_EINVAL);
    ck_assert_int_eq(cc__store_msg_append(E.st, "t1", "s1", NULL, NULL, 1,
                                          "{}", 2, 1, NULL, NULL), CC_EINVAL);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(dup_cid_in_one_batch)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    put_sess("t1", "s2", "v1", CC__S_ACTIVE, 1);
    slot *s = slots(8);
    sqlite3 *blk = block_worker(E.path);
    ck_assert_int_eq(append("t1", "s1", "a", "{\"n\":1}", 100, &s[0]), 0);
    ck_assert_int_eq(append("t1", "s1", "a", "{\"n\":2}", 200, &s[1]), 0);
    ck_assert_int_eq(append("t1", "s1", "b", "{\"n\":3}", 300, &s[2]), 0);
    ck_assert_int_eq(append("t1", "s1", "a", "{\"n\":4}", 400, &s[3]), 0);
    /* the same cid in another session is another message */
    ck_assert_int_eq(append("t1", "s2", "a", "{\"n\":5}", 500, &s[4]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 100, 0, on_res,
                                         &s[5]), 0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", on_res, &s[6]),
                     0);
    unblock_writer(blk);
    drain();
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
    ck_assert_uint_eq(s[5].nmsgs, 2);
    ck_assert_str_eq(s[5].msgs[0].body, "{\"n\":1}");
    ck_assert_str_eq(s[5].msgs[1].body, "{\"n\":3}");
    ck_assert_uint_eq(s[6].sess[0].last_seq, 2);
    ck_assert_uint_eq(s[6].sess[0].updated, 300);
    /* and across batches, after a reopen */
    env_close_store(&E);
    env_open(&E, 0);
    memset(&s[7], 0, sizeof s[7]);
    ck_assert_int_eq(append("t1", "s1", "b", "{}", 900, &s[7]), 0);
    drain();
    ck_assert_int_eq(s[7].dup, 1);
    ck_assert_uint_eq(s[7].seq, 2);
    ck_assert_uint_eq(s[7].ts, 300);
    free(s);
    env_fini(&E);
}
END_TEST

/* cids are scoped per sender: the agent's "a" is not the visitor's "a" */
START_TEST(cid_scoped_per_sender)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    slot *s = slots(4);
    ck_assert_int_eq(append("t1", "s1", "a", "{\"n\":1}", 100, &s[0]), 0);
    ck_assert_int_eq(cc__store_msg_append(E.st, "t1", "s1", "a", "agent:a1", 1,
                                          "{\"n\":2}", 7, 200, on_res, &s[1]),
                     0);
    ck_assert_int_eq(cc__store_msg_append(E.st, "t1", "s1", "a", "agent:a1", 1,
                                          "{\"n\":3}", 7, 300, on_res, &s[2]),
                     0);
    ck_assert_int_eq(append("t1", "s1", "a", "{\"n\":4}", 400, &s[3]), 0);
    drain();
    ck_assert_int_eq(s[0].dup, 0);
    ck_assert_uint_eq(s[0].seq, 1);
    ck_assert_int_eq(s[1].dup, 0);
    ck_assert_uint_eq(s[1].seq, 2);
    ck_assert_int_eq(s[2].dup, 1);
    ck_assert_uint_eq(s[2].seq, 2);
    ck_assert_uint_eq(s[2].ts, 200);
    ck_assert_int_eq(s[3].dup, 1);
    ck_assert_uint_eq(s[3].seq, 1);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(enoent_does_not_spoil_the_batch)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    cc__store_stats st0, st1;
    cc__store_get_stats(E.st, &st0);
    slot *s = slots(6);
    sqlite3 *blk = block_worker(E.path);
    cc__store_get_stats(E.st, &st0);
    ck_assert_int_eq(append("t1", "s1", "x1", "{}", 10, &s[0]), 0);
    ck_assert_int_eq(append("t1", "ghost", "x2", "{}", 11, &s[1]), 0);
    ck_assert_int_eq(append("t9", "s1", NULL, "{}", 12, &s[2]), 0);
    ck_assert_int_eq(append("t1", "s1", "x3", "{}", 13, &s[3]), 0);
    ck_assert_int_eq(cc__store_cursor_put(E.st, "t1", "s1", "visitor:v1", 2, 2,
                                          on_res, &s[4]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "ghost", 0, 10, 0,
                                         on_res, &s[5]), 0);
    unblock_writer(blk);
    drain();
    cc__store_get_stats(E.st, &st1);
    /* the throw-away op's transaction, then the six in one */
    ck_assert_uint_le(st1.commits - st0.commits, 2);
    ck_assert_uint_ge(st1.ops - st0.ops, 6);
    ck_assert_uint_le(st1.ops - st0.ops, 7);
    ck_assert_uint_eq(st1.failures, 0);
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_uint_eq(s[0].seq, 1);
    ck_assert_int_eq(s[1].rc, CC_ENOENT);
    ck_assert_int_eq(s[2].rc, CC_ENOENT);
    ck_assert_int_eq(s[3].rc, 0);
    ck_assert_uint_eq(s[3].seq, 2);
    ck_assert_int_eq(s[4].rc, 0);
    ck_assert_int_eq(s[5].rc, 0);     /* unknown session: no messages */
    ck_assert_uint_eq(s[5].nmsgs, 0);
    ck_assert_int_eq(s[5].more, 0);
    /* nothing was written for the ghost: a later put starts it at 1 */
    put_sess("t1", "ghost", "v1", CC__S_NEW, 1);
    memset(s, 0, sizeof *s);
    ck_assert_int_eq(append("t1", "ghost", "x2", "{}", 20, &s[0]), 0);
    drain();
    ck_assert_int_eq(s[0].dup, 0);
    ck_assert_uint_eq(s[0].seq, 1);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(failed_transaction_fails_every_op)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    slot *s = slots(8);
    ck_assert_int_eq(append("t1", "s1", "a", "{}", 10, &s[0]), 0);
    drain();
    ck_assert_uint_eq(s[0].seq, 1);
    /* hold the write lock past the busy timeout: BEGIN fails */
    sqlite3 *blk = block_writer(E.path);
    ck_assert_int_eq(append("t1", "s1", "b", "{}", 20, &s[1]), 0);
    ck_assert_int_eq(cc__store_meta_put(E.st, "k", "v", on_res, &s[2]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 0, on_res,
                                         &s[3]), 0);
    drain();
    unblock_writer(blk);
    for (int i = 1; i <= 3; i++) {
        ck_assert_int_eq(s[i].done, 1);
        ck_assert_int_eq(s[i].rc, CC_EBACKEND);
    }
    ck_assert_uint_eq(s[3].nmsgs, 0);
    cc__store_stats st;
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_ge(st.failures, 1);
    /* the failed append left no trace, in the db or the seq cache */
    ck_assert_int_eq(append("t1", "s1", "b", "{}", 30, &s[4]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 0, on_res,
                                         &s[5]), 0);
    drain();
    ck_assert_int_eq(s[4].rc, 0);
    ck_assert_int_eq(s[4].dup, 0);
    ck_assert_uint_eq(s[4].seq, 2);
    ck_assert_uint_eq(s[5].nmsgs, 2);
    ck_assert_uint_eq(s[5].msgs[1].ts, 30);
    free(s);
    env_fini(&E);
}
END_TEST

/* An op that fails at SQL level after others ran (here a trigger aborts
 * it) fails the whole transaction: appends that ran before it are rolled
 * back, and their seqs are handed out again. */
START_TEST(failure_mid_batch_rolls_back)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    slot *s = slots(8);
    ck_assert_int_eq(append("t1", "s1", "a", "{}", 10, &s[0]), 0);
    drain();
    ck_assert_uint_eq(s[0].seq, 1);
    sqlite3 *blk = block_worker(E.path);
    ck_assert_int_eq(sqlite3_exec(blk,
                                  "CREATE TRIGGER boom BEFORE INSERT ON meta "
                                  "WHEN NEW.key='boom' BEGIN "
                                  "SELECT RAISE(ABORT,'boom'); END",
                                  NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(append("t1", "s1", "b", "{}", 20, &s[1]), 0);
    ck_assert_int_eq(append("t1", "s1", "c", "{}", 21, &s[2]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 0, on_res,
                                         &s[3]), 0);
    ck_assert_int_eq(cc__store_meta_put(E.st, "boom", "x", on_res, &s[4]),
                     0);
    unblock_writer(blk);
    drain();
    for (int i = 1; i <= 4; i++)
        ck_assert_int_eq(s[i].rc, CC_EBACKEND);
    ck_assert_uint_eq(s[1].seq, 0);
    ck_assert_uint_eq(s[3].nmsgs, 0);
    /* b and c were never stored: b is new again and gets seq 2 */
    ck_assert_int_eq(append("t1", "s1", "b", "{}", 30, &s[5]), 0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", on_res, &s[6]),
                     0);
    drain();
    ck_assert_int_eq(s[5].rc, 0);
    ck_assert_int_eq(s[5].dup, 0);
    ck_assert_uint_eq(s[5].seq, 2);
    ck_assert_uint_eq(s[6].sess[0].last_seq, 2);
    ck_assert_uint_eq(s[6].sess[0].updated, 30);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(msgs_read_forward_and_tail)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    for (int i = 1; i <= 25; i++) {
        char body[64], cid[16];
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        snprintf(cid, sizeof cid, "c%d", i);
        ck_assert_int_eq(cc__store_msg_append(E.st, "t1", "s1",
                                              i == 7 ? NULL : cid,
                                              i == 7 ? "system" : "agent:a1",
                                              i == 7 ? 4 : 1, body,
                                              strlen(body), 500 + (uint64_t)i,
                                              NULL, NULL), 0);
    }
    slot *s = slots(9);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 0, on_res,
                                         &s[0]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 20, 10, 0, on_res,
                                         &s[1]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 25, 10, 0, on_res,
                                         &s[2]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 15, 10, 0, on_res,
                                         &s[3]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 1, on_res,
                                         &s[4]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 20, 10, 1, on_res,
                                         &s[5]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 15, 10, 1, on_res,
                                         &s[6]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 1000, 1, on_res,
                                         &s[7]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 1, 0, on_res,
                                         &s[8]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 0, 0, NULL,
                                         NULL), CC_EINVAL);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 1001, 0, NULL,
                                         NULL), CC_EINVAL);
    drain();
    /* forward */
    ck_assert_uint_eq(s[0].nmsgs, 10);
    ck_assert_int_eq(s[0].more, 1);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(s[0].msgs[i].seq, (uint64_t)i + 1);
    cc__smsg *m = &s[0].msgs[0];
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
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(cursors_never_lower)
{
    env_init(&E);
    env_open(&E, 0);
    slot *s = slots(6);
    ck_assert_int_eq(cc__store_cursor_put(E.st, "t1", "s1", "visitor:v1", 5,
                                          3, on_res, &s[0]), 0);
    ck_assert_int_eq(cc__store_cursor_put(E.st, "t1", "s1", "visitor:v1", 2,
                                          4, on_res, &s[1]), 0);
    ck_assert_int_eq(cc__store_cursor_put(E.st, "t1", "s1", "agent:a1", 9, 1,
                                          NULL, NULL), 0);
    ck_assert_int_eq(cc__store_cursor_get(E.st, "t1", "s1", "visitor:v1",
                                          on_res, &s[2]), 0);
    ck_assert_int_eq(cc__store_cursor_get(E.st, "t1", "s1", "agent:a1",
                                          on_res, &s[3]), 0);
    ck_assert_int_eq(cc__store_cursor_get(E.st, "t1", "s1", "agent:zz",
                                          on_res, &s[4]), 0);
    ck_assert_int_eq(cc__store_cursor_get(E.st, "t1", "s2", "visitor:v1",
                                          on_res, &s[5]), 0);
    drain();
    ck_assert_int_eq(s[2].rc, 0);
    ck_assert_uint_eq(s[2].acked, 5);
    ck_assert_uint_eq(s[2].read, 4);
    ck_assert_uint_eq(s[3].acked, 9);
    ck_assert_uint_eq(s[3].read, 1);
    ck_assert_int_eq(s[4].rc, 0);
    ck_assert_uint_eq(s[4].acked, 0);
    ck_assert_uint_eq(s[4].read, 0);
    ck_assert_uint_eq(s[5].acked, 0);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(tenant_del_removes_everything)
{
    env_init(&E);
    env_open(&E, 0);
    const char *ts[2] = {"t1", "t2"};
    for (int t = 0; t < 2; t++) {
        ck_assert_int_eq(cc__store_tenant_put(E.st, ts[t], "{}", NULL, NULL),
                         0);
        ck_assert_int_eq(cc__store_agent_put(E.st, ts[t], "a1", "{}", NULL,
                                             NULL), 0);
        put_sess(ts[t], "s1", "v1", CC__S_ACTIVE, 10);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(append(ts[t], "s1", NULL, "{}", 20, NULL), 0);
        ck_assert_int_eq(cc__store_cursor_put(E.st, ts[t], "s1", "agent:a1",
                                              2, 2, NULL, NULL), 0);
    }
    slot *s = slots(8);
    ck_assert_int_eq(cc__store_tenant_del(E.st, "t1", on_res, &s[0]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 0, on_res,
                                         &s[1]), 0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", on_res, &s[2]),
                     0);
    ck_assert_int_eq(cc__store_cursor_get(E.st, "t1", "s1", "agent:a1",
                                          on_res, &s[3]), 0);
    ck_assert_int_eq(cc__store_sessions_list(E.st, "t1", 0, NULL, 10, on_res,
                                             &s[4]), 0);
    /* same batch: the append finds no session any more */
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 30, &s[5]), 0);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t2", "s1", 0, 10, 0, on_res,
                                         &s[6]), 0);
    drain();
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_uint_eq(s[1].nmsgs, 0);
    ck_assert_int_eq(s[2].rc, CC_ENOENT);
    ck_assert_uint_eq(s[3].acked, 0);
    ck_assert_uint_eq(s[4].nsess, 0);
    ck_assert_int_eq(s[5].rc, CC_ENOENT);
    ck_assert_uint_eq(s[6].nmsgs, 3);
    loaded l;
    load_all(&l);
    ck_assert_str_eq(l.text, "t:t2={};a:t2/a1={};s:t2/s1;"
                             "c:t2/s1/agent:a1=2,2;");
    /* the tenant can come back; its session counts from 1 again */
    put_sess("t1", "s1", "v1", CC__S_NEW, 40);
    memset(s, 0, sizeof *s);
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 50, &s[0]), 0);
    drain();
    ck_assert_uint_eq(s[0].seq, 1);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(load_open_sessions_and_cursors)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 10);
    put_sess("t1", "s2", "v2", CC__S_CLOSED, 20);
    put_sess("t1", "s3", "v3", CC__S_QUEUED, 30);
    put_sess("t2", "s1", "v1", CC__S_OFFLINE, 40);
    const char *ids[3] = {"s1", "s2", "s3"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(cc__store_cursor_put(E.st, "t1", ids[i], "visitor:v",
                                              (uint64_t)i + 1, 1, NULL, NULL),
                         0);
        ck_assert_int_eq(append("t1", ids[i], NULL, "{}", 100, NULL), 0);
    }
    ck_assert_int_eq(append("t1", "s3", NULL, "{}", 200, NULL), 0);
    /* not while operations are in flight */
    loaded l;
    cc__store_loader ld = {.session = ld_session, .cursor = ld_cursor,
                           .data = &l};
    ck_assert_int_eq(cc__store_load(E.st, &ld), CC_ESTATE);
    drain();
    env_close_store(&E);
    env_open(&E, 0);
    load_all(&l);
    ck_assert_str_eq(l.text, "s:t1/s1;s:t1/s3;s:t2/s1;"
                             "c:t1/s1/visitor:v=1,1;"
                             "c:t1/s3/visitor:v=3,1;");
    ck_assert_int_eq(l.nsess, 3);
    ck_assert_uint_eq(l.sess[1].last_seq, 2);
    ck_assert_uint_eq(l.sess[1].updated, 200);
    ck_assert_uint_eq(l.sess[1].since, 1500);
    ck_assert_int_eq(l.sess[2].state, CC__S_OFFLINE);
    ck_assert_int_eq(cc__store_load(E.st, NULL), CC_EINVAL);
    env_fini(&E);
}
END_TEST

START_TEST(callbacks_in_queue_order)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    put_sess("t1", "s2", "v1", CC__S_ACTIVE, 1);
    enum { N = 1000 };
    slot *s = slots(N);
    uint64_t n1 = 0, n2 = 0;
    uint64_t want[N] = {0};
    for (int i = 0; i < N; i++) {
        int rc;
        switch (i % 6) {
        case 0:
            rc = append("t1", "s1", NULL, "{}", (uint64_t)i, &s[i]);
            want[i] = ++n1;
            break;
        case 1:
            rc = append("t1", "s2", NULL, "{}", (uint64_t)i, &s[i]);
            want[i] = ++n2;
            break;
        case 2:
            rc = cc__store_msgs_read(E.st, "t1", "s1", n1 - 1, 5, 0, on_res,
                                     &s[i]);
            want[i] = n1;   /* sees the append just before it */
            break;
        case 3:
            rc = cc__store_cursor_put(E.st, "t1", "s1", "visitor:v1",
                                      (uint64_t)i, 0, on_res, &s[i]);
            break;
        case 4:
            rc = cc__store_session_get(E.st, "t1", "s2", on_res, &s[i]);
            want[i] = n2;
            break;
        default:
            rc = cc__store_meta_put(E.st, "k", "v", on_res, &s[i]);
            break;
        }
        ck_assert_int_eq(rc, 0);
        if (i == N / 2)
            uv_run(&E.loop, UV_RUN_NOWAIT);   /* some complete meanwhile */
    }
    drain();
    ck_assert_int_eq(E.ncb, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(E.order[i], i);
        ck_assert_int_eq(s[i].rc, 0);
        if (i % 6 < 2)
            ck_assert_uint_eq(s[i].seq, want[i]);
        else if (i % 6 == 2) {
            ck_assert_uint_eq(s[i].nmsgs, 1);
            ck_assert_uint_eq(s[i].msgs[0].seq, want[i]);
        } else if (i % 6 == 4) {
            ck_assert_uint_eq(s[i].sess[0].last_seq, want[i]);
        }
    }
    cc__store_stats st;
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.ops, N + 2);
    ck_assert_uint_eq(st.failures, 0);
    uint64_t h = 0;
    for (int i = 0; i < CC__STORE_HIST_N; i++)
        h += st.hist[i];
    ck_assert_uint_eq(h, st.commits);
    ck_assert_uint_ge(st.commits, 3);
    ck_assert_uint_le(st.commits, N + 2);
    ck_assert(st.commit_seconds_sum > 0);
    ck_assert(cc__store_hist_bounds[0] == 0.0005);
    ck_assert(cc__store_hist_bounds[CC__STORE_HIST_N - 2] == 1.0);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(durable_across_reopen)
{
    env_init(&E);
    env_open(&E, CC_STORE_SYNC_FULL);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(append("t1", "s1", NULL, "{\"x\":1}", 7, NULL), 0);
    /* close right away: close completes what is queued */
    env_close_store(&E);
    env_open(&E, 0);
    slot *s = slots(3);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 1, 1, on_res,
                                         &s[0]), 0);
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 8, &s[1]), 0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", on_res, &s[2]),
                     0);
    drain();
    ck_assert_uint_eq(s[0].nmsgs, 1);
    ck_assert_uint_eq(s[0].msgs[0].seq, 100);
    ck_assert_int_eq(s[0].more, 1);
    ck_assert_uint_eq(s[1].seq, 101);
    ck_assert_uint_eq(s[2].sess[0].last_seq, 101);
    free(s);
    env_fini(&E);
}
END_TEST

/* Child side of the kill test: no Check calls, exit codes say what broke. */
typedef struct kid {
    int left;
    int bad;
} kid;

static void
kid_cb(cc__store_res *r, void *data)
{
    kid *k = data;
    if (r->rc != 0)
        k->bad = 1;
    k->left--;
}

static void
kill_child(const char *path)
{
    uv_loop_t loop;
    cc_ctx *ctx;
    cc_store *st;
    if (uv_loop_init(&loop) || cc_ctx_new(&ctx, &loop, NULL) ||
        cc_store_sqlite_open(&st, ctx, path, 0))
        _exit(2);
    kid k = {501, 0};
    cc__sess_rec r;
    mk_sess(&r, "t1", "s1", "v1", CC__S_ACTIVE, 1);
    if (cc__store_session_put(st, &r, kid_cb, &k))
        _exit(3);
    for (int i = 0; i < 500; i++) {
        char cid[16], body[64];
        snprintf(cid, sizeof cid, "k%d", i);
        snprintf(body, sizeof body, "{\"text\":\"message %d\"}", i);
        if (cc__store_msg_append(st, "t1", "s1", cid, "visitor:v1", 1, body,
                                 strlen(body), 1000 + (uint64_t)i, kid_cb,
                                 &k))
            _exit(4);
        /* let completions interleave with queueing, as a server would */
        if (i % 50 == 0)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
    while (k.left > 0)
        uv_run(&loop, UV_RUN_ONCE);
    if (k.bad)
        _exit(5);
    /* every callback ran: all 500 are committed. Die without closing. */
    raise(SIGKILL);
    _exit(6);
}

START_TEST(survives_kill_9)
{
    env_init(&E);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        kill_child(E.path);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "child status %d", status);
    /* the child left its WAL behind; opening recovers from it */
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", E.path);
    ck_assert_int_eq(access(wal, F_OK), 0);
    env_open(&E, 0);
    slot *s = slots(3);
    ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", 0, 1000, 0, NULL,
                                         NULL), 0);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", on_res, &s[0]),
                     0);
    drain();
    ck_assert_uint_eq(s[0].sess[0].last_seq, 500);
    /* read them all (in pages of 40: the slot holds 40) */
    uint64_t after = 0;
    for (;;) {
        slot *p = slots(1);
        ck_assert_int_eq(cc__store_msgs_read(E.st, "t1", "s1", after, 40, 0,
                                             on_res, p), 0);
        drain();
        for (size_t i = 0; i < p->nmsgs; i++) {
            ck_assert_uint_eq(p->msgs[i].seq, after + 1);
            char body[64];
            snprintf(body, sizeof body, "{\"text\":\"message %d\"}",
                     (int)after);
            ck_assert_str_eq(p->msgs[i].body, body);
            after++;
        }
        int more = p->more;
        free(p);
        if (!more)
            break;
    }
    ck_assert_uint_eq(after, 500);
    free(s);
    env_fini(&E);
}
END_TEST

START_TEST(close_completes_and_refuses)
{
    env_init(&E);
    env_open(&E, 0);
    put_sess("t1", "s1", "v1", CC__S_ACTIVE, 1);
    slot *s = slots(50);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(append("t1", "s1", NULL, "{}", 1, &s[i]), 0);
    E.closed = 0;
    cc_store_close(E.st, on_store_closed, &E);
    /* after close began, nothing more is taken */
    ck_assert_int_eq(append("t1", "s1", NULL, "{}", 1, NULL), CC_ESTATE);
    ck_assert_int_eq(cc__store_meta_put(E.st, "k", "v", NULL, NULL),
                     CC_ESTATE);
    ck_assert_int_eq(cc__store_session_get(E.st, "t1", "s1", NULL, NULL),
                     CC_ESTATE);
    loaded l;
    cc__store_loader ld = {0};
    ld.data = &l;
    ck_assert_int_eq(cc__store_load(E.st, &ld), CC_ESTATE);
    uv_run(&E.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(E.closed, 1);
    E.st = NULL;
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(s[i].rc, 0);
        ck_assert_uint_eq(s[i].seq, (uint64_t)i + 1);
    }
    ck_assert_int_eq(E.ncb, 50);
    free(s);
    env_fini(&E);
}
END_TEST

/* Closing from inside a callback, with more ops queued behind it. */
static void
close_in_cb(cc__store_res *r, void *data)
{
    on_res(r, data);
    slot *s = data;
    E.closed = 0;
    cc_store_close(E.st, on_store_closed, &E);
    ck_assert_int_eq(cc__store_meta_put(E.st, "k", "v", NULL, NULL),
                     CC_ESTATE);
    (void)s;
}

START_TEST(close_from_callback)
{
    env_init(&E);
    env_open(&E, 0);
    slot *s = slots(3);
    ck_assert_int_eq(cc__store_meta_put(E.st, "a", "1", close_in_cb, &s[0]),
                     0);
    ck_assert_int_eq(cc__store_meta_put(E.st, "b", "2", on_res, &s[1]), 0);
    ck_assert_int_eq(cc__store_meta_put(E.st, "c", "3", on_res, &s[2]), 0);
    uv_run(&E.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(E.closed, 1);
    E.st = NULL;
    ck_assert_int_eq(E.ncb, 3);
    ck_assert_int_eq(s[2].rc, 0);
    free(s);
    env_open(&E, 0);
    loaded l;
    load_all(&l);
    ck_assert_str_eq(l.text, "m:a=1;m:b=2;m:c=3;");
    env_fini(&E);
}
END_TEST

START_TEST(queue_full)
{
    env_init(&E);
    env_open(&E, 0);
    /* completions need the loop, which does not run meanwhile, so every
     * op stays in flight */
    int i, rc = 0;
    for (i = 0; i <= CC__STORE_MAX_PENDING; i++)
        if ((rc = cc__store_cursor_get(E.st, "t", "s", "u", NULL, NULL)))
            break;
    ck_assert_int_eq(rc, CC_EQUEUEFULL);
    ck_assert_int_eq(i, CC__STORE_MAX_PENDING);
    cc__store_stats st;
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_eq(st.pending, CC__STORE_MAX_PENDING);
    drain();
    cc__store_get_stats(E.st, &st);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.ops, CC__STORE_MAX_PENDING);
    ck_assert_int_eq(cc__store_cursor_get(E.st, "t", "s", "u", NULL, NULL),
                     0);
    env_fini(&E);
}
END_TEST

/* Every allocation of open, queueing and the worker's results fails in
 * turn: each failure is a clean CC_ENOMEM (at the call or in the result)
 * and nothing leaks. */
START_TEST(allocation_failures)
{
    int saw_open = 0, saw_call = 0, saw_result = 0;
    for (size_t k = 1;; k++) {
        env_init(&E);
        E.al.t.fail_at = E.al.t.nalloc + k;
        int nomem = 0;
        int rc = cc_store_sqlite_open(&E.st, E.ctx, E.path, 0);
        if (rc) {
            ck_assert_int_eq(rc, CC_ENOMEM);
            saw_open = nomem = 1;
            E.st = NULL;
            env_fini(&E);
            continue;
        }
        slot *s = slots(6);
        cc__sess_rec r;
        mk_sess(&r, "t1", "s1", "v1", CC__S_ACTIVE, 1);
        int calls[6];
        calls[0] = cc__store_session_put(E.st, &r, on_res, &s[0]);
        calls[1] = append("t1", "s1", "c", "{\"a\":1}", 5, &s[1]);
        calls[2] = cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 0, on_res,
                                       &s[2]);
        calls[3] = cc__store_sessions_list(E.st, "t1", 0, NULL, 10, on_res,
                                           &s[3]);
        calls[4] = append("t1", "s1", NULL, "{\"a\":2}", 6, &s[4]);
        calls[5] = cc__store_msgs_read(E.st, "t1", "s1", 0, 10, 1, on_res,
                                       &s[5]);
        drain();
        for (int i = 0; i < 6; i++) {
            if (calls[i]) {
                ck_assert_int_eq(calls[i], CC_ENOMEM);
                ck_assert_int_eq(s[i].done, 0);   /* never called */
                saw_call = nomem = 1;
            } else {
                ck_assert_int_eq(s[i].done, 1);
                if (s[i].rc == CC_ENOMEM) {
                    saw_result = nomem = 1;
                    ck_assert_uint_eq(s[i].nmsgs, 0);
                    ck_assert_uint_eq(s[i].nsess, 0);
                } else if (s[i].rc) {
                    /* an append after a failed put: no session */
                    ck_assert_int_eq(s[i].rc, CC_ENOENT);
                    ck_assert_int_ne(calls[0] | s[0].rc, 0);
                }
            }
        }
        free(s);
        env_fini(&E);   /* asserts 0 bytes, 0 blocks outstanding */
        if (!nomem)
            break;
        ck_assert_uint_lt(k, 100);
    }
    ck_assert_int_eq(saw_open, 1);
    ck_assert_int_eq(saw_call, 1);
    ck_assert_int_eq(saw_result, 1);
}
END_TEST

/* ---- throughput probe (CC_STORE_BENCH=1) ---- */

typedef struct bench {
    cc_store *st;
    int issued, done, total, bad, nsess;
    char body[128];
    size_t body_len;
} bench;

static void bench_issue(bench *b);

static void
bench_cb(cc__store_res *r, void *data)
{
    bench *b = data;
    if (r->rc)
        b->bad++;
    b->done++;
    if (b->issued < b->total)
        bench_issue(b);
}

static void
bench_issue(bench *b)
{
    char sid[16], cid[24];
    int i = b->issued++;
    snprintf(sid, sizeof sid, "s%d", i % b->nsess);
    snprintf(cid, sizeof cid, "c%d", i);
    int rc = cc__store_msg_append(b->st, "t1", sid, cid, "visitor:v1", 1,
                                  b->body, b->body_len, 1000 + (uint64_t)i,
                                  bench_cb, b);
    if (rc)
        b->bad++;
}

static void
bench_run(unsigned flags, int window, int nsess)
{
    env_init(&E);
    env_open(&E, flags);
    for (int i = 0; i < nsess; i++) {
        cc__sess_rec r;
        char sid[16];
        snprintf(sid, sizeof sid, "s%d", i);
        mk_sess(&r, "t1", sid, "v1", CC__S_ACTIVE, 1);
        ck_assert_int_eq(cc__store_session_put(E.st, &r, NULL, NULL), 0);
    }
    drain();
    bench b = {0};
    b.st = E.st;
    b.nsess = nsess;
    b.total = 100000;
    /* ~100 bytes, like a short chat message */
    snprintf(b.body, sizeof b.body,
             "{\"type\":\"text\",\"text\":\"hello there, how can I help you "
             "today with your order? It shipped on Monday.\"}");
    b.body_len = strlen(b.body);
    cc__store_stats s0, s1;
    cc__store_get_stats(E.st, &s0);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < window && b.issued < b.total; i++)
        bench_issue(&b);
    drain();
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    cc__store_get_stats(E.st, &s1);
    ck_assert_int_eq(b.bad, 0);
    ck_assert_int_eq(b.done, b.total);
    uint64_t commits = s1.commits - s0.commits;
    printf("store bench: synchronous=%s sessions=%d window=%d: %d msgs "
           "(%zu-byte bodies) in %.3f s = %.0f msgs/s; %llu commits, "
           "%.1f msgs/commit, mean commit %.3f ms\n",
           flags & CC_STORE_SYNC_FULL ? "FULL" : "NORMAL", nsess, window,
           b.total,
           b.body_len, secs, b.total / secs, (unsigned long long)commits,
           (double)b.total / (double)(commits ? commits : 1),
           1e3 * (s1.commit_seconds_sum - s0.commit_seconds_sum) /
               (double)(commits ? commits : 1));
    fflush(stdout);
    env_fini(&E);
}

START_TEST(bench_throughput)
{
    if (!getenv("CC_STORE_BENCH"))
        return;
    /* in flight at once (how many clients wait), and sessions */
    const char *w = getenv("CC_STORE_BENCH_WINDOW");
    const char *n = getenv("CC_STORE_BENCH_SESSIONS");
    int window = w ? atoi(w) : 10000;
    int nsess = n ? atoi(n) : 1000;
    ck_assert_int_gt(window, 0);
    ck_assert_int_gt(nsess, 0);
    bench_run(0, window, nsess);
    bench_run(CC_STORE_SYNC_FULL, window, nsess);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, open_close);
    tcase_add_test(tc, schema_version_refused);
    tcase_add_test(tc, meta_tenant_agent_roundtrip);
    tcase_add_test(tc, session_put_get_list);
    tcase_add_test(tc, msg_append_contiguous);
    tcase_add_test(tc, dup_cid_in_one_batch);
    tcase_add_test(tc, cid_scoped_per_sender);
    tcase_add_test(tc, enoent_does_not_spoil_the_batch);
    tcase_add_test(tc, failed_transaction_fails_every_op);
    tcase_add_test(tc, failure_mid_batch_rolls_back);
    tcase_add_test(tc, msgs_read_forward_and_tail);
    tcase_add_test(tc, cursors_never_lower);
    tcase_add_test(tc, tenant_del_removes_everything);
    tcase_add_test(tc, load_open_sessions_and_cursors);
    tcase_add_test(tc, callbacks_in_queue_order);
    tcase_add_test(tc, durable_across_reopen);
    tcase_add_test(tc, survives_kill_9);
    tcase_add_test(tc, close_completes_and_refuses);
    tcase_add_test(tc, close_from_callback);
    tcase_add_test(tc, queue_full);
    tcase_add_test(tc, allocation_failures);
    suite_add_tcase(s, tc);
    /* its own case: CK_RUN_CASE=bench CC_STORE_BENCH=1 runs just it */
    TCase *tb = tcase_create("bench");
    tcase_set_timeout(tb, 300);
    tcase_add_unchecked_fixture(tb, root_setup, root_teardown);
    tcase_add_test(tb, bench_throughput);
    suite_add_tcase(s, tb);
    return s;
}
