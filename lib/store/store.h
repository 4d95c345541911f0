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

#include "chatcore/store.h"
#include "core/internal.h"

/* Session states (PROTOCOL.md §1): the public CC_STORE_* values. */
typedef enum cc__sstate {
    CC__S_NEW = CC_STORE_NEW, CC__S_QUEUED = CC_STORE_QUEUED,
    CC__S_ACTIVE = CC_STORE_ACTIVE, CC__S_OFFLINE = CC_STORE_OFFLINE,
    CC__S_CLOSED = CC_STORE_CLOSED
} cc__sstate;

/* The engine's names for the public record types (chatcore/store.h). */
typedef cc_store_session cc__sess_rec;
typedef cc_store_msg cc__smsg;
typedef cc_store_result cc__store_res;
typedef cc_store_cb cc__store_cb;
typedef cc_store_loader cc__store_loader;
typedef cc_store_stats cc__store_stats;

/* Most operations a store holds queued at once; beyond it calls return
 * CC_EQUEUEFULL (the engine answers `internal`; nothing was written). */
#define CC__STORE_MAX_PENDING 200000

/* For a backend's own constructor: set the implementation after
 * cc_store_new(..., NULL), or free a store that was never set up. */
void cc__store_set_impl(cc_store *st, void *impl);
void cc__store_discard(cc_store *st);

/* ---- load ----
 * cc__store_load: synchronous, before any other operation, on the loop
 * thread before the loop serves anything; CC_ENOTSUP when the backend
 * offers only the asynchronous form. cc__store_load_async: ordered like
 * any operation; CC_ENOTSUP when the backend lacks it. */
int cc__store_load(cc_store *st, const cc__store_loader *l);
int cc__store_load_async(cc_store *st, const cc__store_loader *l,
                         cc__store_cb cb, void *data);
/* completes after every operation queued before it */
int cc__store_barrier(cc_store *st, cc__store_cb cb, void *data);

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
#define CC__STORE_HIST_N CC_STORE_HIST_N
/* Upper bounds (seconds) of the commit-latency histogram buckets; the
 * last bucket (+Inf) has no bound. */
extern const double cc__store_hist_bounds[CC__STORE_HIST_N - 1];
void cc__store_get_stats(cc_store *st, cc__store_stats *out);

#endif
