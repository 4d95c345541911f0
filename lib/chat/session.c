/*
 * lib/chat/session.c - the session half of the engine: the state machine
 * of PROTOCOL.md §1 (new -> queued -> active -> closed, and offline), the
 * tenant waiting queues, the accept claim, auto-assignment, transfer,
 * close, session_ttl, cursors and the frames that act on sessions.
 *
 * Rules kept everywhere here:
 *  - The loop thread is the single writer of every session's in-memory
 *    state, so a claim is atomic: the first `accept` processed changes the
 *    state, every later one sees it changed and loses.
 *  - Persist, then announce: a change is applied in memory (so later
 *    frames see it), written to the store, and told to clients from the
 *    store's completion, which runs after the commit. Store completions
 *    run in queue order, so announcements keep the order of the changes.
 *  - Sequence numbers come from the store (cc__store_msg_append), which
 *    appends under one writer thread; `sent` and `msg` follow the commit.
 *  - A session found only in the store (closed) is handled by a read: the
 *    "cold path" below.
 */
#include <stdio.h>

#include <cjson/cJSON.h>

#include "chat_int.h"

enum {
    OP_BARRIER_HELLO = 1, OP_PERSIST, OP_SEND, OP_ACCEPT_HIST,
    OP_XFER_HIST, OP_SYNC, OP_COLD
};

/* What a persist completion announces. */
enum {
    AN_NONE = 0, AN_QUEUED, AN_ACCEPTED, AN_TRANSFER, AN_CLOSE, AN_STARTED,
    AN_OFFLINE, AN_ONLINE
};

typedef struct sop {
    cc_chat *c;
    cc__session *s;
    cc__gconn *g;
    cc__agent *ag;      /* accept/transfer: the agent that gets the session */
    int what, announce;
    int by_system;
    cc__cframe f;       /* the frame; body_json owned here, token NULL */
    char who[80];       /* the sender, for OP_SEND */
    int resumed;
    uint64_t t0;        /* uv_hrtime at the frame */
    char from_agent[65];
    int was_queued;
} sop;

static void queue_changed(cc__tenant *t);
static void try_assign(cc__tenant *t);
static void assign(cc__session *s, cc__agent *ag, cc__gconn *by);
static void mark_dirty(cc__session *s, int which);

void
cc__sess_ref(cc__session *s)
{
    s->refs++;
}

void
cc__sess_unref(cc__session *s)
{
    if (--s->refs > 0)
        return;
    cc__tenant *t = s->t;
    const cc_allocator *a = t->chat->a;
    if (s->v) {
        s->v->refs--;
        cc__visitor_maybe_free(s->v);
    }
    cc__free_str(a, s->preview);
    cc__free_str(a, s->close_reason);
    cc__free_str(a, s->closed_by);
    cc__free(a, s, sizeof(*s));
    cc__tenant_unref(t);
}

static const char *const state_names[] = {
    NULL, "new", "queued", "active", "offline", "closed"
};

const char *
cc__sstate_name(int st)
{
    return st >= CC__S_NEW && st <= CC__S_CLOSED ? state_names[st] : "closed";
}

int
cc__sstate_parse(const char *s)
{
    for (int i = CC__S_NEW; i <= CC__S_CLOSED; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return 0;
}

static cc__session *
sess_new(cc__tenant *t, const char *id, cc__visitor *v)
{
    cc_chat *c = t->chat;
    cc__session *s = cc__calloc(c->a, 1, sizeof(*s));
    if (!s)
        return NULL;
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->t = t;
    s->v = v;
    s->refs = 1;
    cc__list_init(&s->qlink);
    cc__list_init(&s->gone_link);
    cc__list_init(&s->dirty_link);
    if (cc__map_put(&t->sessions, &s->hn, s->id) != 0) {
        cc__free(c->a, s, sizeof(*s));
        return NULL;
    }
    t->refs++;
    if (v)
        v->refs++;
    return s;
}

void
cc__sess_fill_rec(const cc__session *s, cc__sess_rec *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->tenant, sizeof(r->tenant), "%s", s->t->cfg.id);
    snprintf(r->id, sizeof(r->id), "%s", s->id);
    snprintf(r->visitor, sizeof(r->visitor), "%s", s->v ? s->v->id : "");
    snprintf(r->agent, sizeof(r->agent), "%s",
             s->agent ? s->agent->cfg.id : "");
    r->state = s->state;
    r->prev_state = s->prev_state;
    r->created = s->created;
    r->updated = s->updated;
    r->since = s->since;
    r->last_seq = s->last_seq;
    snprintf(r->preview, sizeof(r->preview), "%s",
             s->preview ? s->preview : "");
    snprintf(r->close_reason, sizeof(r->close_reason), "%s",
             s->close_reason ? s->close_reason : "");
    snprintf(r->closed_by, sizeof(r->closed_by), "%s",
             s->closed_by ? s->closed_by : "");
}

/* ---- queue ---- */

static void
queue_insert(cc__session *s)
{
    cc__tenant *t = s->t;
    /* ordered by the time the session first queued; a returning session
     * gets its old place back */
    cc__list *l = t->queue.prev;
    while (l != &t->queue) {
        cc__session *o = CC__CONTAINER_OF(l, cc__session, qlink);
        if (o->since <= s->since)
            break;
        l = l->prev;
    }
    /* insert after l */
    s->qlink.prev = l;
    s->qlink.next = l->next;
    l->next->prev = &s->qlink;
    l->next = &s->qlink;
    t->nqueue++;
    s->told_pos = 0;
}

static void
queue_remove(cc__session *s)
{
    if (s->qlink.next == &s->qlink)
        return;
    cc__list_remove(&s->qlink);
    s->t->nqueue--;
    s->told_pos = 0;
}

/* ---- sending to users ---- */

static void
send_to_list(cc__list *head, int agent_list, cc__jbuf *b,
             const cc__gconn *skip)
{
    if (b->oom || cc__list_empty(head))
        return;
    cc_ws_msg *m = NULL;
    for (cc__list *l = head->next; l != head; l = l->next) {
        cc__gconn *g = agent_list ? CC__CONTAINER_OF(l, cc__gconn, alink)
                                  : CC__CONTAINER_OF(l, cc__gconn, ulink);
        if (g == skip || !cc__gw_live(g) || !g->ready)
            continue;
        if (!m && cc_ws_msg_new(&m, g->chat->ctx, CC_WS_TEXT, b->p,
                                b->len) != 0)
            return;
        cc__gw_send_msg(g, m);
    }
    if (m)
        cc_ws_msg_release(m);
}

static void
to_visitor(cc__session *s, cc__jbuf *b)
{
    if (s->v)
        send_to_list(&s->v->conns, 0, b, NULL);
}

static void
to_agent(cc__agent *ag, cc__jbuf *b)
{
    if (ag)
        send_to_list(&ag->conns, 0, b, NULL);
}

/* The oldest waiting sessions (docs/protocol.md rule 48), for `queue`
 * and the agent's `hello`; items borrow from the sessions. */
static size_t
queue_items(cc__tenant *t, cc__queue_item items[CC__QUEUE_SNAPSHOT_MAX])
{
    size_t n = 0;
    for (cc__list *l = t->queue.next;
         l != &t->queue && n < CC__QUEUE_SNAPSHOT_MAX; l = l->next) {
        cc__session *s = CC__CONTAINER_OF(l, cc__session, qlink);
        items[n].session = s->id;
        items[n].visitor = s->v ? s->v->id : "";
        items[n].since = s->since;
        items[n].preview = s->preview;
        n++;
    }
    return n;
}

static void
queue_frame(cc__tenant *t, cc__jbuf *b)
{
    cc__queue_item items[CC__QUEUE_SNAPSHOT_MAX];
    cc__enc_queue(b, items, queue_items(t, items));
}

/* Tell every agent the queue and every waiting visitor its position. Runs
 * only when no state change of the tenant is still being written, so it
 * announces committed state only. */
static void
queue_changed(cc__tenant *t)
{
    cc_chat *c = t->chat;
    cc__jbuf *b = &c->jb;
    cc__jbuf_reset(b);
    queue_frame(t, b);
    send_to_list(&t->agent_conns, 1, b, NULL);
    int pos = 0;
    for (cc__list *l = t->queue.next; l != &t->queue; l = l->next) {
        cc__session *s = CC__CONTAINER_OF(l, cc__session, qlink);
        pos++;
        if (s->told_pos == pos || !s->v || !s->v->nconns)
            continue;
        s->told_pos = pos;
        cc__jbuf_reset(b);
        cc__enc_queued(b, s->id, pos);
        to_visitor(s, b);
    }
}

/* ---- store ops ---- */

static sop *
sop_new(cc_chat *c, cc__session *s, cc__gconn *g, int what)
{
    sop *o = cc__calloc(c->a, 1, sizeof(*o));
    if (!o)
        return NULL;
    o->c = c;
    o->s = s;
    o->g = g;
    o->what = what;
    if (s)
        cc__sess_ref(s);
    if (g)
        cc__gw_ref(g);
    c->pending++;
    return o;
}

static void
sop_free(sop *o)
{
    cc_chat *c = o->c;
    if (o->s)
        cc__sess_unref(o->s);
    if (o->g)
        cc__gw_unref(o->g);
    if (o->ag)
        cc__agent_unref(o->ag);
    if (o->f.body_json)
        cc__free(c->a, o->f.body_json, o->f.body_len + 1);
    cc__free(c->a, o, sizeof(*o));
    cc__chat_done_pending(c);
}

static int
alive(const cc__gconn *g)
{
    return g && cc__gw_live(g);
}

static void persist_done(cc__store_res *res, void *data);

/* Write s and announce `an` after the commit. */
static int
persist(cc__session *s, int an, cc__gconn *g, sop **out)
{
    cc_chat *c = s->t->chat;
    sop *o = sop_new(c, s, g, OP_PERSIST);
    if (!o)
        return CC_ENOMEM;
    o->announce = an;
    cc__sess_rec r;
    s->updated = cc__wall_ms();
    cc__sess_fill_rec(s, &r);
    int rc = cc__store_session_put(c->st, &r, persist_done, o);
    if (rc != 0) {
        sop_free(o);
        cc__chat_log(c, CC_LOG_ERROR, "session write refused",
                     "\"tenant\":\"%s\",\"session\":\"%s\",\"error\":\"%s\"",
                     s->t->cfg.id, s->id, cc_strerror(rc));
        return rc;
    }
    s->t->sops++;
    if (out)
        *out = o;
    return 0;
}

static void hist_read(cc__session *s, cc__agent *ag, int what,
                      const char *from);

static void
sub_wait(cc__agent *ag, cc__session *s)
{
    for (cc__list *l = ag->conns.next; l != &ag->conns; l = l->next) {
        cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, ulink);
        cc__sub *sb = cc__gw_sub(g, s, 1);
        if (sb)
            sb->mode = CC__SUB_WAIT;
    }
}

static void
unsub_agent(cc__agent *ag, cc__session *s)
{
    for (cc__list *l = ag->conns.next; l != &ag->conns; l = l->next)
        cc__gw_unsub(CC__CONTAINER_OF(l, cc__gconn, ulink), s);
}

static void
unsub_visitor(cc__session *s)
{
    if (!s->v)
        return;
    for (cc__list *l = s->v->conns.next; l != &s->v->conns; l = l->next)
        cc__gw_unsub(CC__CONTAINER_OF(l, cc__gconn, ulink), s);
}

static void
visitor_hello(cc__gconn *g, cc__session *s, int resumed)
{
    cc_chat *c = g->chat;
    cc__hello h = {0};
    h.tenant = g->t->cfg.id;
    h.user = g->user;
    h.node = g->node[0] ? g->node : c->node;
    h.heartbeat_s = g->t->cfg.heartbeat;
    h.session = s->id;
    h.state = cc__sstate_name(s->state);
    h.resumed = resumed;
    cc__jbuf_reset(&c->jb);
    cc__enc_hello(&c->jb, &h);
    cc__gw_send(g, &c->jb);
}

static void
started(cc__session *s)
{
    /* a fresh session for a visitor whose session closed */
    cc_chat *c = s->t->chat;
    cc__jbuf_reset(&c->jb);
    cc__enc_session_started(&c->jb, s->id, cc__sstate_name(s->state));
    if (!s->v)
        return;
    for (cc__list *l = s->v->conns.next; l != &s->v->conns; l = l->next) {
        cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, ulink);
        if (!cc__gw_live(g) || !g->ready)
            continue;
        cc__sub *sb = cc__gw_sub(g, s, 1);
        if (sb) {
            sb->mode = CC__SUB_LIVE;
            sb->last_sent = 0;
        }
        cc__gw_send(g, &c->jb);
    }
}

static void
persist_done(cc__store_res *res, void *data)
{
    sop *o = data;
    cc__session *s = o->s;
    cc__tenant *t = s->t;
    cc_chat *c = o->c;
    cc__jbuf *b = &c->jb;
    if (res->rc != 0)
        cc__chat_log(c, CC_LOG_ERROR, "session write failed",
                     "\"tenant\":\"%s\",\"session\":\"%s\",\"error\":\"%s\"",
                     t->cfg.id, s->id, cc_strerror(res->rc));
    if (!t->deleted) {
        switch (o->announce) {
        case AN_ACCEPTED:
            if (s->state == CC__S_ACTIVE && s->agent == o->ag) {
                cc__jbuf_reset(b);
                cc__enc_session_accepted(b, s->id, o->ag->cfg.id);
                to_visitor(s, b);
                hist_read(s, o->ag, OP_ACCEPT_HIST, NULL);
            }
            cc__chat_log(c, CC_LOG_INFO, "session accepted",
                         "\"tenant\":\"%s\",\"session\":\"%s\",\"agent\":\"%s\","
                         "\"auto\":%s", t->cfg.id, s->id, o->ag->cfg.id,
                         o->by_system ? "true" : "false");
            break;
        case AN_TRANSFER: {
            const char *to = o->ag ? o->ag->cfg.id : NULL;
            cc__jbuf_reset(b);
            cc__enc_transferred(b, s->id, o->from_agent, to, NULL, 0, 0);
            to_visitor(s, b);
            cc__agent *old = cc__agent_find(t, o->from_agent);
            if (old && old != o->ag)
                to_agent(old, b);
            if (o->ag)
                hist_read(s, o->ag, OP_XFER_HIST, o->from_agent);
            cc__chat_log(c, CC_LOG_INFO, "session transferred",
                         "\"tenant\":\"%s\",\"session\":\"%s\",\"from\":\"%s\","
                         "\"to\":\"%s\"", t->cfg.id, s->id, o->from_agent,
                         to ? to : "");
            break;
        }
        case AN_CLOSE:
            cc__jbuf_reset(b);
            cc__enc_session_closed(b, s->id, s->close_reason, s->closed_by);
            to_visitor(s, b);
            if (s->agent)
                to_agent(s->agent, b);
            else if (alive(o->g) && o->g->role == CC_ROLE_AGENT)
                to_agent(o->g->agent, b);
            unsub_visitor(s);
            if (s->agent)
                unsub_agent(s->agent, s);
            cc__chat_log(c, CC_LOG_INFO, "session closed",
                         "\"tenant\":\"%s\",\"session\":\"%s\",\"by\":\"%s\"",
                         t->cfg.id, s->id, s->closed_by ? s->closed_by : "");
            break;
        case AN_STARTED:
            started(s);
            break;
        case AN_OFFLINE:
            if (s->agent && s->state == CC__S_OFFLINE) {
                char who[80];
                snprintf(who, sizeof(who), "visitor:%s", s->v->id);
                cc__jbuf_reset(b);
                cc__enc_peer(b, 0, s->id, who);
                to_agent(s->agent, b);
            }
            cc__chat_log(c, CC_LOG_INFO, "session offline",
                         "\"tenant\":\"%s\",\"session\":\"%s\"", t->cfg.id,
                         s->id);
            break;
        case AN_ONLINE:
            if (s->agent) {
                char who[80];
                snprintf(who, sizeof(who), "visitor:%s", s->v->id);
                cc__jbuf_reset(b);
                cc__enc_peer(b, 1, s->id, who);
                to_agent(s->agent, b);
            }
            break;
        default:
            break;
        }
    }
    /* the tenant's queue is announced once no state change of it is still
     * being written, so it shows committed state only */
    if (--t->sops == 0 && t->queue_dirty && !t->deleted) {
        t->queue_dirty = 0;
        queue_changed(t);
    }
    sop_free(o);
}

/* ---- history for accepted / session_transferred ---- */

static void
hist_done(cc__store_res *res, void *data)
{
    sop *o = data;
    cc__session *s = o->s;
    cc_chat *c = o->c;
    cc__agent *ag = o->ag;
    if (s->t->deleted || s->agent != ag || ag->deleted ||
        s->state == CC__S_CLOSED)
        goto out;
    if (res->rc != 0)
        cc__chat_log(c, CC_LOG_ERROR, "history read failed",
                     "\"session\":\"%s\"", s->id);
    size_t n = res->rc == 0 ? res->nmsgs : 0;
    cc__msgv mv[CC__HISTORY_ON_ACCEPT];
    if (n > CC__HISTORY_ON_ACCEPT)
        n = CC__HISTORY_ON_ACCEPT;
    for (size_t i = 0; i < n; i++)
        mv[i] = cc__msgv_of(s->id, &res->msgs[i]);
    uint64_t last = n ? mv[n - 1].seq : 0;
    if (last < s->last_seq && res->rc != 0)
        last = s->last_seq;
    cc__jbuf *b = &c->jb;
    cc__jbuf_reset(b);
    if (o->what == OP_ACCEPT_HIST)
        cc__enc_accepted(b, s->id, s->v ? s->v->id : "", mv, n, last);
    else
        cc__enc_transferred(b, s->id, o->from_agent, ag->cfg.id, mv, n, last);
    /* `history` counts as delivered: the agent's cursor starts at last */
    if (last > s->a_acked) {
        s->a_acked = last;
        mark_dirty(s, CC__CUR_AGENT);
    }
    for (cc__list *l = ag->conns.next; l != &ag->conns; l = l->next) {
        cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, ulink);
        if (!cc__gw_live(g) || !g->ready)
            continue;
        cc__gw_send(g, b);
        cc__sub *sb = cc__gw_sub(g, s, 1);
        if (sb) {
            if (sb->last_sent < last)
                sb->last_sent = last;
            if (sb->mode == CC__SUB_WAIT)
                sb->mode = CC__SUB_LIVE;
            /* anything committed after the read comes live; anything
             * between `last` and now that was dropped while waiting is
             * fetched again */
            if (s->last_seq > sb->last_sent && sb->mode == CC__SUB_LIVE)
                cc__gw_replay(g, s, sb->last_sent);
        }
    }
out:
    sop_free(o);
}

static void
hist_read(cc__session *s, cc__agent *ag, int what, const char *from)
{
    cc_chat *c = s->t->chat;
    sop *o = sop_new(c, s, NULL, what);
    if (!o)
        return;
    o->ag = ag;
    ag->refs++;
    if (from)
        snprintf(o->from_agent, sizeof(o->from_agent), "%s", from);
    if (cc__store_msgs_read(c->st, s->t->cfg.id, s->id, 0,
                            CC__HISTORY_ON_ACCEPT, 1, hist_done, o) != 0)
        sop_free(o);
}

/* ---- assignment ---- */

static int
agent_cap(const cc__agent *ag)
{
    return ag->cfg.capacity > 0 ? ag->cfg.capacity
                                : ag->t->cfg.agent_capacity;
}

/* The online agent with the fewest sessions under its capacity; ties go
 * to the one idle longest. */
static cc__agent *
pick_agent(cc__tenant *t)
{
    cc__agent *best = NULL;
    size_t it = 0;
    for (cc__hnode *n = cc__map_next(&t->agents, &it, NULL); n;
         n = cc__map_next(&t->agents, &it, n)) {
        cc__agent *ag = CC__CONTAINER_OF(n, cc__agent, hn);
        if (!ag->nconns || ag->away || ag->deleted ||
            ag->serving >= agent_cap(ag))
            continue;
        if (!best || ag->serving < best->serving ||
            (ag->serving == best->serving &&
             ag->idle_since < best->idle_since))
            best = ag;
    }
    return best;
}

static void
assign(cc__session *s, cc__agent *ag, cc__gconn *by)
{
    cc__tenant *t = s->t;
    if (s->state == CC__S_QUEUED) {
        queue_remove(s);
        t->queue_dirty = 1;
    }
    s->state = CC__S_ACTIVE;
    s->agent = ag;
    s->a_acked = s->a_read = 0;
    ag->serving++;
    ag->idle_since = uv_now(t->chat->ctx->loop);
    sub_wait(ag, s);
    sop *o = NULL;
    if (persist(s, AN_ACCEPTED, by, &o) == 0) {
        o->ag = ag;
        ag->refs++;
        o->by_system = by == NULL;
    }
}

static void
try_assign(cc__tenant *t)
{
    if (!t->cfg.auto_assign || t->deleted)
        return;
    while (!cc__list_empty(&t->queue)) {
        cc__agent *ag = pick_agent(t);
        if (!ag)
            break;
        assign(CC__CONTAINER_OF(t->queue.next, cc__session, qlink), ag, NULL);
    }
}

void
cc__sess_agent_available(cc__agent *ag)
{
    try_assign(ag->t);
}

void
cc__sess_tenant_changed(cc__tenant *t)
{
    /* a new heartbeat applies to open connections at once (their `hello`
     * told the old one; clients that ping at the old, shorter or longer,
     * interval are judged by the new 3 x heartbeat from now on) */
    uint64_t idle = (uint64_t)t->cfg.heartbeat * 3000u;
    for (cc__list *l = t->agent_conns.next; l != &t->agent_conns; l = l->next) {
        cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, alink);
        cc__gw_set_idle(g, idle);
    }
    size_t it = 0;
    for (cc__hnode *n = cc__map_next(&t->visitors, &it, NULL); n;
         n = cc__map_next(&t->visitors, &it, n)) {
        cc__visitor *v = CC__CONTAINER_OF(n, cc__visitor, hn);
        for (cc__list *l = v->conns.next; l != &v->conns; l = l->next) {
            cc__gconn *g = CC__CONTAINER_OF(l, cc__gconn, ulink);
            cc__gw_set_idle(g, idle);
        }
    }
    try_assign(t);
}

/* back to the queue (transfer to null), by the agent or by the system */
static void
requeue(cc__session *s, cc__gconn *by)
{
    cc__agent *old = s->agent;
    cc__tenant *t = s->t;
    if (old) {
        old->serving--;
        unsub_agent(old, s);
    }
    s->agent = NULL;
    s->a_acked = s->a_read = 0;
    if (s->state == CC__S_OFFLINE) {
        s->prev_state = CC__S_QUEUED;
    } else {
        s->state = CC__S_QUEUED;
        queue_insert(s);
        t->queue_dirty = 1;
    }
    sop *o = NULL;
    if (persist(s, AN_TRANSFER, by, &o) == 0 && old)
        snprintf(o->from_agent, sizeof(o->from_agent), "%s", old->cfg.id);
}

void
cc__sess_agent_gone(cc__agent *ag)
{
    cc__tenant *t = ag->t;
    size_t it = 0;
    for (cc__hnode *n = cc__map_next(&t->sessions, &it, NULL); n;
         n = cc__map_next(&t->sessions, &it, n)) {
        cc__session *s = CC__CONTAINER_OF(n, cc__session, hn);
        if (s->agent == ag)
            requeue(s, NULL);
    }
    try_assign(t);
}

/* ---- close ---- */

static void write_cursors(cc__session *s);

static void
new_session_for(cc__visitor *v, int announce)
{
    cc__tenant *t = v->t;
    char id[65];
    if (cc__new_id(id, "S_") != 0)
        return;
    cc__session *s = sess_new(t, id, v);
    if (!s)
        return;
    s->state = CC__S_NEW;
    s->created = s->updated = cc__wall_ms();
    v->live = s;
    t->chat->m.sessions_created++;
    persist(s, announce, NULL, NULL);
}

static void
do_close(cc__session *s, cc__gconn *g, const char *by, const char *reason)
{
    cc__tenant *t = s->t;
    cc_chat *c = t->chat;
    if (s->state == CC__S_QUEUED) {
        queue_remove(s);
        t->queue_dirty = 1;
    }
    if (s->agent && (s->state == CC__S_ACTIVE || s->state == CC__S_OFFLINE))
        s->agent->serving--;
    if (s->gone_link.next != &s->gone_link)
        cc__list_remove(&s->gone_link);
    if (s->dirty_link.next != &s->dirty_link) {
        cc__list_remove(&s->dirty_link);
        write_cursors(s);
    }
    s->state = CC__S_CLOSED;
    s->prev_state = 0;
    cc__free_str(c->a, s->close_reason);
    cc__free_str(c->a, s->closed_by);
    s->close_reason = cc__strdup(c->a, reason ? reason : "");
    s->closed_by = cc__strdup(c->a, by);
    cc__map_del(&t->sessions, &s->hn);
    c->m.sessions_closed++;
    cc__visitor *v = s->v;
    if (v && v->live == s)
        v->live = NULL;
    persist(s, AN_CLOSE, g, NULL);
    /* a visitor still connected gets a fresh session at once */
    if (v && v->nconns && !v->live)
        new_session_for(v, AN_STARTED);
    cc__agent *ag = s->agent;
    cc__sess_unref(s);   /* the map's reference; the op holds another */
    if (ag)
        try_assign(t);
}

/* ---- the visitor comes and goes ---- */

static void barrier_done(cc__store_res *res, void *data);

static void
barrier_hello(cc__gconn *g, int resumed)
{
    cc_chat *c = g->chat;
    sop *o = sop_new(c, NULL, g, OP_BARRIER_HELLO);
    if (!o) {
        cc__gw_close(g, CC_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    o->resumed = resumed;
    /* a read queued behind every write so far: the hello that follows
     * tells only committed state */
    if (cc__store_cursor_get(c->st, g->t->cfg.id, "-", g->who, barrier_done,
                             o) != 0) {
        sop_free(o);
        cc__gw_close(g, CC_WS_CLOSE_INTERNAL, "store unavailable");
    }
}

int
cc__sess_link(cc__gconn *g)
{
    cc__tenant *t = g->t;
    if (g->role == CC_ROLE_AGENT) {
        cc__list_push(&g->agent->conns, &g->ulink);
        cc__list_push(&t->agent_conns, &g->alink);
        g->agent->nconns++;
        return 0;
    }
    cc__visitor *v = cc__visitor_get(t, g->user, 1);
    if (!v)
        return CC_ENOMEM;
    g->v = v;
    cc__list_push(&v->conns, &g->ulink);
    v->nconns++;
    return 0;
}

void
cc__sess_attach(cc__gconn *g)
{
    cc__tenant *t = g->t;
    cc_chat *c = t->chat;
    if (g->role == CC_ROLE_AGENT) {
        cc__agent *ag = g->agent;
        if (!ag->nconns) {
            ag->away = 0;
            ag->idle_since = uv_now(c->ctx->loop);
        }
        cc__sess_link(g);
        barrier_hello(g, 0);
        return;
    }
    if (cc__sess_link(g) != 0) {
        cc__gw_close(g, CC_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    cc__visitor *v = g->v;
    cc__session *s = v->live;
    int resumed = s != NULL;
    if (!s) {
        new_session_for(v, AN_NONE);
    } else {
        if (s->gone_link.next != &s->gone_link)
            cc__list_remove(&s->gone_link);
        s->gone_at = 0;
        if (s->state == CC__S_OFFLINE) {
            s->state = s->prev_state ? s->prev_state : CC__S_NEW;
            s->prev_state = 0;
            if (s->state == CC__S_QUEUED) {
                queue_insert(s);
                t->queue_dirty = 1;
            }
            persist(s, AN_ONLINE, NULL, NULL);
            if (s->state == CC__S_QUEUED)
                try_assign(t);
        }
    }
    barrier_hello(g, resumed);
}

static void
agent_hello(cc__gconn *g)
{
    cc_chat *c = g->chat;
    cc__tenant *t = g->t;
    cc__agent *ag = g->agent;
    cc__queue_item items[CC__QUEUE_SNAPSHOT_MAX];
    size_t nq = queue_items(t, items);
    size_t ns = 0, cap = (size_t)(ag->serving > 0 ? ag->serving : 1);
    cc__sess_item *si = cc__calloc(c->a, cap, sizeof(*si));
    cc__session **ss = cc__calloc(c->a, cap, sizeof(*ss));
    if (!si || !ss) {
        cc__free(c->a, si, cap * sizeof(*si));
        cc__free(c->a, ss, cap * sizeof(*ss));
        cc__gw_close(g, CC_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    size_t it = 0;
    for (cc__hnode *n = cc__map_next(&t->sessions, &it, NULL);
         n && ns < cap; n = cc__map_next(&t->sessions, &it, n)) {
        cc__session *s = CC__CONTAINER_OF(n, cc__session, hn);
        if (s->agent != ag)
            continue;
        si[ns].session = s->id;
        si[ns].visitor = s->v ? s->v->id : "";
        si[ns].state = cc__sstate_name(s->state);
        si[ns].last_seq = s->last_seq;
        ss[ns++] = s;
    }
    cc__hello h = {0};
    h.tenant = t->cfg.id;
    h.user = g->user;
    h.node = g->node[0] ? g->node : c->node;
    h.role_agent = 1;
    h.heartbeat_s = t->cfg.heartbeat;
    h.status = ag->away ? "away" : "online";
    h.queue = items;
    h.nqueue = nq;
    h.sessions = si;
    h.nsessions = ns;
    cc__jbuf_reset(&c->jb);
    cc__enc_hello(&c->jb, &h);
    cc__gw_send(g, &c->jb);
    g->ready = 1;
    for (size_t i = 0; i < ns; i++) {
        cc__session *s = ss[i];
        uint64_t after = s->a_acked;
        if (g->has_last_seq && strcmp(g->want_session, s->id) == 0)
            after = g->want_last_seq;
        cc__gw_replay(g, s, after);
    }
    cc__free(c->a, si, cap * sizeof(*si));
    cc__free(c->a, ss, cap * sizeof(*ss));
    try_assign(t);
}

static void
barrier_done(cc__store_res *res, void *data)
{
    sop *o = data;
    cc__gconn *g = o->g;
    if (!alive(g) || g->t->deleted)
        goto out;
    if (g->role == CC_ROLE_AGENT) {
        agent_hello(g);
        goto out;
    }
    cc__session *s = g->v->live;
    if (!s) {
        cc__gw_close(g, CC_WS_CLOSE_INTERNAL, "no session");
        goto out;
    }
    visitor_hello(g, s, o->resumed);
    g->ready = 1;
    uint64_t after = s->v_acked;
    if (g->has_last_seq && strcmp(g->want_session, s->id) == 0)
        after = g->want_last_seq;
    if (after > s->last_seq)
        after = s->last_seq;
    cc__gw_replay(g, s, after);
    if (s->state == CC__S_QUEUED) {
        int pos = 0;
        for (cc__list *l = s->t->queue.next; l != &s->t->queue; l = l->next) {
            pos++;
            if (l == &s->qlink)
                break;
        }
        cc__jbuf *b = &g->chat->jb;
        cc__jbuf_reset(b);
        cc__enc_queued(b, s->id, pos);
        cc__gw_send(g, b);
    }
out:
    sop_free(o);
}

void
cc__sess_detach(cc__gconn *g)
{
    cc_chat *c = g->chat;
    if (g->role == CC_ROLE_AGENT) {
        if (g->ulink.next == &g->ulink && g->ulink.prev == &g->ulink)
            return;
        cc__list_remove(&g->ulink);
        cc__list_remove(&g->alink);
        g->agent->nconns--;
        return;
    }
    cc__visitor *v = g->v;
    if (!v)
        return;
    cc__list_remove(&g->ulink);
    g->v = NULL;
    if (--v->nconns == 0 && v->live && !v->t->deleted) {
        cc__session *s = v->live;
        s->gone_at = uv_now(c->ctx->loop);
        if (s->gone_link.next == &s->gone_link)
            cc__list_push(&c->gone, &s->gone_link);
    }
    cc__visitor_maybe_free(v);
}

/* ---- cursors ---- */

/* Only the cursors that moved are written: the store keeps the highest
 * of each anyway. */
static void
write_cursors(cc__session *s)
{
    cc_chat *c = s->t->chat;
    char who[80];
    int d = s->cur_dirty;
    s->cur_dirty = 0;
    if (s->v && (d & CC__CUR_VISITOR)) {
        snprintf(who, sizeof(who), "visitor:%s", s->v->id);
        cc__store_cursor_put(c->st, s->t->cfg.id, s->id, who, s->v_acked,
                             s->v_read, NULL, NULL);
    }
    if (s->agent && (d & CC__CUR_AGENT)) {
        snprintf(who, sizeof(who), "agent:%s", s->agent->cfg.id);
        cc__store_cursor_put(c->st, s->t->cfg.id, s->id, who, s->a_acked,
                             s->a_read, NULL, NULL);
    }
}

static void
mark_dirty(cc__session *s, int which)
{
    s->cur_dirty |= which;
    if (s->dirty_link.next == &s->dirty_link) {
        cc_chat *c = s->t->chat;
        s->dirty_at = uv_now(c->ctx->loop);
        cc__list_push(&c->dirty, &s->dirty_link);
    }
}

/* chat->dirty is in the order sessions joined it, so each session's
 * cursors are written a second after they first moved: the writes of a
 * busy engine spread over the second instead of leaving in one burst
 * that the store's next appends would wait behind. */
void
cc__sess_flush_cursors(cc_chat *c, uint64_t now, int all)
{
    while (!cc__list_empty(&c->dirty)) {
        cc__session *s = CC__CONTAINER_OF(c->dirty.next, cc__session,
                                          dirty_link);
        if (!all && now - s->dirty_at < 1000)
            break;
        cc__list_remove(&s->dirty_link);
        write_cursors(s);
    }
}

/* ---- session_ttl ---- */

void
cc__sess_tick(cc_chat *c, uint64_t now)
{
    cc__list *l = c->gone.next;
    while (l != &c->gone) {
        cc__session *s = CC__CONTAINER_OF(l, cc__session, gone_link);
        l = l->next;
        uint64_t ttl = (uint64_t)s->t->cfg.session_ttl * 1000u;
        if (now - s->gone_at < ttl)
            continue;
        cc__list_remove(&s->gone_link);
        if (s->state != CC__S_NEW && s->state != CC__S_QUEUED &&
            s->state != CC__S_ACTIVE)
            continue;
        if (s->state == CC__S_NEW && s->last_seq == 0) {
            /* a widget opened and left without a word: nothing to keep
             * (docs/protocol.md rule 58) */
            do_close(s, NULL, "system", "expired");
            continue;
        }
        s->prev_state = s->state;
        if (s->state == CC__S_QUEUED) {
            queue_remove(s);
            s->t->queue_dirty = 1;
        }
        s->state = CC__S_OFFLINE;
        persist(s, AN_OFFLINE, NULL, NULL);
    }
}

/* ---- loading ---- */

int
cc__sess_load(cc_chat *c, const cc__sess_rec *r)
{
    cc__tenant *t = cc__tenant_find(c, r->tenant);
    if (!t)
        return CC_ENOENT;
    cc__visitor *v = cc__visitor_get(t, r->visitor, 1);
    if (!v)
        return CC_ENOMEM;
    cc__session *s = sess_new(t, r->id, v);
    if (!s)
        return CC_ENOMEM;
    s->state = r->state;
    s->prev_state = r->prev_state;
    s->created = r->created;
    s->updated = r->updated;
    s->since = r->since;
    s->last_seq = r->last_seq;
    if (r->preview[0])
        s->preview = cc__strdup(c->a, r->preview);
    s->agent = r->agent[0] ? cc__agent_find(t, r->agent) : NULL;
    if (!s->agent && s->state == CC__S_ACTIVE) {
        /* its agent is gone: back to the queue */
        s->state = CC__S_QUEUED;
        if (!s->since)
            s->since = s->created;
    }
    if (s->agent && (s->state == CC__S_ACTIVE || s->state == CC__S_OFFLINE))
        s->agent->serving++;
    if (!v->live || v->live->updated <= s->updated)
        v->live = s;
    if (s->state == CC__S_QUEUED)
        queue_insert(s);
    /* nobody is connected after a restart: the ttl starts now */
    s->gone_at = uv_now(c->ctx->loop);
    cc__list_push(&c->gone, &s->gone_link);
    return 0;
}

void
cc__sess_load_cursor(cc_chat *c, const char *tid, const char *sid,
                     const char *user, uint64_t acked, uint64_t read)
{
    cc__tenant *t = cc__tenant_find(c, tid);
    cc__hnode *n = t ? cc__map_get(&t->sessions, sid) : NULL;
    if (!n)
        return;
    cc__session *s = CC__CONTAINER_OF(n, cc__session, hn);
    if (strncmp(user, "visitor:", 8) == 0 && s->v &&
        strcmp(user + 8, s->v->id) == 0) {
        s->v_acked = acked;
        s->v_read = read;
    } else if (strncmp(user, "agent:", 6) == 0 && s->agent &&
               strcmp(user + 6, s->agent->cfg.id) == 0) {
        s->a_acked = acked;
        s->a_read = read;
    }
}

void
cc__sess_load_done(cc_chat *c)
{
    CC__UNUSED(c);
}

/* ---- frames ---- */

static sop *
frame_op(cc__gconn *g, cc__session *s, cc__cframe *f, int what)
{
    sop *o = sop_new(g->chat, s, g, what);
    if (!o)
        return NULL;
    /* take the frame; its body moves into the op */
    o->f = *f;
    o->f.token = NULL;
    f->body_json = NULL;
    f->body_len = 0;
    o->t0 = uv_hrtime();
    snprintf(o->who, sizeof(o->who), "%s", g->who);
    return o;
}

/* The queue preview of a session's first message (docs/protocol.md 44). */
static char *
make_preview(const cc_allocator *a, const cc__cframe *f)
{
    if (f->kind != CC__K_TEXT) {
        char tmp[16];
        snprintf(tmp, sizeof(tmp), "[%s]", cc__kind_name(f->kind));
        return cc__strdup(a, tmp);
    }
    cJSON *root = cJSON_ParseWithLength(f->body_json, f->body_len);
    cJSON *txt = root ? cJSON_GetObjectItemCaseSensitive(root, "text") : NULL;
    char *out = NULL;
    if (cJSON_IsString(txt) && txt->valuestring) {
        /* first 100 code points */
        const char *p = txt->valuestring;
        size_t i = 0;
        int cps = 0;
        while (p[i] && cps < 100) {
            unsigned char ch = (unsigned char)p[i];
            i += ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
            cps++;
        }
        out = cc__alloc(a, i + 1);
        if (out) {
            memcpy(out, p, i);
            out[i] = '\0';
        }
    } else {
        out = cc__strdup(a, "");
    }
    cJSON_Delete(root);
    return out;
}

static void
send_done(cc__store_res *res, void *data)
{
    sop *o = data;
    cc_chat *c = o->c;
    cc__session *s = o->s;
    cc__gconn *g = o->g;
    cc__jbuf *b = &c->jb;
    if (res->rc != 0) {
        if (alive(g))
            cc__gw_error(g, &o->f, CC__E_INTERNAL, "the message was not stored");
        cc__chat_log(c, CC_LOG_ERROR, "message write failed",
                     "\"tenant\":\"%s\",\"session\":\"%s\",\"error\":\"%s\"",
                     s->t->cfg.id, s->id, cc_strerror(res->rc));
        goto out;
    }
    if (res->dup) {
        if (alive(g)) {
            cc__jbuf_reset(b);
            cc__enc_sent(b, o->f.cid, s->id, res->seq, res->ts);
            cc__gw_send(g, b);
        }
        goto out;
    }
    uint64_t seq = res->seq;
    c->m.msgs_in++;
    double secs = (double)(uv_hrtime() - o->t0) / 1e9;
    c->m.sent_hist[cc__hist_bucket(secs)]++;
    c->m.sent_sum += secs;
    if (seq > s->last_seq)
        s->last_seq = seq;
    if (res->ts > s->updated)
        s->updated = res->ts;
    if (alive(g)) {
        cc__jbuf_reset(b);
        cc__enc_sent(b, o->f.cid, s->id, seq, res->ts);
        cc__gw_send(g, b);
        cc__sub *sb = cc__gw_sub(g, s, 0);
        if (sb && sb->mode == CC__SUB_LIVE && sb->last_sent + 1 == seq)
            sb->last_sent = seq;
    }
    /* the sender has seen its own message: its cursor moves in memory
     * (not worth a write of its own; the next ack writes it) */
    int from_visitor = strncmp(o->who, "visitor:", 8) == 0;
    if (from_visitor && s->v_acked + 1 == seq)
        s->v_acked = seq;
    else if (!from_visitor && s->a_acked + 1 == seq)
        s->a_acked = seq;
    if (s->t->deleted)
        goto out;
    cc__smsg m = {0};
    m.seq = seq;
    m.ts = res->ts;
    snprintf(m.from, sizeof(m.from), "%s", o->who);
    m.kind = o->f.kind;
    m.has_cid = 1;
    snprintf(m.cid, sizeof(m.cid), "%s", o->f.cid);
    m.body = o->f.body_json;
    m.body_len = o->f.body_len;
    cc_ws_msg *frame = cc__gw_msg_frame(c, s, &m);
    if (!frame)
        goto out;
    if (s->v)
        for (cc__list *l = s->v->conns.next; l != &s->v->conns; l = l->next) {
            cc__gconn *x = CC__CONTAINER_OF(l, cc__gconn, ulink);
            if (x != g)
                cc__gw_deliver(x, s, seq, frame);
        }
    if (s->agent)
        for (cc__list *l = s->agent->conns.next; l != &s->agent->conns;
             l = l->next) {
            cc__gconn *x = CC__CONTAINER_OF(l, cc__gconn, ulink);
            if (x != g)
                cc__gw_deliver(x, s, seq, frame);
        }
    cc_ws_msg_release(frame);
out:
    if (g)
        cc__gw_send_done(g);
    sop_free(o);
}

static void
do_send(cc__gconn *g, cc__session *s, cc__cframe *f)
{
    cc_chat *c = g->chat;
    cc__tenant *t = g->t;
    int first = g->role == CC_ROLE_VISITOR && s->state == CC__S_NEW;
    sop *o = frame_op(g, s, f, OP_SEND);
    if (!o) {
        cc__gw_error(g, f, CC__E_INTERNAL, "out of memory");
        return;
    }
    int rc = cc__store_msg_append(c->st, t->cfg.id, s->id, o->f.cid, o->who,
                                  o->f.kind, o->f.body_json, o->f.body_len,
                                  cc__wall_ms(), send_done, o);
    if (rc != 0) {
        cc__gw_error(g, &o->f, CC__E_INTERNAL, "the store is busy");
        sop_free(o);
        return;
    }
    g->inflight++;
    if (!first)
        return;
    /* the first message queues the session, or assigns it at once */
    s->since = cc__wall_ms();
    cc__free_str(c->a, s->preview);
    s->preview = make_preview(c->a, &o->f);
    cc__agent *ag = t->cfg.auto_assign ? pick_agent(t) : NULL;
    if (ag) {
        assign(s, ag, NULL);
    } else {
        s->state = CC__S_QUEUED;
        queue_insert(s);
        t->queue_dirty = 1;
        persist(s, AN_QUEUED, NULL, NULL);
        cc__chat_log(c, CC_LOG_INFO, "session queued",
                     "\"tenant\":\"%s\",\"session\":\"%s\"", t->cfg.id, s->id);
    }
}

static void
sync_done(cc__store_res *res, void *data)
{
    sop *o = data;
    cc__gconn *g = o->g;
    if (!alive(g))
        goto out;
    if (res->rc != 0) {
        cc__gw_error(g, &o->f, CC__E_INTERNAL, "history could not be read");
        goto out;
    }
    cc_chat *c = o->c;
    size_t n = res->nmsgs;
    cc__msgv *mv = n ? cc__calloc(c->a, n, sizeof(*mv)) : NULL;
    if (n && !mv) {
        cc__gw_error(g, &o->f, CC__E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        mv[i] = cc__msgv_of(o->f.session, &res->msgs[i]);
    }
    cc__jbuf *b = &c->jb;
    cc__jbuf_reset(b);
    cc__enc_history(b, o->f.session, mv, n, res->more);
    cc__gw_send(g, b);
    if (mv)
        cc__free(c->a, mv, n * sizeof(*mv));
out:
    sop_free(o);
}

static void
do_sync(cc__gconn *g, cc__session *s, cc__cframe *f)
{
    sop *o = frame_op(g, s, f, OP_SYNC);
    if (!o) {
        cc__gw_error(g, f, CC__E_INTERNAL, "out of memory");
        return;
    }
    if (cc__store_msgs_read(g->chat->st, g->t->cfg.id, o->f.session,
                            o->f.after, o->f.limit, 0, sync_done, o) != 0) {
        cc__gw_error(g, &o->f, CC__E_INTERNAL, "the store is busy");
        sop_free(o);
    }
}

/* The cold path: a frame for a session that is not open in memory. It is
 * either unknown (not_found) or closed; a read tells which. */
static void
cold_done(cc__store_res *res, void *data)
{
    sop *o = data;
    cc__gconn *g = o->g;
    cc__cframe *f = &o->f;
    if (!alive(g))
        goto out;
    if (res->rc == CC_ENOENT || (res->rc == 0 && res->nsess == 0)) {
        cc__gw_error(g, f, CC__E_NOT_FOUND, "session: no such session");
        goto out;
    }
    if (res->rc != 0) {
        cc__gw_error(g, f, CC__E_INTERNAL, "the store failed");
        goto out;
    }
    const cc__sess_rec *r = &res->sess[0];
    int vis = g->role == CC_ROLE_VISITOR && strcmp(r->visitor, g->user) == 0;
    int serving = g->role == CC_ROLE_AGENT && strcmp(r->agent, g->user) == 0;
    switch (f->type) {
    case CC__F_SEND:
    case CC__F_TRANSFER:
        if (vis || serving)
            cc__gw_error(g, f, CC__E_INVALID_STATE, "session: closed");
        else
            cc__gw_error(g, f, CC__E_NOT_IN_SESSION,
                         "session: not a party of this session");
        break;
    case CC__F_ACK:
    case CC__F_READ:
    case CC__F_TYPING:
        if (!vis && !serving)
            cc__gw_error(g, f, CC__E_NOT_IN_SESSION,
                         "session: not a party of this session");
        break;
    case CC__F_SYNC:
        if (vis || g->role == CC_ROLE_AGENT) {
            sop *n = frame_op(g, NULL, f, OP_SYNC);
            if (n && cc__store_msgs_read(g->chat->st, g->t->cfg.id,
                                         n->f.session, n->f.after,
                                         n->f.limit, 0, sync_done, n) == 0)
                break;
            if (n)
                sop_free(n);
            cc__gw_error(g, f, CC__E_INTERNAL, "the store is busy");
        } else {
            cc__gw_error(g, f, CC__E_NOT_IN_SESSION,
                         "session: not a party of this session");
        }
        break;
    case CC__F_ACCEPT:
        cc__gw_error(g, f, CC__E_ALREADY_TAKEN, "session: no longer queued");
        break;
    case CC__F_CLOSE:
        if (vis || g->role == CC_ROLE_AGENT)
            cc__gw_error(g, f, CC__E_INVALID_STATE, "session: already closed");
        else
            cc__gw_error(g, f, CC__E_NOT_IN_SESSION,
                         "session: not a party of this session");
        break;
    default:
        break;
    }
out:
    sop_free(o);
}

static void
cold(cc__gconn *g, cc__cframe *f)
{
    sop *o = frame_op(g, NULL, f, OP_COLD);
    if (!o) {
        cc__gw_error(g, f, CC__E_INTERNAL, "out of memory");
        return;
    }
    if (cc__store_session_get(g->chat->st, g->t->cfg.id, o->f.session,
                              cold_done, o) != 0) {
        cc__gw_error(g, &o->f, CC__E_INTERNAL, "the store is busy");
        sop_free(o);
    }
}

static void
relay(cc__gconn *g, cc__session *s, cc__jbuf *b)
{
    if (g->role == CC_ROLE_VISITOR) {
        if (s->agent)
            to_agent(s->agent, b);
    } else if (s->v) {
        send_to_list(&s->v->conns, 0, b, NULL);
    }
}

void
cc__sess_frame(cc__gconn *g, cc__cframe *f)
{
    cc__tenant *t = g->t;
    cc_chat *c = t->chat;
    int agent = g->role == CC_ROLE_AGENT;
    if (f->type == CC__F_STATUS) {
        if (!agent) {
            cc__gw_error(g, f, CC__E_FORBIDDEN, "status: agents only");
            return;
        }
        g->agent->away = f->status_away;
        if (!f->status_away)
            try_assign(t);
        return;
    }
    if (!agent && (f->type == CC__F_ACCEPT || f->type == CC__F_TRANSFER)) {
        cc__gw_error(g, f, CC__E_FORBIDDEN, "type: agents only");
        return;
    }
    cc__hnode *n = cc__map_get(&t->sessions, f->session);
    if (!n) {
        cold(g, f);
        return;
    }
    cc__session *s = CC__CONTAINER_OF(n, cc__session, hn);
    int vis = !agent && s->v == g->v;
    int serving = agent && s->agent == g->agent;
    int party = vis || serving;
    cc__jbuf *b = &c->jb;
    /* send, ack, read and typing are for the session's two parties */
    if (!party && (f->type == CC__F_SEND || f->type == CC__F_ACK ||
                   f->type == CC__F_READ || f->type == CC__F_TYPING)) {
        cc__gw_error(g, f, CC__E_NOT_IN_SESSION,
                     "session: not a party of this session");
        return;
    }
    switch (f->type) {
    case CC__F_SEND:
        if (serving && s->state != CC__S_ACTIVE && s->state != CC__S_OFFLINE) {
            cc__gw_error(g, f, CC__E_INVALID_STATE, "session: not active");
            return;
        }
        do_send(g, s, f);
        return;
    case CC__F_ACK: {
        uint64_t seq = f->seq < s->last_seq ? f->seq : s->last_seq;
        uint64_t *cur = vis ? &s->v_acked : &s->a_acked;
        c->m.acks++;
        if (seq > *cur) {
            *cur = seq;
            mark_dirty(s, vis ? CC__CUR_VISITOR : CC__CUR_AGENT);
        }
        cc__list *h = vis ? &s->v->conns : &s->agent->conns;
        for (cc__list *l = h->next; l != h; l = l->next)
            cc__gw_acked(CC__CONTAINER_OF(l, cc__gconn, ulink), s, seq);
        return;
    }
    case CC__F_READ: {
        uint64_t seq = f->seq < s->last_seq ? f->seq : s->last_seq;
        uint64_t *cur = vis ? &s->v_read : &s->a_read;
        if (seq <= *cur)
            return;
        *cur = seq;
        mark_dirty(s, vis ? CC__CUR_VISITOR : CC__CUR_AGENT);
        cc__jbuf_reset(b);
        cc__enc_read(b, s->id, g->who, seq);
        relay(g, s, b);
        return;
    }
    case CC__F_TYPING:
        cc__jbuf_reset(b);
        cc__enc_typing(b, s->id, g->who, f->on);
        relay(g, s, b);
        return;
    case CC__F_SYNC:
        if (!vis && !agent) {
            cc__gw_error(g, f, CC__E_NOT_IN_SESSION,
                         "session: not a party of this session");
            return;
        }
        do_sync(g, s, f);
        return;
    case CC__F_ACCEPT:
        if (s->state == CC__S_QUEUED)
            assign(s, g->agent, g);
        else if (s->state == CC__S_NEW)
            cc__gw_error(g, f, CC__E_INVALID_STATE,
                         "session: not queued yet");
        else
            cc__gw_error(g, f, CC__E_ALREADY_TAKEN,
                         "session: taken or no longer queued");
        return;
    case CC__F_TRANSFER: {
        if (!serving) {
            cc__gw_error(g, f, CC__E_NOT_IN_SESSION,
                         "session: not the serving agent");
            return;
        }
        if (s->state != CC__S_ACTIVE && s->state != CC__S_OFFLINE) {
            cc__gw_error(g, f, CC__E_INVALID_STATE, "session: not active");
            return;
        }
        if (f->to_null) {
            requeue(s, g);
            try_assign(t);
            return;
        }
        cc__agent *to = cc__agent_find(t, f->to);
        if (!to) {
            cc__gw_error(g, f, CC__E_NOT_FOUND, "to: no such agent");
            return;
        }
        if (to == s->agent) {
            cc__gw_error(g, f, CC__E_INVALID_STATE,
                         "to: already serving this session");
            return;
        }
        cc__agent *old = s->agent;
        old->serving--;
        unsub_agent(old, s);
        s->agent = to;
        s->a_acked = s->a_read = 0;
        to->serving++;
        to->idle_since = uv_now(c->ctx->loop);
        sub_wait(to, s);
        sop *o = NULL;
        if (persist(s, AN_TRANSFER, g, &o) == 0) {
            snprintf(o->from_agent, sizeof(o->from_agent), "%s", old->cfg.id);
            o->ag = to;
            to->refs++;
        }
        try_assign(t);
        return;
    }
    case CC__F_CLOSE: {
        int ok = vis || serving ||
                 (agent && (s->state == CC__S_QUEUED ||
                            s->state == CC__S_OFFLINE));
        if (!ok) {
            cc__gw_error(g, f, CC__E_NOT_IN_SESSION,
                         "session: not allowed to close this session");
            return;
        }
        do_close(s, g, g->who, f->reason);
        return;
    }
    default:
        return;
    }
}
