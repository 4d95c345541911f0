/*
 * chatcore/redis.h - the Redis adapter: one self-healing connection to a
 * Redis server on a libuv loop, generic commands, and the chat-domain
 * operations of distributed mode (PROTOCOL.md §9): presence, the
 * session -> node map, the waiting queue, accept claims, rate-limit
 * buckets, replay nonces, the offline inbox and the tenant config cache.
 * docs/api/redis.md has every rule and every key in full.
 *
 * Not part of the umbrella header: include it yourself. Built on hiredis
 * 0.14's async API (hiredis is linked by libchatcore).
 *
 * Threads: a cc_redis belongs to its ctx's loop thread, like every object.
 * Callbacks run on that thread only, never inside the call that started
 * the operation.
 *
 * Lifecycle: cc_redis_new() starts connecting on the next loop turn and
 * never gives up: a lost connection is re-established with exponential
 * backoff (CC_REDIS_OPT_BACKOFF_MIN_MS doubling to _MAX_MS, with jitter)
 * until cc_redis_close(). Commands issued while no connection is ready
 * wait in a bounded queue and are sent, in order, once one is; beyond the
 * bound they are refused at once with CC_ENOBUFS. Commands already sent
 * when a connection is lost fail (CC_ECONNRESET, or CC_ETIMEDOUT when no
 * reply came in time): they may or may not have run, and they are never
 * replayed behind the caller's back.
 *
 * Callbacks: every call that takes a callback and returns 0 runs it
 * exactly once; one that returns an error never runs it. Status is 0 or
 * a negative CC_E* code:
 *   CC_ECONNRESET  the connection was lost after the command was sent
 *   CC_ETIMEDOUT   no reply within CC_REDIS_OPT_COMMAND_TIMEOUT_MS (the
 *                  connection is then dropped and re-established)
 *   CC_ECANCELED   cc_redis_close() came first
 *   CC_EBACKEND    (domain operations) Redis answered an error or an
 *                  unexpected reply; cc_redis_last_error() has its text
 *   CC_ENOENT      (gets and rank) no such key or member
 *   CC_ENOMEM      (list results) the result array could not be allocated
 * Replies arrive in the order the commands were issued (one pipelined
 * connection), except that a script command retried after NOSCRIPT
 * completes after commands issued behind it. Pointer arguments of a
 * callback are borrowed until it returns. A callback may issue commands
 * and may call cc_redis_close().
 *
 * Memory: the adapter's own objects (the handle, each command until its
 * reply, result arrays) come from the ctx's allocator. hiredis 0.14 has no
 * allocator hooks: its buffers come from libc, and it abort()s when libc
 * allocation fails.
 *
 * Signals: a write to a connection the server has closed would raise
 * SIGPIPE; the adapter blocks SIGPIPE in the loop thread around its
 * writes and discards one it caused, so the application need not ignore
 * it.
 */
#ifndef CHATCORE_REDIS_H
#define CHATCORE_REDIS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_redis cc_redis;
typedef struct cc_redis_opts cc_redis_opts;
/* A reply, read through the cc_redis_reply_* accessors. Opaque: no copy
 * is made of what hiredis parsed. */
typedef struct cc_redis_reply cc_redis_reply;

/* Options, values explicit and append-only. Defaults in brackets. */
typedef enum cc_redis_option {
    /* str: prefix of every key the domain operations use, 0..64 of
     * [A-Za-z0-9_.:-] ["cc:"] */
    CC_REDIS_OPT_NAMESPACE = 1,
    /* int: commands held while no connection is ready [10000]; 0 = none
     * (fail at once with CC_ENOBUFS) */
    CC_REDIS_OPT_QUEUE_MAX = 2,
    /* int: bytes of those commands (their wire size) [16 MiB] */
    CC_REDIS_OPT_QUEUE_MAX_BYTES = 3,
    /* ms: TCP connect plus AUTH/SELECT must finish within [2000] */
    CC_REDIS_OPT_CONNECT_TIMEOUT_MS = 4,
    /* ms: the oldest command in flight must be answered within [5000];
     * 0 = wait forever */
    CC_REDIS_OPT_COMMAND_TIMEOUT_MS = 5,
    /* ms: first reconnect delay, doubling per failed attempt [100] */
    CC_REDIS_OPT_BACKOFF_MIN_MS = 6,
    /* ms: reconnect delay cap [5000] */
    CC_REDIS_OPT_BACKOFF_MAX_MS = 7,
    /* str: AUTH password sent on every connect, 0..512 bytes [""] */
    CC_REDIS_OPT_PASSWORD = 8,
    /* str: ACL user for AUTH (Redis 6+), 0..128 bytes [""] */
    CC_REDIS_OPT_USERNAME = 9,
    /* int: SELECT on every connect, 0..INT32_MAX [0] */
    CC_REDIS_OPT_DB = 10
} cc_redis_option;

/* An options bag, allocated with ctx's allocator. Plain synchronous
 * object; cc_redis_new copies what it needs. Returns 0, CC_EINVAL (NULL
 * argument) or CC_ENOMEM. Since 0.2. */
CC_API int cc_redis_opts_new(cc_redis_opts **out, cc_ctx *ctx);
/* NULL is a no-op. Since 0.2. */
CC_API void cc_redis_opts_free(cc_redis_opts *o);
/* Return 0, or CC_EINVAL for an unknown option, one of the other kind or
 * a value out of range (see the enum). Strings are copied. Since 0.2. */
CC_API int cc_redis_opts_set_int(cc_redis_opts *o, cc_redis_option opt,
                                 int64_t v);
CC_API int cc_redis_opts_set_str(cc_redis_opts *o, cc_redis_option opt,
                                 const char *s);

/* Connection state changes: ready 1 (status 0) when a connection becomes
 * usable; ready 0 with the reason when it is lost, and after every failed
 * attempt while none is usable (CC_EIO: refused or unreachable,
 * CC_ETIMEDOUT, CC_EAUTH: AUTH refused, CC_EBACKEND: SELECT refused,
 * CC_ECONNRESET: lost, or a libuv resolver code). Never runs after
 * cc_redis_close(). */
typedef void (*cc_redis_state_cb)(cc_redis *r, int ready, int status,
                                  void *data);

/* Create the adapter for Redis at host (a name or a numeric address,
 * 1..255 bytes; names are resolved with uv_getaddrinfo on every attempt,
 * IPv4 preferred) and port (1..65535). opts may be NULL (defaults); it
 * is not kept. Connecting starts on the next loop turn, so a state
 * callback registered right after this call sees the first attempt.
 * Returns 0; CC_EINVAL (NULL argument, bad host or port, backoff min >
 * max); CC_ENOMEM. *out is NULL on error. Since 0.2. */
CC_API int cc_redis_new(cc_redis **out, cc_ctx *ctx, const char *host,
                        int port, const cc_redis_opts *opts);
/* Register (or, with cb NULL, remove) the state callback. Returns 0 or
 * CC_EINVAL (r NULL). Since 0.2. */
CC_API int cc_redis_on_state(cc_redis *r, cc_redis_state_cb cb, void *data);
/* 1 when a connection is ready (a command would be sent at once), else 0.
 * For readiness probes (/readyz). Since 0.2. */
CC_API int cc_redis_ready(const cc_redis *r);
/* Commands waiting for a connection / sent and not yet answered. */
CC_API size_t cc_redis_queued(const cc_redis *r);
CC_API size_t cc_redis_inflight(const cc_redis *r);
/* Text of the latest failure (connect, I/O, or an error reply seen by a
 * domain operation), for logs; "" if none. Valid until the next call into
 * the adapter. Since 0.2. */
CC_API const char *cc_redis_last_error(const cc_redis *r);
CC_API void cc_redis_set_data(cc_redis *r, void *data);
CC_API void *cc_redis_get_data(const cc_redis *r);
/* Stop: every pending command (queued or in flight) completes with
 * CC_ECANCELED, the connection and handles are closed, then cb(r, data)
 * runs (cb may be NULL) and the memory is freed after it returns. Legal
 * from inside the adapter's own callbacks. After this call, new commands
 * are refused with CC_ECANCELED. Calling it twice is a no-op. Since 0.2. */
CC_API void cc_redis_close(cc_redis *r, cc_close_cb cb, void *data);

/* ---- generic commands ---- */

enum {
    CC_REDIS_REPLY_NIL = 1,    /* nil bulk string or nil array */
    CC_REDIS_REPLY_INT = 2,
    CC_REDIS_REPLY_STR = 3,    /* bulk string (binary-safe) */
    CC_REDIS_REPLY_STATUS = 4, /* simple string, "OK" */
    CC_REDIS_REPLY_ERROR = 5,  /* "-ERR ...": str is the message */
    CC_REDIS_REPLY_ARRAY = 6
};
/* reply is NULL exactly when status != 0. A Redis error reply is status
 * 0 with a reply of type CC_REDIS_REPLY_ERROR. */
typedef void (*cc_redis_cb)(cc_redis *r, int status,
                            const cc_redis_reply *reply, void *data);

/* Send one command: argc arguments (1..1,000,000), argv[i] of argvlen[i]
 * bytes (binary-safe), or strlen(argv[i]) when argvlen is NULL. The
 * arguments are copied before the call returns. cb may be NULL (fire and
 * forget). Pub/sub and MONITOR (which change how replies flow) are
 * refused with CC_ENOTSUP. Per-connection state (SELECT, CLIENT SETNAME,
 * MULTI) does not survive a reconnect: use the options. Returns 0;
 * CC_EINVAL; CC_ENOTSUP; CC_ENOBUFS (not connected and the queue is
 * full); CC_ECANCELED (closing); CC_ENOMEM. Since 0.2. */
CC_API int cc_redis_cmd(cc_redis *r, cc_redis_cb cb, void *data, int argc,
                        const char *const *argv, const size_t *argvlen);

/* Reply accessors. All accept NULL (type 0, int 0, str NULL, count 0). */
CC_API int cc_redis_reply_type(const cc_redis_reply *rep);
/* The integer of a CC_REDIS_REPLY_INT, else 0. */
CC_API int64_t cc_redis_reply_int(const cc_redis_reply *rep);
/* The bytes of a STR, STATUS or ERROR reply (NUL-terminated too), and
 * their length in *len (may be NULL); NULL and 0 for other types. */
CC_API const char *cc_redis_reply_str(const cc_redis_reply *rep,
                                      size_t *len);
/* Number of elements of an ARRAY reply, else 0. */
CC_API size_t cc_redis_reply_count(const cc_redis_reply *rep);
/* Element i of an ARRAY reply; NULL when out of range. */
CC_API const cc_redis_reply *cc_redis_reply_at(const cc_redis_reply *rep,
                                               size_t i);

/* ---- chat-domain operations ----
 * Ids (tid, uid, sid, node, agent, nonce) follow the wire contract's id
 * rule: 1..64 of [A-Za-z0-9_.:-]; anything else is CC_EINVAL. Keys are
 * "<namespace><kind>:{<tid>}:<id>": the braces make the key unambiguous
 * (ids may contain ':') and, on Redis Cluster, keep a tenant's keys in one
 * hash slot. Each operation is one command (one round trip) and atomic.
 * All return 0 or, without running the callback: CC_EINVAL, CC_ENOBUFS,
 * CC_ECANCELED, CC_ENOMEM, like cc_redis_cmd. */

/* value: per operation (documented on each). */
typedef void (*cc_redis_int_cb)(cc_redis *r, int status, int64_t value,
                                void *data);
/* s/len: the stored string (s NULL and len 0 when status != 0). */
typedef void (*cc_redis_str_cb)(cc_redis *r, int status, const char *s,
                                size_t len, void *data);

/* Presence: presence:{tid}:uid -> node, expiring after ttl_ms (>= 1);
 * set again to refresh. set: value 1. get: the node, or CC_ENOENT. del:
 * with node NULL deletes unconditionally, with a node only while the key
 * still holds that node (so a gateway does not erase the presence another
 * gateway has set since); value 1 deleted, 0 not. Since 0.2. */
CC_API int cc_redis_presence_set(cc_redis *r, const char *tid,
                                 const char *uid, const char *node,
                                 uint32_t ttl_ms, cc_redis_int_cb cb,
                                 void *data);
CC_API int cc_redis_presence_get(cc_redis *r, const char *tid,
                                 const char *uid, cc_redis_str_cb cb,
                                 void *data);
CC_API int cc_redis_presence_del(cc_redis *r, const char *tid,
                                 const char *uid, const char *node,
                                 cc_redis_int_cb cb, void *data);

/* Session -> node map: session:{tid}:sid -> node, same rules as presence
 * (del with a node is delete-if-owner). Since 0.2. */
CC_API int cc_redis_session_node_set(cc_redis *r, const char *tid,
                                     const char *sid, const char *node,
                                     uint32_t ttl_ms, cc_redis_int_cb cb,
                                     void *data);
CC_API int cc_redis_session_node_get(cc_redis *r, const char *tid,
                                     const char *sid, cc_redis_str_cb cb,
                                     void *data);
CC_API int cc_redis_session_node_del(cc_redis *r, const char *tid,
                                     const char *sid, const char *node,
                                     cc_redis_int_cb cb, void *data);

/* Waiting queue of a tenant: the sorted set queue:{tid}, member sid,
 * score since_ms (0..2^53-1); equal times order by sid. add: value 1
 * added, 0 already there (its time is updated). remove: 1 removed, 0 was
 * not there. rank: the 1-based position oldest-first, or CC_ENOENT. len:
 * the number waiting. list: the oldest `limit` (1..100000) entries,
 * oldest first. Since 0.2. */
typedef struct cc_redis_queue_entry {
    const char *sid; /* NUL-terminated */
    size_t sid_len;
    int64_t since_ms;
} cc_redis_queue_entry;
typedef void (*cc_redis_queue_cb)(cc_redis *r, int status,
                                  const cc_redis_queue_entry *entries,
                                  size_t n, void *data);
CC_API int cc_redis_queue_add(cc_redis *r, const char *tid, const char *sid,
                              int64_t since_ms, cc_redis_int_cb cb,
                              void *data);
CC_API int cc_redis_queue_remove(cc_redis *r, const char *tid,
                                 const char *sid, cc_redis_int_cb cb,
                                 void *data);
CC_API int cc_redis_queue_rank(cc_redis *r, const char *tid, const char *sid,
                               cc_redis_int_cb cb, void *data);
CC_API int cc_redis_queue_len(cc_redis *r, const char *tid,
                              cc_redis_int_cb cb, void *data);
CC_API int cc_redis_queue_list(cc_redis *r, const char *tid, size_t limit,
                               cc_redis_queue_cb cb, void *data);

/* Accept claim: claim:{tid}:sid = agent, SET NX PX ttl_ms (>= 1). value 1
 * won, 0 lost (someone holds it). release: deletes only while agent holds
 * it; value 1 released, 0 not held by agent. Since 0.2. */
CC_API int cc_redis_claim(cc_redis *r, const char *tid, const char *sid,
                          const char *agent, uint32_t ttl_ms,
                          cc_redis_int_cb cb, void *data);
CC_API int cc_redis_claim_release(cc_redis *r, const char *tid,
                                  const char *sid, const char *agent,
                                  cc_redis_int_cb cb, void *data);

/* Token bucket bucket:<key> (key: 1..256 bytes, no NUL), rate tokens per
 * second (> 0, finite), burst capacity (>= 1, finite), else CC_EINVAL.
 * One Lua script, on Redis's clock (TIME), so every node shares one
 * clock. Semantics of cc_bucket_take() (auth.h): a bucket never seen (or
 * expired, which happens only once it is full again) starts full; value 0
 * means allowed, else the exact milliseconds until a token is available
 * (>= 1, at most INT32_MAX). Since 0.2. */
CC_API int cc_redis_bucket_take(cc_redis *r, const char *key, double rate,
                                double burst, cc_redis_int_cb cb, void *data);

/* Replay nonce: nonce:{tid}:nonce, SET NX EX window_s (>= 1). value 1
 * fresh (now recorded), 0 replayed. Since 0.2. */
CC_API int cc_redis_nonce_use(cc_redis *r, const char *tid,
                              const char *nonce, uint32_t window_s,
                              cc_redis_int_cb cb, void *data);

/* Offline inbox: the list inbox:{tid}:uid of (seq, bytes) items, oldest
 * first. push appends one (seq 0..2^53-1; push in increasing seq order),
 * then keeps only the newest max_items (0 = no limit) and sets the key to
 * expire ttl_ms after this push (0 = never); value: the length after.
 * range: count (1..100000) items from index start (0 = oldest). trim:
 * removes the leading items whose seq <= upto_seq; value: how many.
 * Since 0.2. */
typedef struct cc_redis_inbox_item {
    uint64_t seq;
    const uint8_t *data;
    size_t len;
} cc_redis_inbox_item;
typedef void (*cc_redis_inbox_cb)(cc_redis *r, int status,
                                  const cc_redis_inbox_item *items, size_t n,
                                  void *data);
CC_API int cc_redis_inbox_push(cc_redis *r, const char *tid, const char *uid,
                               uint64_t seq, const void *item, size_t len,
                               uint32_t ttl_ms, uint32_t max_items,
                               cc_redis_int_cb cb, void *data);
CC_API int cc_redis_inbox_range(cc_redis *r, const char *tid,
                                const char *uid, size_t start, size_t count,
                                cc_redis_inbox_cb cb, void *data);
CC_API int cc_redis_inbox_trim(cc_redis *r, const char *tid, const char *uid,
                               uint64_t upto_seq, cc_redis_int_cb cb,
                               void *data);

/* Tenant config cache: tenant:{tid}:config = a JSON document (any bytes,
 * len 0..64 MiB), expiring after ttl_ms (0 = never). set: value 1. get:
 * the bytes, or CC_ENOENT. del: value 1 deleted, 0 absent. Since 0.2. */
CC_API int cc_redis_tenant_config_set(cc_redis *r, const char *tid,
                                      const char *json, size_t len,
                                      uint32_t ttl_ms, cc_redis_int_cb cb,
                                      void *data);
CC_API int cc_redis_tenant_config_get(cc_redis *r, const char *tid,
                                      cc_redis_str_cb cb, void *data);
CC_API int cc_redis_tenant_config_del(cc_redis *r, const char *tid,
                                      cc_redis_int_cb cb, void *data);

/* ---- durable store (Since 0.4) ----
 * A cc_store (chatcore/store.h) kept in Redis, for distributed mode: the
 * chat engine's tenants, agents, sessions, messages and cursors, shared
 * by every node that uses the same Redis and namespace. Built on the
 * generic commands above (Lua scripts), in libchatcore-redis. Keys and
 * rules in full: docs/api/store.md. Needs one Redis server (not a
 * Cluster: scripts compute their keys), 4.0 or later; run it with
 * `appendonly yes` and `appendfsync always` for a write's callback to mean
 * fsynced (the store's promise is the reply to the write).
 *
 * Operations keep the store contract: they take effect and complete in
 * call order; each write is one script (atomic); every operation is
 * idempotent, and one whose command is lost with the connection
 * (CC_ECONNRESET, CC_ETIMEDOUT) or answered LOADING/BUSY/NOSCRIPT is sent
 * again, in order, until it gets an answer: an operation fails only with
 * a real error (CC_EBACKEND: an error reply or a malformed value;
 * CC_ENOENT, CC_ENOMEM) or when the adapter or the store closes
 * (CC_ECANCELED). Offers load_async, not load. At most 200,000 operations
 * wait at once (then CC_EQUEUEFULL).
 */
#include "store.h"

/* Open the store on `r`, which is borrowed: close it only after
 * cc_store_close() of this store completed. `ns` prefixes every key: 0..64
 * of [A-Za-z0-9_.:-]; NULL or "" means "cc:s:". Close: what is queued
 * completes first; operations still waiting after 5 s without progress
 * (Redis unreachable) complete with CC_ECANCELED. Returns 0, CC_EINVAL,
 * CC_ENOMEM, CC_EIO (no random source). Since 0.4. */
CC_API int cc_store_redis_open(cc_store **out, cc_ctx *ctx, cc_redis *r,
                               const char *ns);

#ifdef __cplusplus
}
#endif
#endif
