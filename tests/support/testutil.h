/* Shared test fixtures: the suite hook, a counting allocator, loop helpers. */
#ifndef CC_TESTUTIL_H
#define CC_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <uv.h>

#include "chatcore/chatcore.h"

/* Each tests/test_<name>.c defines this. */
Suite *cc_test_suite(void);

/* A counting allocator: tracks bytes and blocks outstanding; can be told to
 * fail the Nth allocation from now (fail_at = N, 0 = never). */
typedef struct cc_test_alloc {
    cc_allocator a;      /* pass &t.a to cc_ctx_new */
    size_t bytes, blocks;
    size_t nalloc;       /* allocations so far */
    size_t fail_at;      /* fail allocation number fail_at (1-based); 0 = never */
} cc_test_alloc;
void cc_test_alloc_init(cc_test_alloc *t);

/* Run the loop until *flag becomes nonzero or timeout_ms passes.
 * Returns 1 if the flag was set. */
int cc_test_run_until(uv_loop_t *loop, volatile int *flag, unsigned timeout_ms);

/* Close every handle on the loop, run it, assert uv_loop_close == 0. */
void cc_test_loop_teardown(uv_loop_t *loop);

/* ---- redis-server processes (redisproc.c) ---- */
#include <sys/types.h>

/* The shared server's port: $CC_REDIS_PORT or the file
 * $CC_REDIS_PORT_FILE names (set by ctest); fails the test without one. */
int cc_test_redis_env_port(void);
/* A TCP port free on 127.0.0.1 right now. */
int cc_test_free_port(void);
/* 1 if something on 127.0.0.1:port answers a Redis PING. */
int cc_test_redis_ping(int port);
void cc_test_sleep_ms(unsigned ms);
/* A private redis-server on port (see redisproc.c); kill -9 and reap. */
pid_t cc_test_redis_spawn(int port, const char *const *extra);
void cc_test_redis_kill(pid_t pid);

#endif
