/*
 * lib/adapters/kafka.c - cc_kafka (chatcore/kafka.h): a librdkafka
 * producer and optional group consumer driven by a libuv loop.
 *
 * Wake-ups. librdkafka keeps everything it reports in queues of its own:
 * the producer's main queue (delivery reports, errors, statistics, logs),
 * the consumer's main queue (errors, statistics, logs) and the consumer
 * queue (records, rebalances, commit results). Each queue gets
 * rd_kafka_queue_io_event_enable() with the write end of one non-blocking
 * pipe; librdkafka writes a byte when a queue goes from empty to non-empty
 * and not again until that queue has been polled. The read end is watched
 * by a uv_poll. On readable we first drain the pipe and then poll each
 * queue with timeout 0, at most BUDGET events per queue per turn; a queue
 * left non-empty starts a uv_idle so the next turn continues without
 * waiting for a byte that will not come. Draining before polling means a
 * byte written after our last empty poll always wakes us again.
 *
 * The main queues use the event API (rd_kafka_queue_poll), so a delivery
 * report batch is an event we can serve partly and resume next turn. The
 * consumer queue is served with rd_kafka_consumer_poll(), which runs the
 * rebalance and commit callbacks inline and is what resets librdkafka's
 * max.poll.interval.ms clock: a repeating uv_timer polls it at least once a
 * second even when no byte arrives, or an idle consumer would be thrown out
 * of its group after 5 minutes.
 *
 * Close, a state machine advanced after every serving turn and by the
 * timer (never inside a turn, see in_run):
 *   FLUSH    produce is refused; wait until every pending produce has its
 *            result, at most close_ms; then rd_kafka_purge() and
 *   PURGE    wait (at most PURGE_MS) for the purged reports.
 *   LEAVE    rd_kafka_consumer_close_queue() with a queue of our own (it
 *            must not be the consumer queue: the consumer queue is
 *            forwarded to it), polled with the event API until
 *            rd_kafka_consumer_closed(); the final revoke comes through it.
 *   DESTROY  the pipe watch stops, what we hold of librdkafka (messages,
 *            queue handles, a half-served event) is released, and
 *            rd_kafka_destroy() (which joins librdkafka's threads) runs on
 *            the thread pool. The pipe stays open until it returned, since
 *            librdkafka may still write to it.
 *   then the uv handles close, every callback still pending runs with
 *   CC_ECANCELED, the close callback runs, and k is freed.
 *
 * Exactly once. Each produce or commit with a callback owns a kreq on a
 * list; librdkafka hands it back through the message or commit opaque and
 * we unlink it before calling back; what is still linked at the end gets
 * CC_ECANCELED. Delivery reports are never synthesized otherwise.
 *
 * Look-ups. librdkafka 2.0.2 has no asynchronous metadata or offset query,
 * so cc_kafka_partitions() and the start of cc_kafka_assign() run
 * rd_kafka_metadata() / rd_kafka_offsets_for_times() in a kwork on libuv's
 * thread pool, bounded by metadata_ms. The pool thread touches only
 * librdkafka (thread-safe) and the kwork, never k or the allocator; the
 * result is handled on the loop in the work's after-callback. A client
 * must not be destroyed under a running call, so DESTROY waits until
 * nwork is 0.
 *
 * Manual assignment and "end". rd_kafka_assign() with a logical
 * RD_KAFKA_OFFSET_END resolves the end offset later, inside librdkafka,
 * at a moment we cannot observe: a record produced in between would be
 * skipped. So the end offsets are looked up first (ListOffsets, latest)
 * and the partitions assigned at those absolute offsets; only then does
 * cc_kafka_assigned() say 1. A record produced after that is appended at
 * or beyond the offset looked up, so it is fetched. The same look-up
 * first checks every partition against the cluster's whole topic list
 * (which creates nothing, unlike naming a topic on a cluster that creates
 * topics on demand).
 *
 * Memory: our structures come from the ctx's allocator; librdkafka
 * allocates its own (it has no hooks). Partition lists we keep are built
 * from names only, so they hold no references into librdkafka.
 *
 * This is the only file that includes <librdkafka/rdkafka.h>
 * (scripts/lint.sh).
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "chatcore/kafka.h"
#include "core/internal.h"

#define BUDGET 512          /* events per queue per loop turn */
#define CHUNK 128           /* partitions per rebalance callback */
#define TICK_MS 1000        /* consumer poll / lost wake-up safety net */
#define CLOSE_TICK_MS 20    /* state machine checks while closing */
#define PURGE_MS 1000       /* wait for purged delivery reports */
#define CLOSE_MS_DEFAULT 5000
#define META_MS_DEFAULT 5000
#define OWN_PREFIX "chatcore."

enum {
    ST_OPEN,
    ST_FLUSH,
    ST_PURGE,
    ST_LEAVE,
    ST_DESTROY,
};

/* A produce or commit waiting for its result. */
typedef struct kreq {
    cc__list node;
    union {
        cc_kafka_delivery_cb dr;
        cc_kafka_commit_cb commit;
    } cb;
    void *data;
} kreq;

/* A look-up on the thread pool: cc_kafka_partitions() (topic, cb) or the
 * start of a cc_kafka_assign() (parts). The pool thread reads the inputs
 * and writes only the results (status, transient, err, count, bad, the
 * offsets in parts); the loop reads them in the after-callback. */
typedef struct kwork {
    uv_work_t work;
    cc_kafka *k;
    rd_kafka_t *prod, *cons; /* the clients, read on the pool thread */
    int timeout_ms;
    int status;
    int transient; /* assign: worth retrying */
    rd_kafka_resp_err_t err;
    cc_kafka_partitions_cb cb;
    void *data;
    int32_t count;
    rd_kafka_topic_partition_list_t *parts;
    int want_end;
    int bad; /* assign: index of the partition found missing */
    size_t size;
    char topic[]; /* partitions: the topic's name */
} kwork;

/* A record fetched while paused, delivered on resume. */
typedef struct held {
    struct held *next;
    rd_kafka_message_t *m;
} held;

struct cc_kafka {
    cc_ctx *ctx;
    rd_kafka_t *prod, *cons;
    rd_kafka_queue_t *prod_q;  /* producer main queue */
    rd_kafka_queue_t *cmain_q; /* consumer main queue */
    rd_kafka_queue_t *cons_q;  /* consumer queue */
    rd_kafka_queue_t *close_q; /* consumer close queue (LEAVE) */
    uv_file fds[2];
    uv_poll_t poll;
    uv_idle_t idle;
    uv_timer_t timer;
    uv_work_t work;
    int handles_open;
    int in_run; /* serving events: the close state machine must wait */

    /* producer */
    cc__list produces; /* kreq with a callback */
    size_t npending;   /* every produce without a result yet */
    rd_kafka_event_t *dr_ev; /* delivery report batch partly served */

    /* consumer */
    int subscribed;
    cc_kafka_msg_cb on_msg;
    cc_kafka_rebalance_cb on_rebalance;
    void *sub_data;
    cc__list commits;
    rd_kafka_topic_partition_list_t *assigned; /* names only */
    rd_kafka_topic_partition_list_t *deferred; /* names only */
    int deferred_assign, deferred_coop;
    int in_rebalance, defer_req, lost;
    int paused;
    held *held_head, *held_tail;
    int coop_conf; /* configured assignor is cooperative */

    /* manual assignment (cc_kafka_assign) */
    int manual;
    int assign_state; /* 0 looking up, 1 live, or a CC_E* code */
    int resolving;    /* a look-up is on the thread pool */
    int retry;        /* start another look-up on the next tick */
    int64_t assign_start;
    rd_kafka_topic_partition_list_t *to_assign; /* until live */

    /* thread pool look-ups */
    size_t nwork;
    uint64_t metadata_ms;

    /* health */
    int prod_up, cons_up, fatal;

    /* close */
    int state;
    uint64_t close_ms;
    uint64_t deadline;
    cc_close_cb close_cb;
    void *close_data;

    cc_kafka_log_cb log_cb;
    void *log_data;
    void *data;
    const char *note; /* startup warning, logged on the first turn */
    char err[256];
};

static void run_events(cc_kafka *k);
static void advance(cc_kafka *k);

/* ---- small helpers ---- */

/* Log a + b (b may be NULL); errors and warnings are also kept for
 * cc_kafka_last_error(). */
static void
klog(cc_kafka *k, int level, const char *a, const char *b)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", a ? a : "", b ? b : "");
    if (level <= 4) {
        size_t n = strlen(buf); /* truncation is fine for a summary */
        if (n >= sizeof k->err)
            n = sizeof k->err - 1;
        memcpy(k->err, buf, n);
        k->err[n] = '\0';
    }
    if (k->log_cb)
        k->log_cb(k, level, buf, k->log_data);
}

static int
map_produce_err(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return 0;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return CC_ENOBUFS;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return CC_E2BIG;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return CC_ENOENT;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return CC_EINVAL;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        return CC_ETIMEDOUT;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return CC_ECANCELED;
    default:
        return CC_EBACKEND;
    }
}

static int
map_commit_err(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
    case RD_KAFKA_RESP_ERR__NO_OFFSET:
        return 0;
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR__STATE:
        return CC_ESTATE;
    case RD_KAFKA_RESP_ERR__DESTROY:
        return CC_ECANCELED;
    default:
        return CC_EBACKEND;
    }
}

/* A list of (topic, partition, offset) copied from src: no toppar
 * references, so it may outlive the client. NULL on OOM (librdkafka
 * aborts on OOM in practice). */
static rd_kafka_topic_partition_list_t *
plain_copy(const rd_kafka_topic_partition_list_t *src)
{
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(src->cnt > 0 ? src->cnt : 1);
    for (int i = 0; i < src->cnt; i++)
        rd_kafka_topic_partition_list_add(l, src->elems[i].topic,
                                          src->elems[i].partition)
            ->offset = src->elems[i].offset;
    return l;
}

static int
tp_in(const rd_kafka_topic_partition_list_t *l, const char *topic,
      int32_t partition)
{
    if (!l)
        return 0;
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].partition == partition &&
            !strcmp(l->elems[i].topic, topic))
            return 1;
    return 0;
}

static void on_idle(uv_idle_t *h);

/* Serve again on the next loop turn without waiting for a wake-up byte. */
static void
kick(cc_kafka *k)
{
    if (k->state < ST_DESTROY)
        uv_idle_start(&k->idle, on_idle);
}

/* ---- producer ---- */

/* Serve the messages of the delivery report event k->dr_ev, at most
 * `budget`. Returns how many were served; k->dr_ev is NULL once done. */
static size_t
serve_dr(cc_kafka *k, size_t budget)
{
    size_t n = 0;
    const rd_kafka_message_t *m;
    while (n < budget && (m = rd_kafka_event_message_next(k->dr_ev))) {
        n++;
        if (k->npending)
            k->npending--;
        int status = map_produce_err(m->err);
        if (status == 0)
            k->prod_up = 1;
        else if (status == CC_EBACKEND)
            klog(k, 3, "delivery failed: ", rd_kafka_err2str(m->err));
        kreq *r = m->_private;
        if (r) {
            cc__list_remove(&r->node);
            cc_kafka_delivery_cb cb = r->cb.dr;
            void *data = r->data;
            cc_ctx_free(k->ctx, r, sizeof *r);
            cb(k, status, status ? -1 : m->partition,
               status ? -1 : m->offset, data);
        }
    }
    if (n < budget) {
        rd_kafka_event_destroy(k->dr_ev);
        k->dr_ev = NULL;
    }
    return n;
}

int
cc_kafka_produce(cc_kafka *k, const char *topic, const void *key,
                 size_t klen, const void *val, size_t vlen,
                 cc_kafka_delivery_cb cb, void *data)
{
    return cc_kafka_produce_to(k, topic, RD_KAFKA_PARTITION_UA, key, klen,
                               val, vlen, cb, data);
}

int
cc_kafka_produce_to(cc_kafka *k, const char *topic, int32_t partition,
                    const void *key, size_t klen, const void *val,
                    size_t vlen, cc_kafka_delivery_cb cb, void *data)
{
    if (!k || !topic || !*topic || (!key && klen) || (!val && vlen) ||
        partition < RD_KAFKA_PARTITION_UA)
        return CC_EINVAL;
    if (k->state != ST_OPEN)
        return CC_ESTATE;
    if (k->fatal)
        return CC_EBACKEND;
    kreq *r = NULL;
    if (cb) {
        r = cc_ctx_alloc(k->ctx, sizeof *r);
        if (!r)
            return CC_ENOMEM;
        r->cb.dr = cb;
        r->data = data;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        k->prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)key, klen),
        RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_OPAQUE(r),
        RD_KAFKA_V_END);
    if (e) {
        if (r)
            cc_ctx_free(k->ctx, r, sizeof *r);
        if (e == RD_KAFKA_RESP_ERR__FATAL)
            k->fatal = 1;
        int rc = map_produce_err(e);
        return rc == CC_ETIMEDOUT || rc == CC_ECANCELED ? CC_EBACKEND : rc;
    }
    if (r)
        cc__list_push(&k->produces, &r->node);
    k->npending++;
    return 0;
}

/* Kafka's murmur2 (the Java client's Utils.murmur2: MurmurHash2 with this
 * seed, the length mixed into the seed, 4-byte little-endian blocks),
 * made positive as Java's toPositive() does. librdkafka's murmur2
 * partitioner computes the same, so hash % count is its partition. */
uint32_t
cc_kafka_hash(const void *key, size_t len)
{
    const uint32_t m = 0x5bd1e995u;
    const unsigned char *p = key;
    if (!p)
        len = 0;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t i = 0;
    for (; len - i >= 4; i += 4) {
        uint32_t w = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
                     (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
        w *= m;
        w ^= w >> 24;
        w *= m;
        h *= m;
        h ^= w;
    }
    switch (len - i) {
    case 3:
        h ^= (uint32_t)p[i + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[i + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)p[i];
        h *= m;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h & 0x7fffffffu;
}

/* ---- health, errors, logs, statistics (main queues) ---- */

static void
on_stats(cc_kafka *k, rd_kafka_t *rk, const char *json)
{
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return;
    int up = 0;
    const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers");
    const cJSON *b;
    cJSON_ArrayForEach(b, brokers)
    {
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(b, "source");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(b, "state");
        if (cJSON_IsString(src) && !strcmp(src->valuestring, "internal"))
            continue;
        if (cJSON_IsString(st) && !strcmp(st->valuestring, "UP"))
            up++;
    }
    cJSON_Delete(root);
    if (rk == k->prod)
        k->prod_up = up > 0;
    else
        k->cons_up = up > 0;
}

static void
on_error_event(cc_kafka *k, rd_kafka_t *rk, rd_kafka_event_t *ev)
{
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (rk == k->prod)
            k->prod_up = 0;
        else
            k->cons_up = 0;
    }
    int fatal = rd_kafka_event_error_is_fatal(ev);
    if (fatal)
        k->fatal = 1;
    klog(k, fatal ? 2 : 3, fatal ? "fatal: " : NULL,
         rd_kafka_event_error_string(ev));
}

/* Serve a main queue: at most `budget` events (a delivery report counts
 * one per message). Returns 1 when events are left. */
static int
serve_main(cc_kafka *k, rd_kafka_t *rk, rd_kafka_queue_t *q, size_t budget)
{
    size_t n = 0;
    if (rk == k->prod && k->dr_ev) {
        n += serve_dr(k, budget);
        if (k->dr_ev)
            return 1;
    }
    while (n < budget) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 0);
        if (!ev)
            return 0;
        switch (rd_kafka_event_type(ev)) {
        case RD_KAFKA_EVENT_DR:
            k->dr_ev = ev;
            n += serve_dr(k, budget - n);
            if (k->dr_ev)
                return 1;
            continue; /* destroyed by serve_dr */
        case RD_KAFKA_EVENT_ERROR:
            on_error_event(k, rk, ev);
            break;
        case RD_KAFKA_EVENT_STATS:
            on_stats(k, rk, rd_kafka_event_stats(ev));
            break;
        case RD_KAFKA_EVENT_LOG: {
            const char *fac = "", *str = "";
            int level = 6;
            if (rd_kafka_event_log(ev, &fac, &str, &level) == 0 &&
                k->log_cb) {
                char line[512];
                snprintf(line, sizeof line, "%s: %s", fac, str);
                klog(k, level, line, NULL);
            }
            break;
        }
        default:
            break;
        }
        rd_kafka_event_destroy(ev);
        n++;
    }
    return 1;
}

/* ---- consumer ---- */

static int
is_coop(cc_kafka *k)
{
    const char *p = rd_kafka_rebalance_protocol(k->cons);
    if (!p || !strcmp(p, "NONE"))
        return k->coop_conf;
    return !strcmp(p, "COOPERATIVE");
}

static void
drop_held(cc_kafka *k, const rd_kafka_topic_partition_list_t *only)
{
    held **pp = &k->held_head;
    k->held_tail = NULL;
    while (*pp) {
        held *h = *pp;
        if (!only || tp_in(only, rd_kafka_topic_name(h->m->rkt),
                           h->m->partition)) {
            *pp = h->next;
            rd_kafka_message_destroy(h->m);
            cc_ctx_free(k->ctx, h, sizeof *h);
        } else {
            k->held_tail = h;
            pp = &h->next;
        }
    }
}

static void
apply_rebalance(cc_kafka *k, int assign, int coop,
                const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = 0;
    if (assign) {
        if (coop)
            error = rd_kafka_incremental_assign(k->cons, parts);
        else
            e = rd_kafka_assign(k->cons, parts);
        if (!coop) {
            rd_kafka_topic_partition_list_destroy(k->assigned);
            k->assigned = plain_copy(parts);
        } else {
            for (int i = 0; i < parts->cnt; i++)
                if (!tp_in(k->assigned, parts->elems[i].topic,
                           parts->elems[i].partition))
                    rd_kafka_topic_partition_list_add(
                        k->assigned, parts->elems[i].topic,
                        parts->elems[i].partition);
        }
        if (k->paused && parts->cnt > 0)
            rd_kafka_pause_partitions(
                k->cons, (rd_kafka_topic_partition_list_t *)parts);
    } else {
        if (coop) {
            error = rd_kafka_incremental_unassign(k->cons, parts);
            for (int i = 0; i < parts->cnt; i++)
                rd_kafka_topic_partition_list_del(k->assigned,
                                                  parts->elems[i].topic,
                                                  parts->elems[i].partition);
        } else {
            e = rd_kafka_assign(k->cons, NULL);
            rd_kafka_topic_partition_list_destroy(k->assigned);
            k->assigned = rd_kafka_topic_partition_list_new(1);
        }
    }
    if (error) {
        klog(k, 3, "rebalance: ", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (e) {
        klog(k, 3, "rebalance: ", rd_kafka_err2str(e));
    }
}

/* Both the rebalance callback (rd_kafka_consumer_poll) and the rebalance
 * event (close queue) end here. */
static void
handle_rebalance(cc_kafka *k, rd_kafka_resp_err_t err,
                 rd_kafka_topic_partition_list_t *parts)
{
    if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS &&
        err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        klog(k, 3, "rebalance error: ", rd_kafka_err2str(err));
        rd_kafka_assign(k->cons, NULL);
        rd_kafka_topic_partition_list_destroy(k->assigned);
        k->assigned = rd_kafka_topic_partition_list_new(1);
        drop_held(k, NULL);
        return;
    }
    if (k->deferred) /* librdkafka waits for it, but be safe */
        cc_kafka_rebalance_done(k);
    int assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    int coop = is_coop(k);
    k->lost = assign ? 0 : rd_kafka_assignment_lost(k->cons);
    if (!assign)
        drop_held(k, parts);
    k->defer_req = 0;
    if (k->on_rebalance && parts->cnt > 0 &&
        !(assign && k->state != ST_OPEN)) {
        cc_kafka_partition arr[CHUNK];
        k->in_rebalance = 1;
        for (int i = 0; i < parts->cnt;) {
            size_t m = 0;
            for (; m < CHUNK && i < parts->cnt; m++, i++) {
                arr[m].topic = parts->elems[i].topic;
                arr[m].partition = parts->elems[i].partition;
            }
            k->on_rebalance(k, assign, arr, m, k->sub_data);
        }
        k->in_rebalance = 0;
    }
    if (k->defer_req && k->state < ST_DESTROY) {
        k->defer_req = 0;
        k->deferred = plain_copy(parts);
        k->deferred_assign = assign;
        k->deferred_coop = coop;
        return;
    }
    apply_rebalance(k, assign, coop, parts);
}

static void
on_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    CC__UNUSED(rk);
    handle_rebalance(opaque, err, parts);
}

int
cc_kafka_rebalance_defer(cc_kafka *k)
{
    if (!k || !k->in_rebalance)
        return CC_ESTATE;
    k->defer_req = 1;
    return 0;
}

int
cc_kafka_rebalance_done(cc_kafka *k)
{
    if (!k || !k->deferred || k->state >= ST_DESTROY)
        return CC_ESTATE;
    rd_kafka_topic_partition_list_t *l = k->deferred;
    k->deferred = NULL;
    apply_rebalance(k, k->deferred_assign, k->deferred_coop, l);
    rd_kafka_topic_partition_list_destroy(l);
    kick(k);
    return 0;
}

int
cc_kafka_assignment_lost(const cc_kafka *k)
{
    return k && k->in_rebalance ? k->lost : 0;
}

static void
commit_done(cc_kafka *k, rd_kafka_resp_err_t err,
            const rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    if (!err && offsets)
        for (int i = 0; i < offsets->cnt && !err; i++)
            err = offsets->elems[i].err;
    int status = map_commit_err(err);
    if (status)
        klog(k, 4, "commit failed: ", rd_kafka_err2str(err));
    kreq *r = opaque;
    if (!r)
        return;
    cc__list_remove(&r->node);
    cc_kafka_commit_cb cb = r->cb.commit;
    void *data = r->data;
    cc_ctx_free(k->ctx, r, sizeof *r);
    cb(k, status, data);
}

static void
on_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    commit_done(rd_kafka_opaque(rk), err, offsets, opaque);
}

int
cc_kafka_commit(cc_kafka *k, const char *topic, int32_t partition,
                int64_t next_offset, cc_kafka_commit_cb cb, void *data)
{
    if (!k || !topic || !*topic || partition < 0 || next_offset < 0)
        return CC_EINVAL;
    /* an assignment has no group generation to commit under */
    if (!k->cons || k->manual || k->state >= ST_DESTROY ||
        (k->state == ST_LEAVE && rd_kafka_consumer_closed(k->cons)))
        return CC_ESTATE;
    kreq *r = NULL;
    if (cb) {
        r = cc_ctx_alloc(k->ctx, sizeof *r);
        if (!r)
            return CC_ENOMEM;
        r->cb.commit = cb;
        r->data = data;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset =
        next_offset;
    rd_kafka_resp_err_t e =
        rd_kafka_commit_queue(k->cons, l, k->cons_q, on_commit_cb, r);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        if (r)
            cc_ctx_free(k->ctx, r, sizeof *r);
        if (e == RD_KAFKA_RESP_ERR__FATAL)
            k->fatal = 1;
        return e == RD_KAFKA_RESP_ERR__STATE ? CC_ESTATE : CC_EBACKEND;
    }
    if (r)
        cc__list_push(&k->commits, &r->node);
    return 0;
}

/* Hand one record to the application, or keep/drop it. Takes m. */
static void
deliver(cc_kafka *k, rd_kafka_message_t *m)
{
    if (k->state != ST_OPEN || !k->on_msg ||
        (k->deferred && !k->deferred_assign &&
         tp_in(k->deferred, rd_kafka_topic_name(m->rkt), m->partition))) {
        /* closing, or its partition is being revoked: not committed, so
         * the partition's next owner gets it */
        rd_kafka_message_destroy(m);
        return;
    }
    if (k->paused) {
        held *h = cc_ctx_alloc(k->ctx, sizeof *h);
        if (h) {
            h->next = NULL;
            h->m = m;
            if (k->held_tail)
                k->held_tail->next = h;
            else
                k->held_head = h;
            k->held_tail = h;
            return;
        }
        /* no memory to hold it: deliver now rather than lose it */
    }
    rd_kafka_timestamp_type_t tst;
    cc_kafka_msg msg;
    msg.topic = rd_kafka_topic_name(m->rkt);
    msg.partition = m->partition;
    msg.offset = m->offset;
    msg.timestamp_ms = rd_kafka_message_timestamp(m, &tst);
    msg.key.base = m->key;
    msg.key.len = m->key ? m->key_len : 0;
    msg.value.base = m->payload;
    msg.value.len = m->payload ? m->len : 0;
    k->on_msg(k, &msg, k->sub_data);
    rd_kafka_message_destroy(m);
}

static int
serve_consumer(cc_kafka *k)
{
    size_t n = 0;
    while (!k->paused && k->held_head && n < BUDGET) {
        held *h = k->held_head;
        k->held_head = h->next;
        if (!k->held_head)
            k->held_tail = NULL;
        rd_kafka_message_t *m = h->m;
        cc_ctx_free(k->ctx, h, sizeof *h);
        deliver(k, m);
        n++;
    }
    while (n < BUDGET) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->cons, 0);
        if (!m)
            return 0;
        n++;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->err == RD_KAFKA_RESP_ERR__FATAL)
                    k->fatal = 1;
                klog(k, 3, "consumer: ", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        deliver(k, m);
    }
    return 1;
}

/* The close queue (LEAVE), served with the event API. */
static int
serve_close(cc_kafka *k)
{
    for (size_t n = 0; n < BUDGET; n++) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(k->close_q, 0);
        if (!ev)
            return 0;
        switch (rd_kafka_event_type(ev)) {
        case RD_KAFKA_EVENT_REBALANCE:
            handle_rebalance(k, rd_kafka_event_error(ev),
                             rd_kafka_event_topic_partition_list(ev));
            break;
        case RD_KAFKA_EVENT_OFFSET_COMMIT:
            commit_done(k, rd_kafka_event_error(ev),
                        rd_kafka_event_topic_partition_list(ev),
                        rd_kafka_event_opaque(ev));
            break;
        case RD_KAFKA_EVENT_ERROR:
            on_error_event(k, k->cons, ev);
            break;
        default:
            break; /* records: dropped, never committed */
        }
        rd_kafka_event_destroy(ev);
    }
    return 1;
}

int
cc_kafka_subscribe(cc_kafka *k, const char *const *topics, size_t n,
                   cc_kafka_msg_cb on_msg, cc_kafka_rebalance_cb on_rebalance,
                   void *data)
{
    if (!k || !topics || n == 0 || n > INT32_MAX || !on_msg)
        return CC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!topics[i] || !*topics[i])
            return CC_EINVAL;
    if (!k->cons || k->state != ST_OPEN)
        return CC_ESTATE;
    if (k->subscribed || k->manual)
        return CC_EBUSY;
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topics[i],
                                          RD_KAFKA_PARTITION_UA);
    k->on_msg = on_msg;
    k->on_rebalance = on_rebalance;
    k->sub_data = data;
    rd_kafka_resp_err_t e = rd_kafka_subscribe(k->cons, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        k->on_msg = NULL;
        k->on_rebalance = NULL;
        klog(k, 3, "subscribe: ", rd_kafka_err2str(e));
        return e == RD_KAFKA_RESP_ERR__INVALID_ARG ? CC_EINVAL : CC_EBACKEND;
    }
    k->subscribed = 1;
    return 0;
}

/* ---- look-ups on the thread pool, manual assignment ---- */

/* A failed metadata or offset request as a whole. */
static int
map_lookup_err(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return CC_ETIMEDOUT;
    default:
        return CC_EBACKEND;
    }
}

/* The partition count of `topic` in an all-topics metadata answer: 0 and
 * *count; CC_ENOENT; or CC_EBACKEND and *err. */
static int
md_count(const struct rd_kafka_metadata *md, const char *topic,
         int32_t *count, rd_kafka_resp_err_t *err)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, topic))
            continue;
        if (t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            return CC_ENOENT;
        /* a topic-level error that still lists the partitions (a leader
         * being elected) does not change how many there are */
        if (t->partition_cnt > 0) {
            *count = t->partition_cnt;
            return 0;
        }
        *err = t->err ? t->err : RD_KAFKA_RESP_ERR__FAIL;
        return CC_EBACKEND;
    }
    return CC_ENOENT;
}

/* On the thread pool: touches only w and librdkafka. */
static void
lookup_work(uv_work_t *uw)
{
    kwork *w = CC__CONTAINER_OF(uw, kwork, work);
    const struct rd_kafka_metadata *md = NULL;
    /* all topics: naming one would create it on a cluster that creates
     * topics on demand (and the 2.0.2 mock always does) */
    w->err = rd_kafka_metadata(w->prod, 1, NULL, &md, w->timeout_ms);
    if (w->err) {
        w->status = map_lookup_err(w->err);
        w->transient = 1;
        return;
    }
    if (!w->parts) {
        w->status = md_count(md, w->topic, &w->count, &w->err);
        rd_kafka_metadata_destroy(md);
        return;
    }
    for (int i = 0; i < w->parts->cnt && !w->status; i++) {
        const rd_kafka_topic_partition_t *tp = &w->parts->elems[i];
        int32_t cnt = 0;
        w->status = md_count(md, tp->topic, &cnt, &w->err);
        if (!w->status && tp->partition >= cnt)
            w->status = CC_ENOENT;
        w->transient = w->status == CC_EBACKEND;
        w->bad = i;
    }
    rd_kafka_metadata_destroy(md);
    if (w->status || !w->want_end)
        return;
    /* ListOffsets with the "timestamp" -1 answers the end offset, which is
     * what rd_kafka_query_watermark_offsets() asks too, for all partitions
     * in one round trip per leader */
    for (int i = 0; i < w->parts->cnt; i++)
        w->parts->elems[i].offset = RD_KAFKA_OFFSET_END;
    w->err = rd_kafka_offsets_for_times(w->cons, w->parts, w->timeout_ms);
    for (int i = 0; i < w->parts->cnt && !w->err; i++) {
        w->err = w->parts->elems[i].err;
        if (!w->err && w->parts->elems[i].offset < 0)
            w->err = RD_KAFKA_RESP_ERR__FAIL;
    }
    if (w->err) {
        /* the metadata just said the partitions exist: a leader moved */
        w->status = map_lookup_err(w->err);
        w->transient = 1;
    }
}

static int
queue_lookup(cc_kafka *k, kwork *w, uv_after_work_cb done)
{
    w->k = k;
    w->prod = k->prod;
    w->cons = k->cons;
    w->timeout_ms = (int)k->metadata_ms;
    int rc = uv_queue_work(cc_ctx_loop(k->ctx), &w->work, lookup_work, done);
    if (!rc)
        k->nwork++;
    return rc;
}

static void
partitions_done(uv_work_t *uw, int status)
{
    CC__UNUSED(status); /* never cancelled */
    kwork *w = CC__CONTAINER_OF(uw, kwork, work);
    cc_kafka *k = w->k;
    k->nwork--;
    int st = w->status;
    if (st && st != CC_ENOENT) {
        char line[300];
        snprintf(line, sizeof line, "partitions of %s: %s", w->topic,
                 rd_kafka_err2str(w->err));
        klog(k, 4, line, NULL);
    }
    int32_t count = st ? -1 : w->count;
    cc_kafka_partitions_cb cb = w->cb;
    void *data = w->data;
    cc_ctx_free(k->ctx, w, w->size);
    cb(k, st, count, data);
    advance(k); /* a close may wait for this look-up */
}

int
cc_kafka_partitions(cc_kafka *k, const char *topic, cc_kafka_partitions_cb cb,
                    void *data)
{
    if (!k || !topic || !*topic || !cb)
        return CC_EINVAL;
    if (k->state != ST_OPEN)
        return CC_ESTATE;
    size_t tl = strlen(topic);
    size_t size = sizeof(kwork) + tl + 1;
    kwork *w = cc_ctx_alloc(k->ctx, size);
    if (!w)
        return CC_ENOMEM;
    memset(w, 0, sizeof *w);
    w->size = size;
    memcpy(w->topic, topic, tl + 1);
    w->cb = cb;
    w->data = data;
    int rc = queue_lookup(k, w, partitions_done);
    if (rc)
        cc_ctx_free(k->ctx, w, size);
    return rc;
}

static void assign_done(uv_work_t *uw, int status);

/* Look up (again) what the assignment needs before it can be live. */
static int
start_resolve(cc_kafka *k)
{
    kwork *w = cc_ctx_alloc(k->ctx, sizeof *w);
    if (!w)
        return CC_ENOMEM;
    memset(w, 0, sizeof *w);
    w->size = sizeof *w;
    w->parts = plain_copy(k->to_assign);
    w->want_end = k->assign_start == CC_KAFKA_OFFSET_END;
    int rc = queue_lookup(k, w, assign_done);
    if (rc) {
        rd_kafka_topic_partition_list_destroy(w->parts);
        cc_ctx_free(k->ctx, w, sizeof *w);
        return rc;
    }
    k->resolving = 1;
    k->retry = 0;
    return 0;
}

static void
assign_done(uv_work_t *uw, int status)
{
    CC__UNUSED(status); /* never cancelled */
    kwork *w = CC__CONTAINER_OF(uw, kwork, work);
    cc_kafka *k = w->k;
    k->nwork--;
    k->resolving = 0;
    rd_kafka_topic_partition_list_t *l = w->parts;
    int st = w->status, transient = w->transient, bad = w->bad;
    rd_kafka_resp_err_t err = w->err;
    cc_ctx_free(k->ctx, w, sizeof *w);
    if (k->state != ST_OPEN) {
        rd_kafka_topic_partition_list_destroy(l);
        advance(k); /* a close may wait for this look-up */
        return;
    }
    if (st && transient) {
        klog(k, 4, "assign: start offsets not known yet, retrying: ",
             rd_kafka_err2str(err));
        k->retry = 1; /* on the next tick */
    } else if (st) {
        char line[300];
        snprintf(line, sizeof line, "assign: %s [%d] does not exist",
                 l->elems[bad].topic, (int)l->elems[bad].partition);
        klog(k, 3, line, NULL);
        k->assign_state = st;
    } else {
        if (k->assign_start != CC_KAFKA_OFFSET_END)
            for (int i = 0; i < l->cnt; i++)
                l->elems[i].offset = k->assign_start;
        rd_kafka_resp_err_t e = rd_kafka_assign(k->cons, l);
        if (e) {
            klog(k, 3, "assign: ", rd_kafka_err2str(e));
            k->assign_state = CC_EBACKEND;
        } else {
            rd_kafka_topic_partition_list_destroy(k->assigned);
            k->assigned = plain_copy(l);
            if (k->paused)
                rd_kafka_pause_partitions(k->cons, l);
            k->assign_state = 1;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (k->assign_state) {
        rd_kafka_topic_partition_list_destroy(k->to_assign);
        k->to_assign = NULL;
    }
}

int
cc_kafka_assign(cc_kafka *k, const cc_kafka_partition *parts, size_t n,
                int64_t start, cc_kafka_msg_cb on_msg, void *data)
{
    if (!k || !parts || n == 0 || n > INT32_MAX || !on_msg ||
        start < CC_KAFKA_OFFSET_BEGINNING)
        return CC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!parts[i].topic || !*parts[i].topic || parts[i].partition < 0)
            return CC_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (parts[j].partition == parts[i].partition &&
                !strcmp(parts[j].topic, parts[i].topic))
                return CC_EINVAL;
    }
    if (!k->cons || k->state != ST_OPEN)
        return CC_ESTATE;
    if (k->subscribed || k->manual)
        return CC_EBUSY;
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, parts[i].topic,
                                          parts[i].partition);
    k->to_assign = l;
    k->assign_start = start;
    int rc = start_resolve(k);
    if (rc) {
        rd_kafka_topic_partition_list_destroy(l);
        k->to_assign = NULL;
        return rc;
    }
    k->manual = 1;
    k->assign_state = 0;
    k->on_msg = on_msg;
    k->on_rebalance = NULL;
    k->sub_data = data;
    return 0;
}

int
cc_kafka_assigned(const cc_kafka *k)
{
    if (!k)
        return CC_EINVAL;
    if (!k->manual || k->state != ST_OPEN)
        return CC_ESTATE;
    return k->assign_state;
}

int
cc_kafka_pause(cc_kafka *k)
{
    if (!k || !k->cons || k->state != ST_OPEN)
        return CC_ESTATE;
    if (!k->paused && k->assigned->cnt > 0)
        rd_kafka_pause_partitions(k->cons, k->assigned);
    k->paused = 1;
    return 0;
}

int
cc_kafka_resume(cc_kafka *k)
{
    if (!k || !k->cons || k->state != ST_OPEN)
        return CC_ESTATE;
    if (k->paused && k->assigned->cnt > 0)
        rd_kafka_resume_partitions(k->cons, k->assigned);
    k->paused = 0;
    if (k->held_head)
        kick(k); /* deliver what was held on the next turn, not in here */
    return 0;
}

/* ---- the loop side ---- */

static void
run_events(cc_kafka *k)
{
    if (k->state >= ST_DESTROY)
        return;
    k->in_run = 1;
    if (k->note && k->log_cb) {
        const char *note = k->note;
        k->note = NULL;
        klog(k, 4, note, NULL);
    }
    int more = serve_main(k, k->prod, k->prod_q, BUDGET);
    if (k->cons) {
        more |= serve_main(k, k->cons, k->cmain_q, BUDGET);
        if (k->close_q)
            more |= serve_close(k);
        else
            more |= serve_consumer(k);
    }
    k->in_run = 0;
    if (k->state < ST_DESTROY) {
        if (more)
            kick(k);
        else
            uv_idle_stop(&k->idle);
    }
    advance(k);
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
    CC__UNUSED(status);
    CC__UNUSED(events);
    cc_kafka *k = CC__CONTAINER_OF(h, cc_kafka, poll);
    char buf[256];
    while (read(k->fds[0], buf, sizeof buf) == (ssize_t)sizeof buf)
        ;
    run_events(k);
}

static void
on_idle(uv_idle_t *h)
{
    run_events(CC__CONTAINER_OF(h, cc_kafka, idle));
}

static void
on_timer(uv_timer_t *h)
{
    cc_kafka *k = CC__CONTAINER_OF(h, cc_kafka, timer);
    if (k->retry && !k->resolving && k->state == ST_OPEN)
        start_resolve(k); /* on failure k->retry stays: next tick */
    run_events(k);
}

/* ---- close ---- */

static void
finish(cc_kafka *k)
{
    close(k->fds[0]);
    close(k->fds[1]);
    while (!cc__list_empty(&k->produces)) {
        kreq *r = CC__CONTAINER_OF(k->produces.next, kreq, node);
        cc__list_remove(&r->node);
        cc_kafka_delivery_cb cb = r->cb.dr;
        void *data = r->data;
        cc_ctx_free(k->ctx, r, sizeof *r);
        cb(k, CC_ECANCELED, -1, -1, data);
    }
    while (!cc__list_empty(&k->commits)) {
        kreq *r = CC__CONTAINER_OF(k->commits.next, kreq, node);
        cc__list_remove(&r->node);
        cc_kafka_commit_cb cb = r->cb.commit;
        void *data = r->data;
        cc_ctx_free(k->ctx, r, sizeof *r);
        cb(k, CC_ECANCELED, data);
    }
    if (k->close_cb)
        k->close_cb(k, k->close_data);
    cc_ctx_free(k->ctx, k, sizeof *k);
}

static void
on_handle_closed(uv_handle_t *h)
{
    cc_kafka *k = h->data;
    if (--k->handles_open == 0)
        finish(k);
}

static void
destroy_work(uv_work_t *w)
{
    cc_kafka *k = CC__CONTAINER_OF(w, cc_kafka, work);
    /* The consumer already left (LEAVE), or could not within the bound:
     * a plain destroy would try again and wait without limit. */
    if (k->cons)
        rd_kafka_destroy_flags(k->cons, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    rd_kafka_destroy(k->prod);
}

static void
destroy_done(uv_work_t *w, int status)
{
    CC__UNUSED(status);
    cc_kafka *k = CC__CONTAINER_OF(w, cc_kafka, work);
    k->prod = k->cons = NULL;
    uv_close((uv_handle_t *)&k->poll, on_handle_closed);
    uv_close((uv_handle_t *)&k->idle, on_handle_closed);
    uv_close((uv_handle_t *)&k->timer, on_handle_closed);
}

static void
begin_destroy(cc_kafka *k)
{
    k->state = ST_DESTROY;
    uv_poll_stop(&k->poll);
    uv_idle_stop(&k->idle);
    uv_timer_stop(&k->timer);
    /* Reports librdkafka already has get their real status now; whatever
     * it still holds after this is cancelled in finish(). */
    k->in_run = 1;
    serve_main(k, k->prod, k->prod_q, SIZE_MAX);
    k->in_run = 0;
    drop_held(k, NULL);
    rd_kafka_topic_partition_list_destroy(k->assigned);
    k->assigned = NULL;
    if (k->deferred)
        rd_kafka_topic_partition_list_destroy(k->deferred);
    k->deferred = NULL;
    if (k->to_assign)
        rd_kafka_topic_partition_list_destroy(k->to_assign);
    k->to_assign = NULL;
    rd_kafka_queue_t **qs[] = {&k->prod_q, &k->cmain_q, &k->cons_q,
                               &k->close_q};
    for (size_t i = 0; i < CC__ARRAY_LEN(qs); i++)
        if (*qs[i]) {
            rd_kafka_queue_destroy(*qs[i]);
            *qs[i] = NULL;
        }
    if (uv_queue_work(cc_ctx_loop(k->ctx), &k->work, destroy_work,
                      destroy_done)) {
        destroy_work(&k->work); /* cannot happen: arguments are valid */
        destroy_done(&k->work, 0);
    }
}

static void
start_leave(cc_kafka *k)
{
    k->state = ST_LEAVE;
    k->deadline = uv_now(cc_ctx_loop(k->ctx)) + k->close_ms;
    if (!k->cons)
        return;
    k->close_q = rd_kafka_queue_new(k->cons);
    rd_kafka_queue_io_event_enable(k->close_q, k->fds[1], "k", 1);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(k->cons,
                                                            k->close_q);
    if (error) {
        klog(k, 3, "consumer close: ", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    kick(k);
}

static void
advance(cc_kafka *k)
{
    if (k->in_run || k->state == ST_OPEN || k->state >= ST_DESTROY)
        return;
    uint64_t now = uv_now(cc_ctx_loop(k->ctx));
    if (k->state == ST_FLUSH) {
        if (k->npending == 0) {
            start_leave(k);
        } else if (now >= k->deadline) {
            klog(k, 4, "close: timed out, purging undelivered records", NULL);
            rd_kafka_purge(k->prod, RD_KAFKA_PURGE_F_QUEUE |
                                        RD_KAFKA_PURGE_F_INFLIGHT |
                                        RD_KAFKA_PURGE_F_NON_BLOCKING);
            k->state = ST_PURGE;
            k->deadline = now + PURGE_MS;
            kick(k);
            return;
        }
    }
    if (k->state == ST_PURGE && (k->npending == 0 || now >= k->deadline))
        start_leave(k);
    if (k->state == ST_LEAVE) {
        int left = !k->cons || rd_kafka_consumer_closed(k->cons);
        if (k->deferred && now >= k->deadline) {
            /* the application never finished its revoke: apply it, or
             * the consumer cannot leave */
            cc_kafka_rebalance_done(k);
        }
        /* a look-up on the thread pool still uses the clients */
        if (((left && !k->deferred) || now >= k->deadline + k->close_ms) &&
            k->nwork == 0)
            begin_destroy(k);
    }
}

void
cc_kafka_close(cc_kafka *k, cc_close_cb cb, void *data)
{
    if (!k || k->state != ST_OPEN)
        return;
    k->close_cb = cb;
    k->close_data = data;
    k->state = ST_FLUSH;
    k->deadline = uv_now(cc_ctx_loop(k->ctx)) + k->close_ms;
    uv_timer_start(&k->timer, on_timer, CLOSE_TICK_MS, CLOSE_TICK_MS);
    kick(k);
}

/* ---- setup ---- */

int
cc_kafka_healthy(const cc_kafka *k)
{
    return k && k->state == ST_OPEN && !k->fatal && k->prod_up &&
           (!k->cons || k->cons_up);
}

void
cc_kafka_set_log_cb(cc_kafka *k, cc_kafka_log_cb cb, void *data)
{
    if (!k)
        return;
    k->log_cb = cb;
    k->log_data = data;
}

const char *
cc_kafka_last_error(const cc_kafka *k)
{
    return k ? k->err : "";
}

void
cc_kafka_set_data(cc_kafka *k, void *data)
{
    if (k)
        k->data = data;
}

void *
cc_kafka_get_data(const cc_kafka *k)
{
    return k ? k->data : NULL;
}

static int
conf_set(rd_kafka_conf_t *c, const char *key, const char *val)
{
    char errstr[256];
    return rd_kafka_conf_set(c, key, val, errstr, sizeof errstr) ==
                   RD_KAFKA_CONF_OK
               ? 0
               : CC_EINVAL;
}

/* Is `tok` one of the comma-separated tokens of `list`? */
static int
has_token(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; (p = strstr(p, tok)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

static int
conf_defaults(cc_kafka *k, rd_kafka_conf_t *pc, rd_kafka_conf_t *cc,
              const char *brokers, const char *group_id)
{
    static const char *const common[] = {
        "client.id", "chatcore",
        "statistics.interval.ms", "1000",
        NULL,
    };
    /* linger.ms=2: records produced in the same loop turn (a burst of
     * sends, or one send fanned out to several records) leave in one
     * request, so one acks=all round trip covers them; 2 ms bounds what
     * that adds to the latency of `sent`. */
    static const char *const producer[] = {
        "acks", "all",
        "enable.idempotence", "true",
        "linger.ms", "2",
        "batch.num.messages", "10000",
        "batch.size", "1000000",
        "queue.buffering.max.kbytes", "65536",
        "message.timeout.ms", "30000",
        "partitioner", "murmur2_random",
        NULL,
    };
    static const char *const consumer[] = {
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest",
        NULL,
    };
    int rc = conf_set(pc, "bootstrap.servers", brokers);
    for (size_t i = 0; !rc && common[i]; i += 2)
        rc = conf_set(pc, common[i], common[i + 1]);
    for (size_t i = 0; !rc && producer[i]; i += 2)
        rc = conf_set(pc, producer[i], producer[i + 1]);
    if (rc)
        return rc;
    char feat[512];
    size_t fl = sizeof feat;
    if (rd_kafka_conf_get(pc, "builtin.features", feat, &fl) !=
        RD_KAFKA_CONF_OK)
        feat[0] = '\0';
    if (has_token(feat, "lz4")) {
        rc = conf_set(pc, "compression.type", "lz4");
    } else if (has_token(feat, "zstd")) {
        rc = conf_set(pc, "compression.type", "zstd");
        k->note = "librdkafka lacks lz4: compression.type=zstd";
    } else {
        rc = conf_set(pc, "compression.type", "none");
        k->note = "librdkafka lacks lz4 and zstd: no compression";
    }
    if (rc || !cc)
        return rc;
    rc = conf_set(cc, "bootstrap.servers", brokers);
    if (!rc)
        rc = conf_set(cc, "group.id", group_id);
    for (size_t i = 0; !rc && common[i]; i += 2)
        rc = conf_set(cc, common[i], common[i + 1]);
    for (size_t i = 0; !rc && consumer[i]; i += 2)
        rc = conf_set(cc, consumer[i], consumer[i + 1]);
    if (rc)
        return rc;
    /* incremental rebalancing (librdkafka >= 1.6): a member joining or
     * leaving moves only the partitions that must move */
    if (conf_set(cc, "partition.assignment.strategy", "cooperative-sticky")) {
        k->note = "no cooperative-sticky assignor: using range,roundrobin";
        rc = conf_set(cc, "partition.assignment.strategy", "range,roundrobin");
    }
    return rc;
}

/* The application's pairs, then what the adapter cannot work without.
 * "producer.X" / "consumer.X" set X on that client only (no librdkafka
 * property starts so), which also spares the "is a consumer property and
 * will be ignored by this producer" warnings. */
static int
conf_user(cc_kafka *k, rd_kafka_conf_t *c, const char *const *conf, int prod)
{
    for (size_t i = 0; conf && conf[i]; i += 2) {
        const char *key = conf[i], *val = conf[i + 1];
        if (!strncmp(key, "producer.", 9) || !strncmp(key, "consumer.", 9)) {
            if ((key[0] == 'p') != prod)
                continue;
            key += 9;
            if (!*key)
                return CC_EINVAL;
        }
        if (!strncmp(key, OWN_PREFIX, strlen(OWN_PREFIX))) {
            int meta = !strcmp(key, "chatcore.metadata.timeout.ms");
            if (!meta && strcmp(key, "chatcore.close.timeout.ms"))
                return CC_EINVAL;
            char *end;
            unsigned long long v = strtoull(val, &end, 10);
            if (!*val || *end || v > 3600000ull || (meta && v == 0))
                return CC_EINVAL;
            if (meta)
                k->metadata_ms = v;
            else
                k->close_ms = v;
            continue;
        }
        if (conf_set(c, key, val))
            return CC_EINVAL;
    }
    if (conf_set(c, "log.queue", "true"))
        return CC_EINVAL;
    rd_kafka_conf_set_opaque(c, k);
    rd_kafka_conf_set_events(c, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR |
                                    RD_KAFKA_EVENT_STATS |
                                    RD_KAFKA_EVENT_LOG |
                                    (prod ? 0 : RD_KAFKA_EVENT_REBALANCE));
    if (!prod) {
        rd_kafka_conf_set_rebalance_cb(c, on_rebalance_cb);
        char v[256];
        size_t vl = sizeof v;
        if (rd_kafka_conf_get(c, "partition.assignment.strategy", v, &vl) ==
            RD_KAFKA_CONF_OK)
            k->coop_conf = has_token(v, "cooperative-sticky");
    }
    return 0;
}

int
cc_kafka_new(cc_kafka **out, cc_ctx *ctx, const char *brokers,
             const char *group_id, const char *const *conf)
{
    if (!out)
        return CC_EINVAL;
    *out = NULL;
    if (!ctx || !brokers || !*brokers || (group_id && !*group_id))
        return CC_EINVAL;
    size_t nconf = 0;
    while (conf && conf[nconf])
        nconf++;
    if (nconf % 2)
        return CC_EINVAL;

    cc_kafka *k = cc_ctx_alloc(ctx, sizeof *k);
    if (k)
        memset(k, 0, sizeof *k);
    if (!k)
        return CC_ENOMEM;
    k->ctx = ctx;
    k->close_ms = CLOSE_MS_DEFAULT;
    k->metadata_ms = META_MS_DEFAULT;
    k->fds[0] = k->fds[1] = -1;
    cc__list_init(&k->produces);
    cc__list_init(&k->commits);

    char errstr[512];
    int rc;
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_t *cc = group_id ? rd_kafka_conf_new() : NULL;
    rc = conf_defaults(k, pc, cc, brokers, group_id);
    if (!rc)
        rc = conf_user(k, pc, conf, 1);
    if (!rc && cc)
        rc = conf_user(k, cc, conf, 0);
    if (!rc)
        rc = uv_pipe(k->fds, UV_NONBLOCK_PIPE, UV_NONBLOCK_PIPE);
    if (!rc) {
        k->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
        if (k->prod)
            pc = NULL; /* owned by k->prod now */
        else
            rc = CC_EINVAL;
    }
    if (!rc && cc) {
        k->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
        if (k->cons)
            cc = NULL;
        else
            rc = CC_EINVAL;
    }
    if (!rc) {
        k->assigned = rd_kafka_topic_partition_list_new(1);
        rc = uv_poll_init(cc_ctx_loop(ctx), &k->poll, k->fds[0]);
    }
    if (rc) {
        if (pc)
            rd_kafka_conf_destroy(pc);
        if (cc)
            rd_kafka_conf_destroy(cc);
        if (k->assigned)
            rd_kafka_topic_partition_list_destroy(k->assigned);
        /* Only a configuration that librdkafka accepted key by key but
         * rejected as a whole gets here with a client made: destroying it
         * joins its threads, which have not connected anywhere yet. */
        if (k->cons)
            rd_kafka_destroy_flags(k->cons,
                                   RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        if (k->prod)
            rd_kafka_destroy(k->prod);
        if (k->fds[0] >= 0) {
            close(k->fds[0]);
            close(k->fds[1]);
        }
        cc_ctx_free(ctx, k, sizeof *k);
        return rc;
    }

    /* Logs go to the main queue, and so onto the loop thread. */
    rd_kafka_set_log_queue(k->prod, NULL);
    k->prod_q = rd_kafka_queue_get_main(k->prod);
    rd_kafka_queue_io_event_enable(k->prod_q, k->fds[1], "k", 1);
    if (k->cons) {
        rd_kafka_set_log_queue(k->cons, NULL);
        k->cmain_q = rd_kafka_queue_get_main(k->cons);
        k->cons_q = rd_kafka_queue_get_consumer(k->cons);
        rd_kafka_queue_io_event_enable(k->cmain_q, k->fds[1], "k", 1);
        rd_kafka_queue_io_event_enable(k->cons_q, k->fds[1], "k", 1);
    }
    uv_idle_init(cc_ctx_loop(ctx), &k->idle);
    uv_timer_init(cc_ctx_loop(ctx), &k->timer);
    k->poll.data = k->idle.data = k->timer.data = k;
    k->handles_open = 3;
    uv_poll_start(&k->poll, UV_READABLE, on_poll);
    uv_timer_start(&k->timer, on_timer, TICK_MS, TICK_MS);
    /* events queued before io events were enabled wrote no byte */
    kick(k);
    *out = k;
    return 0;
}
