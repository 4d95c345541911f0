/*
 * chatcore/store.h - durable storage for the chat engine.
 *
 * A cc_store holds tenants, agents, sessions, messages, idempotence keys
 * (a message's `cid`) and delivery cursors. The chat engine (chat.h) talks
 * to it through an internal asynchronous interface: every operation is
 * queued from the loop thread, executed in order on the store's own worker
 * thread, and completed back on the loop thread. Writes are batched: all
 * operations queued while one transaction commits go into the next one
 * (group commit). A completion for a write runs only after its transaction
 * committed, so the engine announces nothing that is not stored.
 *
 * The embedded backend is SQLite (WAL). Others (Redis, for distributed
 * mode; or an application's own) implement cc_store_ops below.
 */
#ifndef CHATCORE_STORE_H
#define CHATCORE_STORE_H

#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_store cc_store;

/* Flags for cc_store_sqlite_open. */
enum {
    /* fsync the WAL on every commit (synchronous=FULL): committed data
     * survives power loss. Without it (synchronous=NORMAL) committed data
     * survives any crash or kill of the process, not an OS crash. */
    CC_STORE_SYNC_FULL = 1 << 0
};

/* Open (creating when absent) the SQLite database at `path` and start its
 * worker thread (and a checkpointer thread). Completions run on ctx's
 * loop. The worker allocates results through ctx's allocator, so that
 * allocator must be thread-safe (libc's is); SQLite's own memory comes
 * from libc (its allocator hooks are process-wide). The schema is created or
 * upgraded here, synchronously: open stores at startup. Returns 0,
 * CC_EINVAL, CC_ENOMEM, CC_EBACKEND (the database cannot be opened or is
 * not ours). Since 0.2. */
CC_API int cc_store_sqlite_open(cc_store **out, cc_ctx *ctx, const char *path,
                                unsigned flags);

/* Finish every queued operation (their callbacks run), stop the worker,
 * close the database, free the store, then run cb (may be NULL) on the
 * loop thread. Works for every backend (cc_store_new). Since 0.2. */
CC_API void cc_store_close(cc_store *st, cc_close_cb cb, void *data);

/* ------------------------------------------------------------------ */
/* Backends (Since 0.4)
 *
 * A store is a table of operations (cc_store_ops) over an implementation
 * pointer. The SQLite backend above is one; the Redis backend of
 * chatcore/redis.h (libchatcore-redis) is another; an application may
 * write its own. The engine calls the operations below, and only them.
 *
 * Contract every backend keeps (the engine relies on each point):
 *  - Every operation is called on the loop thread of the store's ctx and
 *    copies its arguments before it returns.
 *  - An operation that returns 0 runs its callback (when not NULL)
 *    exactly once, on the loop thread, never inside the call. One that
 *    returns an error never runs it.
 *  - Operations take effect, and their callbacks run, in the order they
 *    were called: a read sees every write called before it.
 *  - A write's callback runs only once the write is durable (what
 *    "durable" means is the backend's promise: see its documentation).
 *  - `res` and everything it points to are valid only during the callback.
 *  - Ids follow the wire id rule (1..64 of [A-Za-z0-9_.:-]).
 */

/* Session states, stored as these integers (PROTOCOL.md §1). */
enum {
    CC_STORE_NEW = 1, CC_STORE_QUEUED = 2, CC_STORE_ACTIVE = 3,
    CC_STORE_OFFLINE = 4, CC_STORE_CLOSED = 5
};

/* One session row. Strings are NUL-terminated, "" when absent. */
typedef struct cc_store_session {
    char tenant[65];
    char id[65];
    char visitor[65];        /* bare visitor id */
    char agent[65];          /* serving agent, "" when none */
    int state;               /* CC_STORE_* */
    int prev_state;          /* while offline: the state to resume; else 0 */
    uint64_t created;        /* unix ms */
    uint64_t updated;        /* unix ms, last change of any field */
    uint64_t since;          /* unix ms first queued (queue order), 0 */
    uint64_t last_seq;       /* maintained by msg_append; ignored by put */
    char preview[404];       /* queue preview, UTF-8, <= 100 code points */
    char close_reason[804];  /* <= 200 code points */
    char closed_by[80];      /* "visitor:ID" | "agent:ID" | "system" | "" */
} cc_store_session;

/* One stored message. */
typedef struct cc_store_msg {
    uint64_t seq;
    uint64_t ts;             /* unix ms */
    char from[80];           /* "visitor:ID" | "agent:ID" | "system" */
    int kind;                /* 1 text, 2 image, 3 file, 4 event */
    int has_cid;             /* 0 for system messages (cid null) */
    char cid[260];           /* UTF-8, <= 64 code points */
    char *body;              /* compact JSON object text, NUL-terminated */
    size_t body_len;
} cc_store_msg;

/* What an operation's callback receives; each operation names the fields
 * it sets. */
typedef struct cc_store_result {
    int rc;                  /* 0 or a negative CC_E* code */
    /* msg_append */
    uint64_t seq, ts;
    int dup;                 /* 1: the cid existed; seq/ts are the original's */
    /* msgs_read */
    cc_store_msg *msgs;
    size_t nmsgs;
    int more;
    /* session_get, sessions_list */
    cc_store_session *sess;
    size_t nsess;
    /* cursor_get */
    uint64_t acked, read;
} cc_store_result;

typedef void (*cc_store_cb)(cc_store_result *res, void *data);

/* Loading: each callback may be NULL (that kind is then not read at all).
 * `want_tenant` (may be NULL = every tenant) chooses the tenants whose
 * agents, sessions and cursors are read; `tenant` is called for the
 * chosen ones only. */
typedef struct cc_store_loader {
    void (*meta)(void *data, const char *key, const char *value);
    void (*tenant)(void *data, const char *id, const char *json);
    void (*agent)(void *data, const char *tenant, const char *id,
                  const char *json);
    /* every session of a chosen tenant whose state is not closed */
    void (*session)(void *data, const cc_store_session *s);
    /* every cursor of those sessions */
    void (*cursor)(void *data, const char *tenant, const char *session,
                   const char *user, uint64_t acked, uint64_t read);
    int (*want_tenant)(void *data, const char *id);
    void *data;
} cc_store_loader;

/* Counters, for /metrics. The histogram has CC_STORE_HIST_N buckets of
 * commit latency (per bucket, not cumulative); upper bounds in seconds:
 * 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 +Inf. */
#define CC_STORE_HIST_N 12
typedef struct cc_store_stats {
    uint64_t ops;            /* operations executed */
    uint64_t commits;        /* transactions (or round trips) committed */
    uint64_t failures;       /* of those, failed */
    uint64_t pending;        /* queued, not yet completed (gauge) */
    double commit_seconds_sum;
    uint64_t hist[CC_STORE_HIST_N];
} cc_store_stats;

/* The operations. `impl` is the pointer given to cc_store_new. Every
 * function is required unless marked optional. Semantics in full:
 * docs/api/store.md. Append-only: `size` is sizeof(cc_store_ops) as the
 * backend was compiled; members past it are treated as NULL. */
typedef struct cc_store_ops {
    size_t size;
    /* optional: read everything `l` asks for, synchronously, before any
     * other operation (at startup). NULL: only load_async is offered. */
    int (*load)(void *impl, const cc_store_loader *l);
    /* optional: the same, asynchronously: l's callbacks run on the loop
     * thread, then cb (res->rc) once all were made. Ordered like any
     * other operation. */
    int (*load_async)(void *impl, const cc_store_loader *l, cc_store_cb cb,
                      void *data);
    int (*meta_put)(void *impl, const char *key, const char *value,
                    cc_store_cb cb, void *data);
    /* json: the engine's storage form of a tenant or agent, opaque */
    int (*tenant_put)(void *impl, const char *id, const char *json,
                      cc_store_cb cb, void *data);
    /* the tenant and everything of it: agents, sessions, messages,
     * cursors */
    int (*tenant_del)(void *impl, const char *id, cc_store_cb cb, void *data);
    int (*agent_put)(void *impl, const char *tenant, const char *id,
                     const char *json, cc_store_cb cb, void *data);
    int (*agent_del)(void *impl, const char *tenant, const char *id,
                     cc_store_cb cb, void *data);
    /* insert or replace every field but last_seq (a new row starts at 0) */
    int (*session_put)(void *impl, const cc_store_session *s, cc_store_cb cb,
                       void *data);
    /* seq = last_seq + 1, which becomes last_seq (and `updated` = ts).
     * A cid (not NULL) the session already has from the same `from`:
     * nothing written, res->dup = 1 with the original's seq and ts. cid
     * NULL: a system message. Unknown session: rc CC_ENOENT. */
    int (*msg_append)(void *impl, const char *tenant, const char *session,
                      const char *cid, const char *from, int kind,
                      const char *body, size_t body_len, uint64_t ts,
                      cc_store_cb cb, void *data);
    /* raise, never lower, a user's cursors */
    int (*cursor_put)(void *impl, const char *tenant, const char *session,
                      const char *user, uint64_t acked, uint64_t read,
                      cc_store_cb cb, void *data);
    /* tail 0: seq > after ascending, at most limit, more = later exist;
     * tail 1: the last `limit` with seq > after, ascending, more =
     * earlier ones (> after) exist. limit 1..1000. */
    int (*msgs_read)(void *impl, const char *tenant, const char *session,
                     uint64_t after, int limit, int tail, cc_store_cb cb,
                     void *data);
    /* res->sess[0], or rc CC_ENOENT */
    int (*session_get)(void *impl, const char *tenant, const char *id,
                       cc_store_cb cb, void *data);
    /* most recently updated first, at most limit (1..1000); state 0 = any;
     * visitor NULL = any */
    int (*sessions_list)(void *impl, const char *tenant, int state,
                         const char *visitor, int limit, cc_store_cb cb,
                         void *data);
    /* res->acked/read, 0 when none */
    int (*cursor_get)(void *impl, const char *tenant, const char *session,
                      const char *user, cc_store_cb cb, void *data);
    /* completes after every operation called before it */
    int (*barrier)(void *impl, cc_store_cb cb, void *data);
    /* any thread */
    void (*stats)(void *impl, cc_store_stats *out);
    /* finish what is queued (callbacks run), free, then done(data) on the
     * loop thread */
    void (*close)(void *impl, void (*done)(void *data), void *data);
} cc_store_ops;

/* Wrap a backend. `ops` must outlive the store (a static table). Returns
 * 0, CC_EINVAL (a required operation is missing), CC_ENOMEM. Since 0.4. */
CC_API int cc_store_new(cc_store **out, cc_ctx *ctx, const cc_store_ops *ops,
                        void *impl);

/* The implementation pointer given to cc_store_new. Since 0.4. */
CC_API void *cc_store_impl(const cc_store *st);

#ifdef __cplusplus
}
#endif
#endif
