/*
 * lib/chat/api.c - the HTTP API of PROTOCOL.md §7 (uploads excepted):
 * tokens for visitors and agents, sessions and their messages, tenants and
 * agents for admins, /healthz, /readyz and /metrics. Every change is
 * answered after the store committed it. Password hashing runs on the
 * libuv thread pool, never on the loop.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "chat_int.h"

typedef struct cred {
    int admin;          /* the server's admin key */
    int token;          /* a verified token in cl */
    cc_claims cl;
    cc__tenant *t;      /* the token's tenant */
} cred;

typedef struct areq {
    cc_chat *c;
    cc_http_req *req;
    uv_work_t work;
    char tid[65], id[65];
    int created, ok, role;
    char visitor[65];
    uint64_t after;
    int limit;
    char pw[CC__PW_MAX + 1];
    char hash[CC__PWHASH_MAX];
    int patch_pw;
    cc__agent_cfg ag;
    cc__tenant_cfg tc;
} areq;

static areq *
areq_new(cc_chat *c, cc_http_req *req)
{
    areq *r = cc__calloc(c->a, 1, sizeof(*r));
    if (!r) {
        cc_http_respond_error(req, 503, "internal", "out of memory");
        return NULL;
    }
    r->c = c;
    r->req = req;
    c->pending++;
    return r;
}

static void
areq_free(areq *r)
{
    cc_chat *c = r->c;
    memset(r->pw, 0, sizeof(r->pw));
    cc__free(c->a, r, sizeof(*r));
    cc__chat_done_pending(c);
}

static void
respond_jb(cc_http_req *req, int status, cc__jbuf *b)
{
    if (b->oom)
        cc_http_respond_error(req, 503, "internal", "out of memory");
    else
        cc_http_respond(req, status, "application/json", NULL, b->p, b->len);
}

static int
ct_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* The credential of `Authorization: Bearer <x>`, or NULL. */
static const char *
bearer(cc_http_req *req)
{
    const char *auth = cc_http_req_header(req, "Authorization");
    if (!auth || !cc__strncaseeq(auth, "Bearer ", 7))
        return NULL;
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    return tok;
}

/* ---- read your writes across gateways ----
 * A tenant or agent created through another gateway a moment ago may not
 * have reached this one yet (chat.control). A request that names one this
 * gateway does not know waits for one reload of that tenant from the
 * store and is then run again from the start; only the second run answers
 * 404 or 401 (cc__bus_reload_tenant bounds how many wait). */

typedef struct api_wait {
    const struct cc__api_rt *rt;
    cc_server *srv;
    cc_http_req *req;
} api_wait;

static void
api_run(const struct cc__api_rt *rt, cc_server *srv, cc_http_req *req,
        int retried)
{
    cc_chat *c = rt->c;
    c->api_rt = rt;
    c->api_retried = retried;
    rt->fn(srv, req, c);
    c->api_rt = NULL;
    c->api_retried = 0;
}

static void
api_entry(cc_server *srv, cc_http_req *req, void *data)
{
    api_run(data, srv, req, 0);
}

static void
api_retry(cc_chat *c, void *arg)
{
    api_wait w = *(api_wait *)arg;
    cc__free(c->a, arg, sizeof(api_wait));
    if (c->closing) {
        cc_http_respond_error(w.req, 503, "unavailable", "closing");
        return;
    }
    api_run(w.rt, w.srv, w.req, 1);
}

/* 1: req will be run again once tenant tid has been reloaded (answer
 * nothing now); 0: answer it as the miss it is */
static int
api_wait_reload(cc_chat *c, cc_http_req *req, const char *tid)
{
    if (c->bus_role != CC_BUS_GATEWAY || !c->api_rt || c->api_retried ||
        !tid || !cc__valid_id(tid, strlen(tid)))
        return 0;
    api_wait *w = cc__calloc(c->a, 1, sizeof(*w));
    if (!w)
        return 0;
    w->rt = c->api_rt;
    w->srv = cc_http_req_server(req);
    w->req = req;
    if (cc__bus_reload_tenant(c, tid, api_retry, w) != 0) {
        cc__free(c->a, w, sizeof(*w));
        return 0;
    }
    return 1;
}

/* Credentials: the admin key or a token. Answers 401 itself and returns
 * -1 when there are none or they are bad (or waits for a reload:
 * api_wait_reload). */
static int
get_cred(cc_chat *c, cc_http_req *req, cred *cr)
{
    memset(cr, 0, sizeof(*cr));
    const char *tok = bearer(req);
    if (!tok) {
        cc_http_respond_error(req, 401, "unauthorized", "missing credentials");
        return -1;
    }
    if (c->admin_key[0] && ct_eq(tok, c->admin_key)) {
        cr->admin = 1;
        return 0;
    }
    const char *why = "";
    int rc = cc__chat_verify_token(c, tok, strlen(tok), &cr->cl, &cr->t,
                                   &why);
    if (rc != 0) {
        char tid[65];
        if (cc__token_miss(rc, why, tok, strlen(tok), tid) &&
            api_wait_reload(c, req, tid))
            return -1;
        cc_http_respond_error(req, 401, "unauthorized", why);
        return -1;
    }
    cr->token = 1;
    return 0;
}

static int
may_admin_tenant(const cred *cr, const char *tid)
{
    return cr->admin || (cr->token && cr->cl.role == CC_ROLE_ADMIN &&
                         strcmp(cr->cl.tid, tid) == 0);
}

static cJSON *
parse_body(cc_http_req *req)
{
    size_t len = 0;
    const uint8_t *body = cc_http_req_body(req, &len);
    cJSON *j = NULL;
    const char *err = "";
    int rc = cc__json_parse_object((const char *)body, body ? len : 0, &j,
                                   &err);
    if (rc == CC_ENOMEM)
        cc_http_respond_error(req, 503, "internal", "out of memory");
    else if (rc != 0)
        cc_http_respond_error(req, 400, "bad_request", err);
    return j;
}

static const char *
jstr(cJSON *j, const char *name)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
mint(cc__tenant *t, const char *sub, int role, int64_t ttl, char *out,
     size_t cap, int64_t *exp)
{
    cc_claims cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.tid, sizeof(cl.tid), "%s", t->cfg.id);
    snprintf(cl.sub, sizeof(cl.sub), "%s", sub);
    cl.role = role;
    cl.iat = (int64_t)(cc__wall_ms() / 1000u);
    cl.exp = cl.iat + ttl;
    char jti[65];
    if (cc__new_id(jti, "j_") == 0)
        snprintf(cl.jti, sizeof(cl.jti), "%s", jti);
    *exp = cl.exp;
    return cc_jwt_mint(&cl, (const uint8_t *)t->cfg.secret,
                       strlen(t->cfg.secret), out, cap);
}

/* A per-IP limit for an HTTP endpoint; answers 429 itself. */
static int
ip_limited(cc_chat *c, cc_http_req *req, cc__map *m, int per_min)
{
    char ip[48] = "";
    if (c->api_retried)   /* charged on the first run */
        return 0;
    cc_http_req_peer(req, ip, sizeof(ip));
    if (!cc__chat_ip_take(c, m, ip, per_min))
        return 0;
    cc_http_respond_error(req, 429, "rate_limited",
                          "too many requests from this address");
    return 1;
}

/* {"token","visitor"?,"expires"} */
static void
respond_token(cc_chat *c, cc_http_req *req, const char *tok,
              const char *visitor, int64_t exp)
{
    cc__jbuf b;
    cc__jbuf_init(&b, c->a);
    cc__jbuf_raw(&b, "{\"token\":", 9);
    cc__jbuf_str(&b, tok);
    if (visitor) {
        cc__jbuf_raw(&b, ",\"visitor\":", 11);
        cc__jbuf_str(&b, visitor);
    }
    cc__jbuf_raw(&b, ",\"expires\":", 11);
    cc__jbuf_i64(&b, exp);
    cc__jbuf_raw(&b, "}", 1);
    respond_jb(req, 200, &b);
    cc__jbuf_free(&b);
}

/* ---- POST /v1/auth/visitor ---- */

/* The widget runs on the tenant's own site, so the endpoints it calls
 * answer cross-origin requests (rule 64). No cookies are involved: the
 * credential is a bearer token, so "*" gives nothing away. */
#define CORS_ALLOW "Access-Control-Allow-Origin: *\r\n"

static void
preflight(cc_server *srv, cc_http_req *req, void *data)
{
    CC__UNUSED(srv);
    CC__UNUSED(data);
    cc_http_respond(req, 204, NULL,
                    CORS_ALLOW
                    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                    "Access-Control-Allow-Headers: Authorization, "
                    "Content-Type\r\n"
                    "Access-Control-Max-Age: 600\r\n",
                    NULL, 0);
}

/* Rule 65: a visitor renews its own token by presenting it. Returns 1
 * when `Authorization: Bearer` holds a valid visitor token of tenant t
 * for exactly this visitor id. */
static int
own_visitor_token(cc_chat *c, cc_http_req *req, cc__tenant *t,
                  const char *vid)
{
    const char *tok = bearer(req);
    if (!tok)
        return 0;
    cc_claims cl;
    cc__tenant *tt = NULL;
    const char *why = "";
    return cc__chat_verify_token(c, tok, strlen(tok), &cl, &tt, &why) == 0 &&
           tt == t && cl.role == CC_ROLE_VISITOR && strcmp(cl.sub, vid) == 0;
}

static void
auth_visitor(cc_server *srv, cc_http_req *req, void *data)
{
    cc_chat *c = data;
    CC__UNUSED(srv);
    cc_http_req_extra_headers(req, CORS_ALLOW);
    if (ip_limited(c, req, &c->ipb, c->ip_upgrades_per_min))
        return;
    cJSON *j = parse_body(req);
    if (!j)
        return;
    const char *tid = jstr(j, "tenant");
    cJSON *vj = cJSON_GetObjectItemCaseSensitive(j, "visitor");
    cc__tenant *t = tid ? cc__tenant_find(c, tid) : NULL;
    char vid[65];
    if (!tid) {
        cc_http_respond_error(req, 400, "bad_request", "tenant: missing");
        goto out;
    }
    if (!t) {
        if (!api_wait_reload(c, req, tid))
            cc_http_respond_error(req, 404, "not_found",
                                  "tenant: no such tenant");
        goto out;
    }
    if (vj && !cJSON_IsNull(vj)) {
        if (!cJSON_IsString(vj) ||
            !cc__valid_id(vj->valuestring, strlen(vj->valuestring))) {
            cc_http_respond_error(req, 400, "bad_request",
                                  "visitor: not a valid id");
            goto out;
        }
        const char *sig = cc_http_req_header(req, "X-Chatcore-Signature");
        if (!sig && own_visitor_token(c, req, t, vj->valuestring)) {
            snprintf(vid, sizeof(vid), "%s", vj->valuestring);
            goto mint_it;
        }
        size_t blen = 0;
        const uint8_t *body = cc_http_req_body(req, &blen);
        int64_t now = (int64_t)(cc__wall_ms() / 1000u);
        const char *sec[2];
        int n = cc__tenant_secrets(&t->cfg, now, sec), rc = CC_EAUTH;
        /* the nonce is spent by the first check that gets that far, so
         * try the old secret only when the current one fails the MAC */
        for (int i = 0; sig && i < n && rc != 0; i++)
            rc = cc_sig_verify(sig, (const uint8_t *)sec[i], strlen(sec[i]),
                               body, blen, now, c->nonces);
        if (rc != 0) {
            cc_http_respond_error(req, 401, "unauthorized",
                                  sig ? "bad or replayed signature"
                                      : "a visitor id needs "
                                        "X-Chatcore-Signature or that "
                                        "visitor's own token");
            goto out;
        }
        snprintf(vid, sizeof(vid), "%s", vj->valuestring);
    } else if (cc__new_id(vid, "v_") != 0) {
        cc_http_respond_error(req, 503, "internal", "no randomness");
        goto out;
    }
mint_it:;
    char tok[1024];
    int64_t exp;
    if (mint(t, vid, CC_ROLE_VISITOR, CC__VISITOR_TOKEN_S, tok, sizeof(tok),
             &exp) < 0) {
        cc_http_respond_error(req, 503, "internal", "could not mint a token");
        goto out;
    }
    respond_token(c, req, tok, vid, exp);
out:
    cJSON_Delete(j);
}

/* ---- POST /v1/auth/agent ---- */

/* A fixed valid hash to verify against for unknown agents, so the answer
 * takes as long as for a wrong password. */
#define DUMMY_HASH "pbkdf2-sha256$60000$AAAAAAAAAAAAAAAAAAAAAA$" \
                   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void
login_work(uv_work_t *w)
{
    areq *r = CC__CONTAINER_OF(w, areq, work);
    r->ok = cc__pw_verify(r->pw, r->hash[0] ? r->hash : DUMMY_HASH) == 1 &&
            r->hash[0];
}

static void
login_done(uv_work_t *w, int status)
{
    areq *r = CC__CONTAINER_OF(w, areq, work);
    cc_chat *c = r->c;
    cc__tenant *t = cc__tenant_find(c, r->tid);
    cc__agent *ag = t ? cc__agent_find(t, r->id) : NULL;
    if (status != 0 || !r->ok || !ag) {
        cc_http_respond_error(r->req, 401, "unauthorized",
                              "wrong tenant, agent or password");
        areq_free(r);
        return;
    }
    char tok[1024];
    int64_t exp;
    if (mint(t, r->id, CC_ROLE_AGENT, CC__AGENT_TOKEN_S, tok, sizeof(tok),
             &exp) < 0) {
        cc_http_respond_error(r->req, 503, "internal", "could not mint");
        areq_free(r);
        return;
    }
    respond_token(c, r->req, tok, NULL, exp);
    cc__chat_log(c, CC_LOG_INFO, "agent login",
                 "\"tenant\":\"%s\",\"agent\":\"%s\"", r->tid, r->id);
    areq_free(r);
}

static void
auth_agent(cc_server *srv, cc_http_req *req, void *data)
{
    cc_chat *c = data;
    CC__UNUSED(srv);
    if (ip_limited(c, req, &c->loginb, c->logins_per_min))
        return;
    cJSON *j = parse_body(req);
    if (!j)
        return;
    const char *tid = jstr(j, "tenant"), *aid = jstr(j, "agent"),
               *pw = jstr(j, "password");
    if (!tid || !aid || !pw) {
        cc_http_respond_error(req, 400, "bad_request",
                              !tid ? "tenant: missing" : !aid
                              ? "agent: missing" : "password: missing");
        cJSON_Delete(j);
        return;
    }
    cc__tenant *t = cc__tenant_find(c, tid);
    cc__agent *ag = t ? cc__agent_find(t, aid) : NULL;
    if (!ag && api_wait_reload(c, req, tid)) {
        cJSON_Delete(j);
        return;
    }
    areq *r = areq_new(c, req);
    if (!r) {
        cJSON_Delete(j);
        return;
    }
    snprintf(r->tid, sizeof(r->tid), "%s", tid);
    snprintf(r->id, sizeof(r->id), "%s", aid);
    snprintf(r->pw, sizeof(r->pw), "%s", pw);
    cJSON_Delete(j);
    if (ag)
        memcpy(r->hash, ag->cfg.pwhash, sizeof(r->hash));
    if (uv_queue_work(c->ctx->loop, &r->work, login_work, login_done) != 0) {
        cc_http_respond_error(req, 503, "internal", "busy");
        areq_free(r);
    }
}

/* ---- sessions ---- */

static void
session_obj(cc__jbuf *b, const cc__sess_rec *r)
{
    cc__jbuf_raw(b, "{\"id\":", 6);
    cc__jbuf_str(b, r->id);
    cc__jbuf_raw(b, ",\"visitor\":", 11);
    cc__jbuf_str(b, r->visitor);
    cc__jbuf_raw(b, ",\"agent\":", 9);
    cc__jbuf_str(b, r->agent[0] ? r->agent : NULL);
    cc__jbuf_raw(b, ",\"state\":", 9);
    cc__jbuf_str(b, cc__sstate_name(r->state));
    cc__jbuf_raw(b, ",\"created\":", 11);
    cc__jbuf_u64(b, r->created);
    cc__jbuf_raw(b, ",\"updated\":", 11);
    cc__jbuf_u64(b, r->updated);
    cc__jbuf_raw(b, ",\"last_seq\":", 12);
    cc__jbuf_u64(b, r->last_seq);
    cc__jbuf_raw(b, "}", 1);
}

/* The tenant a request is about: the token's, or ?tenant= with
 * the admin key. Answers the error itself and returns NULL. */
static cc__tenant *
request_tenant(cc_chat *c, cc_http_req *req, const cred *cr)
{
    if (cr->token)
        return cr->t;
    char tid[80];
    if (cc_http_req_query_param(req, "tenant", tid, sizeof(tid)) < 0) {
        cc_http_respond_error(req, 400, "bad_request",
                              "tenant: required with the admin key");
        return NULL;
    }
    cc__tenant *t = cc__tenant_find(c, tid);
    if (!t && !api_wait_reload(c, req, tid))
        cc_http_respond_error(req, 404, "not_found", "tenant: no such tenant");
    return t;
}

static int
query_uint(cc_http_req *req, const char *name, uint64_t def, uint64_t max,
           uint64_t *out)
{
    char v[40];
    int n = cc_http_req_query_param(req, name, v, sizeof(v));
    if (n == CC_ENOENT || (n == 0)) {
        *out = def;
        return 0;
    }
    uint64_t x;
    if (n < 0 || cc__parse_u53(v, &x) != 0)
        return -1;
    *out = x > max ? max : x;
    return 0;
}

static void
list_done(cc__store_res *res, void *data)
{
    areq *r = data;
    if (res->rc != 0) {
        cc_http_respond_error(r->req, 503, "internal", "the store failed");
        areq_free(r);
        return;
    }
    cc__jbuf b;
    cc__jbuf_init(&b, r->c->a);
    cc__jbuf_raw(&b, "{\"sessions\":[", 13);
    for (size_t i = 0; i < res->nsess; i++) {
        if (i)
            cc__jbuf_raw(&b, ",", 1);
        session_obj(&b, &res->sess[i]);
    }
    cc__jbuf_raw(&b, "]}", 2);
    respond_jb(r->req, 200, &b);
    cc__jbuf_free(&b);
    areq_free(r);
}

static void
sessions_list(cc_server *srv, cc_http_req *req, void *data)
{
    cc_chat *c = data;
    CC__UNUSED(srv);
    cc_http_req_extra_headers(req, CORS_ALLOW);
    cred cr;
    if (get_cred(c, req, &cr) != 0)
        return;
    cc__tenant *t = request_tenant(c, req, &cr);
    if (!t)
        return;
    char st[20];
    int state = 0;
    if (cc_http_req_query_param(req, "state", st, sizeof(st)) >= 0 &&
        st[0] && !(state = cc__sstate_parse(st))) {
        cc_http_respond_error(req, 400, "bad_request",
                              "state: new, queued, active, offline or closed");
        return;
    }
    uint64_t lim;
    if (query_uint(req, "limit", 100, 1000, &lim) != 0 || lim == 0) {
        cc_http_respond_error(req, 400, "bad_request",
                              "limit: must be an integer from 1 to 1000");
        return;
    }
    areq *r = areq_new(c, req);
    if (!r)
        return;
    int vis = cr.token && cr.cl.role == CC_ROLE_VISITOR;
    if (cc__store_sessions_list(c->st, t->cfg.id, state,
                                vis ? cr.cl.sub : NULL, (int)lim, list_done,
                                r) != 0) {
        cc_http_respond_error(req, 503, "internal", "the store is busy");
        areq_free(r);
    }
}

static void
msgs_done(cc__store_res *res, void *data)
{
    areq *r = data;
    if (res->rc != 0) {
        cc_http_respond_error(r->req, 503, "internal", "the store failed");
        areq_free(r);
        return;
    }
    cc__jbuf b;
    cc__jbuf_init(&b, r->c->a);
    cc__jbuf_raw(&b, "{\"messages\":[", 13);
    for (size_t i = 0; i < res->nmsgs; i++) {
        const cc__smsg *m = &res->msgs[i];
        cc__msgv mv = cc__msgv_of(r->id, m);
        if (i)
            cc__jbuf_raw(&b, ",", 1);
        cc__enc_msg_obj(&b, &mv, 0);
    }
    cc__jbuf_raw(&b, "],\"more\":", 9);
    cc__jbuf_bool(&b, res->more);
    cc__jbuf_raw(&b, "}", 1);
    respond_jb(r->req, 200, &b);
    cc__jbuf_free(&b);
    areq_free(r);
}

static void
sess_get_done(cc__store_res *res, void *data)
{
    areq *r = data;
    cc_chat *c = r->c;
    if (res->rc != 0 && res->rc != CC_ENOENT) {
        cc_http_respond_error(r->req, 503, "internal", "the store failed");
        areq_free(r);
        return;
    }
    if (res->rc == CC_ENOENT || res->nsess == 0 ||
        (r->visitor[0] && strcmp(res->sess[0].visitor, r->visitor) != 0)) {
        cc_http_respond_error(r->req, 404, "not_found",
                              "session: no such session");
        areq_free(r);
        return;
    }
    if (r->limit == 0) {
        cc__jbuf b;
        cc__jbuf_init(&b, c->a);
        session_obj(&b, &res->sess[0]);
        respond_jb(r->req, 200, &b);
        cc__jbuf_free(&b);
        areq_free(r);
        return;
    }
    if (cc__store_msgs_read(c->st, r->tid, r->id, r->after, r->limit, 0,
                            msgs_done, r) != 0) {
        cc_http_respond_error(r->req, 503, "internal", "the store is busy");
        areq_free(r);
    }
}

static void
sessions_one(cc_server *srv, cc_http_req *req, void *data)
{
    cc_chat *c = data;
    CC__UNUSED(srv);
    cc_http_req_extra_headers(req, CORS_ALLOW);
    const char *path = cc_http_req_path(req) + strlen("/v1/sessions/");
    char id[65];
    const char *slash = strchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : strlen(path);
    int msgs = slash && strcmp(slash, "/messages") == 0;
    if (n == 0 || n > 64 || (slash && !msgs)) {
        cc_http_respond_error(req, 404, "not_found", "no such resource");
        return;
    }
    memcpy(id, path, n);
    id[n] = '\0';
    if (!cc__valid_id(id, n)) {
        cc_http_respond_error(req, 404, "not_found",
                              "session: no such session");
        return;
    }
    cred cr;
    if (get_cred(c, req, &cr) != 0)
        return;
    cc__tenant *t = request_tenant(c, req, &cr);
    if (!t)
        return;
    uint64_t after = 0, lim = 0;
    if (msgs) {
        if (query_uint(req, "after", 0, CC__NUM_MAX, &after) != 0) {
            cc_http_respond_error(req, 400, "bad_request",
                                  "after: must be an integer from 0 to "
                                  "9007199254740991");
            return;
        }
        if (query_uint(req, "limit", CC__SYNC_LIMIT_DEFAULT,
                       CC__SYNC_LIMIT_MAX, &lim) != 0 || lim == 0) {
            cc_http_respond_error(req, 400, "bad_request",
                                  "limit: must be an integer of at least 1");
            return;
        }
    }
    areq *r = areq_new(c, req);
    if (!r)
        return;
    snprintf(r->tid, sizeof(r->tid), "%s", t->cfg.id);
    snprintf(r->id, sizeof(r->id), "%s", id);
    if (cr.token && cr.cl.role == CC_ROLE_VISITOR)
        snprintf(r->visitor, sizeof(r->visitor), "%s", cr.cl.sub);
    r->after = after;
    r->limit = (int)lim;
    if (cc__store_session_get(c->st, r->tid, id, sess_get_done, r) != 0) {
        cc_http_respond_error(req, 503, "internal", "the store is busy");
        areq_free(r);
    }
}

/* ---- tenants and agents ---- */

/* Answer a tenant (r->tc) or agent (r->ag) write once it committed: 201
 * when it created, 200 when it replaced; a tenant's secret only when r->ok
 * (create and rotate). */
static void
saved_done(cc__store_res *res, void *data, int agent)
{
    areq *r = data;
    if (res->rc != 0) {
        cc_http_respond_error(r->req, 503, "internal", "the store failed");
    } else {
        cc__jbuf b;
        cc__jbuf_init(&b, r->c->a);
        if (agent)
            cc__agent_to_json(&b, &r->ag);
        else
            cc__tenant_to_json(&b, &r->tc, r->ok);
        respond_jb(r->req, r->created ? 201 : 200, &b);
        cc__jbuf_free(&b);
    }
    areq_free(r);
}

static void
tenant_json_done(cc__store_res *res, void *data)
{
    saved_done(res, data, 0);
}

static void
deleted_done(cc__store_res *res, void *data)
{
    areq *r = data;
    if (res->rc != 0)
        cc_http_respond_error(r->req, 503, "internal", "the store failed");
    else
        cc_http_respond(r->req, 204, NULL, NULL, NULL, 0);
    areq_free(r);
}

static void
agent_json_done(cc__store_res *res, void *data)
{
    saved_done(res, data, 1);
}

static void
tenants_list(cc_chat *c, cc_http_req *req, const cred *cr)
{
    cc__jbuf b;
    cc__jbuf_init(&b, c->a);
    cc__jbuf_raw(&b, "{\"tenants\":[", 12);
    int first = 1;
    size_t it = 0;
    for (cc__hnode *n = cc__map_next(&c->tenants, &it, NULL); n;
         n = cc__map_next(&c->tenants, &it, n)) {
        cc__tenant *t = CC__CONTAINER_OF(n, cc__tenant, hn);
        if (!may_admin_tenant(cr, t->cfg.id))
            continue;
        if (!first)
            cc__jbuf_raw(&b, ",", 1);
        first = 0;
        cc__tenant_to_json(&b, &t->cfg, 0);
    }
    cc__jbuf_raw(&b, "]}", 2);
    respond_jb(req, 200, &b);
    cc__jbuf_free(&b);
}

static void
tenant_put(cc_chat *c, cc_http_req *req, const char *tid, int patch)
{
    size_t len = 0;
    const uint8_t *body = cc_http_req_body(req, &len);
    cc__tenant *old = cc__tenant_find(c, tid);
    if (patch && !old) {
        if (!api_wait_reload(c, req, tid))
            cc_http_respond_error(req, 404, "not_found",
                                  "tenant: no such tenant");
        return;
    }
    areq *r = areq_new(c, req);
    if (!r)
        return;
    const char *err = "";
    int rc;
    const char *js = (const char *)(body ? body : (const uint8_t *)"");
    if (patch)
        rc = cc__tenant_patch(&old->cfg, js, len, &r->tc, &err);
    else
        rc = cc__tenant_replace(tid, old ? &old->cfg : NULL, js, len, &r->tc,
                                &err);
    if (rc != 0) {
        if (rc == CC_EINVAL)
            cc_http_respond_error(req, 400, "bad_request", err);
        else
            cc_http_respond_error(req, 503, "internal", "out of memory");
        areq_free(r);
        return;
    }
    rc = cc__chat_tenant_apply(c, &r->tc, &r->created, tenant_json_done, r);
    if (rc != 0) {
        cc_http_respond_error(req, 503, "internal", "the store is busy");
        areq_free(r);
        return;
    }
    r->ok = r->created;   /* the secret is shown on create only */
    cc__chat_log(c, CC_LOG_INFO, r->created ? "tenant created"
                                            : "tenant updated",
                 "\"tenant\":\"%s\"", tid);
}

static void
pw_work(uv_work_t *w)
{
    areq *r = CC__CONTAINER_OF(w, areq, work);
    r->ok = cc__pw_hash(r->pw, CC__PW_ITER, r->hash) == 0;
}

static void
pw_done(uv_work_t *w, int status)
{
    areq *r = CC__CONTAINER_OF(w, areq, work);
    cc_chat *c = r->c;
    memset(r->pw, 0, sizeof(r->pw));
    cc__tenant *t = cc__tenant_find(c, r->tid);
    if (status != 0 || !r->ok || !t) {
        if (!t)
            cc_http_respond_error(r->req, 404, "not_found",
                                  "tenant: no such tenant");
        else
            cc_http_respond_error(r->req, 503, "internal",
                                  "password hashing failed");
        areq_free(r);
        return;
    }
    memcpy(r->ag.pwhash, r->hash, sizeof(r->ag.pwhash));
    if (cc__chat_agent_apply(c, t, &r->ag, &r->created, agent_json_done, r) !=
        0) {
        cc_http_respond_error(r->req, 503, "internal", "the store is busy");
        areq_free(r);
        return;
    }
    cc__chat_log(c, CC_LOG_INFO, "agent saved",
                 "\"tenant\":\"%s\",\"agent\":\"%s\"", r->tid, r->id);
}

static void
agent_put(cc_chat *c, cc_http_req *req, cc__tenant *t, const char *aid,
          int patch)
{
    size_t len = 0;
    const uint8_t *body = cc_http_req_body(req, &len);
    cc__agent *old = cc__agent_find(t, aid);
    if (patch && !old) {
        if (!api_wait_reload(c, req, t->cfg.id))
            cc_http_respond_error(req, 404, "not_found",
                                  "agent: no such agent");
        return;
    }
    areq *r = areq_new(c, req);
    if (!r)
        return;
    snprintf(r->tid, sizeof(r->tid), "%s", t->cfg.id);
    snprintf(r->id, sizeof(r->id), "%s", aid);
    const char *err = "";
    const char *js = (const char *)(body ? body : (const uint8_t *)"");
    int rc = patch ? cc__agent_patch(&old->cfg, js, len, &r->ag, r->pw, &err)
                   : cc__agent_from_put(t->cfg.id, aid, js, len, &r->ag, r->pw,
                                        &err);
    if (rc != 0) {
        if (rc == CC_EINVAL)
            cc_http_respond_error(req, 400, "bad_request", err);
        else
            cc_http_respond_error(req, 503, "internal", "out of memory");
        areq_free(r);
        return;
    }
    if (r->pw[0]) {
        if (uv_queue_work(c->ctx->loop, &r->work, pw_work, pw_done) != 0) {
            cc_http_respond_error(req, 503, "internal", "busy");
            areq_free(r);
        }
        return;
    }
    if (cc__chat_agent_apply(c, t, &r->ag, &r->created, agent_json_done, r) !=
        0) {
        cc_http_respond_error(req, 503, "internal", "the store is busy");
        areq_free(r);
    }
}

static void
agents_list(cc_chat *c, cc_http_req *req, cc__tenant *t)
{
    cc__jbuf b;
    cc__jbuf_init(&b, c->a);
    cc__jbuf_raw(&b, "{\"agents\":[", 11);
    int first = 1;
    size_t it = 0;
    for (cc__hnode *n = cc__map_next(&t->agents, &it, NULL); n;
         n = cc__map_next(&t->agents, &it, n)) {
        if (!first)
            cc__jbuf_raw(&b, ",", 1);
        first = 0;
        cc__agent_to_json(&b, &CC__CONTAINER_OF(n, cc__agent, hn)->cfg);
    }
    cc__jbuf_raw(&b, "]}", 2);
    respond_jb(req, 200, &b);
    cc__jbuf_free(&b);
}

static void
tenants_route(cc_server *srv, cc_http_req *req, void *data)
{
    cc_chat *c = data;
    CC__UNUSED(srv);
    const char *m = cc_http_req_method(req);
    const char *path = cc_http_req_path(req);
    cred cr;
    if (strcmp(path, "/v1/tenants") == 0 || strcmp(path, "/v1/tenants/") == 0) {
        if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
            cc_http_respond(req, 405, "application/json", "Allow: GET\r\n",
                            "{\"error\":\"method_not_allowed\",\"message\":"
                            "\"use GET\"}", 45);
            return;
        }
        if (get_cred(c, req, &cr) != 0)
            return;
        if (!cr.admin && cr.cl.role != CC_ROLE_ADMIN) {
            cc_http_respond_error(req, 403, "forbidden", "admins only");
            return;
        }
        tenants_list(c, req, &cr);
        return;
    }
    /* /v1/tenants/{tid}[/secret | /agents[/{aid}]] */
    const char *p = path + strlen("/v1/tenants/");
    char seg[4][80];
    int nseg = 0;
    while (*p && nseg < 4) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || n >= sizeof(seg[0]))
            break;
        memcpy(seg[nseg], p, n);
        seg[nseg++][n] = '\0';
        p += n;
        if (*p == '/')
            p++;
    }
    if (*p || nseg == 0 || !cc__valid_id(seg[0], strlen(seg[0]))) {
        cc_http_respond_error(req, 404, "not_found", "no such resource");
        return;
    }
    if (get_cred(c, req, &cr) != 0)
        return;
    const char *tid = seg[0];
    /* rule 66: agents may read their colleagues (to pick a transfer
     * target), never change them */
    int agent_reads = cr.token && cr.cl.role == CC_ROLE_AGENT &&
                      strcmp(cr.cl.tid, tid) == 0 && nseg >= 2 &&
                      strcmp(seg[1], "agents") == 0 &&
                      (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0);
    if (!may_admin_tenant(&cr, tid) && !agent_reads) {
        cc_http_respond_error(req, 403, "forbidden",
                              "needs the admin key or this tenant's admin "
                              "token");
        return;
    }
    cc__tenant *t = cc__tenant_find(c, tid);
    if (nseg == 1) {
        if (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
            tenant_put(c, req, tid, m[1] == 'A');
            return;
        }
        if (!t) {
            if (!api_wait_reload(c, req, tid))
                cc_http_respond_error(req, 404, "not_found",
                                      "tenant: no such tenant");
            return;
        }
        if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
            cc__jbuf b;
            cc__jbuf_init(&b, c->a);
            cc__tenant_to_json(&b, &t->cfg, 0);
            respond_jb(req, 200, &b);
            cc__jbuf_free(&b);
            return;
        }
        if (strcmp(m, "DELETE") == 0) {
            if (!cr.admin) {
                cc_http_respond_error(req, 403, "forbidden",
                                      "only the admin key deletes tenants");
                return;
            }
            areq *r = areq_new(c, req);
            if (!r)
                return;
            cc__chat_log(c, CC_LOG_INFO, "tenant deleted",
                         "\"tenant\":\"%s\"", tid);
            cc__chat_tenant_delete(c, t);
            /* answer after the deletion committed: a barrier read */
            if (cc__store_cursor_get(c->st, tid, "-", "-", deleted_done, r)
                != 0) {
                cc_http_respond(req, 204, NULL, NULL, NULL, 0);
                areq_free(r);
            }
            return;
        }
    } else if (!t) {
        if (!api_wait_reload(c, req, tid))
            cc_http_respond_error(req, 404, "not_found",
                                  "tenant: no such tenant");
        return;
    } else if (nseg == 2 && strcmp(seg[1], "secret") == 0 &&
               strcmp(m, "POST") == 0) {
        areq *r = areq_new(c, req);
        if (!r)
            return;
        r->tc = t->cfg;
        if (cc__tenant_rotate(&r->tc, (int64_t)(cc__wall_ms() / 1000u)) != 0 ||
            cc__chat_tenant_apply(c, &r->tc, &r->created, tenant_json_done,
                                  r) != 0) {
            cc_http_respond_error(req, 503, "internal", "rotation failed");
            areq_free(r);
            return;
        }
        r->ok = 1;
        cc__chat_log(c, CC_LOG_INFO, "tenant secret rotated",
                     "\"tenant\":\"%s\"", tid);
        return;
    } else if (nseg == 2 && strcmp(seg[1], "agents") == 0 &&
               (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)) {
        agents_list(c, req, t);
        return;
    } else if (nseg == 3 && strcmp(seg[1], "agents") == 0) {
        const char *aid = seg[2];
        if (!cc__valid_id(aid, strlen(aid))) {
            cc_http_respond_error(req, 404, "not_found", "no such agent");
            return;
        }
        if (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
            agent_put(c, req, t, aid, m[1] == 'A');
            return;
        }
        cc__agent *ag = cc__agent_find(t, aid);
        if (!ag) {
            if (!api_wait_reload(c, req, tid))
                cc_http_respond_error(req, 404, "not_found",
                                      "agent: no such agent");
            return;
        }
        if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
            cc__jbuf b;
            cc__jbuf_init(&b, c->a);
            cc__agent_to_json(&b, &ag->cfg);
            respond_jb(req, 200, &b);
            cc__jbuf_free(&b);
            return;
        }
        if (strcmp(m, "DELETE") == 0) {
            areq *r = areq_new(c, req);
            if (!r)
                return;
            cc__chat_log(c, CC_LOG_INFO, "agent deleted",
                         "\"tenant\":\"%s\",\"agent\":\"%s\"", tid, aid);
            cc__chat_agent_delete(c, ag);
            if (cc__store_cursor_get(c->st, tid, "-", "-", deleted_done, r)
                != 0) {
                cc_http_respond(req, 204, NULL, NULL, NULL, 0);
                areq_free(r);
            }
            return;
        }
    } else {
        cc_http_respond_error(req, 404, "not_found", "no such resource");
        return;
    }
    cc_http_respond_error(req, 405, "method_not_allowed",
                          "method not allowed here");
}

/* ---- GET /v1/agents/{aid}: an agent's public profile (rule 67) ---- */

/* What a visitor may know of the agent serving it: the display name.
 * Any token of the tenant, or the admin key with ?tenant=. */
static void
agent_profile(cc_server *srv, cc_http_req *req, void *data)
{
    cc_chat *c = data;
    CC__UNUSED(srv);
    cc_http_req_extra_headers(req, CORS_ALLOW);
    const char *aid = cc_http_req_path(req) + strlen("/v1/agents/");
    cred cr;
    if (get_cred(c, req, &cr) != 0)
        return;
    cc__tenant *t = request_tenant(c, req, &cr);
    if (!t)
        return;
    cc__agent *ag = cc__valid_id(aid, strlen(aid)) ? cc__agent_find(t, aid)
                                                   : NULL;
    if (!ag || ag->deleted) {
        if (ag || !api_wait_reload(c, req, t->cfg.id))
            cc_http_respond_error(req, 404, "not_found", "no such agent");
        return;
    }
    cc__jbuf b;
    cc__jbuf_init(&b, c->a);
    cc__jbuf_raw(&b, "{\"id\":", 6);
    cc__jbuf_str(&b, ag->cfg.id);
    cc__jbuf_raw(&b, ",\"name\":", 8);
    cc__jbuf_str(&b, ag->cfg.name);
    cc__jbuf_raw(&b, "}", 1);
    respond_jb(req, 200, &b);
    cc__jbuf_free(&b);
}

/* ---- health and metrics ---- */

static void
healthz(cc_server *srv, cc_http_req *req, void *data)
{
    CC__UNUSED(srv);
    CC__UNUSED(data);
    cc_http_respond_json(req, 200, "{\"status\":\"ok\"}");
}

static void
readyz(cc_server *srv, cc_http_req *req, void *data)
{
    cc_chat *c = data;
    CC__UNUSED(srv);
    if (c->ready && !c->closing) {
        cc_http_respond_json(req, 200, "{\"ready\":true}");
        return;
    }
    cc__jbuf b;
    cc__jbuf_init(&b, c->a);
    cc__jbuf_raw(&b, "{\"ready\":false,\"reason\":", 24);
    cc__jbuf_str(&b, c->closing ? "closing" : c->not_ready);
    cc__jbuf_raw(&b, "}", 1);
    respond_jb(req, 503, &b);
    cc__jbuf_free(&b);
}

static void
metrics(cc_server *srv, cc_http_req *req, void *data)
{
    cc_chat *c = data;
    CC__UNUSED(srv);
    cc__jbuf b;
    cc__jbuf_init(&b, c->a);
    if (cc__metrics_render(c, &b) != 0 || b.oom)
        cc_http_respond_error(req, 503, "internal", "out of memory");
    else
        cc_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                        NULL, b.p, b.len);
    cc__jbuf_free(&b);
}

/* a route run through api_entry, so that its handler can wait for a
 * reload (api_wait_reload) */
static int
route(cc_chat *c, cc_server *srv, const char *method, const char *path,
      cc_http_cb fn)
{
    struct cc__api_rt *rt = NULL;
    for (int i = 0; i < c->napi_rts && !rt; i++)   /* mounted again */
        if (c->api_rts[i].fn == fn)
            rt = &c->api_rts[i];
    if (!rt) {
        if (c->napi_rts >= (int)(sizeof(c->api_rts) / sizeof(c->api_rts[0])))
            return CC_ENOMEM;
        rt = &c->api_rts[c->napi_rts++];
        rt->c = c;
        rt->fn = fn;
    }
    return cc_server_route(srv, method, path, api_entry, rt);
}

int
cc__api_mount(cc_chat *c, cc_server *srv)
{
    int rc = cc_server_ws(srv, "/v1/ws", c->ep);
    if (!rc)
        rc = route(c, srv, "POST", "/v1/auth/visitor", auth_visitor);
    if (!rc)
        rc = route(c, srv, "OPTIONS", "/v1/auth/visitor", preflight);
    if (!rc)
        rc = route(c, srv, "GET", "/v1/agents/*", agent_profile);
    if (!rc)
        rc = route(c, srv, "OPTIONS", "/v1/agents/*", preflight);
    if (!rc)
        rc = route(c, srv, "POST", "/v1/auth/agent", auth_agent);
    if (!rc)
        rc = route(c, srv, "GET", "/v1/sessions", sessions_list);
    if (!rc)
        rc = route(c, srv, "GET", "/v1/sessions/*", sessions_one);
    if (!rc)
        rc = route(c, srv, "OPTIONS", "/v1/sessions", preflight);
    if (!rc)
        rc = route(c, srv, "OPTIONS", "/v1/sessions/*", preflight);
    if (!rc)
        rc = route(c, srv, "*", "/v1/tenants", tenants_route);
    if (!rc)
        rc = route(c, srv, "*", "/v1/tenants/*", tenants_route);
    if (!rc)
        rc = route(c, srv, "GET", "/healthz", healthz);
    if (!rc)
        rc = route(c, srv, "GET", "/readyz", readyz);
    if (!rc)
        rc = route(c, srv, "GET", "/metrics", metrics);
    return rc;
}

void
cc__api_free(cc_chat *c)
{
    CC__UNUSED(c);
}
