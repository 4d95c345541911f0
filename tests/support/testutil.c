#include "testutil.h"

#include <stdlib.h>

static void *
t_alloc(void *ud, size_t n)
{
    cc_test_alloc *t = ud;
    t->nalloc++;
    if (t->fail_at && t->nalloc == t->fail_at)
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p) {
        t->bytes += n;
        t->blocks++;
    }
    return p;
}

static void
t_free(void *ud, void *p, size_t n)
{
    cc_test_alloc *t = ud;
    if (!p)
        return;
    t->bytes -= n;
    t->blocks--;
    free(p);
}

static void *
t_realloc(void *ud, void *p, size_t old_n, size_t new_n)
{
    cc_test_alloc *t = ud;
    t->nalloc++;
    if (t->fail_at && t->nalloc == t->fail_at)
        return NULL;
    void *q = realloc(p, new_n ? new_n : 1);
    if (q) {
        t->bytes = t->bytes - old_n + new_n;
        if (!p)
            t->blocks++;
    }
    return q;
}

void
cc_test_alloc_init(cc_test_alloc *t)
{
    t->a.alloc = t_alloc;
    t->a.free = t_free;
    t->a.realloc = t_realloc;
    t->a.ud = t;
    t->bytes = t->blocks = t->nalloc = t->fail_at = 0;
}

static void
on_timeout(uv_timer_t *tm)
{
    *(int *)tm->data = 1;
}

int
cc_test_run_until(uv_loop_t *loop, volatile int *flag, unsigned timeout_ms)
{
    uv_timer_t tm;
    int expired = 0;
    uv_timer_init(loop, &tm);
    tm.data = &expired;
    uv_timer_start(&tm, on_timeout, timeout_ms, 0);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tm, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag != 0;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void
cc_test_loop_teardown(uv_loop_t *loop)
{
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(loop), 0);
}
