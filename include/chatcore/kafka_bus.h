/*
 * chatcore/kafka_bus.h - the chat engine's bus (chatcore/bus.h) on Kafka:
 * the two roles of distributed mode, ready to wire (libchatcore-kafka).
 * docs/distributed.md has the data flow; PROTOCOL.md §9 the topics.
 *
 * Topics: chat.in (tenant-affine: every record of a tenant goes to
 * partition cc_kafka_hash(tenant) % partitions, its key "tenant:session"),
 * chat.out (partition cc_kafka_hash(node) % partitions, key = the
 * gateway's node), chat.control (every node reads all of it). They must
 * exist (the cluster's, or chatcore-kafka-mock's) before either role
 * starts.
 *
 * Gateway: one cc_chat in the gateway role. Reads its own chat.out
 * partition and chat.control from their ends, publishes its heartbeat
 * every second.
 *
 * Owner (the session tier): a member of the consumer group
 * "chatcore-owners" on chat.in. For each partition the group assigns it,
 * it opens one cc_chat engine in the owner role that loads the tenants of
 * that partition from the store; records reach that engine in offset
 * order; offsets are committed every 200 ms up to what the store holds
 * (cc_chat_bus_sync). A revoked partition's engine is synced, its offset
 * committed and the engine closed before the group moves on; a lost one's
 * engine is closed without a commit (its new owner starts from the last
 * commit; cids make the replay harmless).
 *
 * Threads: the ctx's loop thread, like everything. Since 0.4.
 */
#ifndef CHATCORE_KAFKA_BUS_H
#define CHATCORE_KAFKA_BUS_H

#include "bus.h"
#include "kafka.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_kafka_gateway cc_kafka_gateway;
typedef struct cc_kafka_owner cc_kafka_owner;

/* status 0 once the role serves (gateway: its chat.out and chat.control
 * assignment is live; owner: it joined the group), or an error (a topic is
 * missing: CC_ENOENT). */
typedef void (*cc_kafka_role_cb)(void *role, int status, void *data);

/* Gateway role for `chat` (made by cc_chat_new or cc_chat_open, not yet
 * mounted) on `k` (made with a group id, which only names its consumer:
 * no group is joined). The gateway takes `k` (closing the gateway closes
 * it, also when this call fails); `chat` is borrowed: close the gateway
 * first, then the chat. The chat is set not ready ("joining the bus")
 * until cb reports 0. Returns 0, CC_EINVAL, CC_ENOMEM. */
CC_API int cc_kafka_gateway_new(cc_kafka_gateway **out, cc_kafka *k,
                                cc_chat *chat, cc_kafka_role_cb cb,
                                void *data);
/* 1 while the bus is usable (brokers reachable, assignment live). */
CC_API int cc_kafka_gateway_healthy(const cc_kafka_gateway *g);
CC_API void cc_kafka_gateway_close(cc_kafka_gateway *g, cc_close_cb cb,
                                   void *data);

/* Owner role. `in` must be made with the group id all owners share
 * (e.g. "chatcore-owners"); `ctl` with a group id of its own (it is only
 * assigned). The owner takes both (closing it closes them, also when this
 * call fails). Engines are made with cc_chat_open(ctx, st, cfg) and get
 * `log` as their log hook; st and cfg are borrowed until the owner's
 * close callback. Returns 0, CC_EINVAL, CC_ENOMEM. */
CC_API int cc_kafka_owner_new(cc_kafka_owner **out, cc_kafka *in,
                              cc_kafka *ctl, cc_ctx *ctx, cc_store *st,
                              const cc_config *cfg, cc_log_cb log,
                              void *log_data, cc_kafka_role_cb cb,
                              void *data);
/* Engines currently open (partitions owned). */
CC_API size_t cc_kafka_owner_partitions(const cc_kafka_owner *o);
CC_API int cc_kafka_owner_healthy(const cc_kafka_owner *o);
/* Leave the group (each engine synced, committed and closed), close both
 * cc_kafka, then cb. */
CC_API void cc_kafka_owner_close(cc_kafka_owner *o, cc_close_cb cb,
                                 void *data);

#ifdef __cplusplus
}
#endif
#endif
