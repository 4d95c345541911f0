/*
 * lib/chat/chat_int.h - the chat engine's internals.
 *
 * Two halves on one loop, joined by the bus (lib/chat/bus.h):
 *   gateway.c  connections: auth at the upgrade, heartbeat, token expiry,
 *              rate limits, frame decoding, per-connection delivery state
 *              (unacked window, retransmission, replay gating);
 *   session.c  sessions: the state machine of PROTOCOL.md §1, the tenant
 *              queues and claims, sequence numbers (through the store),
 *              cursors, persistence before announcement.
 * api.c serves the HTTP API, metrics.c the Prometheus text, chat.c owns
 * the model (tenants, agents, visitors) and its lifetime.
 */
#ifndef CC_CHAT_INT_H
#define CC_CHAT_INT_H

#include <uv.h>

#include "chatcore/bus.h"
#include "chatcore/chat.h"
#include "chatcore/ws.h"
#include "chatcore/auth.h"
#include "core/internal.h"
#include "proto/proto.h"
#include "store/store.h"
#include "chat/tenant.h"

#define CC__QUEUE_SNAPSHOT_MAX 200   /* items in `queue` and agent hello */
#define CC__HISTORY_ON_ACCEPT 50
#define CC__REPLAY_PAGE 200
#define CC__REFUSALS_MAX 10          /* rate_limited refusals ... */
#define CC__REFUSALS_WINDOW_MS 10000 /* ... within this -> 4008 */
#define CC__VISITOR_TOKEN_S (24 * 3600)
#define CC__AGENT_TOKEN_S (12 * 3600)
#define CC__SKEW_S 30

struct cc__session;
struct cc__gconn;

typedef struct cc__tenant {
    cc__hnode hn;
    cc__tenant_cfg cfg;
    struct cc_chat *chat;
    cc__map agents;           /* cc__agent by id */
    cc__map sessions;         /* open cc__session by id */
    cc__map visitors;         /* cc__visitor by id */
    cc__list queue;           /* queued sessions, by `since` */
    size_t nqueue;
    cc__list agent_conns;     /* every connected agent's gconn */
    cc_bucket frames;         /* tenant_messages_per_s, all frames */
    cc__map ipb;              /* cc__ipb by IP: upgrades per minute */
    int sops;                 /* session writes in flight */
    int queue_dirty;          /* queue changed; announce when sops == 0 */
    int deleted;
    int refs;                 /* pending async work holding the tenant */
} cc__tenant;

typedef struct cc__agent {
    cc__hnode hn;
    cc__agent_cfg cfg;
    cc__tenant *t;
    cc__list conns;           /* gconns of this agent */
    int nconns;
    int away;
    int serving;              /* sessions served (active or offline) */
    uint64_t idle_since;      /* loop ms: last got a session/came online */
    cc_bucket sends;
    int deleted;
    int refs;
} cc__agent;

typedef struct cc__visitor {
    cc__hnode hn;
    char id[65];
    cc__tenant *t;
    struct cc__session *live; /* the open session, or NULL */
    cc__list conns;
    int nconns;
    int refs;                 /* sessions in memory pointing here */
    cc_bucket sends;
} cc__visitor;

typedef struct cc__session {
    cc__hnode hn;             /* t->sessions */
    char id[65];
    cc__tenant *t;
    cc__visitor *v;
    cc__agent *agent;         /* serving agent or NULL */
    int state, prev_state;
    uint64_t created, updated, since, last_seq;
    char *preview;            /* heap, may be NULL */
    char *close_reason, *closed_by;
    uint64_t v_acked, v_read, a_acked, a_read;
    cc__list qlink;           /* t->queue while queued */
    int told_pos;             /* last `queued` position sent, 0 = none */
    cc__list gone_link;       /* chat->gone while the visitor is away */
    uint64_t gone_at;         /* loop ms */
    cc__list dirty_link;      /* chat->dirty while cursors need a write */
    uint64_t dirty_at;        /* loop ms it joined chat->dirty */
    int cur_dirty;            /* CC__CUR_VISITOR | CC__CUR_AGENT */
    int refs;                 /* 1 while open + pending references */
} cc__session;

/* One unacked msg frame on a connection. */
typedef struct cc__unacked {
    cc_ws_msg *m;
    cc__session *s;           /* referenced */
    uint64_t seq;
    uint64_t due;             /* loop ms of the next retransmission */
    uint32_t rto;             /* ms */
} cc__unacked;

enum { CC__SUB_LIVE = 0, CC__SUB_READING, CC__SUB_STALLED, CC__SUB_WAIT };

/* A connection's view of one session it delivers. */
typedef struct cc__sub {
    cc__session *s;           /* referenced */
    uint64_t last_sent;       /* highest seq written to the connection */
    int mode;                 /* CC__SUB_* */
} cc__sub;

typedef struct cc__gconn {
    struct cc_chat *chat;
    cc_ws_conn *ws;           /* NULL once closed */
    cc__tenant *t;            /* referenced */
    int role;                 /* CC_ROLE_VISITOR | CC_ROLE_AGENT */
    char user[65];
    char who[80];             /* "visitor:ID" | "agent:ID" */
    cc__agent *agent;
    cc__visitor *v;
    cc__list ulink;           /* agent->conns / visitor->conns */
    cc__list alink;           /* t->agent_conns (agents) */
    int64_t exp;              /* token exp, unix s */
    uint64_t refusals[CC__REFUSALS_MAX]; /* loop ms ring */
    int nref;
    /* delivery */
    cc__unacked *ua;          /* in send order */
    uint32_t ua_n, ua_cap;
    cc__sub *subs;
    int nsubs, subs_cap;
    cc__list rt_link;         /* chat->rt_conns while ua_n > 0 */
    cc__list link;            /* chat->conns */
    int ready;                /* hello sent */
    char want_session[65];
    uint64_t want_last_seq;
    int has_last_seq;
    char ip[48];
    int inflight;             /* sends waiting for their commit */
    int close_code;           /* close once inflight drains (4008) */
    int refs;                 /* 1 while open + pending async work */
    /* distributed mode (bus.c): on a gateway, every open connection has
     * an id; on an owner, a proxy stands for a connection of gateway
     * `node` (its process `boot`), and its output goes on the bus */
    cc__hnode bhn;            /* c->bconns */
    char bkey[112];           /* gateway: "<conn>"; owner: "node/boot/conn" */
    uint64_t conn_id;
    char node[65];            /* owner: the gateway's node */
    char boot[17];            /* owner: the gateway process's boot id */
    int proxy;                /* owner: 1 while the proxy is open */
    char owner[84];           /* gateway: "node/boot" of the engine that
                                 attached it ("" until its first record) */
} cc__gconn;

typedef struct cc__ipb {
    cc__hnode hn;
    char ip[48];
    cc_bucket b;
    uint64_t at;              /* loop ms of last use */
} cc__ipb;

typedef struct cc__metrics {
    uint64_t msgs_in, msgs_out, acks, retransmits, rate_limited;
    uint64_t frames_in, errors_out, upgrades_refused;
    uint64_t sessions_created, sessions_closed;
    /* histograms (seconds): send -> sent, loop lag */
    uint64_t sent_hist[CC__STORE_HIST_N];
    double sent_sum;
    uint64_t lag_hist[CC__STORE_HIST_N];
    double lag_sum;
} cc__metrics;

struct cc_chat {
    cc_ctx *ctx;
    const cc_allocator *a;
    cc_store *st;
    cc_server *srv;
    cc_ws_endpoint *ep;
    cc_log_cb log;
    void *log_data;
    char node[65];
    char admin_key[80];
    int admin_generated;
    int ip_upgrades_per_min, logins_per_min, max_unacked;
    uint32_t rto_ms, rto_max_ms;
    cc__map tenants;
    cc__map ipb;              /* server-wide upgrades per IP */
    cc__map loginb;           /* agent logins per IP */
    cc__list gone;            /* sessions whose visitor is away */
    cc__list dirty;           /* sessions with cursors to write */
    cc__list rt_conns;        /* gconns with unacked frames */
    cc__list conns;           /* every open gconn */
    uint64_t last_exp_check, last_prune;
    uv_timer_t tick;          /* 100 ms: retransmit, ttl, cursors, exp */
    uint64_t last_tick, last_slow;
    cc_nonce_cache *nonces;
    int ready;
    char not_ready[64];
    int closing;
    int pending;              /* async work (store ops, hashing) */
    cc_close_cb close_cb;
    void *close_data;
    int nconns_role[3];
    /* distributed mode (bus.c; docs/distributed.md) */
    int bus_role;             /* 0 embedded, CC_BUS_GATEWAY, CC_BUS_OWNER */
    int32_t bus_part;         /* owner: its CC_BUS_IN partition */
    cc_bus_ops bus;
    void *bus_data;
    char boot[17];            /* this process's boot id (hex) */
    uint64_t next_conn;       /* gateway: connection ids */
    cc__map bconns;           /* gateway: by id; owner: proxies by key */
    cc__map nodes;            /* owner: gateways heard from (cc__bnode) */
    uint64_t node_timeout_ms;
    uint64_t last_nodes;      /* loop ms of the last node sweep */
    int remote_apply;         /* applying a config change read from the bus:
                                 the model only, no store write */
    uint64_t bus_in, bus_out, bus_dropped, bus_errors;
    cc__jbuf bjb;             /* scratch for bus records (bus.c) */
    struct cc__bus_hold *hold; /* records held while a tenant loads */
    int miss_reloads;          /* gateway: lookups waiting for a reload */
    /* the HTTP API's routes (api.c): the one being run, and whether it
     * runs a second time after a reload */
    struct cc__api_rt {
        cc_chat *c;
        cc_http_cb fn;
    } api_rts[16];
    int napi_rts;
    const struct cc__api_rt *api_rt;
    int api_retried;
    cc_chat_open_cb open_cb;
    void *open_data;
    cc__metrics m;
    cc__jbuf jb;              /* scratch for encoding on the loop */
};

/* A stored message as the encoder's view of it (borrows from m). */
static inline cc__msgv
cc__msgv_of(const char *session, const cc__smsg *m)
{
    cc__msgv mv = {session, m->seq, m->from, (cc__kind)m->kind, m->body,
                   m->ts, m->has_cid ? m->cid : NULL};
    return mv;
}

/* ---- chat.c ---- */
uint64_t cc__wall_ms(void);
void cc__chat_log(cc_chat *c, int level, const char *msg, const char *fmt,
                  ...);
cc__tenant *cc__tenant_find(cc_chat *c, const char *id);
cc__agent *cc__agent_find(cc__tenant *t, const char *id);
cc__visitor *cc__visitor_get(cc__tenant *t, const char *id, int create);
void cc__visitor_maybe_free(cc__visitor *v);
void cc__tenant_unref(cc__tenant *t);
void cc__agent_unref(cc__agent *ag);
/* apply a put/patch of a tenant or agent to the model and the store */
/* cb NULL: completion only logged. With cb, the caller's completion must
 * call cc__chat_done_pending(). */
int cc__chat_tenant_apply(cc_chat *c, const cc__tenant_cfg *cfg, int *created,
                          cc__store_cb cb, void *data);
void cc__chat_tenant_delete(cc_chat *c, cc__tenant *t);
int cc__chat_agent_apply(cc_chat *c, cc__tenant *t, const cc__agent_cfg *cfg,
                         int *created, cc__store_cb cb, void *data);
void cc__chat_agent_delete(cc_chat *c, cc__agent *ag);
void cc__chat_done_pending(cc_chat *c);
int cc__hist_bucket(double seconds);
/* new random id "<prefix>" + 20 hex into out[65] */
int cc__new_id(char *out, const char *prefix);

/* ---- session.c ---- */
void cc__sess_ref(cc__session *s);
void cc__sess_unref(cc__session *s);
const char *cc__sstate_name(int st);
int cc__sstate_parse(const char *s);
int cc__sess_load(cc_chat *c, const cc__sess_rec *r);
void cc__sess_load_cursor(cc_chat *c, const char *tid, const char *sid,
                          const char *user, uint64_t acked, uint64_t read);
void cc__sess_load_done(cc_chat *c);
void cc__sess_fill_rec(const cc__session *s, cc__sess_rec *r);
/* bus, gateway -> session half */
void cc__sess_attach(cc__gconn *g);
void cc__sess_detach(cc__gconn *g);
/* link g into its user's and tenant's connection lists, nothing else (a
 * gateway's connections); undone by cc__sess_detach. 0 or CC_ENOMEM. */
int cc__sess_link(cc__gconn *g);
void cc__sess_frame(cc__gconn *g, cc__cframe *f);
void cc__sess_tick(cc_chat *c, uint64_t now);
void cc__sess_agent_gone(cc__agent *ag);  /* agent deleted */
void cc__sess_agent_available(cc__agent *ag);
void cc__sess_tenant_changed(cc__tenant *t);
#define CC__CUR_VISITOR 1
#define CC__CUR_AGENT 2
/* write the cursors of sessions dirty for a second (all: every one) */
void cc__sess_flush_cursors(cc_chat *c, uint64_t now, int all);

/* ---- gateway.c ---- */
int cc__gw_init(cc_chat *c, const cc_config *cfg);
void cc__gw_free(cc_chat *c);
void cc__gw_ref(cc__gconn *g);
void cc__gw_unref(cc__gconn *g);
/* bus, session half -> gateway */
void cc__gw_send(cc__gconn *g, cc__jbuf *b);          /* one frame */
void cc__gw_send_msg(cc__gconn *g, cc_ws_msg *m);
void cc__gw_error(cc__gconn *g, const cc__cframe *f, cc__perr code,
                  const char *message);
/* deliver a stored message frame (seq of session s) to a connection */
void cc__gw_deliver(cc__gconn *g, cc__session *s, uint64_t seq,
                    cc_ws_msg *m);
/* subscription management */
cc__sub *cc__gw_sub(cc__gconn *g, cc__session *s, int create);
void cc__gw_unsub(cc__gconn *g, cc__session *s);
/* replay s to g from seq `after` (reads the store, pages, flow control) */
void cc__gw_replay(cc__gconn *g, cc__session *s, uint64_t after);
void cc__gw_acked(cc__gconn *g, cc__session *s, uint64_t seq);
void cc__gw_close(cc__gconn *g, int code, const char *reason);
void cc__gw_set_idle(cc__gconn *g, uint64_t ms);
/* the connection opened (socket, or a proxy's open record): count it and
 * attach it (embedded, owner) or announce it to the owner (gateway) */
void cc__gw_opened(cc__gconn *g);
/* the connection ended (socket closed, or a proxy's close record) */
void cc__gw_closed(cc__gconn *g, int code);
/* a validated frame from a connection, past the rate limits */
void cc__gw_dispatch(cc__gconn *g, cc__cframe *f);
/* a send of g completed (its `sent` or error was written) */
void cc__gw_send_done(cc__gconn *g);
void cc__gw_tick(cc_chat *c, uint64_t now);
cc_ws_msg *cc__gw_msg_frame(cc_chat *c, const cc__session *s,
                            const cc__smsg *m);

/* ---- bus.c (distributed mode) ---- */
/* is g an open connection (local socket, or a live proxy) */
static inline int
cc__gw_live(const cc__gconn *g)
{
    return g->ws != NULL || g->proxy;
}
int cc__bus_init(cc_chat *c);
void cc__bus_free(cc_chat *c);
void cc__bus_closing(cc_chat *c);   /* owner: end every proxy */
/* gateway: a local connection opened / sent a frame / ended */
void cc__bus_conn_open(cc__gconn *g);
void cc__bus_conn_frame(cc__gconn *g, const cc__cframe *f, const char *text,
                        size_t len);
void cc__bus_conn_closed(cc__gconn *g);
/* owner: output for a proxy */
void cc__bus_out_text(cc__gconn *g, const char *p, size_t n);
void cc__bus_out_close(cc__gconn *g, int code, const char *reason);
void cc__bus_out_idle(cc__gconn *g, uint64_t ms);
/* gateway: a lookup of tenant tid (or one of its agents) missed; reload
 * it and its agents from the store, then run then(c, arg) (whatever the
 * outcome). At most 32 wait at once. Returns 0 or an error (then never
 * runs): CC_ESTATE (not a gateway, closing), CC_EBUSY, CC_ENOMEM. */
int cc__bus_reload_tenant(cc_chat *c, const char *tid,
                          void (*then)(cc_chat *c, void *arg), void *arg);
/* gateway: a config change the API stored; tell the others once durable.
 * kind: "tenant", "tenant_deleted", "agent", "agent_deleted". */
void cc__bus_config_changed(cc_chat *c, const char *kind, const char *tid,
                            const char *aid);
void cc__bus_tick(cc_chat *c, uint64_t now);
/* lib/net/ws.c: the payload of an encoded server frame */
const uint8_t *cc__ws_msg_payload(const cc_ws_msg *m, size_t *len);

/* ---- api.c ---- */
int cc__api_mount(cc_chat *c, cc_server *srv);
void cc__api_free(cc_chat *c);
/* ---- gateway.c: token checks shared with the HTTP API ---- */
int cc__chat_ip_take(cc_chat *c, cc__map *m, const char *ip, int per_min);
/* A decimal integer 0..2^53-1 (docs/protocol.md rule 13), digits only: 0,
 * or -1 for anything else. */
int cc__parse_u53(const char *s, uint64_t *out);
int cc__chat_verify_token(cc_chat *c, const char *tok, size_t len,
                          cc_claims *cl, cc__tenant **tp, const char **why);
/* 1 when cc__chat_verify_token failed (rc, why) only because the token's
 * tenant or agent is not known here, with the tenant id in tid; else 0 */
int cc__token_miss(int rc, const char *why, const char *tok, size_t len,
                   char tid[65]);

/* ---- metrics.c ---- */
int cc__metrics_render(cc_chat *c, cc__jbuf *b);

#endif
