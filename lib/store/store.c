/*
 * lib/store/store.c - a cc_store is a backend's operation table and its
 * implementation pointer (chatcore/store.h). The engine calls the
 * cc__store_* functions of lib/store/store.h; each checks what every
 * backend would check alike and hands the call on. Backends: SQLite
 * (lib/adapters/sqlite.c), Redis (lib/adapters/redis_store.c, in
 * libchatcore-redis), or an application's own.
 */
#include <stdint.h>
#include <string.h>

#include "store/store.h"

const double cc__store_hist_bounds[CC__STORE_HIST_N - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

struct cc_store {
    cc_ctx *ctx;
    cc_store_ops ops;         /* copied; members past ops->size are NULL */
    void *impl;
    int closing;
    cc_close_cb close_cb;
    void *close_data;
};

int
cc_store_new(cc_store **out, cc_ctx *ctx, const cc_store_ops *ops,
             void *impl)
{
    if (!out || !ctx || !ops || ops->size < offsetof(cc_store_ops, size) +
                                                sizeof(size_t))
        return CC_EINVAL;
    cc_store *st = CC__CALLOC(ctx, 1, sizeof *st);
    if (!st)
        return CC_ENOMEM;
    size_t n = ops->size < sizeof st->ops ? ops->size : sizeof st->ops;
    memcpy(&st->ops, ops, n);
    st->ops.size = sizeof st->ops;
    const cc_store_ops *o = &st->ops;
    if (!o->meta_put || !o->tenant_put || !o->tenant_del || !o->agent_put ||
        !o->agent_del || !o->session_put || !o->msg_append ||
        !o->cursor_put || !o->msgs_read || !o->session_get ||
        !o->sessions_list || !o->cursor_get || !o->barrier || !o->stats ||
        !o->close || (!o->load && !o->load_async)) {
        CC__FREE(ctx, st, sizeof *st);
        return CC_EINVAL;
    }
    st->ctx = ctx;
    st->impl = impl;
    *out = st;
    return 0;
}

void *
cc_store_impl(const cc_store *st)
{
    return st ? st->impl : NULL;
}

void
cc__store_set_impl(cc_store *st, void *impl)
{
    st->impl = impl;
}

void
cc__store_discard(cc_store *st)
{
    CC__FREE(st->ctx, st, sizeof *st);
}

static void
closed(void *data)
{
    cc_store *st = data;
    cc_close_cb cb = st->close_cb;
    void *cd = st->close_data;
    CC__FREE(st->ctx, st, sizeof *st);
    if (cb)
        cb(st, cd);
}

void
cc_store_close(cc_store *st, cc_close_cb cb, void *data)
{
    if (!st || st->closing)
        return;
    st->closing = 1;
    st->close_cb = cb;
    st->close_data = data;
    st->ops.close(st->impl, closed, st);
}

#define LIVE(st) do { if (!(st)) return CC_EINVAL;                        \
                      if ((st)->closing) return CC_ESTATE; } while (0)

static int
valid_id(const char *s)
{
    return s && cc__valid_id(s, strlen(s));
}

static int
terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

int
cc__store_load(cc_store *st, const cc__store_loader *l)
{
    LIVE(st);
    if (!l)
        return CC_EINVAL;
    return st->ops.load ? st->ops.load(st->impl, l) : CC_ENOTSUP;
}

int
cc__store_load_async(cc_store *st, const cc__store_loader *l,
                     cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!l)
        return CC_EINVAL;
    return st->ops.load_async ? st->ops.load_async(st->impl, l, cb, data)
                              : CC_ENOTSUP;
}

int
cc__store_barrier(cc_store *st, cc__store_cb cb, void *data)
{
    LIVE(st);
    return st->ops.barrier(st->impl, cb, data);
}

int
cc__store_meta_put(cc_store *st, const char *key, const char *value,
                   cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!key || !value)
        return CC_EINVAL;
    return st->ops.meta_put(st->impl, key, value, cb, data);
}

int
cc__store_tenant_put(cc_store *st, const char *id, const char *json,
                     cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!valid_id(id) || !json)
        return CC_EINVAL;
    return st->ops.tenant_put(st->impl, id, json, cb, data);
}

int
cc__store_tenant_del(cc_store *st, const char *id, cc__store_cb cb,
                     void *data)
{
    LIVE(st);
    if (!valid_id(id))
        return CC_EINVAL;
    return st->ops.tenant_del(st->impl, id, cb, data);
}

int
cc__store_agent_put(cc_store *st, const char *tenant, const char *id,
                    const char *json, cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!valid_id(tenant) || !valid_id(id) || !json)
        return CC_EINVAL;
    return st->ops.agent_put(st->impl, tenant, id, json, cb, data);
}

int
cc__store_agent_del(cc_store *st, const char *tenant, const char *id,
                    cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!valid_id(tenant) || !valid_id(id))
        return CC_EINVAL;
    return st->ops.agent_del(st->impl, tenant, id, cb, data);
}

int
cc__store_session_put(cc_store *st, const cc__sess_rec *r, cc__store_cb cb,
                      void *data)
{
    LIVE(st);
    if (!r || !terminated(r->tenant, sizeof r->tenant) ||
        !terminated(r->id, sizeof r->id) || !valid_id(r->tenant) ||
        !valid_id(r->id) || r->state < CC__S_NEW ||
        r->state > CC__S_CLOSED)
        return CC_EINVAL;
    /* every string field must be terminated inside its array */
    if (!terminated(r->visitor, sizeof r->visitor) ||
        !terminated(r->agent, sizeof r->agent) ||
        !terminated(r->preview, sizeof r->preview) ||
        !terminated(r->close_reason, sizeof r->close_reason) ||
        !terminated(r->closed_by, sizeof r->closed_by))
        return CC_EINVAL;
    return st->ops.session_put(st->impl, r, cb, data);
}

int
cc__store_msg_append(cc_store *st, const char *tenant, const char *session,
                     const char *cid, const char *from, int kind,
                     const char *body, size_t body_len, uint64_t ts,
                     cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!valid_id(tenant) || !valid_id(session) || !from || !body ||
        body_len > INT32_MAX || ts > INT64_MAX)
        return CC_EINVAL;
    return st->ops.msg_append(st->impl, tenant, session, cid, from, kind,
                              body, body_len, ts, cb, data);
}

int
cc__store_cursor_put(cc_store *st, const char *tenant, const char *session,
                     const char *user, uint64_t acked, uint64_t read,
                     cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!valid_id(tenant) || !valid_id(session) || !user ||
        acked > INT64_MAX || read > INT64_MAX)
        return CC_EINVAL;
    return st->ops.cursor_put(st->impl, tenant, session, user, acked, read,
                              cb, data);
}

int
cc__store_msgs_read(cc_store *st, const char *tenant, const char *session,
                    uint64_t after, int limit, int tail, cc__store_cb cb,
                    void *data)
{
    LIVE(st);
    if (!valid_id(tenant) || !valid_id(session) || limit < 1 ||
        limit > 1000 || after > INT64_MAX)
        return CC_EINVAL;
    return st->ops.msgs_read(st->impl, tenant, session, after, limit,
                             tail != 0, cb, data);
}

int
cc__store_session_get(cc_store *st, const char *tenant, const char *id,
                      cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!valid_id(tenant) || !valid_id(id))
        return CC_EINVAL;
    return st->ops.session_get(st->impl, tenant, id, cb, data);
}

int
cc__store_sessions_list(cc_store *st, const char *tenant, int state,
                        const char *visitor, int limit, cc__store_cb cb,
                        void *data)
{
    LIVE(st);
    if (!valid_id(tenant) || state < 0 || state > CC__S_CLOSED ||
        limit < 1 || limit > 1000)
        return CC_EINVAL;
    return st->ops.sessions_list(st->impl, tenant, state, visitor, limit, cb,
                                 data);
}

int
cc__store_cursor_get(cc_store *st, const char *tenant, const char *session,
                     const char *user, cc__store_cb cb, void *data)
{
    LIVE(st);
    if (!valid_id(tenant) || !valid_id(session) || !user)
        return CC_EINVAL;
    return st->ops.cursor_get(st->impl, tenant, session, user, cb, data);
}

void
cc__store_get_stats(cc_store *st, cc__store_stats *out)
{
    memset(out, 0, sizeof *out);
    st->ops.stats(st->impl, out);
}
