/*
 * chatcore/kafka.h - the Kafka adapter: one librdkafka producer, and
 * optionally one group consumer, driven by a cc_ctx's libuv loop.
 * Not included by chatcore.h. Since 0.3.
 *
 * Threads. librdkafka runs threads of its own (one per broker plus a few);
 * they never call into the application. Everything they report (delivery
 * results, messages, rebalances, commit results, errors, logs) is queued
 * inside librdkafka, which writes a byte to a pipe that the ctx's loop
 * watches; the loop then serves a bounded number of events per turn (so a
 * burst cannot starve the loop's other work). Every callback of this header
 * therefore runs on the ctx's loop thread, from the loop, never from inside
 * the call that registered it. No call of this header blocks on the
 * network; what librdkafka only offers as a blocking call (its teardown in
 * cc_kafka_close(), the metadata and offset look-ups of
 * cc_kafka_partitions() and cc_kafka_assign()) runs on libuv's thread
 * pool. Like every object of the library, a cc_kafka is used only from its
 * ctx's thread.
 *
 * Guarantees. cc_kafka_produce() reports success only after every in-sync
 * replica has the record (acks=all) and the producer is idempotent (a
 * retried batch is not written twice, and order within a partition holds).
 * Offsets are never committed automatically: the consumer commits exactly
 * what cc_kafka_commit() is told to, so a caller that commits only after
 * the effect of a record is durable gets at-least-once processing.
 *
 * Callbacks may call any function of this header, cc_kafka_close()
 * included (the object is freed later, never under a running callback).
 * Pointer arguments to callbacks are borrowed until the callback returns.
 */
#ifndef CHATCORE_KAFKA_H
#define CHATCORE_KAFKA_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_kafka cc_kafka;

/* A consumed record, borrowed for the duration of the on_msg callback.
 * key.base is NULL for a record without a key, value.base for a null
 * value. timestamp_ms is -1 when the record has none. Frozen POD: later
 * additions (headers) will come as functions taking this pointer. */
typedef struct cc_kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    cc_buf key;
    cc_buf value;
} cc_kafka_msg;

/* One partition of a rebalance or of cc_kafka_assign(). Frozen POD. */
typedef struct cc_kafka_partition {
    const char *topic;
    int32_t partition;
} cc_kafka_partition;

/* The result of one cc_kafka_produce(): status 0 once every in-sync
 * replica has the record, at `partition` and `offset`; or a negative code
 * (partition and offset are then -1 when unknown):
 *   CC_ETIMEDOUT  not confirmed within message.timeout.ms
 *   CC_ECANCELED  not confirmed when cc_kafka_close() gave up waiting
 *   CC_E2BIG      larger than the broker or message.max.bytes accepts
 *   CC_ENOENT     the topic or partition does not exist
 *   CC_EBACKEND   any other failure (see cc_kafka_last_error())
 * A record that failed with CC_ETIMEDOUT or CC_ECANCELED may still have
 * reached the log (its acknowledgement was lost): retry with the same
 * idempotence key (cid) rather than assume it is absent. */
typedef void (*cc_kafka_delivery_cb)(cc_kafka *k, int status,
                                     int32_t partition, int64_t offset,
                                     void *data);
/* A record for this consumer. Records of one partition arrive in offset
 * order; records with the same key share a partition. */
typedef void (*cc_kafka_msg_cb)(cc_kafka *k, const cc_kafka_msg *m,
                                void *data);
/* The group is about to change this consumer's assignment: `assigned` 1
 * for partitions being added (no record of them has been delivered yet),
 * 0 for partitions being taken away (commit what is finished for them now,
 * or call cc_kafka_rebalance_defer()). The change is applied when the
 * callback returns. One rebalance may be reported in several calls (at
 * most 128 partitions each). */
typedef void (*cc_kafka_rebalance_cb)(cc_kafka *k, int assigned,
                                      const cc_kafka_partition *parts,
                                      size_t n, void *data);
/* The result of one cc_kafka_commit(): 0 when the group coordinator
 * stored the offset; CC_ESTATE when the group moved on (this consumer no
 * longer owns the partition, or a rebalance is in progress); CC_ECANCELED
 * when the consumer closed first; CC_EBACKEND otherwise. */
typedef void (*cc_kafka_commit_cb)(cc_kafka *k, int status, void *data);
/* A log line from librdkafka or from the adapter. level is syslog's: 0..7
 * (3 error, 4 warning, 6 info, 7 debug). */
typedef void (*cc_kafka_log_cb)(cc_kafka *k, int level, const char *msg,
                                void *data);

/* Create a producer connected to `brokers` ("host:port,host:port"), and,
 * when group_id is not NULL, a consumer in that group too. The brokers are
 * contacted in the background; this call does not wait for them. On
 * failure everything is freed and *out is NULL.
 *
 * `conf` is NULL or a NULL-terminated array of "key", "value" pairs for
 * librdkafka (CONFIGURATION.md of librdkafka), applied over the adapter's
 * defaults to both clients, or to one when the key starts with
 * "producer." or "consumer." (the prefix is removed). Defaults: producer
 * acks=all,
 * enable.idempotence=true, compression.type=lz4 (zstd, then none, when the
 * library lacks it), linger.ms=2, batch.num.messages=10000,
 * batch.size=1000000, queue.buffering.max.kbytes=65536,
 * message.timeout.ms=30000, partitioner=murmur2_random (the Java client's,
 * so keys land on the same partition whichever client produces);
 * consumer enable.auto.commit=false, enable.auto.offset.store=false,
 * auto.offset.reset=earliest, partition.assignment.strategy=
 * cooperative-sticky; both statistics.interval.ms=1000 (feeds
 * cc_kafka_healthy()), client.id=chatcore. Two keys are the adapter's own:
 * "chatcore.close.timeout.ms" (default 5000) bounds each waiting phase of
 * cc_kafka_close(); "chatcore.metadata.timeout.ms" (default 5000) bounds
 * one look-up of cc_kafka_partitions() or cc_kafka_assign().
 *
 * Returns 0 and sets *out; CC_EINVAL (NULL or empty argument, an odd
 * number of conf strings, a key or value librdkafka rejects, or
 * properties that contradict each other); CC_ENOMEM; or a libuv error
 * when the wake-up pipe cannot be made. Since 0.3. */
CC_API int cc_kafka_new(cc_kafka **out, cc_ctx *ctx, const char *brokers,
                        const char *group_id, const char *const *conf);

/* Queue one record for `topic`. key may be NULL (klen 0: no key, the
 * record goes to any partition); val may be NULL (a null value). Both
 * are copied. cb (may be NULL) runs exactly once with the result, see
 * cc_kafka_delivery_cb; results for one partition come in offset order.
 * Returns 0; CC_EINVAL (NULL k or topic, NULL pointer with a nonzero
 * length); CC_ENOBUFS (the local queue is full: queue.buffering.max.*;
 * retry after some deliveries completed); CC_E2BIG; CC_ENOENT (unknown
 * partition); CC_ESTATE (closing); CC_EBACKEND (fatal producer error: make
 * a new cc_kafka); CC_ENOMEM. On error cb never runs. Since 0.3. */
CC_API int cc_kafka_produce(cc_kafka *k, const char *topic, const void *key,
                            size_t klen, const void *val, size_t vlen,
                            cc_kafka_delivery_cb cb, void *data);

/* cc_kafka_produce() to one chosen partition of `topic` (0-based), or,
 * with partition -1, to the one the partitioner picks (exactly
 * cc_kafka_produce()). Same copies, guarantees, callback and codes; an
 * unknown partition gives CC_ENOENT, returned at once when the producer
 * already knows the topic's partition count, else as the callback's
 * status. CC_EINVAL also for a partition below -1. Since 0.4. */
CC_API int cc_kafka_produce_to(cc_kafka *k, const char *topic,
                               int32_t partition, const void *key,
                               size_t klen, const void *val, size_t vlen,
                               cc_kafka_delivery_cb cb, void *data);

/* Join the group (group_id of cc_kafka_new) for `n` topics (a name that
 * starts with '^' is a regular expression). on_msg is required;
 * on_rebalance may be NULL. Consumption starts at the group's committed
 * offset of each partition, or at the earliest record when there is none.
 * Returns 0; CC_EINVAL; CC_ESTATE (no group_id, or closing); CC_EBUSY
 * (already subscribed, or assigned by cc_kafka_assign()); CC_EBACKEND.
 * Since 0.3. */
CC_API int cc_kafka_subscribe(cc_kafka *k, const char *const *topics,
                              size_t n, cc_kafka_msg_cb on_msg,
                              cc_kafka_rebalance_cb on_rebalance,
                              void *data);

/* Start values of cc_kafka_assign() besides an absolute offset (>= 0). */
#define CC_KAFKA_OFFSET_END ((int64_t)-1)       /* records produced later */
#define CC_KAFKA_OFFSET_BEGINNING ((int64_t)-2) /* the oldest record kept */

/* Read exactly these `n` partitions (parts is copied; no duplicates), with
 * no group coordination: the group is never joined, nothing is committed
 * (cc_kafka_commit() returns CC_ESTATE) and no rebalance callback runs.
 * Each partition starts at `start`: CC_KAFKA_OFFSET_END,
 * CC_KAFKA_OFFSET_BEGINNING, or an absolute offset (one beyond the log
 * starts at the oldest record, as auto.offset.reset says). The consumer
 * handle needs the cc_kafka_new() group_id, whose value does not matter
 * here. A cc_kafka either subscribes or assigns, once.
 *
 * The call returns at once; the partitions are then checked and, for
 * CC_KAFKA_OFFSET_END, the end offsets looked up on the thread pool, after
 * which the assignment is live: cc_kafka_assigned() returns 1. Every
 * record produced after that (cc_kafka_produce() called after
 * cc_kafka_assigned() returned 1, by any client) reaches on_msg; records
 * produced before may or may not. A look-up that fails for a transient
 * reason (no broker, no leader) is retried every second.
 *
 * on_msg gets the records as with cc_kafka_subscribe(), in offset order per
 * partition; cc_kafka_pause()/cc_kafka_resume() apply, also while the
 * look-up is in progress. Returns 0; CC_EINVAL (NULL k, parts or on_msg,
 * n 0, a NULL or empty topic, a negative partition, a duplicate, start
 * below -2); CC_ESTATE (no group_id, or closing); CC_EBUSY (subscribed, or
 * assigned before); CC_ENOMEM; or a libuv error. Since 0.4. */
CC_API int cc_kafka_assign(cc_kafka *k, const cc_kafka_partition *parts,
                           size_t n, int64_t start, cc_kafka_msg_cb on_msg,
                           void *data);
/* State of the cc_kafka_assign() assignment: 1 live (see there); 0 still
 * looking up its start offsets (also while no broker answers: it
 * retries); CC_ENOENT a topic or partition does not exist (checked
 * against the cluster's topic list: the assignment is abandoned and no
 * record comes); CC_EBACKEND librdkafka refused the assignment (see
 * cc_kafka_last_error()); CC_ESTATE no assignment was made, or k is
 * closing; CC_EINVAL NULL k. Since 0.4. */
CC_API int cc_kafka_assigned(const cc_kafka *k);

/* Commit `next_offset` (the offset of the next record to process: the last
 * processed offset + 1) for one partition, asynchronously. Commit only
 * what is durably done; commits for one partition should not go
 * backwards. cb may be NULL; if given it runs once, see
 * cc_kafka_commit_cb. Allowed until the consumer has left the group, so
 * also inside the revoke callback that cc_kafka_close() causes.
 * Returns 0; CC_EINVAL; CC_ESTATE (no consumer, it has closed, or it
 * reads a cc_kafka_assign() assignment); CC_ENOMEM; CC_EBACKEND.
 * Since 0.3. */
CC_API int cc_kafka_commit(cc_kafka *k, const char *topic, int32_t partition,
                           int64_t next_offset, cc_kafka_commit_cb cb,
                           void *data);

/* Only inside a rebalance callback: do not apply this rebalance when the
 * callback returns, but when cc_kafka_rebalance_done() is called (e.g.
 * once the store operations of revoked partitions completed and their
 * offsets are committed). Until then records of partitions being revoked
 * are dropped (they were not committed, so their new owner gets them),
 * and the group waits (bounded by max.poll.interval.ms, default 5 min).
 * Returns 0 or CC_ESTATE (not inside a rebalance callback). Since 0.3. */
CC_API int cc_kafka_rebalance_defer(cc_kafka *k);
/* Apply the deferred rebalance. Returns 0 or CC_ESTATE (none deferred).
 * Since 0.3. */
CC_API int cc_kafka_rebalance_done(cc_kafka *k);
/* Inside a revoke callback: 1 when the partitions were lost (the session
 * timed out, so another consumer may own them already and a commit will
 * fail), 0 for an orderly revoke. Since 0.3. */
CC_API int cc_kafka_assignment_lost(const cc_kafka *k);

/* Back-pressure: stop fetching (and delivering) records of every assigned
 * partition, including partitions assigned while paused; resume from the
 * first record not delivered. Rebalances and commits go on while paused.
 * Return 0 or CC_ESTATE (no consumer, or closing). Idempotent. Since 0.3. */
CC_API int cc_kafka_pause(cc_kafka *k);
CC_API int cc_kafka_resume(cc_kafka *k);

/* The partition count of `topic`, looked up on the thread pool (one
 * metadata request for every topic of the cluster, so that asking never
 * creates a topic on a cluster that creates topics on demand). cb runs
 * once with status 0 and the count; or CC_ENOENT (no such topic),
 * CC_ETIMEDOUT (no broker answered within chatcore.metadata.timeout.ms),
 * CC_EBACKEND (see cc_kafka_last_error()), count -1. Works on a producer
 * only cc_kafka too. A pending look-up delays cc_kafka_close() until it
 * returns (at most chatcore.metadata.timeout.ms); its cb still runs, with
 * the look-up's result. Returns 0; CC_EINVAL (NULL k, topic or cb, empty
 * topic); CC_ESTATE (closing); CC_ENOMEM; or a libuv error. On error cb
 * never runs. Since 0.4. */
typedef void (*cc_kafka_partitions_cb)(cc_kafka *k, int status,
                                       int32_t count, void *data);
CC_API int cc_kafka_partitions(cc_kafka *k, const char *topic,
                               cc_kafka_partitions_cb cb, void *data);

/* The Java client's murmur2 hash of a key, made positive (& 0x7fffffff),
 * so `cc_kafka_hash(key, len) % count` is the partition that the default
 * partitioner (murmur2_random, like Java's) gives a record with that key
 * on a topic of `count` partitions, in any process and any client.
 * key may be NULL when len is 0. Since 0.4. */
CC_API uint32_t cc_kafka_hash(const void *key, size_t len);

/* 1 when the producer (and the consumer, if any) currently sees at least
 * one broker up and no fatal error was raised; else 0. Updated from
 * librdkafka's statistics (every statistics.interval.ms, 1 s by default;
 * with 0 it never becomes 1), its "all brokers down" error, and each
 * successful delivery. 0 until the first update. For a readiness probe.
 * Since 0.3. */
CC_API int cc_kafka_healthy(const cc_kafka *k);

/* Where librdkafka's log lines and the adapter's errors go (default:
 * nowhere; cc_kafka_last_error() still keeps the last error). Lines queued
 * before this call are delivered to cb too. Since 0.3. */
CC_API void cc_kafka_set_log_cb(cc_kafka *k, cc_kafka_log_cb cb, void *data);
/* Text of the last error or warning seen, "" if none. Valid until the
 * next call into k. Since 0.3. */
CC_API const char *cc_kafka_last_error(const cc_kafka *k);

CC_API void cc_kafka_set_data(cc_kafka *k, void *data);
CC_API void *cc_kafka_get_data(const cc_kafka *k);

/* Close: stop accepting produce (CC_ESTATE) and stop delivering records;
 * wait for the pending produces' results (at most
 * chatcore.close.timeout.ms, then purge them: their callbacks get
 * CC_ECANCELED); leave the group (the rebalance callback reports the
 * revoked partitions and may still commit or defer; pending commit
 * callbacks run); wait for look-ups still running on the thread pool
 * (cc_kafka_partitions(), cc_kafka_assign()); destroy librdkafka's
 * clients on libuv's thread pool; run every callback still pending with
 * CC_ECANCELED; then cb(k, data)
 * (cb may be NULL) on the loop thread; k is freed after cb returns.
 * Records fetched but not delivered are not committed, so the group's next
 * owner gets them. A second call does nothing. librdkafka 2.0.2 cannot
 * finish a consumer's close while a commit waits for an unreachable
 * coordinator: the destroy then takes up to session.timeout.ms (on the
 * thread pool). Since 0.3. */
CC_API void cc_kafka_close(cc_kafka *k, cc_close_cb cb, void *data);

#ifdef __cplusplus
}
#endif
#endif
