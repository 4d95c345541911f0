/*
 * lib/adapters/sqlite.c - the durable store (lib/store/store.h) on SQLite.
 *
 * Threads. The loop thread queues operations (each one allocation holding
 * its copied arguments) on a FIFO under `mu`; one worker thread per store
 * takes everything queued so far (at most BATCH_MAX), runs it inside one
 * transaction (group commit), then moves the batch to the completed list
 * and wakes the loop with a uv_async_t. The loop drains that list and runs
 * the callbacks. A single worker executing a FIFO and appending whole
 * batches to the completed list in order is what makes callbacks run in
 * queue order. Every uv_async_send happens with `mu` held, and the loop
 * closes the async handle only after it saw, under `mu`, that the worker
 * is gone: so the worker never touches a closed handle.
 *
 * The database handle is used by the worker, and by cc__store_load on the
 * loop thread before any operation exists; `db_mu` serializes the two (the
 * worker holds it for a batch or an idle checkpoint).
 *
 * Transactions. A write op that fails for a reason of its own (append to
 * an unknown session) is detected before it writes anything, so it needs
 * no savepoint and cannot spoil the batch. Any other SQLite error fails the
 * whole transaction: ROLLBACK, and every op of the batch, reads included
 * (they may have seen rolled-back rows), completes with CC_EBACKEND.
 *
 * Sequence numbers. The worker is the only writer, so seq = last_seq + 1
 * is race-free. A worker-side cache keeps each recently appended session's
 * last_seq and `updated`; the sessions row itself is written once per
 * session per batch (before COMMIT, or before any op that reads or writes
 * the sessions table), not once per message. A failed transaction or a
 * tenant_del drops the whole cache, so it never outlives what it mirrors.
 *
 * Memory. Ops are allocated and freed on the loop thread; result arrays
 * and the cache are allocated by the worker. Both use the ctx's allocator,
 * which must therefore be thread-safe (as cc_ctx_post already requires).
 * SQLite allocates its own memory with libc (its hooks are process-wide,
 * the application's choice).
 *
 * This is the only file that includes <sqlite3.h> (scripts/lint.sh).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "chatcore/store.h"
#include "store/store.h"

#define SCHEMA_VERSION 1
/* PRAGMA application_id: "CCst". A database with another id is not ours. */
#define APP_ID 0x43437374
#define BATCH_MAX 4096
#define BUSY_TIMEOUT_MS 5000
/* Sessions the last_seq cache holds before it is dropped and rebuilt. */
#define CACHE_MAX 65536
/* WAL size beyond which the checkpointer thread is woken after a commit.
 * It checkpoints on its own connection, beside the writer, so commits are
 * not held up while the WAL's pages are copied and synced. */
#define WAL_IDLE_BYTES (16 << 20)

/* the load query spells "closed" as 5 */
_Static_assert(CC__S_CLOSED == 5, "sessions.state values");

/* ------------------------------------------------------------------ */
/* Operations                                                          */

enum op_kind {
    OP_META_PUT = 1,
    OP_TENANT_PUT,
    OP_TENANT_DEL,
    OP_AGENT_PUT,
    OP_AGENT_DEL,
    OP_SESSION_PUT,
    OP_MSG_APPEND,
    OP_CURSOR_PUT,
    OP_MSGS_READ,
    OP_SESSION_GET,
    OP_SESSIONS_LIST,
    OP_CURSOR_GET,
    OP_BARRIER
};

typedef struct op {
    struct op *next;
    size_t size;              /* bytes of this allocation */
    int kind;
    cc__store_cb cb;
    void *data;
    const char *s[4];         /* string arguments, copied into buf */
    size_t body_len;          /* msg_append: length of s[3] */
    uint64_t u[2];
    int i[3];
    cc__sess_rec *rec;        /* session_put: the copied row, in buf */
    /* sizes of the result allocations, for the sized free */
    size_t msgs_cap, bodies_cap, sess_cap;
    char *bodies;
    cc__store_res res;
    max_align_t buf[];
} op;

/* ------------------------------------------------------------------ */
/* The worker's cache of last_seq per session                          */

typedef struct centry {
    char *key;                /* "tenant\x1fsession", NULL = free slot */
    size_t klen;
    int64_t sid;              /* sessions.sid */
    uint64_t last_seq, updated;
    struct centry *dnext;     /* dirty list: sessions row to write */
    int dirty;
} centry;

typedef struct cache {
    centry *slots;
    size_t cap, n;            /* cap: power of two, 0 = none yet */
    centry *dirty;
} cache;

/* ------------------------------------------------------------------ */
/* The store                                                           */

enum stmt_id {
    S_BEGIN, S_COMMIT, S_ROLLBACK,
    S_META_PUT, S_TENANT_PUT,
    /* tenant_del runs these in this order (messages need sessions) */
    S_DEL_MESSAGES, S_DEL_TENANT, S_DEL_AGENTS, S_DEL_SESSIONS, S_DEL_CURSORS,
    S_AGENT_PUT, S_AGENT_DEL,
    S_SESSION_PUT, S_SESSION_SEQ, S_SESSION_BUMP,
    S_MSG_INSERT, S_MSG_DUP,
    S_CURSOR_PUT, S_CURSOR_GET,
    S_MSGS_FWD, S_MSGS_TAIL,
    S_SESSION_GET,
    S_LIST_ANY, S_LIST_STATE, S_LIST_VISITOR, S_LIST_STATE_VISITOR,
    S__N
};

#define SESS_COLS                                                          \
    "tenant,id,visitor,agent,state,prev_state,created,updated,since,"     \
    "last_seq,preview,close_reason,closed_by"

static const char *const stmt_sql[S__N] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_META_PUT] = "INSERT OR REPLACE INTO meta(key,value) VALUES(?1,?2)",
    [S_TENANT_PUT] = "INSERT OR REPLACE INTO tenants(id,json) VALUES(?1,?2)",
    [S_DEL_MESSAGES] = "DELETE FROM messages WHERE sid IN "
                       "(SELECT sid FROM sessions WHERE tenant=?1)",
    [S_DEL_TENANT] = "DELETE FROM tenants WHERE id=?1",
    [S_DEL_AGENTS] = "DELETE FROM agents WHERE tenant=?1",
    [S_DEL_SESSIONS] = "DELETE FROM sessions WHERE tenant=?1",
    [S_DEL_CURSORS] = "DELETE FROM cursors WHERE tenant=?1",
    [S_AGENT_PUT] =
        "INSERT OR REPLACE INTO agents(tenant,id,json) VALUES(?1,?2,?3)",
    [S_AGENT_DEL] = "DELETE FROM agents WHERE tenant=?1 AND id=?2",
    [S_SESSION_PUT] =
        "INSERT INTO sessions(" SESS_COLS ") "
        "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,0,?10,?11,?12) "
        "ON CONFLICT(tenant,id) DO UPDATE SET visitor=excluded.visitor,"
        "agent=excluded.agent,state=excluded.state,"
        "prev_state=excluded.prev_state,created=excluded.created,"
        "updated=excluded.updated,since=excluded.since,"
        "preview=excluded.preview,close_reason=excluded.close_reason,"
        "closed_by=excluded.closed_by",
    [S_SESSION_SEQ] = "SELECT sid,last_seq,updated FROM sessions "
                      "WHERE tenant=?1 AND id=?2",
    [S_SESSION_BUMP] =
        "UPDATE sessions SET last_seq=?2,updated=?3 WHERE sid=?1",
    [S_MSG_INSERT] =
        "INSERT INTO messages(sid,seq,ts,sender,kind,cid,body) "
        "VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(sid,sender,cid) DO NOTHING",
    [S_MSG_DUP] = "SELECT seq,ts FROM messages WHERE sid=?1 AND sender=?3 "
                  "AND cid=?2",
    [S_CURSOR_PUT] =
        "INSERT INTO cursors(tenant,session,user,acked,read) "
        "VALUES(?1,?2,?3,?4,?5) ON CONFLICT(tenant,session,user) DO UPDATE "
        "SET acked=max(acked,excluded.acked),read=max(read,excluded.read)",
    [S_CURSOR_GET] = "SELECT acked,read FROM cursors "
                     "WHERE tenant=?1 AND session=?2 AND user=?3",
    [S_MSGS_FWD] = "SELECT seq,ts,sender,kind,cid,body FROM messages "
                   "WHERE sid=(SELECT sid FROM sessions "
                   "WHERE tenant=?1 AND id=?2) AND seq>?3 "
                   "ORDER BY seq LIMIT ?4",
    [S_MSGS_TAIL] = "SELECT seq,ts,sender,kind,cid,body FROM messages "
                    "WHERE sid=(SELECT sid FROM sessions "
                    "WHERE tenant=?1 AND id=?2) AND seq>?3 "
                    "ORDER BY seq DESC LIMIT ?4",
    [S_SESSION_GET] = "SELECT " SESS_COLS " FROM sessions "
                      "WHERE tenant=?1 AND id=?2",
    [S_LIST_ANY] = "SELECT " SESS_COLS " FROM sessions WHERE tenant=?1 "
                   "ORDER BY updated DESC,sid DESC LIMIT ?4",
    [S_LIST_STATE] = "SELECT " SESS_COLS " FROM sessions "
                     "WHERE tenant=?1 AND state=?2 "
                     "ORDER BY updated DESC,sid DESC LIMIT ?4",
    /* A visitor has few sessions: find them by visitor and sort them,
     * rather than walk the tenant's sessions in `updated` order (what the
     * planner picks without ANALYZE). */
    [S_LIST_VISITOR] = "SELECT " SESS_COLS " FROM sessions "
                       "INDEXED BY sessions_by_visitor "
                       "WHERE tenant=?1 AND visitor=?3 "
                       "ORDER BY updated DESC,sid DESC LIMIT ?4",
    [S_LIST_STATE_VISITOR] = "SELECT " SESS_COLS " FROM sessions "
                             "INDEXED BY sessions_by_visitor "
                             "WHERE tenant=?1 AND visitor=?3 AND state=?2 "
                             "ORDER BY updated DESC,sid DESC LIMIT ?4",
};

/* The schema. Messages, the one table that grows fast, is a rowid table:
 * rows go in in arrival order, so a batch of appends spread over many
 * sessions fills a few consecutive pages instead of dirtying one page per
 * session; and it refers to its session by an integer (sessions.sid),
 * which keeps its two indexes small and cheap to search. Measured with
 * 100,000 appends over 1,000 sessions, that is 2-3 times faster than a
 * WITHOUT ROWID table keyed by (tenant, session text, seq). AUTOINCREMENT
 * so that a sid is never reused after tenant_del. The indexes on sessions
 * serve sessions_list; the (tenant,visitor) one leaves out `updated` so
 * that appends, which change `updated`, do not maintain it. The small
 * keyed tables are WITHOUT ROWID: one b-tree each. */
static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE tenants(id TEXT PRIMARY KEY, json TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE agents(tenant TEXT NOT NULL, id TEXT NOT NULL,"
    " json TEXT NOT NULL, PRIMARY KEY(tenant,id)) WITHOUT ROWID;"
    "CREATE TABLE sessions(sid INTEGER PRIMARY KEY AUTOINCREMENT,"
    " tenant TEXT NOT NULL, id TEXT NOT NULL,"
    " visitor TEXT NOT NULL, agent TEXT NOT NULL, state INTEGER NOT NULL,"
    " prev_state INTEGER NOT NULL, created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL, since INTEGER NOT NULL,"
    " last_seq INTEGER NOT NULL, preview TEXT NOT NULL,"
    " close_reason TEXT NOT NULL, closed_by TEXT NOT NULL,"
    " UNIQUE(tenant,id));"
    "CREATE INDEX sessions_by_updated ON sessions(tenant,updated);"
    "CREATE INDEX sessions_by_state ON sessions(tenant,state,updated);"
    "CREATE INDEX sessions_by_visitor ON sessions(tenant,visitor);"
    "CREATE TABLE messages(sid INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, sender TEXT NOT NULL, kind INTEGER NOT NULL,"
    " cid TEXT, body TEXT NOT NULL);"
    "CREATE UNIQUE INDEX messages_by_seq ON messages(sid,seq);"
    "CREATE UNIQUE INDEX messages_by_cid ON messages(sid,sender,cid);"
    "CREATE TABLE cursors(tenant TEXT NOT NULL, session TEXT NOT NULL,"
    " user TEXT NOT NULL, acked INTEGER NOT NULL, read INTEGER NOT NULL,"
    " PRIMARY KEY(tenant,session,user)) WITHOUT ROWID;";

typedef struct sq sq;

struct sq {
    cc_ctx *ctx;
    const cc_allocator *a;
    sqlite3 *db;
    sqlite3_stmt *stmt[S__N];
    uv_thread_t thread;
    uv_mutex_t mu;            /* queue, completed list, flags, stats */
    uv_cond_t cond;           /* worker: something queued or stop */
    uv_mutex_t db_mu;         /* the db handle (worker vs load) */
    uv_async_t async;
    /* under mu */
    op *q_head, *q_tail;
    op *done_head, *done_tail;
    int stop;                 /* finish the queue, then exit */
    int exited;               /* the worker is gone (db closed) */
    cc__store_stats stats;
    /* worker only */
    cache cache;
    int wal_pages;            /* frames in the WAL after the last commit */
    int idle_pages;           /* WAL_IDLE_BYTES in pages */
    /* the checkpointer: its own connection and thread, so moving the WAL
     * into the database (and its fsyncs) never holds up a commit */
    sqlite3 *ckdb;
    uv_thread_t ckthread;
    uv_mutex_t ckmu;
    uv_cond_t ckcond;
    int ck_due, ck_stop;      /* under ckmu */
    /* loop thread only */
    size_t inflight;          /* queued, callback not yet run */
    int closing;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static uint64_t
col_u64(sqlite3_stmt *s, int i)
{
    sqlite3_int64 v = sqlite3_column_int64(s, i);
    return v < 0 ? 0 : (uint64_t)v;
}

/* Copy a text column into a fixed field; values were bounded on the way
 * in, the cut is only a guard against a database edited by hand. */
static void
col_str(sqlite3_stmt *s, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    if (!t)
        n = 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

static int
bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
    /* SQLite integers are signed 64-bit; our values (ms, seq) fit. */
    return sqlite3_bind_int64(s, i, (sqlite3_int64)v);
}

static int
bind_str(sqlite3_stmt *s, int i, const char *v)
{
    /* op strings live until the op completes, after the statement is
     * reset, so SQLITE_STATIC is safe */
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

/* Step a statement that returns no row; reset it. SQLITE_OK or the
 * error. */
static int
step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* ------------------------------------------------------------------ */
/* last_seq cache (worker only)                                        */

static uint64_t
hash_key(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;   /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static void
cache_clear(sq *st)
{
    cache *c = &st->cache;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].key)
            cc__free(st->a, c->slots[i].key, c->slots[i].klen + 1);
    if (c->slots)
        cc__free(st->a, c->slots, c->cap * sizeof *c->slots);
    c->slots = NULL;
    c->cap = c->n = 0;
    c->dirty = NULL;
}

static centry *
cache_find(cache *c, const char *key, size_t klen)
{
    if (!c->cap)
        return NULL;
    size_t i = (size_t)hash_key(key, klen) & (c->cap - 1);
    for (;;) {
        centry *e = &c->slots[i];
        if (!e->key)
            return e;
        if (e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
        i = (i + 1) & (c->cap - 1);
    }
}

/* Grow (or create) the table; the dirty list must be empty (entries
 * move). Returns 0 or CC_ENOMEM (the cache is then left as it was). */
static int
cache_grow(sq *st)
{
    cache *c = &st->cache;
    size_t ncap = c->cap ? c->cap * 2 : 1024;
    centry *ns = cc__calloc(st->a, ncap, sizeof *ns);
    if (!ns)
        return CC_ENOMEM;
    cache old = *c;
    c->slots = ns;
    c->cap = ncap;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].key)
            continue;
        centry *e = cache_find(c, old.slots[i].key, old.slots[i].klen);
        *e = old.slots[i];
    }
    if (old.slots)
        cc__free(st->a, old.slots, old.cap * sizeof *old.slots);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Executing operations (worker, inside a transaction)                 */

/* Write the sessions rows of the cached sessions appended to in this
 * transaction. */
static int
flush_dirty(sq *st)
{
    sqlite3_stmt *s = st->stmt[S_SESSION_BUMP];
    centry *e = st->cache.dirty;
    while (e) {
        sqlite3_bind_int64(s, 1, e->sid);
        bind_u64(s, 2, e->last_seq);
        bind_u64(s, 3, e->updated);
        int rc = step_done(s);
        if (rc != SQLITE_OK)
            return rc;
        e->dirty = 0;
        centry *next = e->dnext;
        e->dnext = NULL;
        e = next;
    }
    st->cache.dirty = NULL;
    return SQLITE_OK;
}

static int
exec_append(sq *st, op *o)
{
    const char *tenant = o->s[0], *session = o->s[1], *cid = o->s[2];
    sqlite3_stmt *s;
    int rc;

    /* Find the session's last_seq: the cache, else the row. */
    char kbuf[132];
    size_t tl = strlen(tenant), sl = strlen(session);
    memcpy(kbuf, tenant, tl);
    kbuf[tl] = '\x1f';
    memcpy(kbuf + tl + 1, session, sl);
    size_t klen = tl + 1 + sl;
    centry *e = cache_find(&st->cache, kbuf, klen);
    if (!e || !e->key) {
        s = st->stmt[S_SESSION_SEQ];
        bind_str(s, 1, tenant);
        bind_str(s, 2, session);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
            sqlite3_reset(s);
            o->res.rc = CC_ENOENT;
            return SQLITE_OK;
        }
        if (rc != SQLITE_ROW) {
            sqlite3_reset(s);
            return rc;
        }
        int64_t sid = sqlite3_column_int64(s, 0);
        uint64_t last = col_u64(s, 1), upd = col_u64(s, 2);
        sqlite3_reset(s);
        if (st->cache.n >= CACHE_MAX) {
            /* bound the memory: start over (after writing it back) */
            if ((rc = flush_dirty(st)) != SQLITE_OK)
                return rc;
            cache_clear(st);
        }
        /* Keep the load factor under 1/2; grow only with no dirty
         * entries (they would move). With dirty ones, flush first. */
        if ((st->cache.n + 1) * 2 > st->cache.cap) {
            if (st->cache.dirty && (rc = flush_dirty(st)) != SQLITE_OK)
                return rc;
            if (cache_grow(st) != 0) {
                o->res.rc = CC_ENOMEM;
                return SQLITE_OK;
            }
        }
        e = cache_find(&st->cache, kbuf, klen);
        e->key = cc__alloc(st->a, klen + 1);
        if (!e->key) {
            o->res.rc = CC_ENOMEM;
            return SQLITE_OK;
        }
        memcpy(e->key, kbuf, klen);
        e->key[klen] = '\0';
        e->klen = klen;
        e->sid = sid;
        e->last_seq = last;
        e->updated = upd;
        e->dirty = 0;
        e->dnext = NULL;
        st->cache.n++;
    }

    uint64_t seq = e->last_seq + 1;
    s = st->stmt[S_MSG_INSERT];
    sqlite3_bind_int64(s, 1, e->sid);
    bind_u64(s, 2, seq);
    bind_u64(s, 3, o->u[0]);
    bind_str(s, 4, o->s[3] + o->body_len + 1);   /* from, after the body */
    sqlite3_bind_int(s, 5, o->i[0]);
    if (cid)
        bind_str(s, 6, cid);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_text(s, 7, o->s[3], (int)o->body_len, SQLITE_STATIC);
    rc = step_done(s);
    if (rc != SQLITE_OK)
        return rc;
    if (sqlite3_changes(st->db) == 0) {
        /* the cid exists (NULL cids never conflict) */
        s = st->stmt[S_MSG_DUP];
        sqlite3_bind_int64(s, 1, e->sid);
        bind_str(s, 2, cid);
        bind_str(s, 3, o->s[3] + o->body_len + 1);
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
            sqlite3_reset(s);
            return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
        }
        o->res.seq = col_u64(s, 0);
        o->res.ts = col_u64(s, 1);
        o->res.dup = 1;
        sqlite3_reset(s);
        return SQLITE_OK;
    }
    e->last_seq = seq;
    e->updated = o->u[0];
    if (!e->dirty) {
        e->dirty = 1;
        e->dnext = st->cache.dirty;
        st->cache.dirty = e;
    }
    o->res.seq = seq;
    o->res.ts = o->u[0];
    return SQLITE_OK;
}

static void
row_to_sess(sqlite3_stmt *s, cc__sess_rec *r)
{
    col_str(s, 0, r->tenant, sizeof r->tenant);
    col_str(s, 1, r->id, sizeof r->id);
    col_str(s, 2, r->visitor, sizeof r->visitor);
    col_str(s, 3, r->agent, sizeof r->agent);
    r->state = sqlite3_column_int(s, 4);
    r->prev_state = sqlite3_column_int(s, 5);
    r->created = col_u64(s, 6);
    r->updated = col_u64(s, 7);
    r->since = col_u64(s, 8);
    r->last_seq = col_u64(s, 9);
    col_str(s, 10, r->preview, sizeof r->preview);
    col_str(s, 11, r->close_reason, sizeof r->close_reason);
    col_str(s, 12, r->closed_by, sizeof r->closed_by);
}

/* Read session rows into o->res.sess (grown as rows come). */
static int
read_sessions(sq *st, op *o, sqlite3_stmt *s)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (o->res.nsess == o->sess_cap) {
            size_t ncap = o->sess_cap ? o->sess_cap * 2 : 8;
            cc__sess_rec *n = cc__realloc(
                st->a, o->res.sess, o->sess_cap * sizeof *n, ncap * sizeof *n);
            if (!n) {
                o->res.rc = CC_ENOMEM;
                break;
            }
            o->res.sess = n;
            o->sess_cap = ncap;
        }
        row_to_sess(s, &o->res.sess[o->res.nsess++]);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
exec_msgs_read(sq *st, op *o)
{
    int limit = o->i[0], tail = o->i[1];
    sqlite3_stmt *s = st->stmt[tail ? S_MSGS_TAIL : S_MSGS_FWD];
    bind_str(s, 1, o->s[0]);
    bind_str(s, 2, o->s[1]);
    bind_u64(s, 3, o->u[0]);
    sqlite3_bind_int(s, 4, limit + 1);  /* one more says "more" */
    size_t used = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (o->res.nmsgs == (size_t)limit) {
            o->res.more = 1;
            continue;
        }
        if (o->res.nmsgs == o->msgs_cap) {
            size_t ncap = o->msgs_cap ? o->msgs_cap * 2 : 16;
            if (ncap > (size_t)limit)
                ncap = (size_t)limit;
            cc__smsg *n = cc__realloc(st->a, o->res.msgs,
                                      o->msgs_cap * sizeof *n,
                                      ncap * sizeof *n);
            if (!n)
                goto oom;
            o->res.msgs = n;
            o->msgs_cap = ncap;
        }
        size_t blen = (size_t)sqlite3_column_bytes(s, 5);
        const unsigned char *body = sqlite3_column_text(s, 5);
        if (used + blen + 1 > o->bodies_cap) {
            size_t ncap = o->bodies_cap ? o->bodies_cap * 2 : 4096;
            while (ncap < used + blen + 1)
                ncap *= 2;
            char *n = cc__realloc(st->a, o->bodies, o->bodies_cap, ncap);
            if (!n)
                goto oom;
            o->bodies = n;
            o->bodies_cap = ncap;
        }
        cc__smsg *m = &o->res.msgs[o->res.nmsgs++];
        memset(m, 0, sizeof *m);
        m->seq = col_u64(s, 0);
        m->ts = col_u64(s, 1);
        col_str(s, 2, m->from, sizeof m->from);
        m->kind = sqlite3_column_int(s, 3);
        m->has_cid = sqlite3_column_type(s, 4) != SQLITE_NULL;
        if (m->has_cid)
            col_str(s, 4, m->cid, sizeof m->cid);
        if (blen)
            memcpy(o->bodies + used, body, blen);
        o->bodies[used + blen] = '\0';
        /* the buffer may still move: keep the offset for now */
        m->body = (char *)(uintptr_t)used;
        m->body_len = blen;
        used += blen + 1;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return rc;
    size_t n = o->res.nmsgs;
    for (size_t i = 0; i < n; i++)
        o->res.msgs[i].body = o->bodies + (uintptr_t)o->res.msgs[i].body;
    if (tail) {
        /* read newest first; the contract is ascending */
        for (size_t i = 0; i < n / 2; i++) {
            cc__smsg t = o->res.msgs[i];
            o->res.msgs[i] = o->res.msgs[n - 1 - i];
            o->res.msgs[n - 1 - i] = t;
        }
    }
    return SQLITE_OK;
oom:
    sqlite3_reset(s);
    o->res.rc = CC_ENOMEM;
    return SQLITE_OK;
}

/* Run one op. Returns SQLITE_OK (the op's own outcome is in o->res.rc) or
 * an SQLite error that fails the whole transaction. */
static int
exec_op(sq *st, op *o)
{
    sqlite3_stmt *s;
    int rc;
    switch (o->kind) {
    case OP_META_PUT:
    case OP_TENANT_PUT:
        s = st->stmt[o->kind == OP_META_PUT ? S_META_PUT : S_TENANT_PUT];
        bind_str(s, 1, o->s[0]);
        bind_str(s, 2, o->s[1]);
        return step_done(s);
    case OP_TENANT_DEL:
        if ((rc = flush_dirty(st)) != SQLITE_OK)
            return rc;
        for (int i = S_DEL_MESSAGES; i <= S_DEL_CURSORS; i++) {
            bind_str(st->stmt[i], 1, o->s[0]);
            if ((rc = step_done(st->stmt[i])) != SQLITE_OK)
                return rc;
        }
        /* the tenant's sessions may come back, starting at seq 1 */
        cache_clear(st);
        return SQLITE_OK;
    case OP_AGENT_PUT:
        s = st->stmt[S_AGENT_PUT];
        bind_str(s, 1, o->s[0]);
        bind_str(s, 2, o->s[1]);
        bind_str(s, 3, o->s[2]);
        return step_done(s);
    case OP_AGENT_DEL:
        s = st->stmt[S_AGENT_DEL];
        bind_str(s, 1, o->s[0]);
        bind_str(s, 2, o->s[1]);
        return step_done(s);
    case OP_SESSION_PUT: {
        /* the row's last_seq/updated from earlier appends first, so this
         * put's `updated` wins as it came later */
        if ((rc = flush_dirty(st)) != SQLITE_OK)
            return rc;
        const cc__sess_rec *r = o->rec;
        s = st->stmt[S_SESSION_PUT];
        bind_str(s, 1, r->tenant);
        bind_str(s, 2, r->id);
        bind_str(s, 3, r->visitor);
        bind_str(s, 4, r->agent);
        sqlite3_bind_int(s, 5, r->state);
        sqlite3_bind_int(s, 6, r->prev_state);
        bind_u64(s, 7, r->created);
        bind_u64(s, 8, r->updated);
        bind_u64(s, 9, r->since);
        bind_str(s, 10, r->preview);
        bind_str(s, 11, r->close_reason);
        bind_str(s, 12, r->closed_by);
        if ((rc = step_done(s)) != SQLITE_OK)
            return rc;
        /* a cached entry keeps last_seq (put does not change it) but
         * `updated` is now the put's */
        char kbuf[132];
        size_t tl = strlen(r->tenant), sl = strlen(r->id);
        memcpy(kbuf, r->tenant, tl);
        kbuf[tl] = '\x1f';
        memcpy(kbuf + tl + 1, r->id, sl);
        centry *e = cache_find(&st->cache, kbuf, tl + 1 + sl);
        if (e && e->key)
            e->updated = r->updated;
        return SQLITE_OK;
    }
    case OP_MSG_APPEND:
        return exec_append(st, o);
    case OP_CURSOR_PUT:
        s = st->stmt[S_CURSOR_PUT];
        bind_str(s, 1, o->s[0]);
        bind_str(s, 2, o->s[1]);
        bind_str(s, 3, o->s[2]);
        bind_u64(s, 4, o->u[0]);
        bind_u64(s, 5, o->u[1]);
        return step_done(s);
    case OP_MSGS_READ:
        return exec_msgs_read(st, o);
    case OP_SESSION_GET:
        if ((rc = flush_dirty(st)) != SQLITE_OK)
            return rc;
        s = st->stmt[S_SESSION_GET];
        bind_str(s, 1, o->s[0]);
        bind_str(s, 2, o->s[1]);
        if ((rc = read_sessions(st, o, s)) != SQLITE_OK)
            return rc;
        if (o->res.rc == 0 && o->res.nsess == 0)
            o->res.rc = CC_ENOENT;
        return SQLITE_OK;
    case OP_SESSIONS_LIST: {
        if ((rc = flush_dirty(st)) != SQLITE_OK)
            return rc;
        int state = o->i[0];
        const char *visitor = o->s[1];
        int id = state ? (visitor ? S_LIST_STATE_VISITOR : S_LIST_STATE)
                       : (visitor ? S_LIST_VISITOR : S_LIST_ANY);
        s = st->stmt[id];
        bind_str(s, 1, o->s[0]);
        if (state)
            sqlite3_bind_int(s, 2, state);
        if (visitor)
            bind_str(s, 3, visitor);
        sqlite3_bind_int(s, 4, o->i[1]);
        return read_sessions(st, o, s);
    }
    case OP_CURSOR_GET:
        s = st->stmt[S_CURSOR_GET];
        bind_str(s, 1, o->s[0]);
        bind_str(s, 2, o->s[1]);
        bind_str(s, 3, o->s[2]);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            o->res.acked = col_u64(s, 0);
            o->res.read = col_u64(s, 1);
        }
        sqlite3_reset(s);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    case OP_BARRIER:
        return SQLITE_OK;   /* its place in the FIFO is the point */
    }
    return SQLITE_MISUSE;
}

static void
free_results(sq *st, op *o)
{
    if (o->res.msgs)
        cc__free(st->a, o->res.msgs, o->msgs_cap * sizeof *o->res.msgs);
    if (o->bodies)
        cc__free(st->a, o->bodies, o->bodies_cap);
    if (o->res.sess)
        cc__free(st->a, o->res.sess, o->sess_cap * sizeof *o->res.sess);
    o->res.msgs = NULL;
    o->res.sess = NULL;
    o->bodies = NULL;
    o->res.nmsgs = o->res.nsess = 0;
    o->msgs_cap = o->bodies_cap = o->sess_cap = 0;
}

static int
hist_bucket(double secs)
{
    int i = 0;
    while (i < CC__STORE_HIST_N - 1 && secs > cc__store_hist_bounds[i])
        i++;
    return i;
}

/* One transaction over the ops head..(n of them). */
static void
run_batch(sq *st, op *head, size_t n)
{
    uint64_t t0 = uv_hrtime();
    int rc = step_done(st->stmt[S_BEGIN]);
    for (op *o = head; o && rc == SQLITE_OK; o = o->next)
        rc = exec_op(st, o);
    if (rc == SQLITE_OK)
        rc = flush_dirty(st);
    if (rc == SQLITE_OK)
        rc = step_done(st->stmt[S_COMMIT]);
    if (rc != SQLITE_OK) {
        /* some errors roll back by themselves; a failed COMMIT leaves
         * the transaction open */
        if (!sqlite3_get_autocommit(st->db))
            step_done(st->stmt[S_ROLLBACK]);
        cache_clear(st);
        for (op *o = head; o; o = o->next) {
            free_results(st, o);
            memset(&o->res, 0, sizeof o->res);
            o->res.rc = CC_EBACKEND;
        }
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    uv_mutex_lock(&st->mu);
    st->stats.ops += n;
    if (rc == SQLITE_OK) {
        st->stats.commits++;
        st->stats.commit_seconds_sum += secs;
        st->stats.hist[hist_bucket(secs)]++;
    } else {
        st->stats.failures++;
    }
    uv_mutex_unlock(&st->mu);
}

/* ------------------------------------------------------------------ */
/* The worker thread                                                   */

static int
on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    CC__UNUSED(db);
    CC__UNUSED(name);
    ((sq *)arg)->wal_pages = pages;
    return SQLITE_OK;
}

/* The checkpointer thread: PASSIVE checkpoints on its own connection
 * whenever the worker finds the WAL over WAL_IDLE_BYTES. A passive
 * checkpoint runs beside the writer (WAL mode allows one writer and
 * checkpoints at once); the writer restarts the WAL from its start at
 * the first transaction after a complete one. */
static void
checkpointer(void *arg)
{
    sq *st = arg;
    uv_mutex_lock(&st->ckmu);
    for (;;) {
        while (!st->ck_due && !st->ck_stop)
            uv_cond_wait(&st->ckcond, &st->ckmu);
        if (st->ck_stop)
            break;
        st->ck_due = 0;
        uv_mutex_unlock(&st->ckmu);
        int log = 0, done = 0;
        sqlite3_wal_checkpoint_v2(st->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                  &log, &done);
        uv_mutex_lock(&st->ckmu);
    }
    uv_mutex_unlock(&st->ckmu);
}

static void
checkpoint_soon(sq *st)
{
    uv_mutex_lock(&st->ckmu);
    st->ck_due = 1;
    uv_cond_signal(&st->ckcond);
    uv_mutex_unlock(&st->ckmu);
}

static void
db_close(sq *st)
{
    for (int i = 0; i < S__N; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_close(st->db);
    st->db = NULL;
    sqlite3_close(st->ckdb);
    st->ckdb = NULL;
}

static void
worker(void *arg)
{
    sq *st = arg;
    uv_mutex_lock(&st->mu);
    for (;;) {
        if (!st->q_head) {
            if (st->stop)
                break;
            uv_cond_wait(&st->cond, &st->mu);
            continue;
        }
        op *head = st->q_head, *last = head;
        size_t n = 1;
        while (last->next && n < BATCH_MAX) {
            last = last->next;
            n++;
        }
        st->q_head = last->next;
        if (!st->q_head)
            st->q_tail = NULL;
        last->next = NULL;
        uv_mutex_unlock(&st->mu);

        uv_mutex_lock(&st->db_mu);
        run_batch(st, head, n);
        if (st->wal_pages >= st->idle_pages)
            checkpoint_soon(st);
        uv_mutex_unlock(&st->db_mu);

        uv_mutex_lock(&st->mu);
        if (st->done_tail)
            st->done_tail->next = head;
        else
            st->done_head = head;
        st->done_tail = last;
        uv_async_send(&st->async);
    }
    uv_mutex_unlock(&st->mu);

    uv_mutex_lock(&st->ckmu);
    st->ck_stop = 1;
    uv_cond_signal(&st->ckcond);
    uv_mutex_unlock(&st->ckmu);
    uv_thread_join(&st->ckthread);

    uv_mutex_lock(&st->db_mu);
    cache_clear(st);
    db_close(st);
    uv_mutex_unlock(&st->db_mu);

    uv_mutex_lock(&st->mu);
    st->exited = 1;
    uv_async_send(&st->async);
    uv_mutex_unlock(&st->mu);
}

/* ------------------------------------------------------------------ */
/* Loop side: completions and close                                    */

static void
op_free(sq *st, op *o)
{
    free_results(st, o);
    cc__free(st->a, o, o->size);
}

static void
on_closed(uv_handle_t *h)
{
    sq *st = h->data;
    uv_cond_destroy(&st->cond);
    uv_cond_destroy(&st->ckcond);
    uv_mutex_destroy(&st->ckmu);
    uv_mutex_destroy(&st->mu);
    uv_mutex_destroy(&st->db_mu);
    void (*cb)(void *) = st->close_cb;
    void *data = st->close_data;
    cc__free(st->a, st, sizeof *st);
    cb(data);
}

static void
on_async(uv_async_t *h)
{
    sq *st = h->data;
    uv_mutex_lock(&st->mu);
    op *o = st->done_head;
    st->done_head = st->done_tail = NULL;
    uv_mutex_unlock(&st->mu);
    size_t n = 0;
    while (o) {
        op *next = o->next;
        if (o->cb)
            o->cb(&o->res, o->data);
        op_free(st, o);
        st->inflight--;
        n++;
        o = next;
    }
    if (n) {
        uv_mutex_lock(&st->mu);
        st->stats.pending -= n;
        uv_mutex_unlock(&st->mu);
    }
    if (!st->closing) {
        if (st->inflight == 0)
            uv_unref((uv_handle_t *)&st->async);
        return;
    }
    uv_mutex_lock(&st->mu);
    int gone = st->exited && !st->done_head;
    uv_mutex_unlock(&st->mu);
    if (!gone)
        return;
    uv_thread_join(&st->thread);
    uv_close((uv_handle_t *)&st->async, on_closed);
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */

static int
exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int
pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/* Check the database is ours (or empty) and create the schema. */
static int
schema_init(sqlite3 *db)
{
    int ver = 0, app = 0, ntables = 0;
    if (pragma_int(db, "PRAGMA user_version", &ver) != SQLITE_OK ||
        pragma_int(db, "PRAGMA application_id", &app) != SQLITE_OK)
        return CC_EBACKEND;
    if (ver == SCHEMA_VERSION && app == APP_ID)
        return 0;
    /* newer than us, or someone else's */
    if (ver > SCHEMA_VERSION || (app != 0 && app != APP_ID))
        return CC_EBACKEND;
    if (pragma_int(db, "SELECT count(*) FROM sqlite_schema", &ntables) !=
        SQLITE_OK)
        return CC_EBACKEND;
    if (ntables != 0 || ver != 0)
        return CC_EBACKEND;
    if (exec_sql(db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return CC_EBACKEND;
    char pragmas[96];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA application_id=%d;PRAGMA user_version=%d;", APP_ID,
             SCHEMA_VERSION);
    if (exec_sql(db, schema_sql) != SQLITE_OK ||
        exec_sql(db, pragmas) != SQLITE_OK ||
        exec_sql(db, "COMMIT") != SQLITE_OK) {
        exec_sql(db, "ROLLBACK");
        return CC_EBACKEND;
    }
    return 0;
}

static int
db_open(sq *st, const char *path, unsigned flags)
{
    /* NOMUTEX: the handle is never used by two threads at once (db_mu) */
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    /* Page size: the 4 KiB default. 8 and 16 KiB measured no faster on
     * bursts over few sessions and up to 2x slower on small commits
     * spread over many sessions (each dirty page is written whole). */
    /* journal_mode answers the mode in effect: check it is WAL */
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s,
                           NULL) != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(s);
    const unsigned char *mode = sqlite3_column_text(s, 0);
    int wal = rc == SQLITE_ROW && mode &&
              strcmp((const char *)mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal)
        goto fail;
    if (exec_sql(st->db, (flags & CC_STORE_SYNC_FULL)
                             ? "PRAGMA synchronous=FULL"
                             : "PRAGMA synchronous=NORMAL") != SQLITE_OK)
        goto fail;
    /* checkpoints are ours (worker, when idle or the WAL is large) */
    sqlite3_wal_autocheckpoint(st->db, 0);
    sqlite3_wal_hook(st->db, on_wal, st);
    if (exec_sql(st->db, "PRAGMA journal_size_limit=67108864;"
                         "PRAGMA cache_size=-16384") != SQLITE_OK)
        goto fail;
    if (schema_init(st->db) != 0)
        goto fail;
    int page = 0;
    if (pragma_int(st->db, "PRAGMA page_size", &page) != SQLITE_OK ||
        page < 512)
        goto fail;
    st->idle_pages = WAL_IDLE_BYTES / page;
    for (int i = 0; i < S__N; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                               SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                               NULL) != SQLITE_OK)
            goto fail;
    }
    /* the checkpointer's connection: same durability, no checkpoints of
     * its own on close (the writer's close checkpoints last) */
    if (sqlite3_open_v2(path, &st->ckdb,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(st->ckdb, BUSY_TIMEOUT_MS);
    sqlite3_wal_autocheckpoint(st->ckdb, 0);
    if (exec_sql(st->ckdb, (flags & CC_STORE_SYNC_FULL)
                               ? "PRAGMA synchronous=FULL"
                               : "PRAGMA synchronous=NORMAL") != SQLITE_OK)
        goto fail;
    return 0;
fail:
    /* sqlite3_open_v2 makes a handle even when it fails */
    db_close(st);
    return CC_EBACKEND;
}

static const cc_store_ops sq_ops;

static void
discard(void *data)
{
    cc__store_discard(data);
}

int
cc_store_sqlite_open(cc_store **out, cc_ctx *ctx, const char *path,
                     unsigned flags)
{
    /* "" would be a private temporary database: never what is meant */
    if (!out || !ctx || !path || !*path ||
        (flags & ~(unsigned)CC_STORE_SYNC_FULL))
        return CC_EINVAL;
    cc_store *w;
    int rc = cc_store_new(&w, ctx, &sq_ops, NULL);
    if (rc)
        return rc;
    sq *st = CC__CALLOC(ctx, 1, sizeof *st);
    if (!st) {
        cc__store_discard(w);
        return CC_ENOMEM;
    }
    st->ctx = ctx;
    st->a = &ctx->a;
    rc = db_open(st, path, flags);
    if (rc)
        goto fail_st;
    if ((rc = uv_mutex_init(&st->mu)) != 0)
        goto fail_db;
    if ((rc = uv_mutex_init(&st->db_mu)) != 0)
        goto fail_mu;
    if ((rc = uv_cond_init(&st->cond)) != 0)
        goto fail_dbmu;
    if ((rc = uv_mutex_init(&st->ckmu)) != 0)
        goto fail_cond0;
    if ((rc = uv_cond_init(&st->ckcond)) != 0)
        goto fail_ckmu;
    if ((rc = uv_thread_create(&st->ckthread, checkpointer, st)) != 0)
        goto fail_ckcond;
    if ((rc = uv_async_init(ctx->loop, &st->async, on_async)) != 0)
        goto fail_ckthread;
    st->async.data = st;
    /* referenced only while operations are in flight */
    uv_unref((uv_handle_t *)&st->async);
    if ((rc = uv_thread_create(&st->thread, worker, st)) != 0) {
        /* the handle is closed asynchronously: let on_closed free */
        uv_mutex_lock(&st->ckmu);
        st->ck_stop = 1;
        uv_cond_signal(&st->ckcond);
        uv_mutex_unlock(&st->ckmu);
        uv_thread_join(&st->ckthread);
        db_close(st);
        st->closing = 1;
        st->close_cb = discard;
        st->close_data = w;
        uv_close((uv_handle_t *)&st->async, on_closed);
        return rc;
    }
    cc__store_set_impl(w, st);
    *out = w;
    return 0;
fail_ckthread:
    uv_mutex_lock(&st->ckmu);
    st->ck_stop = 1;
    uv_cond_signal(&st->ckcond);
    uv_mutex_unlock(&st->ckmu);
    uv_thread_join(&st->ckthread);
fail_ckcond:
    uv_cond_destroy(&st->ckcond);
fail_ckmu:
    uv_mutex_destroy(&st->ckmu);
fail_cond0:
    uv_cond_destroy(&st->cond);
fail_dbmu:
    uv_mutex_destroy(&st->db_mu);
fail_mu:
    uv_mutex_destroy(&st->mu);
fail_db:
    db_close(st);
fail_st:
    CC__FREE(ctx, st, sizeof *st);
    cc__store_discard(w);
    return rc;
}

static void
sq_close(void *impl, void (*cb)(void *data), void *data)
{
    sq *st = impl;
    if (st->closing)
        return;
    st->closing = 1;
    st->close_cb = cb;
    st->close_data = data;
    /* keep the loop running until the worker is gone */
    uv_ref((uv_handle_t *)&st->async);
    uv_mutex_lock(&st->mu);
    st->stop = 1;
    uv_cond_signal(&st->cond);
    uv_mutex_unlock(&st->mu);
}

/* ------------------------------------------------------------------ */
/* Queueing (loop thread)                                              */

/* Allocate an op with room for `extra` bytes (at the start of buf) and
 * the n strings (NULLs allowed), copied after it. */
static int
op_new(sq *st, op **out, int kind, size_t extra, int n,
       const char *const *strs, const size_t *lens)
{
    if (st->closing)
        return CC_ESTATE;
    if (st->inflight >= CC__STORE_MAX_PENDING)
        return CC_EQUEUEFULL;
    size_t size = sizeof(op) + extra;
    for (int i = 0; i < n; i++)
        if (strs[i]) {
            if (lens[i] > SIZE_MAX / 2 - size)
                return CC_E2BIG;
            size += lens[i] + 1;
        }
    op *o = cc__alloc(st->a, size);
    if (!o)
        return CC_ENOMEM;
    memset(o, 0, sizeof *o);
    o->size = size;
    o->kind = kind;
    char *p = (char *)o->buf + extra;
    for (int i = 0; i < n; i++) {
        if (!strs[i])
            continue;
        memcpy(p, strs[i], lens[i]);
        p[lens[i]] = '\0';
        o->s[i] = p;
        p += lens[i] + 1;
    }
    *out = o;
    return 0;
}

static void
op_queue(sq *st, op *o, cc__store_cb cb, void *data)
{
    o->cb = cb;
    o->data = data;
    if (st->inflight++ == 0)
        uv_ref((uv_handle_t *)&st->async);
    uv_mutex_lock(&st->mu);
    if (st->q_tail)
        st->q_tail->next = o;
    else
        st->q_head = o;
    st->q_tail = o;
    st->stats.pending++;
    uv_cond_signal(&st->cond);
    uv_mutex_unlock(&st->mu);
}

/* Queue an op made of up to 4 NUL-terminated strings. */
static int
queue_strs(sq *st, int kind, int n, const char *const *strs,
           cc__store_cb cb, void *data, op **out)
{
    size_t lens[4] = {0};
    for (int i = 0; i < n; i++)
        if (strs[i])
            lens[i] = strlen(strs[i]);
    op *o;
    int rc = op_new(st, &o, kind, 0, n, strs, lens);
    if (rc)
        return rc;
    if (out)
        *out = o;   /* caller fills the rest, then queues */
    else
        op_queue(st, o, cb, data);
    return 0;
}

static int
sq_meta_put(void *impl, const char *key, const char *value,
            cc__store_cb cb, void *data)
{
    sq *st = impl;
    const char *s[2] = {key, value};
    return queue_strs(st, OP_META_PUT, 2, s, cb, data, NULL);
}

static int
sq_tenant_put(void *impl, const char *id, const char *json,
              cc__store_cb cb, void *data)
{
    sq *st = impl;
    const char *s[2] = {id, json};
    return queue_strs(st, OP_TENANT_PUT, 2, s, cb, data, NULL);
}

static int
sq_tenant_del(void *impl, const char *id, cc__store_cb cb,
              void *data)
{
    sq *st = impl;
    const char *s[1] = {id};
    return queue_strs(st, OP_TENANT_DEL, 1, s, cb, data, NULL);
}

static int
sq_agent_put(void *impl, const char *tenant, const char *id,
             const char *json, cc__store_cb cb, void *data)
{
    sq *st = impl;
    const char *s[3] = {tenant, id, json};
    return queue_strs(st, OP_AGENT_PUT, 3, s, cb, data, NULL);
}

static int
sq_agent_del(void *impl, const char *tenant, const char *id,
             cc__store_cb cb, void *data)
{
    sq *st = impl;
    const char *s[2] = {tenant, id};
    return queue_strs(st, OP_AGENT_DEL, 2, s, cb, data, NULL);
}

static int
sq_session_put(void *impl, const cc__sess_rec *r, cc__store_cb cb,
               void *data)
{
    sq *st = impl;
    op *o;
    int rc = op_new(st, &o, OP_SESSION_PUT, sizeof *r, 0, NULL, NULL);
    if (rc)
        return rc;
    o->rec = (cc__sess_rec *)(void *)o->buf;
    memcpy(o->rec, r, sizeof *r);
    op_queue(st, o, cb, data);
    return 0;
}

static int
sq_msg_append(void *impl, const char *tenant, const char *session,
              const char *cid, const char *from, int kind,
              const char *body, size_t body_len, uint64_t ts,
              cc__store_cb cb, void *data)
{
    sq *st = impl;
    /* body and from share slot 3: body, NUL, from, NUL */
    size_t fl = strlen(from);
    const char *strs[3] = {tenant, session, cid};
    size_t lens[3] = {strlen(tenant), strlen(session), cid ? strlen(cid) : 0};
    op *o;
    int rc = op_new(st, &o, OP_MSG_APPEND, body_len + 1 + fl + 1, 3, strs,
                    lens);
    if (rc)
        return rc;
    char *p = (char *)o->buf;
    memcpy(p, body, body_len);
    p[body_len] = '\0';
    memcpy(p + body_len + 1, from, fl + 1);
    o->s[3] = p;
    o->body_len = body_len;
    o->u[0] = ts;
    o->i[0] = kind;
    op_queue(st, o, cb, data);
    return 0;
}

static int
sq_cursor_put(void *impl, const char *tenant, const char *session,
              const char *user, uint64_t acked, uint64_t read,
              cc__store_cb cb, void *data)
{
    sq *st = impl;
    const char *s[3] = {tenant, session, user};
    op *o;
    int rc = queue_strs(st, OP_CURSOR_PUT, 3, s, cb, data, &o);
    if (rc)
        return rc;
    o->u[0] = acked;
    o->u[1] = read;
    op_queue(st, o, cb, data);
    return 0;
}

static int
sq_msgs_read(void *impl, const char *tenant, const char *session,
             uint64_t after, int limit, int tail, cc__store_cb cb,
             void *data)
{
    sq *st = impl;
    const char *s[2] = {tenant, session};
    op *o;
    int rc = queue_strs(st, OP_MSGS_READ, 2, s, cb, data, &o);
    if (rc)
        return rc;
    o->u[0] = after;
    o->i[0] = limit;
    o->i[1] = tail != 0;
    op_queue(st, o, cb, data);
    return 0;
}

static int
sq_session_get(void *impl, const char *tenant, const char *id,
               cc__store_cb cb, void *data)
{
    sq *st = impl;
    const char *s[2] = {tenant, id};
    return queue_strs(st, OP_SESSION_GET, 2, s, cb, data, NULL);
}

static int
sq_sessions_list(void *impl, const char *tenant, int state,
                 const char *visitor, int limit, cc__store_cb cb,
                 void *data)
{
    sq *st = impl;
    const char *s[2] = {tenant, visitor};
    op *o;
    int rc = queue_strs(st, OP_SESSIONS_LIST, 2, s, cb, data, &o);
    if (rc)
        return rc;
    o->i[0] = state;
    o->i[1] = limit;
    op_queue(st, o, cb, data);
    return 0;
}

static int
sq_barrier(void *impl, cc__store_cb cb, void *data)
{
    return queue_strs(impl, OP_BARRIER, 0, NULL, cb, data, NULL);
}

static int
sq_cursor_get(void *impl, const char *tenant, const char *session,
              const char *user, cc__store_cb cb, void *data)
{
    sq *st = impl;
    const char *s[3] = {tenant, session, user};
    return queue_strs(st, OP_CURSOR_GET, 3, s, cb, data, NULL);
}

/* ------------------------------------------------------------------ */
/* Load and statistics                                                 */

static int
load_rows(sqlite3 *db, const char *sql, const cc__store_loader *l, int what)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return CC_EBACKEND;
    int rc;
    cc__sess_rec r;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t0 = (const char *)sqlite3_column_text(s, 0);
        const char *t1 = (const char *)sqlite3_column_text(s, 1);
        const char *t2 = what == 2 || what == 4
                             ? (const char *)sqlite3_column_text(s, 2)
                             : NULL;
        /* column 0 is the tenant of every kind but meta */
        if (what > 0 && l->want_tenant &&
            !l->want_tenant(l->data, t0 ? t0 : ""))
            continue;
        switch (what) {
        case 0:
            l->meta(l->data, t0 ? t0 : "", t1 ? t1 : "");
            break;
        case 1:
            l->tenant(l->data, t0 ? t0 : "", t1 ? t1 : "");
            break;
        case 2:
            l->agent(l->data, t0 ? t0 : "", t1 ? t1 : "", t2 ? t2 : "");
            break;
        case 3:
            memset(&r, 0, sizeof r);
            row_to_sess(s, &r);
            l->session(l->data, &r);
            break;
        default:
            l->cursor(l->data, t0 ? t0 : "", t1 ? t1 : "", t2 ? t2 : "",
                      col_u64(s, 3), col_u64(s, 4));
            break;
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : CC_EBACKEND;
}

static int
sq_load(void *impl, const cc__store_loader *l)
{
    sq *st = impl;
    if (st->closing || st->inflight)
        return CC_ESTATE;
    int rc = 0;
    uv_mutex_lock(&st->db_mu);
    /* one read transaction: a consistent snapshot of all five */
    if (exec_sql(st->db, "BEGIN") != SQLITE_OK) {
        uv_mutex_unlock(&st->db_mu);
        return CC_EBACKEND;
    }
    if (!rc && l->meta)
        rc = load_rows(st->db, "SELECT key,value FROM meta", l, 0);
    if (!rc && l->tenant)
        rc = load_rows(st->db, "SELECT id,json FROM tenants", l, 1);
    if (!rc && l->agent)
        rc = load_rows(st->db, "SELECT tenant,id,json FROM agents", l, 2);
    if (!rc && l->session)
        rc = load_rows(st->db,
                       "SELECT " SESS_COLS " FROM sessions WHERE state<>5",
                       l, 3);
    if (!rc && l->cursor)
        rc = load_rows(st->db,
                       "SELECT c.tenant,c.session,c.user,c.acked,c.read "
                       "FROM cursors c JOIN sessions s "
                       "ON s.tenant=c.tenant AND s.id=c.session "
                       "WHERE s.state<>5",
                       l, 4);
    exec_sql(st->db, "COMMIT");
    uv_mutex_unlock(&st->db_mu);
    return rc;
}

static void
sq_stats(void *impl, cc__store_stats *out)
{
    sq *st = impl;
    uv_mutex_lock(&st->mu);
    *out = st->stats;
    uv_mutex_unlock(&st->mu);
}

static const cc_store_ops sq_ops = {
    .size = sizeof(cc_store_ops),
    .load = sq_load,
    .meta_put = sq_meta_put,
    .tenant_put = sq_tenant_put,
    .tenant_del = sq_tenant_del,
    .agent_put = sq_agent_put,
    .agent_del = sq_agent_del,
    .session_put = sq_session_put,
    .msg_append = sq_msg_append,
    .cursor_put = sq_cursor_put,
    .msgs_read = sq_msgs_read,
    .session_get = sq_session_get,
    .sessions_list = sq_sessions_list,
    .cursor_get = sq_cursor_get,
    .barrier = sq_barrier,
    .stats = sq_stats,
    .close = sq_close,
};
