/*
 * chatcore/common.h - things every other header uses: export macro, error
 * codes, allocator hooks, the per-loop context and cross-thread posting.
 *
 * Thread rule (the whole library): one cc_ctx per uv_loop_t, one loop per
 * thread. Every object belongs to the thread of the ctx it was made with
 * and must only be touched from there. The single exception is
 * cc_ctx_post(), which any thread may call. The library keeps no global
 * state; there is no global init.
 *
 * Errors: functions return 0 or a negative code. Codes that mean what a
 * libuv code means ARE the libuv code (CC_ENOMEM == UV_ENOMEM), so libuv
 * errors pass through untranslated; codes of our own live in
 * -5000..-5199. Values are append-only.
 *
 * Callbacks: object first, status second, payload next, void *data last.
 * Pointer arguments to a callback are borrowed until it returns.
 */
#ifndef CHATCORE_COMMON_H
#define CHATCORE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CC_API __attribute__((visibility("default")))
#define CC_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define CC_API
#define CC_DEPRECATED(msg)
#endif

/* XX(name, value, message). libuv codes are reused by value. */
#define CC_ERRNO_MAP(XX)                                                     \
    XX(ENOMEM, UV_ENOMEM, "out of memory")                                   \
    XX(EINVAL, UV_EINVAL, "invalid argument")                                \
    XX(EBUSY, UV_EBUSY, "resource busy or already attached")                 \
    XX(ECANCELED, UV_ECANCELED, "operation canceled")                        \
    XX(ETIMEDOUT, UV_ETIMEDOUT, "operation timed out")                       \
    XX(ENOENT, UV_ENOENT, "no such file or entry")                           \
    XX(EOF, UV_EOF, "end of stream")                                         \
    XX(ECONNRESET, UV_ECONNRESET, "connection reset by peer")                \
    XX(E2BIG, UV_E2BIG, "too large")                                         \
    XX(ENOBUFS, UV_ENOBUFS, "outbound queue full")                           \
    XX(EPIPE, UV_EPIPE, "connection closed")                                 \
    XX(ENOTSUP, UV_ENOTSUP, "operation not supported")                       \
    XX(EIO, UV_EIO, "input/output error")                                    \
    XX(EPROTO, -5000, "protocol error")                                      \
    XX(EFRAME, -5001, "malformed WebSocket frame")                           \
    XX(ESTATE, -5002, "operation not allowed in this state")                 \
    XX(ECLAIMED, -5003, "already claimed")                                   \
    XX(EQUEUEFULL, -5004, "queue full")                                      \
    XX(EAUTH, -5005, "authentication failed")                                \
    XX(EBACKEND, -5006, "backend failure")                                   \
    XX(ETLS, -5007, "TLS failure")                                           \
    XX(EHTTP, -5008, "malformed HTTP message")                               \
    XX(EHANDSHAKE, -5009, "WebSocket handshake refused")                     \
    XX(EUTF8, -5010, "invalid UTF-8")                                        \
    XX(ECLOSED, -5011, "closed by peer")

typedef enum cc_errno {
#define CC__ERR_ENUM(name, val, msg) CC_##name = (val),
    CC_ERRNO_MAP(CC__ERR_ENUM)
#undef CC__ERR_ENUM
    CC_OK = 0
} cc_errno;

/* Message text for any code returned by the library (ours or libuv's).
 * Never NULL. Since 0.1. */
CC_API const char *cc_strerror(int err);
/* Symbolic name ("CC_EPROTO", or libuv's name). Never NULL. Since 0.1. */
CC_API const char *cc_err_name(int err);

/* Library version at run time: CC_VERSION_HEX and CC_VERSION_STRING of the
 * library actually loaded. Since 0.1. */
CC_API unsigned cc_version(void);
CC_API const char *cc_version_string(void);

/* A borrowed byte range. Frozen POD. */
typedef struct cc_buf {
    const uint8_t *base;
    size_t len;
} cc_buf;

/* Allocator hooks, per ctx (no globals). free and realloc receive the size
 * that was asked for (sized free). All three are required when the struct
 * is given; NULL for the struct means libc. If cc_ctx_post() is used from
 * other threads, alloc and free must be thread-safe. Frozen POD. */
typedef struct cc_allocator {
    void *(*alloc)(void *ud, size_t n);
    void (*free)(void *ud, void *p, size_t n);
    void *(*realloc)(void *ud, void *p, size_t old_n, size_t new_n);
    void *ud;
} cc_allocator;

/* The per-loop context. Opaque. */
typedef struct cc_ctx cc_ctx;

typedef void (*cc_close_cb)(void *obj, void *data);
typedef void (*cc_post_cb)(cc_ctx *ctx, void *data);

/* Create a context bound to `loop` (which the caller owns and runs).
 * `a` is copied; NULL means libc. Returns 0, CC_EINVAL or CC_ENOMEM.
 * Since 0.1. */
CC_API int cc_ctx_new(cc_ctx **out, uv_loop_t *loop, const cc_allocator *a);
/* Release the context's handles; `cb` runs once they are closed (run the
 * loop). Every object made with this ctx must be closed first. Posts still
 * queued are dropped without running. Since 0.1. */
CC_API void cc_ctx_close(cc_ctx *ctx, cc_close_cb cb, void *data);
CC_API uv_loop_t *cc_ctx_loop(cc_ctx *ctx);
CC_API void cc_ctx_set_data(cc_ctx *ctx, void *data);
CC_API void *cc_ctx_get_data(cc_ctx *ctx);

/* Run fn(ctx, data) on ctx's loop thread, soon. THREAD-SAFE: the one call
 * any thread may make. Posts from one thread run in the order posted.
 * Pending posts do not keep the loop alive by themselves. Returns 0,
 * CC_EINVAL (NULL fn), CC_ENOMEM, or CC_ECANCELED once the ctx is closing
 * (fn then never runs). Other threads must stop posting before the ctx's
 * close callback runs (the memory is then gone). Since 0.1. */
CC_API int cc_ctx_post(cc_ctx *ctx, cc_post_cb fn, void *data);

/* Allocate/free through the ctx's allocator (for embedders and examples
 * that want their memory counted with the library's). Since 0.1. */
CC_API void *cc_ctx_alloc(cc_ctx *ctx, size_t n);
CC_API void cc_ctx_free(cc_ctx *ctx, void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
