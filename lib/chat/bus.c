/*
 * lib/chat/bus.c - the engine across processes (chatcore/bus.h,
 * docs/distributed.md): records between gateways and owners.
 *
 * Gateway role. Every open connection gets an id (c->bconns). Its
 * opening, each client frame other than ping/refresh (verbatim text) and
 * its end are published on CC_BUS_IN to the partition of its tenant; what
 * comes back on CC_BUS_OUT for this node and boot is written to the
 * connection with that id.
 *
 * Owner role. An "open" record makes a proxy connection (cc__gconn with
 * proxy = 1) keyed "node/boot/conn"; from there the engine treats it as
 * any connection: attach, hello, frames, the unacked window and
 * retransmission, close. Its output (cc__gw_send & co.) becomes CC_BUS_OUT
 * records keyed by the gateway's node. A frame for an unknown proxy (its
 * owner changed, or its open record belonged to an earlier owner) is
 * answered "close 1012": the client reconnects and resumes. Gateways
 * heartbeat on CC_BUS_CONTROL; the proxies of a node silent for
 * node_timeout_ms, or of an earlier boot of a node, are closed.
 *
 * Records for a tenant the engine does not know yet (created a moment
 * ago on another node; the control record is on its way) are held, in
 * order, while that tenant is loaded from the store.
 *
 * Record forms (JSON objects):
 *   IN   {"op":"open","node","boot","conn","tenant","role","user","exp",
 *         "ip","session","last_seq"?}
 *        {"op":"frame","node","boot","conn","tenant","text"}
 *        {"op":"close","node","boot","conn","tenant"}
 *   OUT  {"node","boot","conn","op":"text","owner","text"}
 *        | {…,"op":"close","code","reason"} | {…,"op":"idle","ms"}
 *        ("owner": "node/boot" of the engine that wrote it)
 *   CONTROL {"op":"node","node","boot"} | {"op":"owner","partition","owner"}
 *        | {"op":"tenant"|"tenant_deleted","id"}
 *        | {"op":"agent"|"agent_deleted","tenant","id"}
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "chat_int.h"

#define HELD_MAX 100000      /* records held while tenants load */
#define NODE_SWEEP_MS 1000

typedef struct bnode {
    cc__hnode hn;
    char node[65];
    char boot[17];
    uint64_t seen;           /* loop ms */
} bnode;

/* a record held while a tenant loads */
typedef struct held {
    struct held *next;
    int topic;
    size_t len;
    char val[];
} held;

struct cc__bus_hold {
    held *head, *tail;
    size_t n;
    int loading;             /* loads in flight */
};

/* ---- small helpers ---- */

static int
publish(cc_chat *c, int topic, const char *key, size_t klen, cc__jbuf *b,
        cc_bus_done_cb done, void *arg)
{
    if (b->oom) {
        c->bus_errors++;
        return CC_ENOMEM;
    }
    int rc = c->bus.publish(c->bus_data, topic, key, klen, b->p, b->len,
                            done, arg);
    if (rc != 0)
        c->bus_errors++;
    else
        c->bus_out++;
    return rc;
}

static void
kv_str(cc__jbuf *b, const char *k, const char *v, int first)
{
    if (!first)
        cc__jbuf_raw(b, ",", 1);
    cc__jbuf_str(b, k);
    cc__jbuf_raw(b, ":", 1);
    cc__jbuf_str(b, v);
}

static void
kv_u64(cc__jbuf *b, const char *k, uint64_t v)
{
    cc__jbuf_raw(b, ",", 1);
    cc__jbuf_str(b, k);
    cc__jbuf_raw(b, ":", 1);
    cc__jbuf_u64(b, v);
}

static const char *
jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
jnum(const cJSON *o, const char *k, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v))
        return -1;
    *out = v->valuedouble;
    return 0;
}

static int
id_ok(const char *s)
{
    return s && cc__valid_id(s, strlen(s));
}

/* "tenant:session" (session may be "") */
static size_t
in_key(char out[132], const char *tenant, const char *session)
{
    int n = snprintf(out, 132, "%s:%s", tenant, session ? session : "");
    return n < 0 ? 0 : (size_t)n;
}

static int
owns(cc_chat *c, const char *tid)
{
    return c->bus_role != CC_BUS_OWNER || !c->bus.partition_of ||
           c->bus.partition_of(c->bus_data, tid) == c->bus_part;
}

/* The scratch buffer bus records are encoded in: c->jb may hold the
 * frame being forwarded, so records get one of their own, kept for the
 * engine's life rather than allocated per record. */
static cc__jbuf *
bus_buf(cc_chat *c)
{
    cc__jbuf_reset(&c->bjb);
    return &c->bjb;
}

/* ---- setup ---- */

int
cc__bus_init(cc_chat *c)
{
    cc__map_init(&c->bconns, c->a);
    cc__map_init(&c->nodes, c->a);
    cc__jbuf_init(&c->bjb, c->a);
    char hex[65];
    int rc = cc__secret_gen(hex);
    if (rc != 0)
        return rc;
    memcpy(c->boot, hex, 16);
    c->boot[16] = '\0';
    if (!c->node_timeout_ms)
        c->node_timeout_ms = 10000;
    return 0;
}

static void
hold_clear(cc_chat *c)
{
    if (!c->hold)
        return;
    held *h = c->hold->head;
    while (h) {
        held *n = h->next;
        cc__free(c->a, h, sizeof(*h) + h->len + 1);
        h = n;
    }
    cc__free(c->a, c->hold, sizeof(*c->hold));
    c->hold = NULL;
}

void
cc__bus_free(cc_chat *c)
{
    size_t it = 0;
    cc__hnode *n = cc__map_next(&c->nodes, &it, NULL);
    while (n) {
        cc__hnode *next = cc__map_next(&c->nodes, &it, n);
        cc__map_del(&c->nodes, n);
        cc__free(c->a, CC__CONTAINER_OF(n, bnode, hn), sizeof(bnode));
        n = next;
    }
    cc__map_free(&c->nodes);
    cc__map_free(&c->bconns);
    cc__jbuf_free(&c->bjb);
    hold_clear(c);
}

/* ---- gateway: local connections ---- */

typedef struct gop {
    cc__gconn *g;
} gop;

/* an open or frame record could not be published: the owner never saw
 * it; the client reconnects and re-sends (cid makes that safe) */
static void
conn_pub_done(void *arg, int status)
{
    cc__gconn *g = arg;
    if (status != 0 && g->ws)
        cc__gw_close(g, CC_WS_CLOSE_INTERNAL, "bus unavailable");
    cc__gw_unref(g);
}

static void
conn_head(cc__jbuf *b, cc_chat *c, const cc__gconn *g, const char *op)
{
    cc__jbuf_reset(b);
    cc__jbuf_raw(b, "{", 1);
    kv_str(b, "op", op, 1);
    kv_str(b, "node", c->node, 0);
    kv_str(b, "boot", c->boot, 0);
    kv_u64(b, "conn", g->conn_id);
    kv_str(b, "tenant", g->t->cfg.id, 0);
}

static void
conn_publish(cc__gconn *g, const char *session, cc__jbuf *b, int track)
{
    cc_chat *c = g->chat;
    char key[132];
    size_t kl = in_key(key, g->t->cfg.id, session);
    if (track)
        cc__gw_ref(g);
    int rc = publish(c, CC_BUS_IN, key, kl, b, track ? conn_pub_done : NULL,
                     track ? g : NULL);
    if (rc != 0 && track) {
        cc__gw_unref(g);
        if (g->ws)
            cc__gw_close(g, CC_WS_CLOSE_INTERNAL, "bus unavailable");
    }
}

void
cc__bus_conn_open(cc__gconn *g)
{
    cc_chat *c = g->chat;
    g->conn_id = ++c->next_conn;
    snprintf(g->bkey, sizeof(g->bkey), "%llu", (unsigned long long)g->conn_id);
    if (cc__map_put(&c->bconns, &g->bhn, g->bkey) != 0 ||
        cc__sess_link(g) != 0) {
        g->bkey[0] = '\0';
        cc__gw_close(g, CC_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    cc__jbuf *b = &c->jb;
    conn_head(b, c, g, "open");
    kv_str(b, "role", g->role == CC_ROLE_AGENT ? "agent" : "visitor", 0);
    kv_str(b, "user", g->user, 0);
    kv_u64(b, "exp", g->exp > 0 ? (uint64_t)g->exp : 0);
    kv_str(b, "ip", g->ip, 0);
    kv_str(b, "session", g->want_session, 0);
    if (g->has_last_seq)
        kv_u64(b, "last_seq", g->want_last_seq);
    cc__jbuf_raw(b, "}", 1);
    conn_publish(g, g->want_session, b, 1);
}

void
cc__bus_conn_frame(cc__gconn *g, const cc__cframe *f, const char *text,
                   size_t len)
{
    cc_chat *c = g->chat;
    if (!g->bkey[0])
        return;
    cc__jbuf *b = &c->jb;
    conn_head(b, c, g, "frame");
    cc__jbuf_raw(b, ",\"text\":", 8);
    cc__jbuf_strn(b, text, len);
    cc__jbuf_raw(b, "}", 1);
    conn_publish(g, f->session, b, 1);
}

void
cc__bus_conn_closed(cc__gconn *g)
{
    cc_chat *c = g->chat;
    if (!g->bkey[0])
        return;
    cc__map_del(&c->bconns, &g->bhn);
    cc__jbuf *b = &c->jb;
    conn_head(b, c, g, "close");
    cc__jbuf_raw(b, "}", 1);
    conn_publish(g, g->want_session, b, 0);
    g->bkey[0] = '\0';
}

/* a CC_BUS_OUT record: for one of this node's connections? */
static int
gateway_out(cc_chat *c, const cJSON *o)
{
    const char *node = jstr(o, "node"), *boot = jstr(o, "boot");
    const char *op = jstr(o, "op");
    double conn;
    if (!node || !boot || !op || jnum(o, "conn", &conn) != 0)
        return CC_EPROTO;
    if (strcmp(node, c->node) != 0 || strcmp(boot, c->boot) != 0) {
        c->bus_dropped++;   /* another node's, or an earlier boot's */
        return 0;
    }
    char k[32];
    snprintf(k, sizeof(k), "%llu", (unsigned long long)conn);
    cc__hnode *n = cc__map_get(&c->bconns, k);
    if (!n) {
        c->bus_dropped++;   /* closed meanwhile */
        return 0;
    }
    cc__gconn *g = CC__CONTAINER_OF(n, cc__gconn, bhn);
    if (!g->ws)
        return 0;
    const char *owner = jstr(o, "owner");
    if (owner && strlen(owner) < sizeof(g->owner))
        memcpy(g->owner, owner, strlen(owner) + 1);
    if (strcmp(op, "text") == 0) {
        const char *text = jstr(o, "text");
        if (!text)
            return CC_EPROTO;
        cc_ws_send_text(g->ws, text, strlen(text));
    } else if (strcmp(op, "close") == 0) {
        double code;
        const char *reason = jstr(o, "reason");
        if (jnum(o, "code", &code) != 0)
            return CC_EPROTO;
        cc_ws_close(g->ws, (int)code, reason ? reason : "",
                    reason ? strlen(reason) : 0);
    } else if (strcmp(op, "idle") == 0) {
        double ms;
        if (jnum(o, "ms", &ms) != 0 || ms < 0)
            return CC_EPROTO;
        cc_ws_conn_set_idle_timeout(g->ws, (uint64_t)ms);
    } else {
        return CC_EPROTO;
    }
    return 0;
}

/* a new owner announced itself: connections of its partition that
 * another engine attached are gone there; have their clients reconnect
 * (and resume). Connections not attached yet are left alone: their open
 * record reaches the new owner. */
static void
gateway_owner(cc_chat *c, int32_t part, const char *owner)
{
    if (!c->bus.partition_of)
        return;
    cc__list *l = c->conns.next;
    while (l != &c->conns) {
        cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, link);
        l = l->next;
        if (g->ws && g->owner[0] && strcmp(g->owner, owner) != 0 &&
            c->bus.partition_of(c->bus_data, g->t->cfg.id) == part)
            cc__gw_close(g, 1012, "session owner moved, reconnect");
    }
}

/* ---- owner: proxies ---- */

static void
owner_id(const cc_chat *c, char out[84])
{
    snprintf(out, 84, "%s/%s", c->node, c->boot);
}

static void
out_head(cc_chat *c, cc__jbuf *b, const char *node, const char *boot,
         uint64_t conn, const char *op)
{
    char me[84];
    owner_id(c, me);
    cc__jbuf_reset(b);
    cc__jbuf_raw(b, "{", 1);
    kv_str(b, "node", node, 1);
    kv_str(b, "boot", boot, 0);
    kv_u64(b, "conn", conn);
    kv_str(b, "op", op, 0);
    kv_str(b, "owner", me, 0);
}

static void
out_publish(cc_chat *c, const char *node, cc__jbuf *b)
{
    publish(c, CC_BUS_OUT, node, strlen(node), b, NULL, NULL);
}

void
cc__bus_out_text(cc__gconn *g, const char *p, size_t n)
{
    cc_chat *c = g->chat;
    cc__jbuf *b = bus_buf(c);
    out_head(c, b, g->node, g->boot, g->conn_id, "text");
    cc__jbuf_raw(b, ",\"text\":", 8);
    cc__jbuf_strn(b, p, n);
    cc__jbuf_raw(b, "}", 1);
    out_publish(c, g->node, b);
}

static void
out_close_raw(cc_chat *c, const char *node, const char *boot, uint64_t conn,
              int code, const char *reason)
{
    cc__jbuf *b = bus_buf(c);
    out_head(c, b, node, boot, conn, "close");
    kv_u64(b, "code", (uint64_t)code);
    kv_str(b, "reason", reason, 0);
    cc__jbuf_raw(b, "}", 1);
    out_publish(c, node, b);
}

void
cc__bus_out_close(cc__gconn *g, int code, const char *reason)
{
    out_close_raw(g->chat, g->node, g->boot, g->conn_id, code, reason);
}

void
cc__bus_out_idle(cc__gconn *g, uint64_t ms)
{
    cc_chat *c = g->chat;
    cc__jbuf *b = bus_buf(c);
    out_head(c, b, g->node, g->boot, g->conn_id, "idle");
    kv_u64(b, "ms", ms);
    cc__jbuf_raw(b, "}", 1);
    out_publish(c, g->node, b);
}

static void
proxy_key(char out[112], const char *node, const char *boot, uint64_t conn)
{
    snprintf(out, 112, "%s/%s/%llu", node, boot, (unsigned long long)conn);
}

/* the proxy ends as a closed socket would */
static void
proxy_end(cc__gconn *g, int code)
{
    cc_chat *c = g->chat;
    cc__map_del(&c->bconns, &g->bhn);
    cc__gw_closed(g, code);
}

static void
node_seen(cc_chat *c, const char *node, const char *boot)
{
    cc__hnode *n = cc__map_get(&c->nodes, node);
    bnode *e;
    if (n) {
        e = CC__CONTAINER_OF(n, bnode, hn);
    } else {
        e = cc__calloc(c->a, 1, sizeof(*e));
        if (!e)
            return;
        snprintf(e->node, sizeof(e->node), "%s", node);
        if (cc__map_put(&c->nodes, &e->hn, e->node) != 0) {
            cc__free(c->a, e, sizeof(*e));
            return;
        }
    }
    e->seen = uv_now(c->ctx->loop);
    if (strcmp(e->boot, boot) == 0)
        return;
    /* the node restarted: every connection of its earlier process is gone
     * (a new boot is taken as the node's current one; records of an older
     * process arriving late only make it flip back, which closes nothing
     * that is still open there) */
    char old[17];
    memcpy(old, e->boot, sizeof(old));
    snprintf(e->boot, sizeof(e->boot), "%s", boot);
    if (!old[0])
        return;
    size_t it = 0;
    cc__hnode *h = cc__map_next(&c->bconns, &it, NULL);
    while (h) {
        cc__hnode *next = cc__map_next(&c->bconns, &it, h);
        cc__gconn *g = CC__CONTAINER_OF(h, cc__gconn, bhn);
        if (strcmp(g->node, node) == 0 && strcmp(g->boot, old) == 0)
            proxy_end(g, 1006);
        h = next;
    }
}

enum { DONE = 0, NEED_TENANT = 1 };

static int
owner_open(cc_chat *c, const cJSON *o, const char *node, const char *boot,
           uint64_t conn, cc__tenant *t)
{
    const char *role = jstr(o, "role"), *user = jstr(o, "user");
    const char *ip = jstr(o, "ip"), *sess = jstr(o, "session");
    double exp = 0, ls;
    jnum(o, "exp", &exp);
    if (!role || !id_ok(user))
        return CC_EPROTO;
    int r = strcmp(role, "agent") == 0     ? CC_ROLE_AGENT
            : strcmp(role, "visitor") == 0 ? CC_ROLE_VISITOR
                                           : 0;
    if (!r)
        return CC_EPROTO;
    cc__agent *ag = r == CC_ROLE_AGENT ? cc__agent_find(t, user) : NULL;
    if (r == CC_ROLE_AGENT && !ag)
        return NEED_TENANT;   /* created a moment ago: reload the tenant */
    char key[112];
    proxy_key(key, node, boot, conn);
    if (cc__map_get(&c->bconns, key))
        return DONE;          /* delivered twice (after a rebalance) */
    node_seen(c, node, boot);
    cc__gconn *g = cc__calloc(c->a, 1, sizeof(*g));
    if (!g)
        return CC_ENOMEM;
    g->chat = c;
    g->t = t;
    t->refs++;
    g->role = r;
    snprintf(g->user, sizeof(g->user), "%s", user);
    snprintf(g->who, sizeof(g->who), "%s:%s",
             r == CC_ROLE_AGENT ? "agent" : "visitor", user);
    g->agent = ag;
    if (ag)
        ag->refs++;
    g->exp = (int64_t)exp;
    g->refs = 1;
    cc__list_init(&g->ulink);
    cc__list_init(&g->alink);
    cc__list_init(&g->rt_link);
    cc__list_init(&g->link);
    if (id_ok(sess))
        snprintf(g->want_session, sizeof(g->want_session), "%s", sess);
    if (g->want_session[0] && jnum(o, "last_seq", &ls) == 0 && ls >= 0 &&
        ls <= (double)CC__NUM_MAX) {
        g->want_last_seq = (uint64_t)ls;
        g->has_last_seq = 1;
    }
    snprintf(g->ip, sizeof(g->ip), "%s", ip ? ip : "");
    snprintf(g->node, sizeof(g->node), "%s", node);
    snprintf(g->boot, sizeof(g->boot), "%s", boot);
    g->conn_id = conn;
    memcpy(g->bkey, key, sizeof(g->bkey));
    if (cc__map_put(&c->bconns, &g->bhn, g->bkey) != 0) {
        cc__gw_unref(g);
        return CC_ENOMEM;
    }
    g->proxy = 1;
    cc__gw_opened(g);
    return DONE;
}

static int
owner_in(cc_chat *c, const cJSON *o)
{
    const char *op = jstr(o, "op"), *node = jstr(o, "node");
    const char *boot = jstr(o, "boot"), *tid = jstr(o, "tenant");
    double conn;
    if (!op || !id_ok(node) || !boot || strlen(boot) > 16 || !id_ok(tid) ||
        jnum(o, "conn", &conn) != 0 || conn < 0)
        return CC_EPROTO;
    uint64_t cid = (uint64_t)conn;
    cc__tenant *t = cc__tenant_find(c, tid);
    if (strcmp(op, "open") == 0) {
        if (!t)
            return NEED_TENANT;
        return owner_open(c, o, node, boot, cid, t);
    }
    char key[112];
    proxy_key(key, node, boot, cid);
    cc__hnode *n = cc__map_get(&c->bconns, key);
    cc__gconn *g = n ? CC__CONTAINER_OF(n, cc__gconn, bhn) : NULL;
    if (strcmp(op, "close") == 0) {
        if (g)
            proxy_end(g, 1000);
        return DONE;
    }
    if (strcmp(op, "frame") != 0)
        return CC_EPROTO;
    const char *text = jstr(o, "text");
    if (!text)
        return CC_EPROTO;
    if (!g) {
        /* attached to another owner, or its open was lost: start over */
        out_close_raw(c, node, boot, cid, 1012,
                      "session owner moved, reconnect");
        return DONE;
    }
    node_seen(c, node, boot);
    c->m.frames_in++;
    cc__cframe f;
    const char *emsg = "";
    cc__perr e = cc__proto_decode(text, strlen(text), c->a, &f, &emsg);
    if (e != CC__E_NONE)
        cc__gw_error(g, &f, e, emsg);   /* the gateway checked: not seen */
    else
        cc__gw_dispatch(g, &f);
    cc__cframe_clear(&f);
    return DONE;
}

/* ---- config changes ---- */

typedef struct cfgop {
    cc_chat *c;
    char kind[16];
    char tid[65];
    char aid[65];
} cfgop;

static void
cfg_published(cc__store_res *res, void *data)
{
    cfgop *o = data;
    cc_chat *c = o->c;
    if (res->rc == 0 && c->bus.publish) {
        cc__jbuf *b = bus_buf(c);
        cc__jbuf_raw(b, "{", 1);
        kv_str(b, "op", o->kind, 1);
        if (o->aid[0]) {
            kv_str(b, "tenant", o->tid, 0);
            kv_str(b, "id", o->aid, 0);
        } else {
            kv_str(b, "id", o->tid, 0);
        }
        cc__jbuf_raw(b, "}", 1);
        publish(c, CC_BUS_CONTROL, o->tid, strlen(o->tid), b, NULL, NULL);
    }
    cc__free(c->a, o, sizeof(*o));
    cc__chat_done_pending(c);
}

void
cc__bus_config_changed(cc_chat *c, const char *kind, const char *tid,
                       const char *aid)
{
    if (!c->bus_role || c->remote_apply)
        return;
    cfgop *o = cc__calloc(c->a, 1, sizeof(*o));
    if (!o)
        return;
    o->c = c;
    snprintf(o->kind, sizeof(o->kind), "%s", kind);
    snprintf(o->tid, sizeof(o->tid), "%s", tid);
    snprintf(o->aid, sizeof(o->aid), "%s", aid ? aid : "");
    /* published once the write before it is in the store, so whoever
     * reloads on hearing it reads the new state */
    if (cc__store_barrier(c->st, cfg_published, o) != 0) {
        cc__free(c->a, o, sizeof(*o));
        return;
    }
    c->pending++;
}

/* ---- loading a tenant on demand (and held records) ---- */

typedef struct tload {
    cc_chat *c;
    char tid[65];
    int found;
    int counted;             /* held records wait for this load */
    int miss;                /* asked for by a lookup that missed */
    void (*then)(cc_chat *c, void *arg);
    void *arg;
} tload;

static int
tl_want(void *data, const char *id)
{
    return strcmp(((tload *)data)->tid, id) == 0;
}

static void
tl_tenant(void *data, const char *id, const char *json)
{
    tload *l = data;
    cc__tenant_cfg cfg;
    if (cc__tenant_from_storage(id, json, &cfg) != 0)
        return;
    int created;
    l->c->remote_apply = 1;
    if (cc__chat_tenant_apply(l->c, &cfg, &created, NULL, NULL) == 0)
        l->found = 1;
    l->c->remote_apply = 0;
}

static void
tl_agent(void *data, const char *tid, const char *id, const char *json)
{
    tload *l = data;
    cc__tenant *t = cc__tenant_find(l->c, tid);
    cc__agent_cfg cfg;
    if (!t || cc__agent_from_storage(tid, id, json, &cfg) != 0)
        return;
    int created;
    l->c->remote_apply = 1;
    cc__chat_agent_apply(l->c, t, &cfg, &created, NULL, NULL);
    l->c->remote_apply = 0;
}

static void drain_held(cc_chat *c);

static void
tl_done(cc__store_res *res, void *data)
{
    tload *l = data;
    cc_chat *c = l->c;
    if (res->rc != 0)
        cc__chat_log(c, CC_LOG_ERROR, "tenant reload failed",
                     "\"tenant\":\"%s\",\"error\":\"%s\"", l->tid,
                     cc_strerror(res->rc));
    /* only the loads started for held records count: a load started by a
     * control record may finish first and must not release them early */
    if (c->hold && l->counted)
        c->hold->loading--;
    if (l->miss)
        c->miss_reloads--;
    void (*then)(cc_chat *, void *) = l->then;
    void *arg = l->arg;
    cc__free(c->a, l, sizeof(*l));
    if (then)
        then(c, arg);
    cc__chat_done_pending(c);
    if (!c->closing && !then)
        drain_held(c);
}

/* (re)load tenant tid and its agents from the store (not its sessions:
 * an owner loaded those with the tenant's partition, and a gateway has
 * none) */
static tload *
reload(cc_chat *c, const char *tid, void (*then)(cc_chat *, void *),
       void *arg)
{
    tload *l = cc__calloc(c->a, 1, sizeof(*l));
    if (!l)
        return NULL;
    l->c = c;
    l->then = then;
    l->arg = arg;
    snprintf(l->tid, sizeof(l->tid), "%s", tid);
    cc__store_loader ld = {.tenant = tl_tenant, .agent = tl_agent,
                           .want_tenant = tl_want, .data = l};
    if (cc__store_load_async(c->st, &ld, tl_done, l) != 0) {
        cc__free(c->a, l, sizeof(*l));
        return NULL;
    }
    c->pending++;
    return l;
}

/* a load for the records just held (counted: they wait for it) */
static int
tenant_reload_held(cc_chat *c, const char *tid)
{
    tload *l = reload(c, tid, NULL, NULL);
    if (!l)
        return CC_ENOMEM;
    l->counted = 1;
    c->hold->loading++;
    return 0;
}

/* a load announced on chat.control (nothing waits for it) */
static int
tenant_reload(cc_chat *c, const char *tid)
{
    return reload(c, tid, NULL, NULL) ? 0 : CC_ENOMEM;
}

/* At most MISS_RELOADS wait at once, so requests naming tenants that
 * exist nowhere cannot make a gateway read the store without bound. */
#define MISS_RELOADS 32

int
cc__bus_reload_tenant(cc_chat *c, const char *tid,
                      void (*then)(cc_chat *c, void *arg), void *arg)
{
    if (c->bus_role != CC_BUS_GATEWAY || c->closing || !then)
        return CC_ESTATE;
    if (c->miss_reloads >= MISS_RELOADS)
        return CC_EBUSY;
    tload *l = reload(c, tid, then, arg);
    if (!l)
        return CC_ENOMEM;
    l->miss = 1;
    c->miss_reloads++;
    return 0;
}

static int
hold(cc_chat *c, int topic, const void *val, size_t len)
{
    if (!c->hold) {
        c->hold = cc__calloc(c->a, 1, sizeof(*c->hold));
        if (!c->hold)
            return CC_ENOMEM;
    }
    if (c->hold->n >= HELD_MAX)
        return CC_ENOBUFS;
    held *h = cc__alloc(c->a, sizeof(*h) + len + 1);
    if (!h)
        return CC_ENOMEM;
    h->next = NULL;
    h->topic = topic;
    h->len = len;
    memcpy(h->val, val, len);
    h->val[len] = '\0';
    if (c->hold->tail)
        c->hold->tail->next = h;
    else
        c->hold->head = h;
    c->hold->tail = h;
    c->hold->n++;
    return 0;
}

static int input(cc_chat *c, int topic, const char *val, size_t len,
                 int replay);

static void
drain_held(cc_chat *c)
{
    while (c->hold && c->hold->head && !c->hold->loading) {
        held *h = c->hold->head;
        c->hold->head = h->next;
        if (!h->next)
            c->hold->tail = NULL;
        c->hold->n--;
        input(c, h->topic, h->val, h->len, 1);
        cc__free(c->a, h, sizeof(*h) + h->len + 1);
    }
}

/* ---- control ---- */

static void
control(cc_chat *c, const cJSON *o)
{
    const char *op = jstr(o, "op");
    if (!op)
        return;
    if (strcmp(op, "node") == 0) {
        const char *node = jstr(o, "node"), *boot = jstr(o, "boot");
        if (c->bus_role == CC_BUS_OWNER && id_ok(node) && boot &&
            strlen(boot) <= 16)
            node_seen(c, node, boot);
        return;
    }
    if (strcmp(op, "owner") == 0) {
        double p;
        const char *owner = jstr(o, "owner");
        if (c->bus_role == CC_BUS_GATEWAY && owner &&
            jnum(o, "partition", &p) == 0)
            gateway_owner(c, (int32_t)p, owner);
        return;
    }
    int agent = strncmp(op, "agent", 5) == 0;
    const char *tid = jstr(o, agent ? "tenant" : "id");
    const char *aid = agent ? jstr(o, "id") : NULL;
    if (!id_ok(tid) || (agent && !id_ok(aid)) || !owns(c, tid))
        return;
    cc__tenant *t = cc__tenant_find(c, tid);
    c->remote_apply = 1;
    if (strcmp(op, "tenant_deleted") == 0) {
        if (t)
            cc__chat_tenant_delete(c, t);
    } else if (strcmp(op, "agent_deleted") == 0) {
        cc__agent *ag = t ? cc__agent_find(t, aid) : NULL;
        if (ag)
            cc__chat_agent_delete(c, ag);
    } else if (strcmp(op, "tenant") == 0 || strcmp(op, "agent") == 0) {
        tenant_reload(c, tid);
    }
    c->remote_apply = 0;
}

/* ---- input ---- */

static int
input(cc_chat *c, int topic, const char *val, size_t len, int replay)
{
    if (!replay && c->hold && c->hold->head)
        return hold(c, topic, val, len);   /* keep the order */
    cJSON *o = cJSON_ParseWithLength(val, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        c->bus_dropped++;
        return CC_EPROTO;
    }
    c->bus_in++;
    int rc = 0;
    if (topic == CC_BUS_CONTROL) {
        control(c, o);
    } else if (topic == CC_BUS_OUT && c->bus_role == CC_BUS_GATEWAY) {
        rc = gateway_out(c, o);
    } else if (topic == CC_BUS_IN && c->bus_role == CC_BUS_OWNER) {
        rc = owner_in(c, o);
        if (rc == NEED_TENANT) {
            const char *tid = jstr(o, "tenant");
            rc = 0;
            if (replay) {
                /* loaded, still unknown: the tenant or agent is gone */
                double conn;
                const char *node = jstr(o, "node"), *boot = jstr(o, "boot");
                if (jnum(o, "conn", &conn) == 0 && node && boot)
                    out_close_raw(c, node, boot, (uint64_t)conn,
                                  CC_WS_CLOSE_POLICY, "deleted");
            } else if ((rc = hold(c, topic, val, len)) == 0) {
                rc = tenant_reload_held(c, tid);
            }
        }
    } else {
        c->bus_dropped++;
    }
    if (rc < 0)
        c->bus_errors++;
    cJSON_Delete(o);
    return rc < 0 ? rc : 0;
}

/* The engine closes (revoked, lost, or the service stops): its proxies
 * end as if their sockets closed, with no record published. The gateways'
 * connections stay open; the next owner's announcement moves them. */
void
cc__bus_closing(cc_chat *c)
{
    if (c->bus_role != CC_BUS_OWNER)
        return;
    size_t it = 0;
    cc__hnode *h = cc__map_next(&c->bconns, &it, NULL);
    while (h) {
        cc__hnode *next = cc__map_next(&c->bconns, &it, h);
        proxy_end(CC__CONTAINER_OF(h, cc__gconn, bhn), 1001);
        h = next;
    }
}

/* ---- tick: silent nodes ---- */

void
cc__bus_tick(cc_chat *c, uint64_t now)
{
    if (c->bus_role != CC_BUS_OWNER || now - c->last_nodes < NODE_SWEEP_MS)
        return;
    c->last_nodes = now;
    size_t it = 0;
    cc__hnode *n = cc__map_next(&c->nodes, &it, NULL);
    while (n) {
        cc__hnode *next = cc__map_next(&c->nodes, &it, n);
        bnode *e = CC__CONTAINER_OF(n, bnode, hn);
        if (now - e->seen > c->node_timeout_ms) {
            size_t j = 0;
            cc__hnode *h = cc__map_next(&c->bconns, &j, NULL);
            while (h) {
                cc__hnode *hn = cc__map_next(&c->bconns, &j, h);
                cc__gconn *g = CC__CONTAINER_OF(h, cc__gconn, bhn);
                if (strcmp(g->node, e->node) == 0)
                    proxy_end(g, 1006);
                h = hn;
            }
            cc__chat_log(c, CC_LOG_WARN, "gateway silent, its connections "
                         "dropped", "\"node\":\"%s\"", e->node);
            cc__map_del(&c->nodes, n);
            cc__free(c->a, e, sizeof(*e));
        }
        n = next;
    }
}

/* ---- public ---- */

int
cc_chat_set_bus(cc_chat *c, int role, int32_t partition,
                const cc_bus_ops *ops, void *data)
{
    if (!c || !ops || ops->size < offsetof(cc_bus_ops, publish) +
                                      sizeof(ops->publish) ||
        !ops->publish ||
        (role != CC_BUS_GATEWAY && role != CC_BUS_OWNER) ||
        (role == CC_BUS_OWNER && partition < 0))
        return CC_EINVAL;
    if (c->bus_role || c->srv || c->closing)
        return CC_ESTATE;
    memset(&c->bus, 0, sizeof(c->bus));
    memcpy(&c->bus, ops, ops->size < sizeof(c->bus) ? ops->size
                                                    : sizeof(c->bus));
    c->bus.size = sizeof(c->bus);
    c->bus_data = data;
    c->bus_role = role;
    c->bus_part = role == CC_BUS_OWNER ? partition : -1;
    if (role == CC_BUS_OWNER) {
        /* gateways close what the previous owner held (gateway_owner) */
        cc__jbuf *b = bus_buf(c);
        cc__jbuf_raw(b, "{", 1);
        kv_str(b, "op", "owner", 1);
        char me[84];
        owner_id(c, me);
        kv_u64(b, "partition", (uint64_t)partition);
        kv_str(b, "owner", me, 0);
        cc__jbuf_raw(b, "}", 1);
        publish(c, CC_BUS_CONTROL, c->node, strlen(c->node), b, NULL, NULL);
    }
    return 0;
}

int
cc_chat_bus_input(cc_chat *c, int topic, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
    CC__UNUSED(key);
    CC__UNUSED(klen);
    if (!c || !c->bus_role || c->closing)
        return CC_ESTATE;
    if (!val)
        return CC_EPROTO;
    return input(c, topic, val, vlen, 0);
}

typedef struct syncop {
    cc_chat *c;
    cc_bus_done_cb cb;
    void *data;
} syncop;

static void
sync_done(cc__store_res *res, void *data)
{
    syncop *o = data;
    cc_chat *c = o->c;
    /* records still held have not taken effect */
    int rc = res->rc ? res->rc
                     : c->hold && c->hold->head ? CC_EBUSY : 0;
    o->cb(o->data, rc);
    cc__free(c->a, o, sizeof(*o));
    cc__chat_done_pending(c);
}

int
cc_chat_bus_sync(cc_chat *c, cc_bus_done_cb cb, void *data)
{
    if (!c || !cb)
        return CC_EINVAL;
    if (c->bus_role != CC_BUS_OWNER || c->closing)
        return CC_ESTATE;
    syncop *o = cc__calloc(c->a, 1, sizeof(*o));
    if (!o)
        return CC_ENOMEM;
    o->c = c;
    o->cb = cb;
    o->data = data;
    int rc = cc__store_barrier(c->st, sync_done, o);
    if (rc != 0) {
        cc__free(c->a, o, sizeof(*o));
        return rc;
    }
    c->pending++;
    return 0;
}

int
cc_chat_bus_heartbeat(cc_chat *c)
{
    if (!c || c->bus_role != CC_BUS_GATEWAY || c->closing)
        return CC_ESTATE;
    cc__jbuf *b = bus_buf(c);
    cc__jbuf_raw(b, "{", 1);
    kv_str(b, "op", "node", 1);
    kv_str(b, "node", c->node, 0);
    kv_str(b, "boot", c->boot, 0);
    cc__jbuf_raw(b, "}", 1);
    int rc = publish(c, CC_BUS_CONTROL, c->node, strlen(c->node), b, NULL,
                     NULL);
    return rc;
}
