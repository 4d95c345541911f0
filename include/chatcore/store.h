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
 * The embedded backend is SQLite (WAL). Others (e.g. for distributed mode)
 * implement the same internal interface.
 */
#ifndef CHATCORE_STORE_H
#define CHATCORE_STORE_H

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
 * loop thread. Since 0.2. */
CC_API void cc_store_close(cc_store *st, cc_close_cb cb, void *data);

#ifdef __cplusplus
}
#endif
#endif
