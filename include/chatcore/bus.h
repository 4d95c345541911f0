/*
 * chatcore/bus.h - the chat engine across processes (distributed mode,
 * PROTOCOL.md §9, docs/distributed.md).
 *
 * In embedded mode one cc_chat holds connections and owns sessions, and
 * its two halves call each other directly. In distributed mode the same
 * engine runs in one of two roles and the halves exchange records over a
 * bus (three topics):
 *
 *   gateway  holds the WebSocket connections and serves the HTTP API. It
 *            authenticates upgrades itself, answers `ping`, and publishes
 *            every other client frame, as received, on CC_BUS_IN (with the
 *            connection's opening and end). It writes what arrives on
 *            CC_BUS_OUT for its node to its connections.
 *   owner    owns the sessions of the tenants of one CC_BUS_IN partition:
 *            it runs the session state machine, the queue, claims,
 *            sequence numbers, delivery (the unacked window and
 *            retransmission) and persistence, for connections it knows
 *            only as (node, connection id), and publishes their frames on
 *            CC_BUS_OUT.
 *
 * The engine produces and consumes opaque records (JSON values) through
 * the cc_bus_ops an application gives it; the Kafka binding
 * (chatcore/kafka_bus.h: cc_kafka_gateway_*, cc_kafka_owner_*) is one
 * such transport. Nothing here knows Kafka.
 *
 * Threads: every call on the ctx's loop thread, like the rest of cc_chat.
 * Since 0.4.
 */
#ifndef CHATCORE_BUS_H
#define CHATCORE_BUS_H

#include "chat.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The topics. */
enum {
    CC_BUS_IN = 1,       /* gateway -> owner, keyed "tenant:session" */
    CC_BUS_OUT = 2,      /* owner -> gateway, keyed by the gateway's node */
    CC_BUS_CONTROL = 3   /* everyone -> everyone: nodes, config, owners */
};

/* The roles of cc_chat_set_bus. */
enum { CC_BUS_GATEWAY = 1, CC_BUS_OWNER = 2 };

/* Completion of one publish: 0 once the transport holds the record
 * durably (Kafka: acks=all), else a negative CC_E* code. */
typedef void (*cc_bus_done_cb)(void *arg, int status);

/* The transport. Append-only: `size` is sizeof(cc_bus_ops) as the
 * application was compiled. */
typedef struct cc_bus_ops {
    size_t size;
    /* Publish one record on `topic`; key and value are copied. Records
     * published with the same key arrive in the order published. done
     * (may be NULL) runs once, later, on the loop thread. Returns 0 or a
     * negative code (done then never runs). */
    int (*publish)(void *data, int topic, const char *key, size_t klen,
                   const void *val, size_t vlen, cc_bus_done_cb done,
                   void *arg);
    /* The CC_BUS_IN partition a tenant's records go to: the same answer
     * in every process for the same tenant. */
    int32_t (*partition_of)(void *data, const char *tenant);
} cc_bus_ops;

/* Called once the engine has loaded what it owns (cc_chat_open). status
 * 0, or the store's error (the engine is then unusable: close it). */
typedef void (*cc_chat_open_cb)(cc_chat *chat, int status, void *data);

/* Create an engine whose store loads asynchronously (e.g. the Redis
 * store), loading only the tenants want_tenant(want_data, id) accepts
 * (want_tenant NULL: every tenant; an owner passes "tenants of my
 * partition", a gateway every tenant). cb runs once loading finished;
 * feed it nothing before. Same cfg as cc_chat_new. Returns 0,
 * CC_EINVAL, CC_ENOMEM, CC_ENOTSUP (the store cannot load
 * asynchronously). Since 0.4. */
CC_API int cc_chat_open(cc_chat **out, cc_ctx *ctx, cc_store *st,
                        const cc_config *cfg,
                        int (*want_tenant)(void *want_data, const char *id),
                        void *want_data, cc_chat_open_cb cb, void *data);

/* Give the engine its role and transport, before cc_chat_mount (gateway)
 * or the first cc_chat_bus_input (owner). For an owner, `partition` is
 * the CC_BUS_IN partition it owns (-1 for a gateway). ops is copied.
 * Returns 0, CC_EINVAL, CC_ESTATE (already set, or already serving).
 * Since 0.4. */
CC_API int cc_chat_set_bus(cc_chat *chat, int role, int32_t partition,
                           const cc_bus_ops *ops, void *data);

/* Hand the engine one record consumed from `topic` (a gateway: its
 * CC_BUS_OUT records and CC_BUS_CONTROL; an owner: its partition's
 * CC_BUS_IN records and CC_BUS_CONTROL). Borrowed for the call. A record
 * that is not for this engine (another node's, or malformed) is counted
 * and dropped. Returns 0, CC_EPROTO (malformed), CC_ESTATE (no bus, or
 * closing). Since 0.4. */
CC_API int cc_chat_bus_input(cc_chat *chat, int topic, const void *key,
                             size_t klen, const void *val, size_t vlen);

/* Owner: cb(data, status) once every effect of every CC_BUS_IN record
 * handed in before this call is durable in the store: the moment to
 * commit the consumer's offset past those records. Returns 0 or
 * CC_ESTATE. Since 0.4. */
CC_API int cc_chat_bus_sync(cc_chat *chat, cc_bus_done_cb cb, void *data);

/* Gateway: publish this node's heartbeat on CC_BUS_CONTROL (call it about
 * once a second); owners drop the connections of a node not heard from
 * for CC_OPT_CHAT_NODE_TIMEOUT_MS. Returns 0 or a publish error. Since
 * 0.4. */
CC_API int cc_chat_bus_heartbeat(cc_chat *chat);

#ifdef __cplusplus
}
#endif
#endif
