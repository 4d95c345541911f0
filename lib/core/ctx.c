/*
 * lib/core/ctx.c - the per-loop context: allocator, the cross-thread post
 * queue (MPSC under a mutex, woken by uv_async_t), the loop's shared read
 * buffer and the write-batching check handle.
 *
 * Posting allocates a node with the ctx's allocator on the posting thread;
 * that is why cc_ctx_post requires a thread-safe allocator (libc's is).
 */
#include <stdlib.h>

#include "internal.h"

void cc__flush_dirty(uv_check_t *h);        /* lib/net/conn.c */
void cc__ctx_free_pools(cc_ctx *ctx);       /* lib/net/conn.c */

static void
on_async(uv_async_t *h)
{
    cc_ctx *ctx = CC__CONTAINER_OF(h, cc_ctx, async);
    uv_mutex_lock(&ctx->post_mu);
    cc__post *p = ctx->post_head;
    ctx->post_head = ctx->post_tail = NULL;
    uv_mutex_unlock(&ctx->post_mu);
    while (p) {
        cc__post *next = p->next;
        cc_post_cb fn = p->fn;
        void *data = p->data;
        CC__FREE(ctx, p, sizeof *p);
        fn(ctx, data);
        p = next;
    }
}

int
cc_ctx_new(cc_ctx **out, uv_loop_t *loop, const cc_allocator *a)
{
    if (!out || !loop)
        return CC_EINVAL;
    if (a && (!a->alloc || !a->free || !a->realloc))
        return CC_EINVAL;
    const cc_allocator *al = a ? a : cc__default_allocator();
    cc_ctx *ctx = cc__calloc(al, 1, sizeof *ctx);
    if (!ctx)
        return CC_ENOMEM;
    ctx->a = *al;
    ctx->loop = loop;
    ctx->read_buf = CC__ALLOC(ctx, CC__READ_BUF_SIZE);
    if (!ctx->read_buf) {
        cc__free(al, ctx, sizeof *ctx);
        return CC_ENOMEM;
    }
    int rc = uv_mutex_init(&ctx->post_mu);
    if (rc) {
        CC__FREE(ctx, ctx->read_buf, CC__READ_BUF_SIZE);
        cc__free(al, ctx, sizeof *ctx);
        return rc;
    }
    rc = uv_async_init(loop, &ctx->async, on_async);
    if (rc) {
        uv_mutex_destroy(&ctx->post_mu);
        CC__FREE(ctx, ctx->read_buf, CC__READ_BUF_SIZE);
        cc__free(al, ctx, sizeof *ctx);
        return rc;
    }
    /* The async handle must not keep the loop alive by itself. */
    uv_unref((uv_handle_t *)&ctx->async);
    uv_check_init(loop, &ctx->flush_check);
    uv_unref((uv_handle_t *)&ctx->flush_check);
    ctx->flush_check.data = ctx;
    uv_idle_init(loop, &ctx->flush_idle);
    uv_unref((uv_handle_t *)&ctx->flush_idle);
    ctx->flush_idle.data = ctx;
    uv_timer_init(loop, &ctx->sweep);
    uv_unref((uv_handle_t *)&ctx->sweep);
    cc__list_init(&ctx->dirty);
    cc__list_init(&ctx->conns);
    uint64_t seed = 0;
    if (uv_random(NULL, NULL, &seed, sizeof seed, 0, NULL) || seed == 0)
        seed = (uint64_t)(uintptr_t)ctx ^ uv_hrtime() ^ 0x9e3779b97f4a7c15u;
    ctx->prng = seed | 1;
    ctx->handles_open = 4;
    *out = ctx;
    return 0;
}

static void
on_handle_closed(uv_handle_t *h)
{
    cc_ctx *ctx = h->data;
    if (--ctx->handles_open > 0)
        return;
    cc__post *p = ctx->post_head;
    while (p) {
        cc__post *next = p->next;
        CC__FREE(ctx, p, sizeof *p);
        p = next;
    }
    uv_mutex_destroy(&ctx->post_mu);
    cc__ctx_free_pools(ctx);
    if (ctx->tls_buf)
        CC__FREE(ctx, ctx->tls_buf, CC__TLS_BUF_SIZE);
    cc_close_cb cb = ctx->close_cb;
    void *data = ctx->close_data;
    CC__FREE(ctx, ctx->read_buf, CC__READ_BUF_SIZE);
    cc_allocator a = ctx->a;
    cc__free(&a, ctx, sizeof *ctx);
    if (cb)
        cb(ctx, data);
}

void
cc_ctx_close(cc_ctx *ctx, cc_close_cb cb, void *data)
{
    if (!ctx)
        return;
    uv_mutex_lock(&ctx->post_mu);
    ctx->closing = 1;
    uv_mutex_unlock(&ctx->post_mu);
    ctx->close_cb = cb;
    ctx->close_data = data;
    ctx->async.data = ctx;
    ctx->flush_check.data = ctx;
    ctx->flush_idle.data = ctx;
    ctx->sweep.data = ctx;
    uv_close((uv_handle_t *)&ctx->async, on_handle_closed);
    uv_close((uv_handle_t *)&ctx->flush_check, on_handle_closed);
    uv_close((uv_handle_t *)&ctx->flush_idle, on_handle_closed);
    uv_close((uv_handle_t *)&ctx->sweep, on_handle_closed);
}

uv_loop_t *
cc_ctx_loop(cc_ctx *ctx)
{
    return ctx->loop;
}

void
cc_ctx_set_data(cc_ctx *ctx, void *data)
{
    ctx->data = data;
}

void *
cc_ctx_get_data(cc_ctx *ctx)
{
    return ctx->data;
}

int
cc_ctx_post(cc_ctx *ctx, cc_post_cb fn, void *data)
{
    if (!ctx || !fn)
        return CC_EINVAL;
    cc__post *p = CC__ALLOC(ctx, sizeof *p);
    if (!p)
        return CC_ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->data = data;
    uv_mutex_lock(&ctx->post_mu);
    if (ctx->closing) {
        uv_mutex_unlock(&ctx->post_mu);
        CC__FREE(ctx, p, sizeof *p);
        return CC_ECANCELED;
    }
    if (ctx->post_tail)
        ctx->post_tail->next = p;
    else
        ctx->post_head = p;
    ctx->post_tail = p;
    /* uv_async_send under the lock: the handle cannot be closed meanwhile
     * because cc_ctx_close takes the lock to set `closing` first. */
    int rc = uv_async_send(&ctx->async);
    uv_mutex_unlock(&ctx->post_mu);
    return rc;
}

void *
cc_ctx_alloc(cc_ctx *ctx, size_t n)
{
    return CC__ALLOC(ctx, n);
}

void
cc_ctx_free(cc_ctx *ctx, void *p, size_t n)
{
    CC__FREE(ctx, p, n);
}
