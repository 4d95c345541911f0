/*
 * lib/chat/chat.c - the chat engine's model and lifetime: tenants, agents
 * and visitors in memory (loaded from the store at startup), the admin key,
 * the 100 ms tick that drives retransmission, session expiry, cursor
 * writes and token expiry, and the public cc_chat_* calls.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "chat_int.h"

uint64_t
cc__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
cc__chat_log(cc_chat *c, int level, const char *msg, const char *fmt, ...)
{
    if (!c->log)
        return;
    char fields[1024];
    fields[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fields, sizeof(fields), fmt, ap);
        va_end(ap);
    }
    c->log(c->log_data, level, msg, fmt ? fields : NULL);
}

int
cc__hist_bucket(double seconds)
{
    int i = 0;
    while (i < CC__STORE_HIST_N - 1 && seconds > cc__store_hist_bounds[i])
        i++;
    return i;
}

int
cc__new_id(char *out, const char *prefix)
{
    uint8_t r[10];
    if (cc__random(r, sizeof(r)) != 0)
        return CC_EIO;
    static const char hx[] = "0123456789abcdef";
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    for (size_t i = 0; i < sizeof(r); i++) {
        out[n++] = hx[r[i] >> 4];
        out[n++] = hx[r[i] & 15];
    }
    out[n] = '\0';
    return 0;
}

/* ---- model ---- */

cc__tenant *
cc__tenant_find(cc_chat *c, const char *id)
{
    cc__hnode *n = cc__map_get(&c->tenants, id);
    return n ? CC__CONTAINER_OF(n, cc__tenant, hn) : NULL;
}

cc__agent *
cc__agent_find(cc__tenant *t, const char *id)
{
    cc__hnode *n = cc__map_get(&t->agents, id);
    return n ? CC__CONTAINER_OF(n, cc__agent, hn) : NULL;
}

cc__visitor *
cc__visitor_get(cc__tenant *t, const char *id, int create)
{
    cc__hnode *n = cc__map_get(&t->visitors, id);
    if (n || !create)
        return n ? CC__CONTAINER_OF(n, cc__visitor, hn) : NULL;
    cc__visitor *v = cc__calloc(t->chat->a, 1, sizeof(*v));
    if (!v)
        return NULL;
    snprintf(v->id, sizeof(v->id), "%s", id);
    v->t = t;
    cc__list_init(&v->conns);
    if (cc__map_put(&t->visitors, &v->hn, v->id) != 0) {
        cc__free(t->chat->a, v, sizeof(*v));
        return NULL;
    }
    return v;
}

/* A visitor record lives while it has a connection or an open session. */
void
cc__visitor_maybe_free(cc__visitor *v)
{
    if (v->nconns || v->live || v->refs)
        return;
    if (!v->t->deleted)   /* a deleted tenant's map is not kept up */
        cc__map_del(&v->t->visitors, &v->hn);
    cc__free(v->t->chat->a, v, sizeof(*v));
}

static cc__tenant *
tenant_new(cc_chat *c, const cc__tenant_cfg *cfg)
{
    cc__tenant *t = cc__calloc(c->a, 1, sizeof(*t));
    if (!t)
        return NULL;
    t->cfg = *cfg;
    t->chat = c;
    t->refs = 1;
    cc__map_init(&t->agents, c->a);
    cc__map_init(&t->sessions, c->a);
    cc__map_init(&t->visitors, c->a);
    cc__map_init(&t->ipb, c->a);
    cc__list_init(&t->queue);
    cc__list_init(&t->agent_conns);
    if (cc__map_put(&c->tenants, &t->hn, t->cfg.id) != 0) {
        cc__free(c->a, t, sizeof(*t));
        return NULL;
    }
    return t;
}

static void
free_ipbs(cc_chat *c, cc__map *m)
{
    size_t it = 0;
    cc__hnode *n = cc__map_next(m, &it, NULL);
    while (n) {
        cc__hnode *next = cc__map_next(m, &it, n);
        cc__free(c->a, CC__CONTAINER_OF(n, cc__ipb, hn), sizeof(cc__ipb));
        n = next;
    }
    cc__map_free(m);
}

void
cc__tenant_unref(cc__tenant *t)
{
    if (--t->refs > 0)
        return;
    cc_chat *c = t->chat;
    cc__map_free(&t->agents);
    cc__map_free(&t->sessions);
    cc__map_free(&t->visitors);
    free_ipbs(c, &t->ipb);
    cc__free(c->a, t, sizeof(*t));
}

void
cc__agent_unref(cc__agent *ag)
{
    if (--ag->refs > 0)
        return;
    cc__tenant *t = ag->t;
    cc__free(t->chat->a, ag, sizeof(*ag));
    cc__tenant_unref(t);
}

static cc__agent *
agent_new(cc__tenant *t, const cc__agent_cfg *cfg)
{
    cc__agent *ag = cc__calloc(t->chat->a, 1, sizeof(*ag));
    if (!ag)
        return NULL;
    ag->cfg = *cfg;
    ag->t = t;
    ag->refs = 1;
    cc__list_init(&ag->conns);
    if (cc__map_put(&t->agents, &ag->hn, ag->cfg.id) != 0) {
        cc__free(t->chat->a, ag, sizeof(*ag));
        return NULL;
    }
    t->refs++;
    return ag;
}

static void
store_done(cc__store_res *res, void *data)
{
    cc_chat *c = data;
    if (res->rc != 0)
        cc__chat_log(c, CC_LOG_ERROR, "store write failed",
                     "\"error\":\"%s\"", cc_strerror(res->rc));
    cc__chat_done_pending(c);
}

int
cc__chat_tenant_apply(cc_chat *c, const cc__tenant_cfg *cfg, int *created,
                      cc__store_cb cb, void *data)
{
    cc__tenant *t = cc__tenant_find(c, cfg->id);
    *created = t == NULL;
    if (!t) {
        t = tenant_new(c, cfg);
        if (!t)
            return CC_ENOMEM;
    } else {
        t->cfg = *cfg;
    }
    if (c->remote_apply) {   /* stored by the node that changed it */
        cc__sess_tenant_changed(t);
        return 0;
    }
    cc__jbuf_reset(&c->jb);
    cc__tenant_to_storage(&c->jb, &t->cfg);
    if (c->jb.oom)
        return CC_ENOMEM;
    int rc = cc__store_tenant_put(c->st, t->cfg.id, c->jb.p,
                                  cb ? cb : store_done, cb ? data : c);
    if (rc == 0 && !cb)
        c->pending++;   /* with cb, the caller's op holds the count */
    if (rc == 0)
        cc__bus_config_changed(c, "tenant", t->cfg.id, NULL);
    cc__sess_tenant_changed(t);
    return rc;
}

int
cc__chat_agent_apply(cc_chat *c, cc__tenant *t, const cc__agent_cfg *cfg,
                     int *created, cc__store_cb cb, void *data)
{
    cc__agent *ag = cc__agent_find(t, cfg->id);
    *created = ag == NULL;
    if (!ag) {
        ag = agent_new(t, cfg);
        if (!ag)
            return CC_ENOMEM;
        ag->idle_since = uv_now(c->ctx->loop);
    } else {
        ag->cfg = *cfg;
    }
    if (c->remote_apply)
        return 0;
    cc__jbuf_reset(&c->jb);
    cc__agent_to_storage(&c->jb, &ag->cfg);
    if (c->jb.oom)
        return CC_ENOMEM;
    int rc = cc__store_agent_put(c->st, t->cfg.id, ag->cfg.id, c->jb.p,
                                 cb ? cb : store_done, cb ? data : c);
    if (rc == 0 && !cb)
        c->pending++;   /* with cb, the caller's op holds the count */
    if (rc == 0)
        cc__bus_config_changed(c, "agent", t->cfg.id, ag->cfg.id);
    return rc;
}

void
cc__chat_agent_delete(cc_chat *c, cc__agent *ag)
{
    cc__tenant *t = ag->t;
    ag->deleted = 1;
    cc__map_del(&t->agents, &ag->hn);
    /* its connections close (1008) and its sessions go back to the queue */
    cc__list *l = ag->conns.next;
    while (l != &ag->conns) {
        cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, ulink);
        l = l->next;
        cc__gw_close(g, CC_WS_CLOSE_POLICY, "agent deleted");
    }
    cc__sess_agent_gone(ag);
    if (!c->remote_apply &&
        cc__store_agent_del(c->st, t->cfg.id, ag->cfg.id, store_done, c) == 0) {
        c->pending++;
        cc__bus_config_changed(c, "agent_deleted", t->cfg.id, ag->cfg.id);
    }
    cc__agent_unref(ag);
}

void
cc__chat_tenant_delete(cc_chat *c, cc__tenant *t)
{
    t->deleted = 1;
    cc__map_del(&c->tenants, &t->hn);
    /* connections first: their close callbacks detach from the model */
    size_t it = 0;
    for (cc__hnode *n = cc__map_next(&t->visitors, &it, NULL); n;
         n = cc__map_next(&t->visitors, &it, n)) {
        cc__visitor *v = CC__CONTAINER_OF(n, cc__visitor, hn);
        for (cc__list *l = v->conns.next; l != &v->conns; l = l->next)
            cc__gw_close(CC__CONTAINER_OF(l, cc__gconn, ulink),
                         CC_WS_CLOSE_POLICY, "tenant deleted");
    }
    for (cc__list *l = t->agent_conns.next; l != &t->agent_conns;
         l = l->next)
        cc__gw_close(CC__CONTAINER_OF(l, cc__gconn, alink),
                     CC_WS_CLOSE_POLICY, "tenant deleted");
    /* sessions: drop from memory (the store forgets them below) */
    it = 0;
    cc__hnode *n = cc__map_next(&t->sessions, &it, NULL);
    while (n) {
        cc__hnode *next = cc__map_next(&t->sessions, &it, n);
        cc__session *s = CC__CONTAINER_OF(n, cc__session, hn);
        cc__map_del(&t->sessions, &s->hn);
        if (s->state == CC__S_QUEUED) {
            cc__list_remove(&s->qlink);
            t->nqueue--;
        }
        if (s->gone_link.next != &s->gone_link)
            cc__list_remove(&s->gone_link);
        if (s->dirty_link.next != &s->dirty_link)
            cc__list_remove(&s->dirty_link);
        s->state = CC__S_CLOSED;
        if (s->v && s->v->live == s)
            s->v->live = NULL;
        cc__sess_unref(s);
        n = next;
    }
    it = 0;
    n = cc__map_next(&t->agents, &it, NULL);
    while (n) {
        cc__hnode *next = cc__map_next(&t->agents, &it, n);
        cc__agent *ag = CC__CONTAINER_OF(n, cc__agent, hn);
        ag->deleted = 1;
        cc__map_del(&t->agents, &ag->hn);
        cc__agent_unref(ag);
        n = next;
    }
    /* visitors go with their last session or connection
     * (cc__visitor_maybe_free); the map is no longer kept up */
    if (!c->remote_apply &&
        cc__store_tenant_del(c->st, t->cfg.id, store_done, c) == 0) {
        c->pending++;
        cc__bus_config_changed(c, "tenant_deleted", t->cfg.id, NULL);
    }
    cc__tenant_unref(t);
}

/* ---- loading ---- */

typedef struct load_ctx {
    cc_chat *c;
    int rc;
    char stored_key[80];
} load_ctx;

static void
load_meta(void *data, const char *key, const char *value)
{
    load_ctx *l = data;
    if (strcmp(key, "admin_key") == 0)
        snprintf(l->stored_key, sizeof(l->stored_key), "%s", value);
}

static void
load_tenant(void *data, const char *id, const char *json)
{
    load_ctx *l = data;
    cc__tenant_cfg cfg;
    if (cc__tenant_from_storage(id, json, &cfg) != 0) {
        cc__chat_log(l->c, CC_LOG_ERROR, "stored tenant unreadable",
                     "\"tenant\":\"%s\"", id);
        return;
    }
    if (!tenant_new(l->c, &cfg))
        l->rc = CC_ENOMEM;
}

static void
load_agent(void *data, const char *tid, const char *id, const char *json)
{
    load_ctx *l = data;
    cc__tenant *t = cc__tenant_find(l->c, tid);
    cc__agent_cfg cfg;
    if (!t || cc__agent_from_storage(tid, id, json, &cfg) != 0)
        return;
    cc__agent *ag = agent_new(t, &cfg);
    if (!ag)
        l->rc = CC_ENOMEM;
    else
        ag->idle_since = uv_now(l->c->ctx->loop);
}

static void
load_session(void *data, const cc__sess_rec *r)
{
    load_ctx *l = data;
    int rc = cc__sess_load(l->c, r);
    if (rc == CC_ENOMEM)
        l->rc = rc;
}

static void
load_cursor(void *data, const char *tid, const char *sid, const char *user,
            uint64_t acked, uint64_t read)
{
    load_ctx *l = data;
    cc__sess_load_cursor(l->c, tid, sid, user, acked, read);
}

/* ---- tick ---- */

static void
on_tick(uv_timer_t *tm)
{
    cc_chat *c = tm->data;
    uint64_t now = uv_now(c->ctx->loop);
    if (c->last_tick) {
        /* loop lag: how late this 100 ms tick ran */
        uint64_t late = now - c->last_tick > 100 ? now - c->last_tick - 100 : 0;
        double s = (double)late / 1000.0;
        c->m.lag_hist[cc__hist_bucket(s)]++;
        c->m.lag_sum += s;
    }
    c->last_tick = now;
    cc__gw_tick(c, now);
    cc__bus_tick(c, now);
    if (now - c->last_slow >= 200) {
        c->last_slow = now;
        cc__sess_tick(c, now);
    }
    /* cursors only decide what is replayed after a restart: writing each
     * a second after it moved bounds that to a second's redelivery
     * (at-least-once) and keeps them from doubling the store's writes */
    cc__sess_flush_cursors(c, now, 0);
}

/* Free every tenant, agent, visitor and session in memory (the store is
 * left alone). No connection may remain. */
static void
free_model(cc_chat *c)
{
    size_t it = 0;
    cc__hnode *n = cc__map_next(&c->tenants, &it, NULL);
    while (n) {
        cc__hnode *next = cc__map_next(&c->tenants, &it, n);
        cc__tenant *t = CC__CONTAINER_OF(n, cc__tenant, hn);
        size_t j = 0;
        cc__hnode *m = cc__map_next(&t->sessions, &j, NULL);
        while (m) {
            cc__hnode *mn = cc__map_next(&t->sessions, &j, m);
            cc__session *s = CC__CONTAINER_OF(m, cc__session, hn);
            cc__map_del(&t->sessions, m);
            if (s->gone_link.next != &s->gone_link)
                cc__list_remove(&s->gone_link);
            if (s->dirty_link.next != &s->dirty_link)
                cc__list_remove(&s->dirty_link);
            s->state = CC__S_CLOSED;
            cc__sess_unref(s);
            m = mn;
        }
        j = 0;
        m = cc__map_next(&t->visitors, &j, NULL);
        while (m) {
            cc__hnode *mn = cc__map_next(&t->visitors, &j, m);
            cc__map_del(&t->visitors, m);
            cc__free(c->a, CC__CONTAINER_OF(m, cc__visitor, hn),
                     sizeof(cc__visitor));
            m = mn;
        }
        j = 0;
        m = cc__map_next(&t->agents, &j, NULL);
        while (m) {
            cc__hnode *mn = cc__map_next(&t->agents, &j, m);
            cc__map_del(&t->agents, m);
            cc__agent_unref(CC__CONTAINER_OF(m, cc__agent, hn));
            m = mn;
        }
        cc__map_del(&c->tenants, n);
        cc__tenant_unref(t);
        n = next;
    }
    cc__map_free(&c->tenants);
}

/* ---- public ---- */

/* Everything but the model: the model comes from the store after. */
static int
chat_alloc(cc_chat **out, cc_ctx *ctx, cc_store *st, const cc_config *cfg)
{
    *out = NULL;
    cc_chat *c = cc__calloc(&ctx->a, 1, sizeof(*c));
    if (!c)
        return CC_ENOMEM;
    c->ctx = ctx;
    c->a = &ctx->a;
    c->st = st;
    c->ready = 1;
    cc__map_init(&c->tenants, c->a);
    cc__map_init(&c->ipb, c->a);
    cc__map_init(&c->loginb, c->a);
    cc__list_init(&c->gone);
    cc__list_init(&c->dirty);
    cc__list_init(&c->rt_conns);
    cc__list_init(&c->conns);
    cc__jbuf_init(&c->jb, c->a);
    const char *node = cfg ? cc_config_get_str(cfg, CC_OPT_CHAT_NODE) : NULL;
    snprintf(c->node, sizeof(c->node), "%s", node && *node ? node : "node-1");
    if (!cc__valid_id(c->node, strlen(c->node)))
        snprintf(c->node, sizeof(c->node), "node-1");
    const char *key = cfg ? cc_config_get_str(cfg, CC_OPT_CHAT_ADMIN_KEY)
                          : NULL;
    if (key && *key)
        snprintf(c->admin_key, sizeof(c->admin_key), "%s", key);
    c->ip_upgrades_per_min =
        (int)cc_config_get_int(cfg, CC_OPT_CHAT_IP_UPGRADES_PER_MIN);
    c->logins_per_min = (int)cc_config_get_int(cfg, CC_OPT_CHAT_LOGINS_PER_MIN);
    c->max_unacked = (int)cc_config_get_int(cfg, CC_OPT_CHAT_MAX_UNACKED);
    c->rto_ms = (uint32_t)cc_config_get_int(cfg, CC_OPT_CHAT_RTO_MS);
    c->rto_max_ms = (uint32_t)cc_config_get_int(cfg, CC_OPT_CHAT_RTO_MAX_MS);
    if (c->rto_max_ms < c->rto_ms)
        c->rto_max_ms = c->rto_ms;
    c->node_timeout_ms =
        (uint64_t)cc_config_get_int(cfg, CC_OPT_CHAT_NODE_TIMEOUT_MS);
    uv_timer_init(ctx->loop, &c->tick);
    c->tick.data = c;
    int rc = cc_nonce_cache_new(&c->nonces, c->a, 100000, 600);
    if (rc == 0)
        rc = cc__bus_init(c);
    if (rc == 0)
        rc = cc__gw_init(c, cfg);
    *out = c;
    return rc;
}

/* Free an engine whose tick timer never started. The timer handle must
 * still be closed: the caller runs the loop (cc_chat_new's caller does,
 * as for every handle). */
static void
alloc_closed(uv_handle_t *h)
{
    cc_chat *c = h->data;
    cc__free(c->a, c, sizeof(*c));
}

static void
chat_discard(cc_chat *c)
{
    free_model(c);
    cc__gw_free(c);
    cc__bus_free(c);
    if (c->nonces)
        cc_nonce_cache_free(c->nonces);
    cc__jbuf_free(&c->jb);
    uv_close((uv_handle_t *)&c->tick, alloc_closed);
}

/* The model is loaded: the admin key, then serve. */
static int
chat_loaded(cc_chat *c, const load_ctx *l)
{
    cc__sess_load_done(c);
    int rc = 0;
    if (c->admin_key[0]) {
        /* configured */
    } else if (l->stored_key[0]) {
        memcpy(c->admin_key, l->stored_key, sizeof(c->admin_key));
    } else {
        char hex[65];
        rc = cc__secret_gen(hex);
        if (rc == 0) {
            snprintf(c->admin_key, sizeof(c->admin_key), "ck_%.40s", hex);
            c->admin_generated = 1;
            rc = cc__store_meta_put(c->st, "admin_key", c->admin_key,
                                    store_done, c);
            if (rc == 0)
                c->pending++;
        }
    }
    if (rc == 0)
        uv_timer_start(&c->tick, on_tick, 100, 100);
    return rc;
}

int
cc_chat_new(cc_chat **out, cc_ctx *ctx, cc_store *st, const cc_config *cfg)
{
    *out = NULL;
    if (!ctx || !st)
        return CC_EINVAL;
    cc_chat *c;
    int rc = chat_alloc(&c, ctx, st, cfg);
    if (rc == CC_ENOMEM && !c)
        return rc;
    load_ctx l = {.c = c};
    cc__store_loader ld = {.meta = load_meta, .tenant = load_tenant,
                           .agent = load_agent, .session = load_session,
                           .cursor = load_cursor, .data = &l};
    if (rc == 0) {
        rc = cc__store_load(st, &ld);
        if (rc == 0)
            rc = l.rc;
    }
    if (rc == 0)
        rc = chat_loaded(c, &l);
    if (rc == 0) {
        *out = c;
        return 0;
    }
    chat_discard(c);
    return rc == CC_ENOMEM || rc == CC_ENOTSUP ? rc : CC_EBACKEND;
}

typedef struct open_ctx {
    load_ctx l;
    int (*want)(void *, const char *);
    void *want_data;
} open_ctx;

static int
open_want(void *data, const char *id)
{
    open_ctx *o = data;
    return o->want(o->want_data, id);
}

static void
open_done(cc__store_res *res, void *data)
{
    open_ctx *o = data;
    cc_chat *c = o->l.c;
    int rc = res->rc ? res->rc : o->l.rc;
    if (rc == 0 && c->closing)
        rc = CC_ECANCELED;
    if (rc == 0)
        rc = chat_loaded(c, &o->l);
    cc_chat_open_cb cb = c->open_cb;
    void *cd = c->open_data;
    cc__free(c->a, o, sizeof(*o));
    c->pending++;   /* keep c while the callback runs (it may close) */
    if (cb)
        cb(c, rc, cd);
    cc__chat_done_pending(c);   /* the load's */
    cc__chat_done_pending(c);
}

int
cc_chat_open(cc_chat **out, cc_ctx *ctx, cc_store *st, const cc_config *cfg,
             int (*want_tenant)(void *want_data, const char *id),
             void *want_data, cc_chat_open_cb cb, void *data)
{
    if (!out || !ctx || !st || !cb)
        return CC_EINVAL;
    *out = NULL;
    cc_chat *c;
    int rc = chat_alloc(&c, ctx, st, cfg);
    if (rc == CC_ENOMEM && !c)
        return rc;
    open_ctx *o = rc == 0 ? cc__calloc(c->a, 1, sizeof(*o)) : NULL;
    if (rc == 0 && !o)
        rc = CC_ENOMEM;
    if (rc == 0) {
        o->l.c = c;
        o->want = want_tenant;
        o->want_data = want_data;
        cc__store_loader ld = {.meta = load_meta, .tenant = load_tenant,
                               .agent = load_agent, .session = load_session,
                               .cursor = load_cursor,
                               .want_tenant = want_tenant ? open_want : NULL,
                               .data = o};
        c->open_cb = cb;
        c->open_data = data;
        rc = cc__store_load_async(st, &ld, open_done, o);
        if (rc != 0)
            cc__free(c->a, o, sizeof(*o));
    }
    if (rc != 0) {
        chat_discard(c);
        return rc;
    }
    c->pending++;
    *out = c;
    return 0;
}

void
cc_chat_on_log(cc_chat *c, cc_log_cb cb, void *data)
{
    c->log = cb;
    c->log_data = data;
}

int
cc_chat_mount(cc_chat *c, cc_server *srv)
{
    if (c->srv)
        return CC_ESTATE;
    int rc = cc__api_mount(c, srv);
    if (rc == 0)
        c->srv = srv;
    return rc;
}

const char *
cc_chat_admin_key(const cc_chat *c, int *generated)
{
    if (generated)
        *generated = c->admin_generated;
    return c->admin_key;
}

cc_ctx *
cc_chat_ctx(const cc_chat *c)
{
    return c->ctx;
}

const char *
cc_chat_node(const cc_chat *c)
{
    return c->node;
}

size_t
cc_chat_tenant_count(const cc_chat *c)
{
    return c->tenants.n;
}

int
cc_chat_tenant_put(cc_chat *c, const char *id, const char *json,
                   char *secret_out, size_t cap, const char **err)
{
    const char *e = "";
    if (err)
        *err = e;
    if (!id || !json || !cc__valid_id(id, strlen(id))) {
        if (err)
            *err = "id: not a valid id";
        return CC_EINVAL;
    }
    cc__tenant_cfg cfg;
    cc__tenant *old = cc__tenant_find(c, id);
    int rc = cc__tenant_replace(id, old ? &old->cfg : NULL, json,
                                strlen(json), &cfg, &e);
    if (rc != 0) {
        if (err)
            *err = e;
        return rc;
    }
    int created;
    rc = cc__chat_tenant_apply(c, &cfg, &created, NULL, NULL);
    if (rc == 0 && secret_out && cap)
        snprintf(secret_out, cap, "%s", cfg.secret);
    return rc;
}

int
cc_chat_agent_put(cc_chat *c, const char *tid, const char *aid,
                  const char *json, const char **err)
{
    if (err)
        *err = "";
    cc__tenant *t = tid ? cc__tenant_find(c, tid) : NULL;
    if (!t)
        return CC_ENOENT;
    if (!aid || !json || !cc__valid_id(aid, strlen(aid))) {
        if (err)
            *err = "id: not a valid id";
        return CC_EINVAL;
    }
    cc__agent_cfg cfg;
    char pw[CC__PW_MAX + 1];
    const char *e = "";
    int rc = cc__agent_from_put(tid, aid, json, strlen(json), &cfg, pw, &e);
    if (rc != 0) {
        if (err)
            *err = e;
        return rc;
    }
    rc = cc__pw_hash(pw, CC__PW_ITER, cfg.pwhash);
    memset(pw, 0, sizeof(pw));
    if (rc != 0)
        return rc;
    int created;
    return cc__chat_agent_apply(c, t, &cfg, &created, NULL, NULL);
}

void
cc_chat_set_ready(cc_chat *c, int ready, const char *reason)
{
    c->ready = ready;
    snprintf(c->not_ready, sizeof(c->not_ready), "%s",
             reason ? reason : "not ready");
}

int
cc_chat_metrics(cc_chat *c, cc_buf *out)
{
    cc__jbuf b;
    cc__jbuf_init(&b, c->a);
    int rc = cc__metrics_render(c, &b);
    if (rc != 0 || b.oom) {
        cc__jbuf_free(&b);
        return CC_ENOMEM;
    }
    /* hand over exactly len + 1 bytes so the caller can free them */
    char *p = cc__alloc(c->a, b.len + 1);
    if (!p) {
        cc__jbuf_free(&b);
        return CC_ENOMEM;
    }
    memcpy(p, b.p, b.len + 1);
    out->base = (const uint8_t *)p;
    out->len = b.len;
    cc__jbuf_free(&b);
    return 0;
}

static void
finish_close(cc_chat *c)
{
    cc_close_cb cb = c->close_cb;
    void *data = c->close_data;
    free_model(c);
    cc__gw_free(c);
    cc__bus_free(c);
    cc__api_free(c);
    free_ipbs(c, &c->ipb);
    free_ipbs(c, &c->loginb);
    if (c->nonces)
        cc_nonce_cache_free(c->nonces);
    cc__jbuf_free(&c->jb);
    cc__free(c->a, c, sizeof(*c));
    if (cb)
        cb(NULL, data);
}

static void
on_tick_closed(uv_handle_t *h)
{
    cc_chat *c = h->data;
    c->closing = 2;
    if (c->pending == 0)
        finish_close(c);
}

void
cc__chat_done_pending(cc_chat *c)
{
    if (--c->pending == 0 && c->closing == 2)
        finish_close(c);
}

void
cc_chat_close(cc_chat *c, cc_close_cb cb, void *data)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_cb = cb;
    c->close_data = data;
    cc__bus_closing(c);
    cc__sess_flush_cursors(c, 0, 1);
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}
