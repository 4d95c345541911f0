/*
 * lib/chat/gateway.c - the gateway half of the engine: the /v1/ws
 * endpoint. Authenticates before the upgrade (401/403/429), keeps the
 * heartbeat (idle close at 3 x heartbeat), token expiry (4001) and refresh,
 * rate limits (tenant frames, user sends, 4008 on repeated refusals),
 * decodes frames, and owns each connection's delivery state:
 *
 *  - subscriptions: per session the connection delivers, the highest seq
 *    written and a mode: LIVE (new messages go out as they commit),
 *    READING (a replay read is in flight; live ones are dropped because
 *    the read or a later page includes them), STALLED (the unacked window
 *    is full; the store keeps the rest), WAIT (an accept/transfer history
 *    is being read).
 *  - the unacked window: every msg frame written and not yet acked, each
 *    with its own retransmit deadline (RTO from 2 s doubling to 30 s).
 *
 * Store completions run in commit order, so "a live message that arrives
 * while a read is in flight is in that read" holds (lib/chat/session.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "chat_int.h"

#define EXP_CHECK_MS 500
#define PRUNE_MS 60000
#define IPB_MAX 200000

typedef struct rop {
    cc_chat *c;
    cc__gconn *g;
    cc__session *s;
} rop;

void
cc__gw_ref(cc__gconn *g)
{
    g->refs++;
}

void
cc__gw_unref(cc__gconn *g)
{
    if (--g->refs > 0)
        return;
    cc_chat *c = g->chat;
    if (g->ua)
        cc__free(c->a, g->ua, g->ua_cap * sizeof(*g->ua));
    if (g->subs)
        cc__free(c->a, g->subs, (size_t)g->subs_cap * sizeof(*g->subs));
    if (g->agent)
        cc__agent_unref(g->agent);
    cc__tenant_unref(g->t);
    cc__free(c->a, g, sizeof(*g));
}

/* ---- tokens ---- */

int
cc__chat_verify_token(cc_chat *c, const char *tok, size_t len, cc_claims *cl,
                      cc__tenant **tp, const char **why)
{
    char tid[65];
    *tp = NULL;
    if (len == 0) {
        *why = "missing token";
        return CC_EAUTH;
    }
    if (cc_jwt_peek_tenant(tok, len, tid, sizeof(tid)) < 0) {
        *why = "malformed token";
        return CC_EAUTH;
    }
    cc__tenant *t = cc__tenant_find(c, tid);
    if (!t) {
        *why = "unknown tenant";
        return CC_EAUTH;
    }
    int64_t now = (int64_t)(cc__wall_ms() / 1000u);
    const char *sec[2];
    int n = cc__tenant_secrets(&t->cfg, now, sec);
    int rc = CC_EAUTH;
    for (int i = 0; i < n && rc != 0; i++)
        rc = cc_jwt_verify(tok, len, (const uint8_t *)sec[i], strlen(sec[i]),
                           now, cl);
    if (rc != 0) {
        *why = rc == CC_ENOMEM ? "out of memory"
                               : "invalid, expired or wrongly signed token";
        return rc == CC_ENOMEM ? rc : CC_EAUTH;
    }
    if (cl->role == CC_ROLE_AGENT && !cc__agent_find(t, cl->sub)) {
        *why = "unknown agent";
        return CC_EAUTH;
    }
    *tp = t;
    return 0;
}

/* ---- per-IP upgrade buckets ---- */

static int64_t
ip_take(cc_chat *c, cc__map *m, const char *ip, int per_min)
{
    cc__hnode *n = cc__map_get(m, ip);
    cc__ipb *e;
    uint64_t now = uv_now(c->ctx->loop);
    if (n) {
        e = CC__CONTAINER_OF(n, cc__ipb, hn);
    } else {
        if (m->n >= IPB_MAX)
            return 60000;   /* refuse rather than grow without bound */
        e = cc__calloc(c->a, 1, sizeof(*e));
        if (!e)
            return 1000;
        snprintf(e->ip, sizeof(e->ip), "%s", ip);
        if (cc__map_put(m, &e->hn, e->ip) != 0) {
            cc__free(c->a, e, sizeof(*e));
            return 1000;
        }
    }
    e->at = now;
    return cc_bucket_take(&e->b, per_min / 60.0, per_min, now);
}

static void
prune_ipb(cc_chat *c, cc__map *m, uint64_t now)
{
    size_t it = 0;
    cc__hnode *n = cc__map_next(m, &it, NULL);
    while (n) {
        cc__hnode *next = cc__map_next(m, &it, n);
        cc__ipb *e = CC__CONTAINER_OF(n, cc__ipb, hn);
        if (now - e->at > 120000) {   /* a full minute's refill and more */
            cc__map_del(m, n);
            cc__free(c->a, e, sizeof(*e));
        }
        n = next;
    }
}

int
cc__chat_ip_take(cc_chat *c, cc__map *m, const char *ip, int per_min)
{
    return ip_take(c, m, ip, per_min) > 0;
}

static void
refuse_http(cc_http_req *req, int status, const char *code, const char *msg,
            int64_t retry_ms)
{
    if (retry_ms > 0) {
        char hdr[64], body[256];
        snprintf(hdr, sizeof(hdr), "Retry-After: %lld\r\n",
                 (long long)((retry_ms + 999) / 1000));
        snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\"}",
                 code, msg);
        cc_http_respond(req, status, "application/json", hdr, body,
                        strlen(body));
        return;
    }
    cc_http_respond_error(req, status, code, msg);
}

int
cc__parse_u53(const char *s, uint64_t *out)
{
    if (!*s || strlen(s) > 16)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > CC__NUM_MAX)
        return -1;
    *out = v;
    return 0;
}

static void upgrade(cc_chat *c, cc_http_req *req, int retried);

/* Distributed mode: a tenant or agent created through another gateway a
 * moment ago may not have reached this one yet (chat.control). Such an
 * upgrade waits for one reload of the tenant from the store, then is
 * decided again (cc__bus_reload_tenant bounds how many wait). */
static void
upgrade_retry(cc_chat *c, void *arg)
{
    upgrade(c, arg, 1);
}

int
cc__token_miss(int rc, const char *why, const char *tok, size_t len,
               char tid[65])
{
    return rc == CC_EAUTH && tok &&
           (!strcmp(why, "unknown tenant") || !strcmp(why, "unknown agent")) &&
           cc_jwt_peek_tenant(tok, len, tid, 65) >= 0;
}

static void
on_upgrade(cc_ws_endpoint *ep, cc_http_req *req, void *data)
{
    CC__UNUSED(ep);
    upgrade(data, req, 0);
}

static void
upgrade(cc_chat *c, cc_http_req *req, int retried)
{
    if (c->closing || !c->ready) {
        refuse_http(req, 503, "unavailable", c->ready ? "closing" :
                    c->not_ready, 0);
        return;
    }
    char ip[48] = "";
    cc_http_req_peer(req, ip, sizeof(ip));
    int64_t wait = retried ? 0 : ip_take(c, &c->ipb, ip,
                                         c->ip_upgrades_per_min);
    if (wait > 0) {
        c->m.upgrades_refused++;
        refuse_http(req, 429, "rate_limited", "too many connections from "
                    "this address", wait);
        return;
    }
    char tokbuf[CC__TOKEN_MAX + 1];
    const char *tok = NULL;
    size_t len = 0;
    const char *auth = cc_http_req_header(req, "Authorization");
    if (auth && cc__strncaseeq(auth, "Bearer ", 7)) {
        tok = auth + 7;
        while (*tok == ' ')
            tok++;
        len = strlen(tok);
    } else {
        int n = cc_http_req_query_param(req, "access_token", tokbuf,
                                        sizeof(tokbuf));
        if (n > 0) {
            tok = tokbuf;
            len = (size_t)n;
        }
    }
    cc_claims cl;
    cc__tenant *t = NULL;
    const char *why = "missing token";
    int rc = tok ? cc__chat_verify_token(c, tok, len, &cl, &t, &why)
                 : CC_EAUTH;
    char tid[65];
    if (!retried && cc__token_miss(rc, why, tok, len, tid) &&
        cc__bus_reload_tenant(c, tid, upgrade_retry, req) == 0)
        return;
    if (rc != 0) {
        c->m.upgrades_refused++;
        if (rc == CC_ENOMEM)
            refuse_http(req, 503, "internal", why, 0);
        else
            refuse_http(req, 401, "unauthorized", why, 0);
        return;
    }
    if (cl.role != CC_ROLE_VISITOR && cl.role != CC_ROLE_AGENT) {
        c->m.upgrades_refused++;
        refuse_http(req, 403, "forbidden",
                    "admin tokens cannot open chat connections", 0);
        return;
    }
    wait = ip_take(c, &t->ipb, ip, t->cfg.connections_per_ip_per_min);
    if (wait > 0) {
        c->m.upgrades_refused++;
        refuse_http(req, 429, "rate_limited", "too many connections from "
                    "this address for this tenant", wait);
        return;
    }
    char sess[80] = "", ls[40] = "";
    uint64_t last_seq = 0;
    int has_last = 0;
    if (cc_http_req_query_param(req, "session", sess, sizeof(sess)) < 0 ||
        !cc__valid_id(sess, strlen(sess)))
        sess[0] = '\0';
    int n = cc_http_req_query_param(req, "last_seq", ls, sizeof(ls));
    if (n >= 0) {
        if (cc__parse_u53(ls, &last_seq) != 0) {
            refuse_http(req, 400, "bad_request",
                        "last_seq: must be an integer from 0 to "
                        "9007199254740991", 0);
            return;
        }
        has_last = 1;
    } else if (n == CC_E2BIG) {
        refuse_http(req, 400, "bad_request", "last_seq: too long", 0);
        return;
    }
    cc__gconn *g = cc__calloc(c->a, 1, sizeof(*g));
    if (!g) {
        refuse_http(req, 503, "internal", "out of memory", 0);
        return;
    }
    g->chat = c;
    g->t = t;
    t->refs++;
    g->role = cl.role;
    memcpy(g->user, cl.sub, sizeof(g->user));
    snprintf(g->who, sizeof(g->who), "%s:%s",
             cl.role == CC_ROLE_AGENT ? "agent" : "visitor", cl.sub);
    g->agent = cl.role == CC_ROLE_AGENT ? cc__agent_find(t, cl.sub) : NULL;
    if (g->agent)
        g->agent->refs++;
    g->exp = cl.exp;
    g->refs = 1;
    cc__list_init(&g->ulink);
    cc__list_init(&g->alink);
    cc__list_init(&g->rt_link);
    cc__list_init(&g->link);
    memcpy(g->want_session, sess, sizeof(g->want_session));
    g->want_last_seq = last_seq;
    g->has_last_seq = has_last && sess[0];
    memcpy(g->ip, ip, sizeof(g->ip));
    if (cc_ws_accept(req, g) != 0)
        cc__gw_unref(g);
}

static void
on_open(cc_ws_conn *ws, int status, void *data)
{
    CC__UNUSED(data);
    cc__gconn *g = cc_ws_conn_get_data(ws);
    if (status != 0 || !g)
        return;
    g->ws = ws;
    cc_ws_conn_set_idle_timeout(ws, (uint64_t)g->t->cfg.heartbeat * 3000u);
    cc__gw_opened(g);
}

void
cc__gw_opened(cc__gconn *g)
{
    cc_chat *c = g->chat;
    cc__list_push(&c->conns, &g->link);
    c->nconns_role[g->role == CC_ROLE_AGENT ? 2 : 1]++;
    if (g->t->deleted || (g->agent && g->agent->deleted)) {
        cc__gw_close(g, CC_WS_CLOSE_POLICY, "deleted");
        return;
    }
    cc__chat_log(c, CC_LOG_DEBUG, "connected",
                 "\"tenant\":\"%s\",\"user\":\"%s\",\"ip\":\"%s\"",
                 g->t->cfg.id, g->who, g->ip);
    if (c->bus_role == CC_BUS_GATEWAY)
        cc__bus_conn_open(g);   /* the owner attaches it */
    else
        cc__sess_attach(g);
}

static void
clear_delivery(cc__gconn *g)
{
    for (uint32_t i = 0; i < g->ua_n; i++) {
        cc_ws_msg_release(g->ua[i].m);
        cc__sess_unref(g->ua[i].s);
    }
    g->ua_n = 0;
    if (g->rt_link.next != &g->rt_link)
        cc__list_remove(&g->rt_link);
    for (int i = 0; i < g->nsubs; i++)
        cc__sess_unref(g->subs[i].s);
    g->nsubs = 0;
}

static void
on_close(cc_ws_conn *ws, int status, int code, const char *reason,
         size_t reason_len, void *data)
{
    CC__UNUSED(status);
    CC__UNUSED(reason);
    CC__UNUSED(reason_len);
    CC__UNUSED(data);
    cc__gconn *g = cc_ws_conn_get_data(ws);
    if (!g)
        return;
    if (!g->ws) {   /* never opened */
        cc__gw_unref(g);
        return;
    }
    cc__gw_closed(g, code);
}

void
cc__gw_closed(cc__gconn *g, int code)
{
    cc_chat *c = g->chat;
    c->nconns_role[g->role == CC_ROLE_AGENT ? 2 : 1]--;
    cc__list_remove(&g->link);
    cc__chat_log(c, CC_LOG_DEBUG, "disconnected",
                 "\"tenant\":\"%s\",\"user\":\"%s\",\"code\":%d",
                 g->t->cfg.id, g->who, code);
    if (c->bus_role == CC_BUS_GATEWAY)
        cc__bus_conn_closed(g);
    cc__sess_detach(g);
    g->ws = NULL;
    g->proxy = 0;
    clear_delivery(g);
    cc__gw_unref(g);
}

/* ---- sending ---- */

void
cc__gw_send(cc__gconn *g, cc__jbuf *b)
{
    if (b->oom)
        return;
    if (g->ws)
        cc_ws_send_text(g->ws, b->p, b->len);
    else if (g->proxy)
        cc__bus_out_text(g, b->p, b->len);
}

void
cc__gw_send_msg(cc__gconn *g, cc_ws_msg *m)
{
    if (g->ws) {
        cc_ws_send_msg(g->ws, m);
    } else if (g->proxy) {
        size_t n;
        const uint8_t *p = cc__ws_msg_payload(m, &n);
        cc__bus_out_text(g, (const char *)p, n);
    }
}

static void
send_error(cc__gconn *g, const cc__cframe *f, cc__perr code,
           const char *message, int64_t retry_ms)
{
    cc_chat *c = g->chat;
    if (!cc__gw_live(g))
        return;
    cc__jbuf *b = &c->jb;
    cc__jbuf_reset(b);
    cc__enc_error(b, code, message, f && f->has_ref ? f->ref : NULL,
                  retry_ms);
    c->m.errors_out++;
    cc__gw_send(g, b);
}

void
cc__gw_error(cc__gconn *g, const cc__cframe *f, cc__perr code,
             const char *message)
{
    send_error(g, f, code, message, -1);
}

void
cc__gw_close(cc__gconn *g, int code, const char *reason)
{
    if (g->ws)
        cc_ws_close(g->ws, code, reason, strlen(reason));
    else if (g->proxy)
        cc__bus_out_close(g, code, reason);
}

void
cc__gw_set_idle(cc__gconn *g, uint64_t ms)
{
    if (g->ws)
        cc_ws_conn_set_idle_timeout(g->ws, ms);
    else if (g->proxy)
        cc__bus_out_idle(g, ms);
}

cc_ws_msg *
cc__gw_msg_frame(cc_chat *c, const cc__session *s, const cc__smsg *m)
{
    cc__msgv mv = cc__msgv_of(s->id, m);
    cc__jbuf *b = &c->jb;
    cc__jbuf_reset(b);
    cc__enc_msg(b, &mv);
    cc_ws_msg *out = NULL;
    if (b->oom || cc_ws_msg_new(&out, c->ctx, CC_WS_TEXT, b->p, b->len) != 0)
        return NULL;
    return out;
}

/* ---- subscriptions and the unacked window ---- */

cc__sub *
cc__gw_sub(cc__gconn *g, cc__session *s, int create)
{
    for (int i = 0; i < g->nsubs; i++)
        if (g->subs[i].s == s)
            return &g->subs[i];
    if (!create || !cc__gw_live(g))
        return NULL;
    if (g->nsubs == g->subs_cap) {
        int nc = g->subs_cap ? g->subs_cap * 2 : 2;
        cc__sub *ns = cc__realloc(g->chat->a, g->subs,
                                  (size_t)g->subs_cap * sizeof(*ns),
                                  (size_t)nc * sizeof(*ns));
        if (!ns)
            return NULL;
        g->subs = ns;
        g->subs_cap = nc;
    }
    cc__sub *sb = &g->subs[g->nsubs++];
    sb->s = s;
    sb->last_sent = 0;
    sb->mode = CC__SUB_LIVE;
    cc__sess_ref(s);
    return sb;
}

static void
drop_unacked(cc__gconn *g, cc__session *s, uint64_t upto)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < g->ua_n; i++) {
        cc__unacked *u = &g->ua[i];
        if (u->s == s && u->seq <= upto) {
            cc_ws_msg_release(u->m);
            cc__sess_unref(u->s);
            continue;
        }
        g->ua[j++] = *u;
    }
    g->ua_n = j;
    if (!j && g->rt_link.next != &g->rt_link)
        cc__list_remove(&g->rt_link);
}

void
cc__gw_unsub(cc__gconn *g, cc__session *s)
{
    for (int i = 0; i < g->nsubs; i++)
        if (g->subs[i].s == s) {
            drop_unacked(g, s, UINT64_MAX);
            g->subs[i] = g->subs[--g->nsubs];
            cc__sess_unref(s);
            return;
        }
}

static int
push_unacked(cc__gconn *g, cc__session *s, uint64_t seq, cc_ws_msg *m)
{
    cc_chat *c = g->chat;
    if (g->ua_n == g->ua_cap) {
        uint32_t nc = g->ua_cap ? g->ua_cap * 2 : 8;
        cc__unacked *nu = cc__realloc(c->a, g->ua, g->ua_cap * sizeof(*nu),
                                      nc * sizeof(*nu));
        if (!nu)
            return CC_ENOMEM;
        g->ua = nu;
        g->ua_cap = nc;
    }
    cc__unacked *u = &g->ua[g->ua_n++];
    u->m = m;
    cc_ws_msg_retain(m);
    u->s = s;
    cc__sess_ref(s);
    u->seq = seq;
    u->rto = c->rto_ms;
    u->due = uv_now(c->ctx->loop) + c->rto_ms;
    if (g->rt_link.next == &g->rt_link)
        cc__list_push(&c->rt_conns, &g->rt_link);
    return 0;
}

/* write one stored message to g; 0 when written */
static int
write_msg(cc__gconn *g, cc__sub *sb, uint64_t seq, cc_ws_msg *m)
{
    if ((int)g->ua_n >= g->chat->max_unacked) {
        sb->mode = CC__SUB_STALLED;
        return -1;
    }
    if (push_unacked(g, sb->s, seq, m) != 0)
        return -1;
    cc__gw_send_msg(g, m);
    sb->last_sent = seq;
    g->chat->m.msgs_out++;
    return 0;
}

void
cc__gw_deliver(cc__gconn *g, cc__session *s, uint64_t seq, cc_ws_msg *m)
{
    if (!cc__gw_live(g) || !g->ready)
        return;
    cc__sub *sb = cc__gw_sub(g, s, 0);
    if (!sb || sb->mode != CC__SUB_LIVE || seq <= sb->last_sent)
        return;
    if (seq != sb->last_sent + 1) {
        /* never expected; recover from the store rather than skip */
        cc__gw_replay(g, s, sb->last_sent);
        return;
    }
    write_msg(g, sb, seq, m);
}

static void replay_done(cc__store_res *res, void *data);

static void
replay_read(cc__gconn *g, cc__sub *sb)
{
    cc_chat *c = g->chat;
    int room = c->max_unacked - (int)g->ua_n;
    if (room <= 0) {
        sb->mode = CC__SUB_STALLED;
        return;
    }
    rop *o = cc__calloc(c->a, 1, sizeof(*o));
    if (!o) {
        sb->mode = CC__SUB_STALLED;
        return;
    }
    o->c = c;
    o->g = g;
    o->s = sb->s;
    cc__gw_ref(g);
    cc__sess_ref(sb->s);
    c->pending++;
    sb->mode = CC__SUB_READING;
    int lim = room < CC__REPLAY_PAGE ? room : CC__REPLAY_PAGE;
    if (cc__store_msgs_read(c->st, sb->s->t->cfg.id, sb->s->id, sb->last_sent,
                            lim, 0, replay_done, o) != 0) {
        sb->mode = CC__SUB_STALLED;
        cc__gw_unref(g);
        cc__sess_unref(o->s);
        cc__free(c->a, o, sizeof(*o));
        cc__chat_done_pending(c);
    }
}

void
cc__gw_replay(cc__gconn *g, cc__session *s, uint64_t after)
{
    if (!cc__gw_live(g))
        return;
    cc__sub *sb = cc__gw_sub(g, s, 1);
    if (!sb)
        return;
    if (sb->mode == CC__SUB_READING)
        return;   /* the read in flight pages on to the end */
    if (after > sb->last_sent || sb->mode == CC__SUB_WAIT)
        sb->last_sent = after;
    if (sb->last_sent >= s->last_seq) {
        sb->mode = CC__SUB_LIVE;
        return;
    }
    replay_read(g, sb);
}

static void
replay_done(cc__store_res *res, void *data)
{
    rop *o = data;
    cc_chat *c = o->c;
    cc__gconn *g = o->g;
    cc__sub *sb = cc__gw_live(g) ? cc__gw_sub(g, o->s, 0) : NULL;
    if (!sb || sb->mode != CC__SUB_READING)
        goto out;
    if (res->rc != 0) {
        sb->mode = CC__SUB_STALLED;   /* retried when acks make room */
        goto out;
    }
    for (size_t i = 0; i < res->nmsgs; i++) {
        const cc__smsg *m = &res->msgs[i];
        if (m->seq <= sb->last_sent)
            continue;
        cc_ws_msg *f = cc__gw_msg_frame(c, o->s, m);
        if (!f) {
            sb->mode = CC__SUB_STALLED;
            goto out;
        }
        sb->mode = CC__SUB_LIVE;   /* write_msg may stall it */
        int rc = write_msg(g, sb, m->seq, f);
        cc_ws_msg_release(f);
        if (rc != 0)
            goto out;
        sb->mode = CC__SUB_READING;
    }
    if (res->more)
        replay_read(g, sb);
    else
        sb->mode = CC__SUB_LIVE;
out:
    cc__gw_unref(g);
    cc__sess_unref(o->s);
    cc__free(c->a, o, sizeof(*o));
    cc__chat_done_pending(c);
}

void
cc__gw_acked(cc__gconn *g, cc__session *s, uint64_t seq)
{
    if (!cc__gw_live(g))
        return;
    drop_unacked(g, s, seq);
    /* room again: stalled subscriptions continue from the store */
    if ((int)g->ua_n * 2 > g->chat->max_unacked)
        return;
    for (int i = 0; i < g->nsubs; i++)
        if (g->subs[i].mode == CC__SUB_STALLED)
            replay_read(g, &g->subs[i]);
}

/* ---- frames ---- */

static void
refuse(cc__gconn *g, const cc__cframe *f, int64_t wait)
{
    cc_chat *c = g->chat;
    uint64_t now = uv_now(c->ctx->loop);
    c->m.rate_limited++;
    send_error(g, f, CC__E_RATE_LIMITED, "rate limit exceeded", wait);
    g->refusals[g->nref % CC__REFUSALS_MAX] = now;
    g->nref++;
    if (g->nref >= CC__REFUSALS_MAX &&
        now - g->refusals[g->nref % CC__REFUSALS_MAX] <
            CC__REFUSALS_WINDOW_MS) {
        cc__chat_log(c, CC_LOG_WARN, "rate limit exceeded repeatedly",
                     "\"tenant\":\"%s\",\"user\":\"%s\",\"ip\":\"%s\"",
                     g->t->cfg.id, g->who, g->ip);
        /* sends accepted before still get their `sent`; frames after this
         * are ignored */
        g->close_code = 4008;
        if (!g->inflight)
            cc__gw_close(g, 4008, "rate limit exceeded repeatedly");
    }
}

void
cc__gw_send_done(cc__gconn *g)
{
    if (--g->inflight == 0 && g->close_code == 4008)
        cc__gw_close(g, 4008, "rate limit exceeded repeatedly");
}

static void
do_refresh(cc__gconn *g, cc__cframe *f)
{
    cc_chat *c = g->chat;
    cc_claims cl;
    cc__tenant *t = NULL;
    const char *why = "";
    int rc = cc__chat_verify_token(c, f->token, strlen(f->token), &cl, &t,
                                   &why);
    if (rc != 0 || t != g->t || cl.role != g->role ||
        strcmp(cl.sub, g->user) != 0) {
        cc__gw_error(g, f, CC__E_UNAUTHORIZED,
                     rc != 0 ? why : "token: not for this user");
        return;
    }
    if (cl.exp > g->exp)
        g->exp = cl.exp;
    cc__jbuf *b = &c->jb;
    cc__jbuf_reset(b);
    cc__enc_refreshed(b, (uint64_t)g->exp);
    cc__gw_send(g, b);
}

static void
on_message(cc_ws_conn *ws, int opcode, const uint8_t *msg, size_t len,
           void *data)
{
    CC__UNUSED(data);
    cc__gconn *g = cc_ws_conn_get_data(ws);
    if (!g || !g->ws || opcode != CC_WS_TEXT || g->close_code)
        return;
    cc_chat *c = g->chat;
    cc__tenant *t = g->t;
    c->m.frames_in++;
    uint64_t now = uv_now(c->ctx->loop);
    cc__cframe f;
    const char *emsg = "";
    cc__perr e = cc__proto_decode((const char *)msg, len, c->a, &f, &emsg);
    double trate = t->cfg.tenant_messages_per_s;
    if (e != CC__E_NONE) {
        cc_bucket_take(&t->frames, trate, trate < 1 ? 1 : trate, now);
        cc__gw_error(g, &f, e, emsg);
        cc__cframe_clear(&f);
        return;
    }
    int64_t wait = cc_bucket_take(&t->frames, trate, trate < 1 ? 1 : trate,
                                  now);
    if (wait > 0) {
        refuse(g, &f, wait);
        cc__cframe_clear(&f);
        return;
    }
    if (!g->v && !g->agent) {
        /* closing before it was attached (its tenant was just deleted) */
        cc__cframe_clear(&f);
        return;
    }
    if (f.type == CC__F_SEND) {
        cc_bucket *ub = g->agent ? &g->agent->sends : &g->v->sends;
        wait = cc_bucket_take(ub, t->cfg.messages_per_s, t->cfg.burst, now);
        if (wait > 0) {
            refuse(g, &f, wait);
            cc__cframe_clear(&f);
            return;
        }
    }
    /* a gateway answers ping and refresh itself (it holds the heartbeat
     * and the token); everything else goes to the session's owner */
    if (c->bus_role == CC_BUS_GATEWAY && f.type != CC__F_PING &&
        f.type != CC__F_REFRESH)
        cc__bus_conn_frame(g, &f, (const char *)msg, len);
    else
        cc__gw_dispatch(g, &f);
    cc__cframe_clear(&f);
}

void
cc__gw_dispatch(cc__gconn *g, cc__cframe *f)
{
    switch (f->type) {
    case CC__F_PING: {
        cc__jbuf *b = &g->chat->jb;
        cc__jbuf_reset(b);
        cc__enc_pong(b);
        cc__gw_send(g, b);
        break;
    }
    case CC__F_REFRESH:
        do_refresh(g, f);
        break;
    default:
        cc__sess_frame(g, f);
        break;
    }
}

/* ---- the tick: retransmission, token expiry, pruning ---- */

void
cc__gw_tick(cc_chat *c, uint64_t now)
{
    for (cc__list *l = c->rt_conns.next; l != &c->rt_conns; l = l->next) {
        cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, rt_link);
        if (!cc__gw_live(g))
            continue;
        for (uint32_t i = 0; i < g->ua_n; i++) {
            cc__unacked *u = &g->ua[i];
            if (u->due > now)
                continue;
            cc__gw_send_msg(g, u->m);
            c->m.retransmits++;
            u->rto = u->rto * 2 > c->rto_max_ms ? c->rto_max_ms : u->rto * 2;
            u->due = now + u->rto;
        }
    }
    if (now - c->last_exp_check >= EXP_CHECK_MS) {
        c->last_exp_check = now;
        int64_t secs = (int64_t)(cc__wall_ms() / 1000u);
        cc__list *l = c->conns.next;
        while (l != &c->conns) {
            cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, link);
            l = l->next;
            if (g->ws && g->exp <= secs)
                cc__gw_close(g, 4001, "token expired");
        }
    }
    if (now - c->last_prune >= PRUNE_MS) {
        c->last_prune = now;
        prune_ipb(c, &c->ipb, now);
        prune_ipb(c, &c->loginb, now);
        size_t it = 0;
        for (cc__hnode *n = cc__map_next(&c->tenants, &it, NULL); n;
             n = cc__map_next(&c->tenants, &it, n))
            prune_ipb(c, &CC__CONTAINER_OF(n, cc__tenant, hn)->ipb, now);
    }
}

/* ---- setup ---- */

int
cc__gw_init(cc_chat *c, const cc_config *cfg)
{
    cc_config *ec = NULL;
    int rc = cc_config_new(&ec, c->a);
    if (rc != 0)
        return rc;
    static const cc_option copy[] = {CC_OPT_WS_MAX_MESSAGE,
                                     CC_OPT_OUT_HIGH_WATER, CC_OPT_OUT_MAX,
                                     CC_OPT_CLOSE_TIMEOUT_MS};
    for (size_t i = 0; cfg && i < CC__ARRAY_LEN(copy); i++)
        cc_config_set_int(ec, copy[i], cc_config_get_int(cfg, copy[i]));
    cc_config_set_int(ec, CC_OPT_WS_ALLOW_BINARY, 0);
    cc_config_set_str(ec, CC_OPT_WS_SUBPROTOCOLS, "chatcore.v1");
    cc_config_set_ms(ec, CC_OPT_WS_IDLE_TIMEOUT_MS, 60000);
    rc = cc_ws_endpoint_new(&c->ep, c->ctx, ec);
    cc_config_free(ec);
    if (rc != 0)
        return rc;
    cc_ws_endpoint_on_upgrade(c->ep, on_upgrade, c);
    cc_ws_endpoint_on_open(c->ep, on_open, c);
    cc_ws_endpoint_on_message(c->ep, on_message, c);
    cc_ws_endpoint_on_close(c->ep, on_close, c);
    return 0;
}

void
cc__gw_free(cc_chat *c)
{
    if (c->ep)
        cc_ws_endpoint_free(c->ep);
    c->ep = NULL;
}
