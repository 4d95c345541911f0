/*
 * lib/adapters/kafka_bus.c - the engine's bus on Kafka
 * (chatcore/kafka_bus.h): partition choice, the gateway role (assign its
 * chat.out partition and chat.control from their ends, heartbeat) and the
 * owner role (one engine per chat.in partition the group gives it, offset
 * commits after the store holds the effects, orderly hand-over on revoke).
 *
 * Uses only the public API of libchatcore and of the Kafka adapter.
 */
#include <stdio.h>
#include <string.h>

#include "chatcore/chatcore.h"
#include "chatcore/kafka_bus.h"

#define T_IN "chat.in"
#define T_OUT "chat.out"
#define T_CTL "chat.control"
#define COMMIT_MS 200
#define HEARTBEAT_MS 1000
#define POLL_MS 50

/* ---- what both roles share: topic sizes and publishing ---- */

typedef struct topo {
    cc_ctx *ctx;
    cc_kafka *k;             /* produces */
    int32_t nin, nout, nctl; /* partitions; 0 = not known yet */
    int asked, failed;
} topo;

static int32_t
part_of(const char *key, size_t len, int32_t n)
{
    return n > 0 ? (int32_t)(cc_kafka_hash(key, len) % (uint32_t)n) : -1;
}

static int32_t
tenant_part(void *data, const char *tenant)
{
    topo *t = data;
    return part_of(tenant, strlen(tenant), t->nin);
}

typedef struct pubop {
    cc_ctx *ctx;
    cc_bus_done_cb done;
    void *arg;
} pubop;

static void
delivered(cc_kafka *k, int status, int32_t partition, int64_t offset,
          void *data)
{
    (void)k;
    (void)partition;
    (void)offset;
    pubop *p = data;
    p->done(p->arg, status);
    cc_ctx_free(p->ctx, p, sizeof(*p));
}

static int
bus_publish(void *data, int topic, const char *key, size_t klen,
            const void *val, size_t vlen, cc_bus_done_cb done, void *arg)
{
    topo *t = data;
    const char *name;
    int32_t part;
    if (topic == CC_BUS_IN) {
        const char *colon = memchr(key, ':', klen);
        size_t tl = colon ? (size_t)(colon - key) : klen;
        name = T_IN;
        part = part_of(key, tl, t->nin);
    } else if (topic == CC_BUS_OUT) {
        name = T_OUT;
        part = part_of(key, klen, t->nout);
    } else if (topic == CC_BUS_CONTROL) {
        name = T_CTL;
        part = -1;
    } else {
        return CC_EINVAL;
    }
    pubop *p = NULL;
    if (done) {
        p = cc_ctx_alloc(t->ctx, sizeof(*p));
        if (!p)
            return CC_ENOMEM;
        p->ctx = t->ctx;
        p->done = done;
        p->arg = arg;
    }
    int rc = cc_kafka_produce_to(t->k, name, part, key, klen, val, vlen,
                                 p ? delivered : NULL, p);
    if (rc != 0 && p)
        cc_ctx_free(t->ctx, p, sizeof(*p));
    return rc;
}

static const cc_bus_ops kafka_ops = {
    .size = sizeof(cc_bus_ops),
    .publish = bus_publish,
    .partition_of = tenant_part,
};

static void
got_count(cc_kafka *k, int status, int32_t count, void *data)
{
    (void)k;
    int32_t *slot = data;
    *slot = status == 0 && count > 0 ? count : -1;
}

/* ask for the three counts; 1 when all known, 0 while waiting, <0 error */
static int
topo_poll(topo *t)
{
    if (!t->asked) {
        t->asked = 1;
        if (cc_kafka_partitions(t->k, T_IN, got_count, &t->nin) != 0 ||
            cc_kafka_partitions(t->k, T_OUT, got_count, &t->nout) != 0 ||
            cc_kafka_partitions(t->k, T_CTL, got_count, &t->nctl) != 0)
            return CC_EBACKEND;
    }
    if (t->nin < 0 || t->nout < 0 || t->nctl < 0)
        return CC_ENOENT;
    return t->nin > 0 && t->nout > 0 && t->nctl > 0;
}

/* ---- gateway ---- */

struct cc_kafka_gateway {
    topo t;
    cc_kafka *k;
    cc_chat *chat;
    uv_timer_t timer;
    int live;
    int closing;
    cc_kafka_role_cb cb;
    void *data;
    cc_close_cb close_cb;
    void *close_data;
};

static void
gw_msg(cc_kafka *k, const cc_kafka_msg *m, void *data)
{
    (void)k;
    cc_kafka_gateway *g = data;
    if (g->closing)
        return;
    int topic = strcmp(m->topic, T_OUT) == 0 ? CC_BUS_OUT : CC_BUS_CONTROL;
    cc_chat_bus_input(g->chat, topic, m->key.base, m->key.len, m->value.base,
                      m->value.len);
}

/* every chat.control partition, appended to parts[n..cap) */
static size_t
add_ctl(const topo *t, cc_kafka_partition *parts, size_t n, size_t cap)
{
    for (int32_t i = 0; i < t->nctl && n < cap; i++) {
        parts[n].topic = T_CTL;
        parts[n++].partition = i;
    }
    return n;
}

/* the start-up outcome, once; a failure also stops the start-up ticks */
static void
gw_report(cc_kafka_gateway *g, int status)
{
    if (status != 0)
        uv_timer_stop(&g->timer);
    cc_kafka_role_cb cb = g->cb;
    g->cb = NULL;
    if (cb)
        cb(g, status, g->data);
}

static void
gw_tick(uv_timer_t *tm)
{
    cc_kafka_gateway *g = tm->data;
    if (g->closing)
        return;
    if (!g->live) {
        int rc = topo_poll(&g->t);
        if (rc < 0) {
            gw_report(g, rc);
            return;
        }
        if (rc == 0)
            return;
        if (cc_kafka_assigned(g->k) == CC_ESTATE) {
            /* sizes known: bus on, assign ours */
            rc = cc_chat_set_bus(g->chat, CC_BUS_GATEWAY, -1, &kafka_ops,
                                 &g->t);
            cc_kafka_partition parts[65];
            const char *node = cc_chat_node(g->chat);
            parts[0].topic = T_OUT;
            parts[0].partition = part_of(node, strlen(node), g->t.nout);
            size_t n = add_ctl(&g->t, parts, 1, 65);
            if (rc == 0)
                rc = cc_kafka_assign(g->k, parts, n, CC_KAFKA_OFFSET_END,
                                     gw_msg, g);
            if (rc != 0)
                gw_report(g, rc);
            return;
        }
        rc = cc_kafka_assigned(g->k);
        if (rc == 0)
            return;
        if (rc < 0) {
            gw_report(g, rc);
            return;
        }
        g->live = 1;
        cc_chat_set_ready(g->chat, 1, NULL);
        cc_chat_bus_heartbeat(g->chat);
        uv_timer_set_repeat(&g->timer, HEARTBEAT_MS);
        gw_report(g, 0);
        return;
    }
    cc_chat_bus_heartbeat(g->chat);
}

int
cc_kafka_gateway_new(cc_kafka_gateway **out, cc_kafka *k, cc_chat *chat,
                     cc_kafka_role_cb cb, void *data)
{
    if (!out || !k || !chat) {
        if (k)
            cc_kafka_close(k, NULL, NULL);
        return CC_EINVAL;
    }
    cc_ctx *ctx = cc_chat_ctx(chat);
    cc_kafka_gateway *g = cc_ctx_alloc(ctx, sizeof(*g));
    if (!g) {
        cc_kafka_close(k, NULL, NULL);
        return CC_ENOMEM;
    }
    memset(g, 0, sizeof(*g));
    g->t.ctx = ctx;
    g->k = k;
    g->t.k = k;
    g->chat = chat;
    g->cb = cb;
    g->data = data;
    cc_chat_set_ready(chat, 0, "joining the bus");
    uv_timer_init(cc_ctx_loop(ctx), &g->timer);
    g->timer.data = g;
    uv_timer_start(&g->timer, gw_tick, 0, POLL_MS);
    *out = g;
    return 0;
}

int
cc_kafka_gateway_healthy(const cc_kafka_gateway *g)
{
    return g && g->live && cc_kafka_healthy(g->k) == 1;
}

static void
gw_freed(void *obj, void *data)
{
    (void)obj;
    cc_kafka_gateway *g = data;
    cc_close_cb cb = g->close_cb;
    void *cd = g->close_data;
    cc_ctx_free(g->t.ctx, g, sizeof(*g));
    if (cb)
        cb(NULL, cd);
}

static void
gw_timer_closed(uv_handle_t *h)
{
    cc_kafka_gateway *g = h->data;
    cc_kafka_close(g->k, gw_freed, g);
}

void
cc_kafka_gateway_close(cc_kafka_gateway *g, cc_close_cb cb, void *data)
{
    if (!g || g->closing)
        return;
    g->closing = 1;
    g->close_cb = cb;
    g->close_data = data;
    uv_close((uv_handle_t *)&g->timer, gw_timer_closed);
}

/* ---- owner ---- */

typedef struct pend {
    struct pend *next;
    size_t size;
    int64_t offset;
    size_t klen, vlen;
    char buf[];
} pend;

typedef struct slot {
    struct cc_kafka_owner *o;
    int32_t part;
    cc_chat *chat;
    int state;               /* 0 none, 1 opening, 2 ready, 3 closing */
    int64_t last;            /* last offset handed to the engine, -1 */
    int64_t committed;       /* next offset committed (or being) */
    int syncing;
    pend *ph, *pt;           /* records that came while opening */
} slot;

struct cc_kafka_owner {
    topo t;
    cc_kafka *in, *ctl;
    cc_ctx *ctx;
    cc_store *st;
    const cc_config *cfg;
    cc_log_cb log;
    void *log_data;
    slot *slots;             /* t.nin of them */
    uv_timer_t timer;
    int joined;
    int opening;             /* engines opening: the consumer is paused */
    int revoking;            /* engines closing for a deferred revoke */
    int closing;
    cc_kafka_role_cb cb;
    void *data;
    cc_close_cb close_cb;
    void *close_data;
};

static void
ow_report(cc_kafka_owner *o, int status)
{
    if (status != 0)
        uv_timer_stop(&o->timer);
    cc_kafka_role_cb cb = o->cb;
    o->cb = NULL;
    if (cb)
        cb(o, status, o->data);
}

/* one info line per partition moved: operators (and the cluster tests)
 * read which service owns what */
static void
log_part(cc_kafka_owner *o, const char *msg, int32_t part)
{
    if (!o->log)
        return;
    char f[48];
    snprintf(f, sizeof(f), "\"topic\":\"%s\",\"partition\":%d", T_IN,
             (int)part);
    o->log(o->log_data, CC_LOG_INFO, msg, f);
}

static int
want_part(void *data, const char *tenant)
{
    slot *s = data;
    return tenant_part(&s->o->t, tenant) == s->part;
}

static void
feed(slot *s, int64_t offset, const void *key, size_t klen, const void *val,
     size_t vlen)
{
    cc_chat_bus_input(s->chat, CC_BUS_IN, key, klen, val, vlen);
    s->last = offset;
}

static void
opened(cc_chat *chat, int status, void *data)
{
    slot *s = data;
    cc_kafka_owner *o = s->o;
    o->opening--;
    if (status == 0 && s->state == 1) {
        cc_chat_on_log(chat, o->log, o->log_data);
        status = cc_chat_set_bus(chat, CC_BUS_OWNER, s->part, &kafka_ops,
                                 &o->t);
    }
    if (status != 0 || s->state != 1) {
        /* failed, or revoked while opening: the records stay uncommitted */
        if (o->log)
            o->log(o->log_data, CC_LOG_ERROR, "partition engine failed",
                   NULL);
        s->state = 3;
        cc_chat_close(chat, NULL, NULL);
        s->chat = NULL;
        s->state = 0;
    } else {
        s->state = 2;
        log_part(o, "partition owned", s->part);
        while (s->ph) {
            pend *p = s->ph;
            s->ph = p->next;
            feed(s, p->offset, p->buf, p->klen, p->buf + p->klen, p->vlen);
            cc_ctx_free(o->ctx, p, p->size);
        }
        s->pt = NULL;
    }
    if (o->opening == 0 && !o->closing)
        cc_kafka_resume(o->in);
}

static void
drop_pending(slot *s)
{
    while (s->ph) {
        pend *p = s->ph;
        s->ph = p->next;
        cc_ctx_free(s->o->ctx, p, p->size);
    }
    s->pt = NULL;
}

static void
ow_msg(cc_kafka *k, const cc_kafka_msg *m, void *data)
{
    (void)k;
    cc_kafka_owner *o = data;
    if (m->partition < 0 || m->partition >= o->t.nin)
        return;
    slot *s = &o->slots[m->partition];
    if (s->state == 2) {
        feed(s, m->offset, m->key.base, m->key.len, m->value.base,
             m->value.len);
    } else if (s->state == 1) {
        size_t size = sizeof(pend) + m->key.len + m->value.len;
        pend *p = cc_ctx_alloc(o->ctx, size);
        if (!p)
            return;   /* not committed: the next owner reads it */
        p->size = size;
        p->next = NULL;
        p->offset = m->offset;
        p->klen = m->key.len;
        p->vlen = m->value.len;
        if (m->key.len)
            memcpy(p->buf, m->key.base, m->key.len);
        if (m->value.len)
            memcpy(p->buf + m->key.len, m->value.base, m->value.len);
        if (s->pt)
            s->pt->next = p;
        else
            s->ph = p;
        s->pt = p;
    }
}

static void
ctl_msg(cc_kafka *k, const cc_kafka_msg *m, void *data)
{
    (void)k;
    cc_kafka_owner *o = data;
    for (int32_t i = 0; i < o->t.nin; i++)
        if (o->slots[i].state == 2)
            cc_chat_bus_input(o->slots[i].chat, CC_BUS_CONTROL, m->key.base,
                              m->key.len, m->value.base, m->value.len);
}

typedef struct syncop {
    slot *s;
    int64_t next;
    int final;               /* revoke: close the engine after */
} syncop;

static void revoke_step(cc_kafka_owner *o);

static void
engine_closed(void *obj, void *data)
{
    (void)obj;
    slot *s = data;
    cc_kafka_owner *o = s->o;
    s->state = 0;
    s->chat = NULL;
    o->revoking--;
    revoke_step(o);
}

static void
synced(void *data, int status)
{
    syncop *so = data;
    slot *s = so->s;
    cc_kafka_owner *o = s->o;
    s->syncing = 0;
    if (status == 0 && so->next > s->committed) {
        if (cc_kafka_commit(o->in, T_IN, s->part, so->next, NULL, NULL) == 0)
            s->committed = so->next;
    }
    if (so->final)
        cc_chat_close(s->chat, engine_closed, s);
    cc_ctx_free(o->ctx, so, sizeof(*so));
}

/* commit what the store holds, for one slot */
static void
sync_slot(slot *s, int final)
{
    cc_ctx *ctx = s->o->ctx;
    syncop *so = cc_ctx_alloc(ctx, sizeof(*so));
    if (so)
        so->s = s;
    if (!so || cc_chat_bus_sync(s->chat, synced, so) != 0) {
        if (so)
            cc_ctx_free(ctx, so, sizeof(*so));
        if (final)
            cc_chat_close(s->chat, engine_closed, s);
        return;
    }
    so->next = s->last + 1;
    so->final = final;
    s->syncing = 1;
}

static void
revoke_step(cc_kafka_owner *o)
{
    if (o->revoking == 0)
        cc_kafka_rebalance_done(o->in);
}

static void
on_rebalance(cc_kafka *k, int assigned, const cc_kafka_partition *parts,
             size_t n, void *data)
{
    (void)k;
    cc_kafka_owner *o = data;
    if (assigned) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(parts[i].topic, T_IN) != 0 || parts[i].partition < 0 ||
                parts[i].partition >= o->t.nin || o->closing)
                continue;
            slot *s = &o->slots[parts[i].partition];
            if (s->state != 0)
                continue;
            s->last = -1;
            s->committed = -1;
            s->state = 1;
            int rc = cc_chat_open(&s->chat, o->ctx, o->st, o->cfg, want_part,
                                  s, opened, s);
            if (rc != 0) {
                s->state = 0;
                if (o->log)
                    o->log(o->log_data, CC_LOG_ERROR,
                           "cannot open a partition engine", NULL);
                continue;
            }
            if (o->opening++ == 0)
                cc_kafka_pause(o->in);
        }
        return;
    }
    int lost = cc_kafka_assignment_lost(o->in);
    int deferred = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(parts[i].topic, T_IN) != 0 || parts[i].partition < 0 ||
            parts[i].partition >= o->t.nin)
            continue;
        slot *s = &o->slots[parts[i].partition];
        drop_pending(s);
        if (s->state == 1) {
            s->state = 3;   /* opened() closes it */
            continue;
        }
        if (s->state != 2)
            continue;
        s->state = 3;
        log_part(o, lost ? "partition lost" : "partition revoked", s->part);
        if (!deferred) {
            deferred = cc_kafka_rebalance_defer(o->in) == 0;
        }
        o->revoking++;
        if (lost)
            cc_chat_close(s->chat, engine_closed, s);
        else
            sync_slot(s, 1);
    }
    if (!deferred)
        return;
    if (o->revoking == 0)
        cc_kafka_rebalance_done(o->in);
}

static void
ow_tick(uv_timer_t *tm)
{
    cc_kafka_owner *o = tm->data;
    if (o->closing)
        return;
    if (!o->joined) {
        int rc = topo_poll(&o->t);
        if (rc < 0) {
            ow_report(o, rc);
            return;
        }
        if (rc == 0)
            return;
        if (!o->slots) {
            size_t sz = (size_t)o->t.nin * sizeof(*o->slots);
            o->slots = cc_ctx_alloc(o->ctx, sz);
            if (o->slots)
                memset(o->slots, 0, sz);
            if (!o->slots) {
                ow_report(o, CC_ENOMEM);
                return;
            }
            for (int32_t i = 0; i < o->t.nin; i++) {
                o->slots[i].o = o;
                o->slots[i].part = i;
            }
            cc_kafka_partition parts[64];
            size_t n = add_ctl(&o->t, parts, 0, 64);
            rc = cc_kafka_assign(o->ctl, parts, n, CC_KAFKA_OFFSET_END,
                                 ctl_msg, o);
            if (rc != 0) {
                ow_report(o, rc);
            }
            return;
        }
        rc = cc_kafka_assigned(o->ctl);
        if (rc == 0)
            return;
        if (rc < 0) {
            ow_report(o, rc);
            return;
        }
        /* control is live: config changes from now on reach the engines
         * they are about to load */
        const char *topics[1] = {T_IN};
        rc = cc_kafka_subscribe(o->in, topics, 1, ow_msg, on_rebalance, o);
        if (rc != 0) {
            ow_report(o, rc);
            return;
        }
        o->joined = 1;
        uv_timer_set_repeat(&o->timer, COMMIT_MS);
        ow_report(o, 0);
        return;
    }
    for (int32_t i = 0; i < o->t.nin; i++) {
        slot *s = &o->slots[i];
        if (s->state == 2 && !s->syncing && s->last + 1 > s->committed)
            sync_slot(s, 0);
    }
}

int
cc_kafka_owner_new(cc_kafka_owner **out, cc_kafka *in, cc_kafka *ctl,
                   cc_ctx *ctx, cc_store *st, const cc_config *cfg,
                   cc_log_cb log, void *log_data, cc_kafka_role_cb cb,
                   void *data)
{
    cc_kafka_owner *o = out && in && ctl && ctx && st
                            ? cc_ctx_alloc(ctx, sizeof(*o)) : NULL;
    if (o)
        memset(o, 0, sizeof(*o));
    if (!o) {
        if (in)
            cc_kafka_close(in, NULL, NULL);
        if (ctl)
            cc_kafka_close(ctl, NULL, NULL);
        return out && in && ctl && ctx && st ? CC_ENOMEM : CC_EINVAL;
    }
    o->t.k = in;
    o->t.ctx = ctx;
    o->in = in;
    o->ctl = ctl;
    o->ctx = ctx;
    o->st = st;
    o->cfg = cfg;
    o->log = log;
    o->log_data = log_data;
    o->cb = cb;
    o->data = data;
    uv_timer_init(cc_ctx_loop(ctx), &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, ow_tick, 0, POLL_MS);
    *out = o;
    return 0;
}

size_t
cc_kafka_owner_partitions(const cc_kafka_owner *o)
{
    size_t n = 0;
    for (int32_t i = 0; o && o->slots && i < o->t.nin; i++)
        n += o->slots[i].state == 2;
    return n;
}

int
cc_kafka_owner_healthy(const cc_kafka_owner *o)
{
    return o && o->joined && cc_kafka_healthy(o->in) == 1 &&
           cc_kafka_assigned(o->ctl) == 1;
}

static void
ow_ctl_closed(void *obj, void *data)
{
    (void)obj;
    cc_kafka_owner *o = data;
    cc_close_cb cb = o->close_cb;
    void *cd = o->close_data;
    if (o->slots)
        cc_ctx_free(o->ctx, o->slots, (size_t)o->t.nin * sizeof(*o->slots));
    cc_ctx_free(o->ctx, o, sizeof(*o));
    if (cb)
        cb(NULL, cd);
}

static void
ow_in_closed(void *obj, void *data)
{
    (void)obj;
    cc_kafka_owner *o = data;
    /* engines whose revoke never came (e.g. the group was unreachable) */
    for (int32_t i = 0; o->slots && i < o->t.nin; i++) {
        drop_pending(&o->slots[i]);
        if (o->slots[i].chat && o->slots[i].state != 0) {
            cc_chat_close(o->slots[i].chat, NULL, NULL);
            o->slots[i].chat = NULL;
            o->slots[i].state = 0;
        }
    }
    cc_kafka_close(o->ctl, ow_ctl_closed, o);
}

static void
ow_timer_closed(uv_handle_t *h)
{
    cc_kafka_owner *o = h->data;
    /* leaving the group revokes every partition: on_rebalance syncs,
     * commits and closes each engine before the close goes on */
    cc_kafka_close(o->in, ow_in_closed, o);
}

void
cc_kafka_owner_close(cc_kafka_owner *o, cc_close_cb cb, void *data)
{
    if (!o || o->closing)
        return;
    o->closing = 1;
    o->close_cb = cb;
    o->close_data = data;
    uv_close((uv_handle_t *)&o->timer, ow_timer_closed);
}
