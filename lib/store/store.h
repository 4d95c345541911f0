/*
 * lib/store/store.h - the store's internal interface, used by the chat
 * engine (lib/chat). See include/chatcore/store.h for the model.
 *
 * Threading: every cc__store_* call below is made on the loop thread of the
 * store's ctx. Operations run on the store's worker thread strictly in the
 * order they were queued (reads included, so a read sees every write queued
 * before it). Callbacks run on the loop thread, in queue order, after the
 * transaction holding the operation committed (or failed). A callback's
 * `res` and everything it points to are valid only during the callback.
 *
 * Strings passed in are copied at the call; the caller may free them on
 * return. Ids follow the wire id rule (1..64 of [A-Za-z0-9_.:-]).
 */
#ifndef CC_STORE_INT_H
#define CC_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

/* Session states (PROTOCOL.md §1). Stored as these integers. */
typedef enum cc__sstate {
    CC__S_NEW = 1, CC__S_QUEUED, CC__S_ACTIVE, CC__S_OFFLINE, CC__S_CLOSED
} cc__sstate;

/* One session row. Strings are NUL-terminated, "" when absent. */
typedef struct cc__sess_rec {
    char tenant[65];
    char id[65];
    char visitor[65];        /* bare visitor id */
    char agent[65];          /* serving agent, "" when none */
    int state;               /* cc__sstate */
    int prev_state;          /* while offline: the state to resume; else 0 */
    uint64_t created;        /* unix ms */
    uint64_t updated;        /* unix ms, last change of any field */
    uint64_t since;          /* unix ms first queued (queue order), 0 */
    uint64_t last_seq;       /* maintained by msg_append; ignored by put */
    char preview[404];       /* queue preview, UTF-8, <= 100 code points */
    char close_reason[804];  /* <= 200 code points */
    char closed_by[80];      /* "visitor:ID" | "agent:ID" | "system" | "" */
} cc__sess_rec;

/* One stored message. */
typedef struct cc__smsg {
    uint64_t seq;
    uint64_t ts;             /* unix ms */
    char from[80];           /* "visitor:ID" | "agent:ID" | "system" */
    int kind;                /* cc__kind of lib/proto/proto.h (1..4) */
    int has_cid;             /* 0 for system messages (cid null) */
    char cid[260];           /* UTF-8, <= 64 code points */
    char *body;              /* compact JSON object text, NUL-terminated */
    size_t body_len;
} cc__smsg;

typedef struct cc__store_res {
    int rc;                  /* 0 or a negative CC_E* code */
    /* msg_append */
    uint64_t seq, ts;
    int dup;                 /* 1: the cid existed; seq/ts are the original's */
    /* msgs_read */
    cc__smsg *msgs;
    size_t nmsgs;
    int more;
    /* session_get, sessions_list */
    cc__sess_rec *sess;
    size_t nsess;
    /* cursor_get */
    uint64_t acked, read;
} cc__store_res;

typedef void (*cc__store_cb)(cc__store_res *res, void *data);

/* Most operations a store holds queued at once; beyond it calls return
 * CC_EQUEUEFULL (the engine answers `internal`; nothing was written). */
#define CC__STORE_MAX_PENDING 200000

/* ---- synchronous load at startup ----
 * Call after open and before any other operation, on the loop thread
 * before the loop serves anything. Each callback may be NULL. */
typedef struct cc__store_loader {
    void (*meta)(void *data, const char *key, const char *value);
    void (*tenant)(void *data, const char *id, const char *json);
    void (*agent)(void *data, const char *tenant, const char *id,
                  const char *json);
    /* every session whose state is not CC__S_CLOSED */
    void (*session)(void *data, const cc__sess_rec *s);
    /* every cursor of those sessions */
    void (*cursor)(void *data, const char *tenant, const char *session,
                   const char *user, uint64_t acked, uint64_t read);
    void *data;
} cc__store_loader;
int cc__store_load(cc_store *st, const cc__store_loader *l);

/* ---- writes (cb may be NULL) ---- */
int cc__store_meta_put(cc_store *st, const char *key, const char *value,
                       cc__store_cb cb, void *data);
/* json: the tenant's storage form (lib/chat/tenant.h), opaque here. */
int cc__store_tenant_put(cc_store *st, const char *id, const char *json,
                         cc__store_cb cb, void *data);
/* Deletes the tenant and everything of it: agents, sessions, messages,
 * cursors. */
int cc__store_tenant_del(cc_store *st, const char *id, cc__store_cb cb,
                         void *data);
int cc__store_agent_put(cc_store *st, const char *tenant, const char *id,
                        const char *json, cc__store_cb cb, void *data);
int cc__store_agent_del(cc_store *st, const char *tenant, const char *id,
                        cc__store_cb cb, void *data);
/* Insert or replace the session row (every field but last_seq, which
 * only msg_append changes; a new row starts at last_seq 0). */
int cc__store_session_put(cc_store *st, const cc__sess_rec *s,
                          cc__store_cb cb, void *data);
/* Append a message to a session: seq = the session's last_seq + 1, which
 * becomes its last_seq (and `updated` = ts). With a cid (not NULL) that
 * the session already has from the same sender (`from`), nothing is
 * written and res->dup = 1 with the original's seq and ts: cids are
 * scoped per sender, so a visitor and an agent that happen to pick the
 * same cid write two messages. cid NULL = a system message. The session row
 * must exist (else rc CC_ENOENT). body is a JSON object's text. */
int cc__store_msg_append(cc_store *st, const char *tenant,
                         const char *session, const char *cid,
                         const char *from, int kind, const char *body,
                         size_t body_len, uint64_t ts, cc__store_cb cb,
                         void *data);
/* Raise (never lower) a user's cursors for a session; user is
 * "visitor:ID" or "agent:ID". */
int cc__store_cursor_put(cc_store *st, const char *tenant,
                         const char *session, const char *user,
                         uint64_t acked, uint64_t read, cc__store_cb cb,
                         void *data);

/* ---- reads ---- */
/* tail = 0: messages with seq > after, ascending, at most `limit`;
 *           res->more = 1 when later ones exist.
 * tail = 1: the last `limit` messages with seq > after, ascending;
 *           res->more = 1 when earlier ones (still > after) exist.
 * limit 1..1000. An unknown session reads as no messages. */
int cc__store_msgs_read(cc_store *st, const char *tenant, const char *session,
                        uint64_t after, int limit, int tail, cc__store_cb cb,
                        void *data);
/* res->sess[0] (nsess 1), or rc CC_ENOENT. */
int cc__store_session_get(cc_store *st, const char *tenant, const char *id,
                          cc__store_cb cb, void *data);
/* Sessions of a tenant, most recently updated first, at most `limit`
 * (1..1000); state 0 = any; visitor NULL = any. */
int cc__store_sessions_list(cc_store *st, const char *tenant, int state,
                            const char *visitor, int limit, cc__store_cb cb,
                            void *data);
/* res->acked/read (0 when none). */
int cc__store_cursor_get(cc_store *st, const char *tenant,
                         const char *session, const char *user,
                         cc__store_cb cb, void *data);

/* ---- statistics (any thread; monotonically growing counters) ---- */
#define CC__STORE_HIST_N 12
/* Upper bounds (seconds) of the commit-latency histogram buckets; the
 * last bucket (+Inf) has no bound. */
extern const double cc__store_hist_bounds[CC__STORE_HIST_N - 1];
typedef struct cc__store_stats {
    uint64_t ops;            /* operations executed */
    uint64_t commits;        /* transactions committed */
    uint64_t failures;       /* transactions that failed */
    uint64_t pending;        /* queued, not yet completed (gauge) */
    double commit_seconds_sum;
    uint64_t hist[CC__STORE_HIST_N];  /* per bucket, not cumulative */
} cc__store_stats;
void cc__store_get_stats(cc_store *st, cc__store_stats *out);

#endif
