/*
 * lib/adapters/redis.c - the Redis adapter (include/chatcore/redis.h):
 * hiredis 0.14's async API on a libuv loop, a reconnecting connection
 * with a bounded queue, and the chat-domain operations of distributed
 * mode. docs/api/redis.md documents the keys.
 *
 * Event hooks. hiredis/adapters/libuv.h is not used: it mallocs its
 * state behind the ctx's allocator, leaks it when uv_poll_init fails,
 * closes its uv_poll_t with a callback we cannot observe (so close could
 * not promise "cb runs once every handle is closed"), and defines a static
 * on_close in our file. Our own hooks do the same job on a uv_poll_t
 * embedded in `rconn`, one per connection attempt, freed in its close
 * callback.
 *
 * States: IDLE (waiting for the timer: the first attempt or a backoff)
 * -> RESOLVING (uv_getaddrinfo, for names only) -> CONNECTING (TCP) ->
 * HANDSHAKE (AUTH/SELECT replies pending) -> READY. Any failure goes back
 * to IDLE with the backoff timer armed. One uv_timer_t serves the state:
 * the backoff in IDLE, the connect deadline in CONNECTING/HANDSHAKE, the
 * oldest command's deadline in READY. Commands are only handed to hiredis
 * in READY (and the handshake's own in HANDSHAKE); before that they wait
 * in `queue`, so a failed connect never fails a command, and a lost
 * connection fails exactly the commands hiredis had (`inflight`).
 *
 * Re-entrancy. hiredis 0.14 runs callbacks from inside
 * redisAsyncHandleRead/Write and redisAsyncFree, and frees a context that
 * a connect callback frees under its feet. So nothing here frees a
 * context from inside a hiredis callback: `depth` counts nested entries
 * (poll, timer and resolver callbacks, API calls); the outermost leave()
 * does what was deferred (cc_redis_close's teardown, the state callback),
 * and a drop wanted from inside hiredis (AUTH refused) goes through a
 * zero-delay timer. The struct itself is freed only from a uv close or
 * resolver callback, never while a caller's frame still uses it.
 *
 * Scripts run with EVALSHA. The SHA-1s are computed once (mbedTLS); each
 * new connection sends SCRIPT LOAD for all of them ahead of any queued
 * command, and a NOSCRIPT reply (SCRIPT FLUSH by an operator) resends that
 * command once as EVAL, which is safe: NOSCRIPT means it did not run.
 *
 * Only the public API of the core is used here (cc_ctx_alloc/free/loop,
 * plus the inline list of core/internal.h), so this file can also be
 * built as a library of its own on top of libchatcore.so.
 *
 * This is the only file that includes hiredis headers (scripts/lint.sh).
 */
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <mbedtls/sha1.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chatcore/redis.h"
#include "core/internal.h"

#define NS_MAX 64
#define ID_MAX 64
#define HOST_MAX 255
#define PASS_MAX 512
#define USER_MAX 128
#define BUCKET_KEY_MAX 256
#define KEY_CAP 512
#define LIST_MAX 100000
#define ARGC_MAX 1000000
#define CONFIG_MAX ((size_t)64 << 20)
#define NUM53_MAX ((uint64_t)9007199254740991) /* 2^53 - 1: exact in Lua */
#define MS_OPT_MAX 3600000
#define ERR_CAP 256

enum { ST_IDLE, ST_RESOLVING, ST_CONNECTING, ST_HANDSHAKE, ST_READY,
       ST_CLOSED };

/* how a reply is turned into the caller's callback */
enum {
    K_RAW,    /* cc_redis_cb with the reply */
    K_OK,     /* +OK -> 1 */
    K_SETNX,  /* +OK -> 1, nil -> 0 */
    K_INT,    /* :n -> n */
    K_RANK,   /* :n -> n + 1, nil -> CC_ENOENT */
    K_STR,    /* $s -> s, nil -> CC_ENOENT */
    K_QLIST,  /* ZRANGE WITHSCORES -> entries */
    K_INBOX,  /* LRANGE of "seq:bytes" -> items */
    K_AUTH,   /* internal: handshake */
    K_SELECT, /* internal: handshake */
    K_LOAD    /* internal: SCRIPT LOAD */
};

enum { SCR_DEL_IF, SCR_BUCKET, SCR_INBOX_PUSH, SCR_INBOX_TRIM, SCR__N };

/* Compare-and-delete: the owner check and the delete in one step. */
static const char s_del_if[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

/* The arithmetic of lib/auth/bucket.c (cc_bucket_take), operation for
 * operation in doubles, on Redis's clock. State: hash {t = tokens,
 * a = at_ms}, written with %.17g so it reads back exactly. The key
 * expires a second after the bucket would be full again: a missing key
 * starts full, which is what the stored state would have computed. */
static const char s_bucket[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local rate = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local WHOLE = 1.0 - 1e-9\n"
    "local WAIT_MAX = 2147483647\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "local function refill(tok, ms)\n"
    "  local x = tok + rate * ms / 1000.0\n"
    "  if x < burst then return x end\n"
    "  return burst\n"
    "end\n"
    "local st = redis.call('HMGET', KEYS[1], 't', 'a')\n"
    "local tokens, at = burst, now\n"
    "if st[2] then\n"
    "  tokens = tonumber(st[1]) or 0\n"
    "  if not (tokens >= 0) then tokens = 0 end\n"
    "  at = tonumber(st[2]) or now\n"
    "  if now > at then\n"
    "    tokens = refill(tokens, now - at)\n"
    "    at = now\n"
    "  end\n"
    "  if tokens > burst then tokens = burst end\n"
    "end\n"
    "local wait = 0\n"
    "if tokens >= WHOLE then\n"
    "  if tokens > 1.0 then tokens = tokens - 1.0 else tokens = 0.0 end\n"
    "else\n"
    "  local need = (1.0 - tokens) * 1000.0 / rate\n"
    "  if not (need < WAIT_MAX) then\n"
    "    wait = WAIT_MAX\n"
    "  else\n"
    "    local w = math.ceil(need)\n"
    "    if w < 1 then w = 1 end\n"
    "    while w > 1 and refill(tokens, w - 1) >= WHOLE do w = w - 1 end\n"
    "    while w < WAIT_MAX and refill(tokens, w) < WHOLE do w = w + 1 end\n"
    "    wait = w\n"
    "  end\n"
    "  if now < at then\n"
    "    local behind = at - now\n"
    "    if behind >= WAIT_MAX - wait then wait = WAIT_MAX\n"
    "    else wait = wait + behind end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens),\n"
    "           'a', string.format('%.17g', at))\n"
    "local ttl = math.ceil((burst - tokens) * 1000.0 / rate) + 1000\n"
    "if now < at then ttl = ttl + (at - now) end\n"
    "if ttl > 1e15 then ttl = 1e15 end\n"
    "redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl))\n"
    "return wait\n";

/* RPUSH, cap, EXPIRE in one step (a crash between them would leave an
 * inbox that never expires). */
static const char s_inbox_push[] =
    "local n = redis.call('RPUSH', KEYS[1], ARGV[1])\n"
    "local max = tonumber(ARGV[2])\n"
    "if max > 0 and n > max then\n"
    "  redis.call('LTRIM', KEYS[1], -max, -1)\n"
    "  n = max\n"
    "end\n"
    "if tonumber(ARGV[3]) > 0 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "end\n"
    "return n\n";

/* Count the leading items with seq <= ARGV[1], then one LTRIM. Items are
 * "<seq>:<bytes>"; a malformed one stops the scan. */
static const char s_inbox_trim[] =
    "local upto = tonumber(ARGV[1])\n"
    "local n = 0\n"
    "while true do\n"
    "  local chunk = redis.call('LRANGE', KEYS[1], n, n + 127)\n"
    "  if #chunk == 0 then break end\n"
    "  for i = 1, #chunk do\n"
    "    local v = chunk[i]\n"
    "    local c = string.find(v, ':', 1, true)\n"
    "    local s = c and tonumber(string.sub(v, 1, c - 1))\n"
    "    if not s or s > upto then\n"
    "      if n > 0 then redis.call('LTRIM', KEYS[1], n, -1) end\n"
    "      return n\n"
    "    end\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "if n > 0 then redis.call('DEL', KEYS[1]) end\n"
    "return n\n";

static const char *const scripts[SCR__N] = {
    s_del_if, s_bucket, s_inbox_push, s_inbox_trim,
};

typedef struct rconn rconn;
typedef struct req req;

struct cc_redis_opts {
    cc_ctx *ctx;
    char ns[NS_MAX + 1];
    char pass[PASS_MAX + 1];
    char user[USER_MAX + 1];
    int64_t queue_max, queue_bytes, connect_ms, cmd_ms, bmin, bmax, db;
};

/* One command: its wire form follows the struct (one allocation). */
struct req {
    cc__list link; /* in r->queue or r->inflight */
    cc_redis *r;
    size_t size;     /* allocation size, for the sized free */
    uint8_t kind;    /* K_* */
    int8_t script;   /* SCR_* of an EVALSHA (or a SCRIPT LOAD), else -1 */
    uint8_t internal;
    uint8_t retried; /* resent as EVAL after NOSCRIPT */
    int argc;
    size_t tail_off; /* EVALSHA: offset of numkeys, for the EVAL form */
    union {
        cc_redis_cb raw;
        cc_redis_int_cb i;
        cc_redis_str_cb s;
        cc_redis_queue_cb q;
        cc_redis_inbox_cb ib;
    } cb;
    void *data;
    uint64_t sent_ms;
    size_t len;
    char cmd[];
};

/* One connection attempt. Lives until its poll handle has closed. */
struct rconn {
    uv_poll_t poll;
    cc_redis *r;
    redisAsyncContext *ac; /* NULL once hiredis has freed it */
    int events;      /* what hiredis wants polled */
    int applied;     /* what the poll handle watches now */
    int wpend;       /* output waits for the end of this loop turn */
    int in_flush;
    int poll_closing;
    int dead;        /* lost; no longer r->conn */
    int fail_status; /* what its in-flight commands fail with */
    int want_drop;   /* drop asked for from inside hiredis */
};

struct cc_redis {
    cc_ctx *ctx;
    uv_loop_t *loop;
    void *data;
    char host[HOST_MAX + 1];
    int port;
    char ns[NS_MAX + 1];
    size_t ns_len;
    char pass[PASS_MAX + 1];
    char user[USER_MAX + 1];
    int64_t db;
    size_t queue_max, queue_bytes;
    uint64_t connect_ms, cmd_ms, bmin, bmax;
    char sha[SCR__N][41];

    int state; /* ST_* */
    int ready;
    int closing, torn;
    int depth;
    unsigned attempt;
    uint64_t prng;
    int hs_pending;

    rconn *conn;
    uv_timer_t timer;
    uv_check_t flush; /* writes what the loop turn queued (ev_add_write) */
    uv_idle_t flush_idle; /* keeps the poll from blocking before it */
    uv_getaddrinfo_t gai;
    int gai_busy;
    int handles; /* open uv handles + a pending resolve */

    cc__list queue;
    size_t nqueued, qbytes;
    cc__list inflight;
    size_t ninflight; /* the caller's, not internal ones */

    cc_redis_state_cb state_cb;
    void *state_data;
    int ev_pending, ev_ready, ev_status;
    cc_close_cb close_cb;
    void *close_data;
    char err[ERR_CAP];
};

static void on_timer(uv_timer_t *t);
static void on_poll(uv_poll_t *h, int status, int events);
static void on_flush(uv_check_t *h);
static void keep_polling(uv_idle_t *h);
static void on_reply(redisAsyncContext *ac, void *reply, void *priv);
static void drop_conn(rconn *c, int status);
static void teardown(cc_redis *r);

/* ---- small helpers ---- */

static void
set_err(cc_redis *r, const char *what, const char *detail)
{
    if (detail && *detail)
        snprintf(r->err, sizeof r->err, "%s: %s", what, detail);
    else
        snprintf(r->err, sizeof r->err, "%s", what);
}

static int
id_char(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':' ||
           ch == '-';
}

/* The wire contract's id rule; returns the length, 0 when invalid. */
static size_t
id_len(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++)
        if (n >= ID_MAX || !id_char((unsigned char)s[n]))
            return 0;
    return n;
}

static uint64_t
prng_next(cc_redis *r)
{
    uint64_t x = r->prng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return r->prng = x;
}

/* Delay before the next attempt: min doubling per failure up to max, with
 * "equal jitter" (half fixed, half random) so that many nodes that lost
 * the same server do not come back in lockstep. */
static uint64_t
backoff_ms(cc_redis *r)
{
    uint64_t d = r->bmin;
    for (unsigned i = 0; i < r->attempt && d < r->bmax; i++)
        d *= 2;
    if (d > r->bmax)
        d = r->bmax;
    uint64_t half = d / 2;
    return d - half + (half ? prng_next(r) % (half + 1) : 0);
}

static size_t
dec_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static char *
put_dec(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* bytes of one RESP bulk string of len bytes */
static size_t
arg_wire(size_t len)
{
    return 1 + dec_len(len) + 2 + len + 2;
}

static char *
put_arg(char *p, const void *s, size_t len)
{
    *p++ = '$';
    p = put_dec(p, len);
    *p++ = '\r';
    *p++ = '\n';
    if (len)
        memcpy(p, s, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* ---- SIGPIPE ----
 * hiredis writes with write(2), which raises SIGPIPE on a connection the
 * server has closed, killing a process that did not ignore it. Blocking
 * it in this thread around the write and taking away one that our write
 * left pending needs no process-wide state (the same technique as libpq).
 * A SIGPIPE that was already pending, or a mask that already blocked it,
 * is left alone. */
typedef struct sigpipe_guard {
    sigset_t old;
    int was_blocked, was_pending;
} sigpipe_guard;

static void
sigpipe_block(sigpipe_guard *g)
{
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    g->was_blocked = 1;
    g->was_pending = 0;
    if (pthread_sigmask(SIG_BLOCK, &set, &g->old) != 0)
        return;
    g->was_blocked = sigismember(&g->old, SIGPIPE) == 1;
    if (!g->was_blocked && sigpending(&pend) == 0)
        g->was_pending = sigismember(&pend, SIGPIPE) == 1;
}

static void
sigpipe_restore(sigpipe_guard *g)
{
    if (g->was_blocked)
        return;
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (!g->was_pending && sigpending(&pend) == 0 &&
        sigismember(&pend, SIGPIPE) == 1) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- re-entrancy ---- */

static void
post_event(cc_redis *r, int ready, int status)
{
    r->ev_pending = 1;
    r->ev_ready = ready;
    r->ev_status = status;
}

static void
enter(cc_redis *r)
{
    r->depth++;
}

/* The outermost leave runs what was deferred, still counted as inside so
 * that what it calls (callbacks that issue commands or close) nests. */
static void
leave(cc_redis *r)
{
    if (r->depth > 1) {
        r->depth--;
        return;
    }
    for (;;) {
        if (r->closing && !r->torn) {
            teardown(r);
            continue;
        }
        if (r->ev_pending) {
            r->ev_pending = 0;
            if (!r->closing && r->state_cb)
                r->state_cb(r, r->ev_ready, r->ev_status, r->state_data);
            continue;
        }
        break;
    }
    r->depth--;
}

static void
maybe_finish(cc_redis *r)
{
    if (!r->closing || !r->torn || r->handles || r->depth)
        return;
    cc_close_cb cb = r->close_cb;
    void *d = r->close_data;
    cc_ctx *ctx = r->ctx;
    if (cb)
        cb(r, d);
    cc_ctx_free(ctx, r, sizeof *r);
}

/* ---- requests ---- */

static void
req_free(cc_redis *r, req *q)
{
    cc_ctx_free(r->ctx, q, q->size);
}

/* Build a command: argc arguments (lens NULL: strlen), prefixed by
 * EVALSHA <sha> when script >= 0. Returns NULL (ENOMEM) on failure. */
static req *
build(cc_redis *r, int script, int argc, const char *const *argv,
      const size_t *lens)
{
    int total = argc + (script >= 0 ? 2 : 0);
    size_t len = 1 + dec_len((uint64_t)total) + 2;
    if (script >= 0)
        len += arg_wire(7) + arg_wire(40);
    for (int i = 0; i < argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        size_t w = arg_wire(l);
        if (w < l || len > SIZE_MAX - w)
            return NULL;
        len += w;
    }
    if (len > SIZE_MAX - sizeof(req))
        return NULL;
    req *q = cc_ctx_alloc(r->ctx, sizeof(req) + len);
    if (!q)
        return NULL;
    memset(q, 0, sizeof *q);
    q->size = sizeof(req) + len;
    q->r = r;
    q->script = -1;
    q->len = len;
    q->argc = total;
    cc__list_init(&q->link);
    char *p = q->cmd;
    *p++ = '*';
    p = put_dec(p, (uint64_t)total);
    *p++ = '\r';
    *p++ = '\n';
    if (script >= 0) {
        p = put_arg(p, "EVALSHA", 7);
        p = put_arg(p, r->sha[script], 40);
        q->script = (int8_t)script;
        q->tail_off = (size_t)(p - q->cmd);
    }
    for (int i = 0; i < argc; i++)
        p = put_arg(p, argv[i], lens ? lens[i] : strlen(argv[i]));
    return q;
}

/* Hand q to hiredis on the current connection. */
static int
send_req(cc_redis *r, req *q)
{
    rconn *c = r->conn;
    if (redisAsyncFormattedCommand(c->ac, on_reply, q, q->cmd, q->len) !=
        REDIS_OK)
        return CC_EIO;
    q->sent_ms = uv_now(r->loop);
    cc__list_push(&r->inflight, &q->link);
    if (!q->internal)
        r->ninflight++;
    if (r->cmd_ms && r->state == ST_READY &&
        !uv_is_active((uv_handle_t *)&r->timer))
        uv_timer_start(&r->timer, on_timer, r->cmd_ms, 0);
    return 0;
}

/* Ask for c to be dropped on the next loop turn (from inside hiredis). */
static void
request_drop(rconn *c, int status)
{
    if (!c->want_drop)
        c->want_drop = status;
    uv_timer_start(&c->r->timer, on_timer, 0, 0);
}

/* Send now when ready, else queue within the bounds. Takes q either way. */
static int
submit(cc_redis *r, req *q)
{
    if (r->state == ST_READY && r->conn && !r->conn->want_drop) {
        if (send_req(r, q) == 0)
            return 0;
        /* hiredis refused: the connection is going; keep q for the next */
        request_drop(r->conn, CC_EIO);
    }
    if (r->nqueued >= r->queue_max || q->len > r->queue_bytes - r->qbytes) {
        req_free(r, q);
        return CC_ENOBUFS;
    }
    cc__list_push(&r->queue, &q->link);
    r->nqueued++;
    r->qbytes += q->len;
    return 0;
}

static int
issue(cc_redis *r, req *q)
{
    enter(r);
    int rc = submit(r, q);
    leave(r);
    return rc;
}

static int
send_internal(cc_redis *r, int kind, int script, int argc,
              const char *const *argv)
{
    req *q = build(r, -1, argc, argv, NULL);
    if (!q)
        return CC_ENOMEM;
    q->kind = (uint8_t)kind;
    q->internal = 1;
    q->script = (int8_t)script;
    if (send_req(r, q) < 0) {
        req_free(r, q);
        return CC_EIO;
    }
    return 0;
}

/* ---- replies ---- */

static int
bad_reply(cc_redis *r, const redisReply *rp)
{
    if (rp->type == REDIS_REPLY_ERROR)
        set_err(r, "redis", rp->str);
    else
        set_err(r, "redis", "unexpected reply");
    return CC_EBACKEND;
}

static int
is_ok(const redisReply *rp)
{
    return rp->type == REDIS_REPLY_STATUS && rp->len == 2 &&
           memcmp(rp->str, "OK", 2) == 0;
}

static void
deliver_int(cc_redis *r, req *q, int st, const redisReply *rp)
{
    int64_t v = 0;
    if (!st) {
        switch (q->kind) {
        case K_OK:
            if (is_ok(rp))
                v = 1;
            else
                st = bad_reply(r, rp);
            break;
        case K_SETNX:
            if (is_ok(rp))
                v = 1;
            else if (rp->type != REDIS_REPLY_NIL)
                st = bad_reply(r, rp);
            break;
        case K_INT:
            if (rp->type == REDIS_REPLY_INTEGER)
                v = rp->integer;
            else
                st = bad_reply(r, rp);
            break;
        case K_RANK:
            if (rp->type == REDIS_REPLY_INTEGER)
                v = rp->integer + 1;
            else if (rp->type == REDIS_REPLY_NIL)
                st = CC_ENOENT;
            else
                st = bad_reply(r, rp);
            break;
        }
    }
    cc_redis_int_cb cb = q->cb.i;
    void *d = q->data;
    req_free(r, q);
    if (cb)
        cb(r, st, st ? 0 : v, d);
}

static void
deliver_str(cc_redis *r, req *q, int st, const redisReply *rp)
{
    const char *s = NULL;
    size_t len = 0;
    if (!st) {
        if (rp->type == REDIS_REPLY_STRING) {
            s = rp->str;
            len = rp->len;
        } else if (rp->type == REDIS_REPLY_NIL) {
            st = CC_ENOENT;
        } else {
            st = bad_reply(r, rp);
        }
    }
    cc_redis_str_cb cb = q->cb.s;
    void *d = q->data;
    req_free(r, q);
    if (cb)
        cb(r, st, s, len, d);
}

static void
deliver_qlist(cc_redis *r, req *q, int st, const redisReply *rp)
{
    cc_redis_queue_entry *e = NULL;
    size_t n = 0, bytes = 0;
    if (!st) {
        if (rp->type != REDIS_REPLY_ARRAY || rp->elements % 2) {
            st = bad_reply(r, rp);
        } else if ((n = rp->elements / 2) > 0) {
            bytes = n * sizeof *e;
            e = cc_ctx_alloc(r->ctx, bytes);
            if (!e)
                st = CC_ENOMEM;
            for (size_t i = 0; e && i < n; i++) {
                const redisReply *m = rp->element[2 * i];
                const redisReply *sc = rp->element[2 * i + 1];
                char *end = NULL;
                double d = sc->type == REDIS_REPLY_STRING
                               ? strtod(sc->str, &end) : 0;
                if (m->type != REDIS_REPLY_STRING || !end || *end ||
                    !(d >= 0 && d <= (double)NUM53_MAX)) {
                    st = bad_reply(r, m->type == REDIS_REPLY_STRING ? sc : m);
                    break;
                }
                e[i].sid = m->str;
                e[i].sid_len = m->len;
                e[i].since_ms = (int64_t)d;
            }
        }
    }
    cc_redis_queue_cb cb = q->cb.q;
    void *d = q->data;
    req_free(r, q);
    if (cb)
        cb(r, st, st ? NULL : e, st ? 0 : n, d);
    if (e)
        cc_ctx_free(r->ctx, e, bytes);
}

static void
deliver_inbox(cc_redis *r, req *q, int st, const redisReply *rp)
{
    cc_redis_inbox_item *it = NULL;
    size_t n = 0, bytes = 0;
    if (!st) {
        if (rp->type != REDIS_REPLY_ARRAY) {
            st = bad_reply(r, rp);
        } else if ((n = rp->elements) > 0) {
            bytes = n * sizeof *it;
            it = cc_ctx_alloc(r->ctx, bytes);
            if (!it)
                st = CC_ENOMEM;
            for (size_t i = 0; it && i < n; i++) {
                const redisReply *m = rp->element[i];
                uint64_t seq = 0;
                size_t k = 0;
                if (m->type == REDIS_REPLY_STRING)
                    while (k < m->len && k < 16 && m->str[k] >= '0' &&
                           m->str[k] <= '9')
                        seq = seq * 10 + (uint64_t)(m->str[k++] - '0');
                if (m->type != REDIS_REPLY_STRING || k == 0 ||
                    k >= m->len || m->str[k] != ':') {
                    set_err(r, "redis", "malformed inbox item");
                    st = CC_EBACKEND;
                    break;
                }
                it[i].seq = seq;
                it[i].data = (const uint8_t *)m->str + k + 1;
                it[i].len = m->len - k - 1;
            }
        }
    }
    cc_redis_inbox_cb cb = q->cb.ib;
    void *d = q->data;
    req_free(r, q);
    if (cb)
        cb(r, st, st ? NULL : it, st ? 0 : n, d);
    if (it)
        cc_ctx_free(r->ctx, it, bytes);
}

/* Complete q with status st (0: rp is its reply). Frees q. */
static void
finish_req(cc_redis *r, req *q, int st, const redisReply *rp)
{
    if (q->internal) {
        req_free(r, q);
        return;
    }
    if (r->closing && !st)
        st = CC_ECANCELED; /* after close, every callback is a cancel */
    switch (q->kind) {
    case K_RAW: {
        cc_redis_cb cb = q->cb.raw;
        void *d = q->data;
        req_free(r, q);
        if (cb)
            cb(r, st, st ? NULL : (const cc_redis_reply *)rp, d);
        break;
    }
    case K_STR:
        deliver_str(r, q, st, rp);
        break;
    case K_QLIST:
        deliver_qlist(r, q, st, rp);
        break;
    case K_INBOX:
        deliver_inbox(r, q, st, rp);
        break;
    default:
        deliver_int(r, q, st, rp);
        break;
    }
}

static void become_ready(cc_redis *r);

static void
internal_reply(cc_redis *r, rconn *c, req *q, const redisReply *rp)
{
    if (c->dead)
        return;
    if (q->kind == K_LOAD) {
        /* informational: a mismatch means the SHA-1 here is wrong, and
         * every call falls back to EVAL */
        if (rp->type != REDIS_REPLY_STRING || rp->len != 40 ||
            memcmp(rp->str, r->sha[q->script], 40) != 0)
            bad_reply(r, rp);
        return;
    }
    if (!is_ok(rp)) {
        bad_reply(r, rp);
        request_drop(c, q->kind == K_AUTH ? CC_EAUTH : CC_EBACKEND);
        return;
    }
    if (--r->hs_pending == 0 && r->state == ST_HANDSHAKE && r->conn == c)
        become_ready(r);
}

/* NOSCRIPT: the script cache was flushed; send q once more as EVAL. */
static int
resend_eval(cc_redis *r, redisAsyncContext *ac, req *q)
{
    const char *s = scripts[q->script];
    size_t sl = strlen(s), tail = q->len - q->tail_off;
    size_t n = 1 + dec_len((uint64_t)q->argc) + 2 + arg_wire(4) +
               arg_wire(sl) + tail;
    char *buf = cc_ctx_alloc(r->ctx, n);
    if (!buf)
        return CC_ENOMEM;
    char *p = buf;
    *p++ = '*';
    p = put_dec(p, (uint64_t)q->argc);
    *p++ = '\r';
    *p++ = '\n';
    p = put_arg(p, "EVAL", 4);
    p = put_arg(p, s, sl);
    memcpy(p, q->cmd + q->tail_off, tail);
    int rc = redisAsyncFormattedCommand(ac, on_reply, q, buf, n);
    cc_ctx_free(r->ctx, buf, n);
    if (rc != REDIS_OK)
        return CC_ECONNRESET;
    q->retried = 1;
    q->sent_ms = uv_now(r->loop);
    cc__list_push(&r->inflight, &q->link);
    r->ninflight++;
    return 0;
}

static void
conn_lost(rconn *c, int status)
{
    cc_redis *r = c->r;
    if (c->dead)
        return;
    c->dead = 1;
    if (r->conn == c)
        r->conn = NULL;
    r->ready = 0;
    if (r->closing)
        return;
    r->state = ST_IDLE;
    uv_timer_start(&r->timer, on_timer, backoff_ms(r), 0);
    if (r->attempt < 64)
        r->attempt++;
    post_event(r, 0, status);
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    req *q = priv;
    cc_redis *r = q->r;
    rconn *c = ac->data;
    const redisReply *rp = reply;
    cc__list_remove(&q->link);
    if (!q->internal)
        r->ninflight--;
    if (!rp) {
        /* hiredis is failing what it had: the connection is gone */
        int st = c->fail_status ? c->fail_status : CC_ECONNRESET;
        if (!c->dead) {
            set_err(r, "connection lost", ac->errstr);
            conn_lost(c, st);
        }
        finish_req(r, q, st, NULL);
        return;
    }
    if (q->internal) {
        internal_reply(r, c, q, rp);
        req_free(r, q);
        return;
    }
    if (q->script >= 0 && !q->retried && !r->closing &&
        rp->type == REDIS_REPLY_ERROR && rp->len >= 8 &&
        memcmp(rp->str, "NOSCRIPT", 8) == 0) {
        int rc = resend_eval(r, ac, q);
        if (rc == 0)
            return;
        finish_req(r, q, rc, NULL);
        return;
    }
    finish_req(r, q, 0, rp);
}

/* ---- connection ---- */

/* Starting a uv_poll again costs two epoll_ctl calls even when nothing
 * changes, so the handle is touched only when the events differ. */
static void
ev_apply(rconn *c)
{
    if (c->poll_closing || c->events == c->applied)
        return;
    c->applied = c->events;
    if (c->events)
        uv_poll_start(&c->poll, c->events, on_poll);
    else
        uv_poll_stop(&c->poll);
}

static void
ev_add_read(void *p)
{
    rconn *c = p;
    c->events |= UV_READABLE;
    ev_apply(c);
}

static void
ev_del_read(void *p)
{
    rconn *c = p;
    c->events &= ~UV_READABLE;
    ev_apply(c);
}

/* hiredis asks for a write event for every command it buffers. Once
 * connected, the buffer is written directly at the end of the loop turn
 * (r->flush, a check handle: after the callbacks that queue commands),
 * so the commands of one turn leave in one write with no wait for a
 * writable event; only a write the socket cannot take whole waits for
 * one. While connecting, the write event is what reports the connect. */
static void
ev_add_write(void *p)
{
    rconn *c = p;
    cc_redis *r = c->r;
    if (!c->in_flush && c->ac && (c->ac->c.flags & REDIS_CONNECTED)) {
        c->wpend = 1;
        if (!uv_is_active((uv_handle_t *)&r->flush)) {
            uv_check_start(&r->flush, on_flush);
            uv_idle_start(&r->flush_idle, keep_polling);
        }
        return;
    }
    c->events |= UV_WRITABLE;
    ev_apply(c);
}

static void
ev_del_write(void *p)
{
    rconn *c = p;
    c->wpend = 0;
    c->events &= ~UV_WRITABLE;
    ev_apply(c);
}

/* an active idle handle makes the loop poll without blocking, so a
 * command queued by a timer reaches the check handle at once */
static void
keep_polling(uv_idle_t *h)
{
    (void)h; /* being active is the point: the poll returns at once */
}

static void
on_flush(uv_check_t *h)
{
    cc_redis *r = h->data;
    rconn *c = r->conn;
    uv_check_stop(h);
    uv_idle_stop(&r->flush_idle);
    if (!c || c->dead || !c->ac || !c->wpend)
        return;
    c->wpend = 0;
    enter(r);
    c->in_flush = 1;
    sigpipe_guard g;
    sigpipe_block(&g);
    redisAsyncHandleWrite(c->ac);
    sigpipe_restore(&g);
    c->in_flush = 0;
    leave(r);
}

static void
on_poll_closed(uv_handle_t *h)
{
    rconn *c = h->data;
    cc_redis *r = c->r;
    cc_ctx_free(r->ctx, c, sizeof *c);
    r->handles--;
    maybe_finish(r);
}

/* hiredis is freeing the context (it closes the fd right after) */
static void
ev_cleanup(void *p)
{
    rconn *c = p;
    c->ac = NULL;
    if (!c->poll_closing) {
        c->poll_closing = 1;
        uv_close((uv_handle_t *)&c->poll, on_poll_closed);
    }
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
    rconn *c = h->data;
    cc_redis *r = c->r;
    enter(r);
    if (status < 0) {
        if (!c->dead && c->ac) {
            set_err(r, "poll", uv_strerror(status));
            drop_conn(c, CC_EIO);
        }
    } else {
        if (c->ac && (events & UV_READABLE))
            redisAsyncHandleRead(c->ac);
        if (c->ac && (events & UV_WRITABLE)) {
            sigpipe_guard g;
            sigpipe_block(&g);
            redisAsyncHandleWrite(c->ac);
            sigpipe_restore(&g);
        }
    }
    leave(r);
}

/* Drop c now, failing its in-flight commands with status. Never called
 * from inside a hiredis callback. */
static void
drop_conn(rconn *c, int status)
{
    cc_redis *r = c->r;
    if (c->dead)
        return;
    conn_lost(c, status);
    c->fail_status = status;
    if (c->ac) {
        enter(r);
        redisAsyncFree(c->ac);
        leave(r);
    }
}

static void
attempt_failed(cc_redis *r, int status)
{
    r->state = ST_IDLE;
    uv_timer_start(&r->timer, on_timer, backoff_ms(r), 0);
    if (r->attempt < 64)
        r->attempt++;
    post_event(r, 0, status);
}

static void
become_ready(cc_redis *r)
{
    rconn *c = r->conn;
    r->state = ST_READY;
    r->ready = 1;
    r->attempt = 0;
    uv_timer_stop(&r->timer);
    for (int i = 0; i < SCR__N; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", scripts[i]};
        send_internal(r, K_LOAD, i, 3, argv); /* best effort */
    }
    while (!cc__list_empty(&r->queue) && r->conn == c && !c->want_drop) {
        req *q = CC__CONTAINER_OF(r->queue.next, req, link);
        cc__list_remove(&q->link);
        if (send_req(r, q) < 0) {
            /* back at the head, in order, for the next connection */
            cc__list *h = &r->queue;
            q->link.next = h->next;
            q->link.prev = h;
            h->next->prev = &q->link;
            h->next = &q->link;
            request_drop(c, CC_EIO);
            break;
        }
        r->nqueued--;
        r->qbytes -= q->len;
    }
    post_event(r, 1, 0);
}

static void
on_connect(const redisAsyncContext *cac, int status)
{
    rconn *c = cac->data;
    cc_redis *r = c->r;
    if (c->dead)
        return;
    if (status != REDIS_OK) {
        set_err(r, "connect", cac->errstr);
        conn_lost(c, CC_EIO); /* hiredis frees the context next */
        return;
    }
    redisEnableKeepAlive(&c->ac->c);
    r->state = ST_HANDSHAKE;
    r->hs_pending = 0;
    if (r->pass[0]) {
        const char *a3[] = {"AUTH", r->user, r->pass};
        const char *a2[] = {"AUTH", r->pass};
        int rc = r->user[0] ? send_internal(r, K_AUTH, -1, 3, a3)
                            : send_internal(r, K_AUTH, -1, 2, a2);
        if (rc < 0) {
            request_drop(c, rc);
            return;
        }
        r->hs_pending++;
    }
    if (r->db) {
        char db[24];
        *put_dec(db, (uint64_t)r->db) = '\0';
        const char *a[] = {"SELECT", db};
        int rc = send_internal(r, K_SELECT, -1, 2, a);
        if (rc < 0) {
            request_drop(c, rc);
            return;
        }
        r->hs_pending++;
    }
    if (!r->hs_pending)
        become_ready(r);
}

static void
on_disconnect(const redisAsyncContext *cac, int status)
{
    rconn *c = cac->data;
    CC__UNUSED(status);
    if (!c->dead) {
        set_err(c->r, "connection lost", cac->errstr);
        conn_lost(c, CC_ECONNRESET);
    }
}

static void
connect_ip(cc_redis *r, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
    if (!ac) {
        set_err(r, "connect", "out of memory");
        attempt_failed(r, CC_ENOMEM);
        return;
    }
    if (ac->err) {
        set_err(r, "connect", ac->errstr);
        redisAsyncFree(ac);
        attempt_failed(r, CC_EIO);
        return;
    }
    rconn *c = cc_ctx_alloc(r->ctx, sizeof *c);
    if (!c) {
        redisAsyncFree(ac);
        set_err(r, "connect", "out of memory");
        attempt_failed(r, CC_ENOMEM);
        return;
    }
    memset(c, 0, sizeof *c);
    int rc = uv_poll_init(r->loop, &c->poll, ac->c.fd);
    if (rc < 0) {
        cc_ctx_free(r->ctx, c, sizeof *c);
        redisAsyncFree(ac);
        set_err(r, "connect", uv_strerror(rc));
        attempt_failed(r, rc);
        return;
    }
    r->handles++;
    c->poll.data = c;
    c->r = r;
    c->ac = ac;
    ac->data = c;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    r->conn = c;
    r->state = ST_CONNECTING;
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* also asks for the first write event, which reports the connect */
    redisAsyncSetConnectCallback(ac, on_connect);
    uv_timer_start(&r->timer, on_timer, r->connect_ms, 0);
}

static void
on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    cc_redis *r = g->data;
    r->gai_busy = 0;
    r->handles--;
    if (r->closing) {
        uv_freeaddrinfo(res);
        maybe_finish(r);
        return;
    }
    enter(r);
    if (status < 0 || !res) {
        set_err(r, "resolve", uv_strerror(status < 0 ? status : UV_EAI_NONAME));
        attempt_failed(r, status < 0 ? status : UV_EAI_NONAME);
    } else {
        /* IPv4 first: a server bound to 127.0.0.1 is not on ::1 */
        const struct addrinfo *a = res;
        for (const struct addrinfo *p = res; p; p = p->ai_next)
            if (p->ai_family == AF_INET) {
                a = p;
                break;
            }
        char ip[64] = "";
        if (a->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip, sizeof ip);
        else if (a->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, ip,
                        sizeof ip);
        if (ip[0]) {
            connect_ip(r, ip);
        } else {
            set_err(r, "resolve", "no usable address");
            attempt_failed(r, UV_EAI_ADDRFAMILY);
        }
    }
    uv_freeaddrinfo(res);
    leave(r);
}

static void
start_attempt(cc_redis *r)
{
    unsigned char buf[16];
    /* a numeric address goes straight to hiredis, whose own
     * getaddrinfo() then does no lookup: nothing blocks the loop */
    if (uv_inet_pton(AF_INET, r->host, buf) == 0 ||
        uv_inet_pton(AF_INET6, r->host, buf) == 0) {
        connect_ip(r, r->host);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r->gai.data = r;
    int rc = uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->host, NULL,
                            &hints);
    if (rc < 0) {
        set_err(r, "resolve", uv_strerror(rc));
        attempt_failed(r, rc);
        return;
    }
    r->gai_busy = 1;
    r->handles++;
    r->state = ST_RESOLVING;
}

static void
check_cmd_timeout(cc_redis *r)
{
    if (!r->cmd_ms || !r->conn || cc__list_empty(&r->inflight))
        return;
    req *q = CC__CONTAINER_OF(r->inflight.next, req, link);
    uint64_t now = uv_now(r->loop), due = q->sent_ms + r->cmd_ms;
    if (now >= due) {
        set_err(r, "command", "no reply in time");
        drop_conn(r->conn, CC_ETIMEDOUT);
    } else {
        uv_timer_start(&r->timer, on_timer, due - now, 0);
    }
}

static void
on_timer(uv_timer_t *t)
{
    cc_redis *r = t->data;
    enter(r);
    rconn *c = r->conn;
    if (c && c->want_drop) {
        drop_conn(c, c->want_drop);
    } else {
        switch (r->state) {
        case ST_IDLE:
            start_attempt(r);
            break;
        case ST_CONNECTING:
        case ST_HANDSHAKE:
            if (c) {
                set_err(r, "connect", "timed out");
                drop_conn(c, CC_ETIMEDOUT);
            }
            break;
        case ST_READY:
            check_cmd_timeout(r);
            break;
        default:
            break;
        }
    }
    leave(r);
}

static void
on_handle_closed(uv_handle_t *h)
{
    cc_redis *r = h->data;
    r->handles--;
    maybe_finish(r);
}

static void
teardown(cc_redis *r)
{
    r->torn = 1;
    r->ready = 0;
    r->state = ST_CLOSED;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->flush, on_handle_closed);
    uv_close((uv_handle_t *)&r->flush_idle, on_handle_closed);
    if (r->gai_busy)
        uv_cancel((uv_req_t *)&r->gai); /* its callback still comes */
    if (r->conn)
        drop_conn(r->conn, CC_ECANCELED);
    while (!cc__list_empty(&r->queue)) {
        req *q = CC__CONTAINER_OF(r->queue.next, req, link);
        cc__list_remove(&q->link);
        r->nqueued--;
        r->qbytes -= q->len;
        finish_req(r, q, CC_ECANCELED, NULL);
    }
}

/* ---- options ---- */

int
cc_redis_opts_new(cc_redis_opts **out, cc_ctx *ctx)
{
    if (out)
        *out = NULL;
    if (!out || !ctx)
        return CC_EINVAL;
    cc_redis_opts *o = cc_ctx_alloc(ctx, sizeof *o);
    if (!o)
        return CC_ENOMEM;
    memset(o, 0, sizeof *o);
    o->ctx = ctx;
    memcpy(o->ns, "cc:", 4);
    o->queue_max = 10000;
    o->queue_bytes = 16 << 20;
    o->connect_ms = 2000;
    o->cmd_ms = 5000;
    o->bmin = 100;
    o->bmax = 5000;
    o->db = 0;
    *out = o;
    return 0;
}

void
cc_redis_opts_free(cc_redis_opts *o)
{
    if (o)
        cc_ctx_free(o->ctx, o, sizeof *o);
}

int
cc_redis_opts_set_int(cc_redis_opts *o, cc_redis_option opt, int64_t v)
{
    if (!o)
        return CC_EINVAL;
    int64_t lo = 0, hi = 0;
    int64_t *dst = NULL;
    switch (opt) {
    case CC_REDIS_OPT_QUEUE_MAX:
        dst = &o->queue_max, lo = 0, hi = 10000000;
        break;
    case CC_REDIS_OPT_QUEUE_MAX_BYTES:
        dst = &o->queue_bytes, lo = 0, hi = (int64_t)1 << 40;
        break;
    case CC_REDIS_OPT_CONNECT_TIMEOUT_MS:
        dst = &o->connect_ms, lo = 1, hi = MS_OPT_MAX;
        break;
    case CC_REDIS_OPT_COMMAND_TIMEOUT_MS:
        dst = &o->cmd_ms, lo = 0, hi = MS_OPT_MAX;
        break;
    case CC_REDIS_OPT_BACKOFF_MIN_MS:
        dst = &o->bmin, lo = 1, hi = MS_OPT_MAX;
        break;
    case CC_REDIS_OPT_BACKOFF_MAX_MS:
        dst = &o->bmax, lo = 1, hi = MS_OPT_MAX;
        break;
    case CC_REDIS_OPT_DB:
        dst = &o->db, lo = 0, hi = INT32_MAX;
        break;
    default:
        return CC_EINVAL;
    }
    if (v < lo || v > hi)
        return CC_EINVAL;
    *dst = v;
    return 0;
}

int
cc_redis_opts_set_str(cc_redis_opts *o, cc_redis_option opt, const char *s)
{
    if (!o || !s)
        return CC_EINVAL;
    size_t n = strlen(s);
    switch (opt) {
    case CC_REDIS_OPT_NAMESPACE:
        if (n > NS_MAX)
            return CC_EINVAL;
        for (size_t i = 0; i < n; i++)
            if (!id_char((unsigned char)s[i]))
                return CC_EINVAL;
        memcpy(o->ns, s, n + 1);
        return 0;
    case CC_REDIS_OPT_PASSWORD:
        if (n > PASS_MAX)
            return CC_EINVAL;
        memcpy(o->pass, s, n + 1);
        return 0;
    case CC_REDIS_OPT_USERNAME:
        if (n > USER_MAX)
            return CC_EINVAL;
        memcpy(o->user, s, n + 1);
        return 0;
    default:
        return CC_EINVAL;
    }
}

/* ---- lifecycle ---- */

int
cc_redis_new(cc_redis **out, cc_ctx *ctx, const char *host, int port,
             const cc_redis_opts *opts)
{
    if (out)
        *out = NULL;
    if (!out || !ctx || !host)
        return CC_EINVAL;
    size_t hl = strlen(host);
    if (hl == 0 || hl > HOST_MAX || port < 1 || port > 65535)
        return CC_EINVAL;
    cc_redis_opts def;
    if (!opts) {
        /* the defaults, without allocating an options object */
        memset(&def, 0, sizeof def);
        memcpy(def.ns, "cc:", 4);
        def.queue_max = 10000;
        def.queue_bytes = 16 << 20;
        def.connect_ms = 2000;
        def.cmd_ms = 5000;
        def.bmin = 100;
        def.bmax = 5000;
        opts = &def;
    }
    if (opts->bmin > opts->bmax)
        return CC_EINVAL;
    cc_redis *r = cc_ctx_alloc(ctx, sizeof *r);
    if (!r)
        return CC_ENOMEM;
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->loop = cc_ctx_loop(ctx);
    memcpy(r->host, host, hl + 1);
    r->port = port;
    memcpy(r->ns, opts->ns, sizeof r->ns);
    r->ns_len = strlen(r->ns);
    memcpy(r->pass, opts->pass, sizeof r->pass);
    memcpy(r->user, opts->user, sizeof r->user);
    r->db = opts->db;
    r->queue_max = (size_t)opts->queue_max;
    r->queue_bytes = (size_t)opts->queue_bytes;
    r->connect_ms = (uint64_t)opts->connect_ms;
    r->cmd_ms = (uint64_t)opts->cmd_ms;
    r->bmin = (uint64_t)opts->bmin;
    r->bmax = (uint64_t)opts->bmax;
    for (int i = 0; i < SCR__N; i++) {
        static const char hex[] = "0123456789abcdef";
        unsigned char md[20];
        mbedtls_sha1_ret((const unsigned char *)scripts[i],
                         strlen(scripts[i]), md);
        for (int k = 0; k < 20; k++) {
            r->sha[i][2 * k] = hex[md[k] >> 4];
            r->sha[i][2 * k + 1] = hex[md[k] & 15];
        }
        r->sha[i][40] = '\0';
    }
    cc__list_init(&r->queue);
    cc__list_init(&r->inflight);
    r->prng = (uint64_t)uv_hrtime() ^ ((uint64_t)(uintptr_t)r *
                                        0x9E3779B97F4A7C15ull);
    if (!r->prng)
        r->prng = 1;
    uv_timer_init(r->loop, &r->timer);
    r->timer.data = r;
    uv_check_init(r->loop, &r->flush);
    r->flush.data = r;
    uv_idle_init(r->loop, &r->flush_idle);
    r->flush_idle.data = r;
    r->handles = 3;
    r->state = ST_IDLE;
    /* first attempt on the next loop turn: nothing runs inside new */
    uv_timer_start(&r->timer, on_timer, 0, 0);
    *out = r;
    return 0;
}

int
cc_redis_on_state(cc_redis *r, cc_redis_state_cb cb, void *data)
{
    if (!r)
        return CC_EINVAL;
    r->state_cb = cb;
    r->state_data = data;
    return 0;
}

int
cc_redis_ready(const cc_redis *r)
{
    return r && r->ready && !r->closing;
}

size_t
cc_redis_queued(const cc_redis *r)
{
    return r ? r->nqueued : 0;
}

size_t
cc_redis_inflight(const cc_redis *r)
{
    return r ? r->ninflight : 0;
}

const char *
cc_redis_last_error(const cc_redis *r)
{
    return r ? r->err : "";
}

void
cc_redis_set_data(cc_redis *r, void *data)
{
    if (r)
        r->data = data;
}

void *
cc_redis_get_data(const cc_redis *r)
{
    return r ? r->data : NULL;
}

void
cc_redis_close(cc_redis *r, cc_close_cb cb, void *data)
{
    if (!r || r->closing)
        return;
    r->closing = 1;
    r->close_cb = cb;
    r->close_data = data;
    enter(r);
    leave(r); /* tears down now, or when the outermost callback returns */
}

/* ---- generic commands ---- */

static int
check(cc_redis *r)
{
    if (!r)
        return CC_EINVAL;
    return r->closing ? CC_ECANCELED : 0;
}

static int
is_cmd(const char *s, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n != k)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch >= 'a' && ch <= 'z')
            ch -= 'a' - 'A';
        if (ch != name[i])
            return 0;
    }
    return 1;
}

int
cc_redis_cmd(cc_redis *r, cc_redis_cb cb, void *data, int argc,
             const char *const *argv, const size_t *argvlen)
{
    static const char *const refused[] = {
        "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE",
        "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
    };
    if (!r || argc < 1 || argc > ARGC_MAX || !argv)
        return CC_EINVAL;
    for (int i = 0; i < argc; i++)
        if (!argv[i] && !(argvlen && argvlen[i] == 0))
            return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    size_t n0 = argvlen ? argvlen[0] : strlen(argv[0]);
    for (size_t i = 0; i < CC__ARRAY_LEN(refused); i++)
        if (argv[0] && is_cmd(argv[0], n0, refused[i]))
            return CC_ENOTSUP;
    req *q = build(r, -1, argc, argv, argvlen);
    if (!q)
        return CC_ENOMEM;
    q->kind = K_RAW;
    q->cb.raw = cb;
    q->data = data;
    return issue(r, q);
}

int
cc_redis_reply_type(const cc_redis_reply *rep)
{
    const redisReply *rp = (const redisReply *)rep;
    if (!rp)
        return 0;
    switch (rp->type) {
    case REDIS_REPLY_NIL:
        return CC_REDIS_REPLY_NIL;
    case REDIS_REPLY_INTEGER:
        return CC_REDIS_REPLY_INT;
    case REDIS_REPLY_STRING:
        return CC_REDIS_REPLY_STR;
    case REDIS_REPLY_STATUS:
        return CC_REDIS_REPLY_STATUS;
    case REDIS_REPLY_ERROR:
        return CC_REDIS_REPLY_ERROR;
    case REDIS_REPLY_ARRAY:
        return CC_REDIS_REPLY_ARRAY;
    default:
        return 0;
    }
}

int64_t
cc_redis_reply_int(const cc_redis_reply *rep)
{
    const redisReply *rp = (const redisReply *)rep;
    return rp && rp->type == REDIS_REPLY_INTEGER ? rp->integer : 0;
}

const char *
cc_redis_reply_str(const cc_redis_reply *rep, size_t *len)
{
    const redisReply *rp = (const redisReply *)rep;
    if (rp && (rp->type == REDIS_REPLY_STRING ||
               rp->type == REDIS_REPLY_STATUS ||
               rp->type == REDIS_REPLY_ERROR)) {
        if (len)
            *len = rp->len;
        return rp->str;
    }
    if (len)
        *len = 0;
    return NULL;
}

size_t
cc_redis_reply_count(const cc_redis_reply *rep)
{
    const redisReply *rp = (const redisReply *)rep;
    return rp && rp->type == REDIS_REPLY_ARRAY ? rp->elements : 0;
}

const cc_redis_reply *
cc_redis_reply_at(const cc_redis_reply *rep, size_t i)
{
    const redisReply *rp = (const redisReply *)rep;
    if (!rp || rp->type != REDIS_REPLY_ARRAY || i >= rp->elements)
        return NULL;
    return (const cc_redis_reply *)rp->element[i];
}

/* ---- chat-domain operations ---- */

/* "<ns><kind>:{<tid>}" then ":<id>" when id is given. tid and id (unless
 * id_raw) must be ids. Returns the length, or 0 when invalid. */
static size_t
make_key(const cc_redis *r, char *buf, const char *kind, const char *tid,
         const char *id, int id_raw)
{
    size_t tl = id_len(tid), il = 0, kl = strlen(kind);
    if (!tl)
        return 0;
    if (id) {
        il = id_raw ? strlen(id) : id_len(id);
        if (!il)
            return 0;
    }
    char *p = buf;
    memcpy(p, r->ns, r->ns_len);
    p += r->ns_len;
    memcpy(p, kind, kl);
    p += kl;
    memcpy(p, ":{", 2);
    p += 2;
    memcpy(p, tid, tl);
    p += tl;
    *p++ = '}';
    if (id) {
        *p++ = ':';
        memcpy(p, id, il);
        p += il;
    }
    *p = '\0';
    return (size_t)(p - buf);
}

/* Build and issue; argv are C strings unless lens is given. */
static int
run(cc_redis *r, int kind, int script, void (*cb)(void), void *data,
    int argc, const char *const *argv, const size_t *lens)
{
    req *q = build(r, script, argc, argv, lens);
    if (!q)
        return CC_ENOMEM;
    q->kind = (uint8_t)kind;
    switch (kind) {
    case K_RAW:
        q->cb.raw = (cc_redis_cb)cb;
        break;
    case K_STR:
        q->cb.s = (cc_redis_str_cb)cb;
        break;
    case K_QLIST:
        q->cb.q = (cc_redis_queue_cb)cb;
        break;
    case K_INBOX:
        q->cb.ib = (cc_redis_inbox_cb)cb;
        break;
    default:
        q->cb.i = (cc_redis_int_cb)cb;
        break;
    }
    q->data = data;
    return issue(r, q);
}

#define CB(f) ((void (*)(void))(f))

static int
kv_set(cc_redis *r, const char *kind, const char *tid, const char *id,
       const char *node, uint32_t ttl_ms, cc_redis_int_cb cb, void *data)
{
    char key[KEY_CAP], ttl[24];
    if (!r || !ttl_ms || !id_len(node) || !make_key(r, key, kind, tid, id, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    *put_dec(ttl, ttl_ms) = '\0';
    const char *argv[] = {"SET", key, node, "PX", ttl};
    return run(r, K_OK, -1, CB(cb), data, 5, argv, NULL);
}

static int
kv_get(cc_redis *r, const char *kind, const char *tid, const char *id,
       cc_redis_str_cb cb, void *data)
{
    char key[KEY_CAP];
    if (!r || !cb || !make_key(r, key, kind, tid, id, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    const char *argv[] = {"GET", key};
    return run(r, K_STR, -1, CB(cb), data, 2, argv, NULL);
}

/* node NULL: DEL; else compare-and-delete */
static int
kv_del(cc_redis *r, const char *kind, const char *tid, const char *id,
       const char *node, cc_redis_int_cb cb, void *data)
{
    char key[KEY_CAP];
    if (!r || (node && !id_len(node)) || !make_key(r, key, kind, tid, id, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    if (!node) {
        const char *argv[] = {"DEL", key};
        return run(r, K_INT, -1, CB(cb), data, 2, argv, NULL);
    }
    const char *argv[] = {"1", key, node};
    return run(r, K_INT, SCR_DEL_IF, CB(cb), data, 3, argv, NULL);
}

int
cc_redis_presence_set(cc_redis *r, const char *tid, const char *uid,
                      const char *node, uint32_t ttl_ms, cc_redis_int_cb cb,
                      void *data)
{
    return kv_set(r, "presence", tid, uid, node, ttl_ms, cb, data);
}

int
cc_redis_presence_get(cc_redis *r, const char *tid, const char *uid,
                      cc_redis_str_cb cb, void *data)
{
    return kv_get(r, "presence", tid, uid, cb, data);
}

int
cc_redis_presence_del(cc_redis *r, const char *tid, const char *uid,
                      const char *node, cc_redis_int_cb cb, void *data)
{
    return kv_del(r, "presence", tid, uid, node, cb, data);
}

int
cc_redis_session_node_set(cc_redis *r, const char *tid, const char *sid,
                          const char *node, uint32_t ttl_ms,
                          cc_redis_int_cb cb, void *data)
{
    return kv_set(r, "session", tid, sid, node, ttl_ms, cb, data);
}

int
cc_redis_session_node_get(cc_redis *r, const char *tid, const char *sid,
                          cc_redis_str_cb cb, void *data)
{
    return kv_get(r, "session", tid, sid, cb, data);
}

int
cc_redis_session_node_del(cc_redis *r, const char *tid, const char *sid,
                          const char *node, cc_redis_int_cb cb, void *data)
{
    return kv_del(r, "session", tid, sid, node, cb, data);
}

int
cc_redis_queue_add(cc_redis *r, const char *tid, const char *sid,
                   int64_t since_ms, cc_redis_int_cb cb, void *data)
{
    char key[KEY_CAP], score[24];
    if (!r || since_ms < 0 || (uint64_t)since_ms > NUM53_MAX ||
        !id_len(sid) || !make_key(r, key, "queue", tid, NULL, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    *put_dec(score, (uint64_t)since_ms) = '\0';
    const char *argv[] = {"ZADD", key, score, sid};
    return run(r, K_INT, -1, CB(cb), data, 4, argv, NULL);
}

static int
queue_member_op(cc_redis *r, const char *op, int kind, const char *tid,
                const char *sid, cc_redis_int_cb cb, void *data)
{
    char key[KEY_CAP];
    if (!r || !id_len(sid) || !make_key(r, key, "queue", tid, NULL, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    const char *argv[] = {op, key, sid};
    return run(r, kind, -1, CB(cb), data, 3, argv, NULL);
}

int
cc_redis_queue_remove(cc_redis *r, const char *tid, const char *sid,
                      cc_redis_int_cb cb, void *data)
{
    return queue_member_op(r, "ZREM", K_INT, tid, sid, cb, data);
}

int
cc_redis_queue_rank(cc_redis *r, const char *tid, const char *sid,
                    cc_redis_int_cb cb, void *data)
{
    if (!cb)
        return CC_EINVAL;
    return queue_member_op(r, "ZRANK", K_RANK, tid, sid, cb, data);
}

int
cc_redis_queue_len(cc_redis *r, const char *tid, cc_redis_int_cb cb,
                   void *data)
{
    char key[KEY_CAP];
    if (!r || !cb || !make_key(r, key, "queue", tid, NULL, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    const char *argv[] = {"ZCARD", key};
    return run(r, K_INT, -1, CB(cb), data, 2, argv, NULL);
}

int
cc_redis_queue_list(cc_redis *r, const char *tid, size_t limit,
                    cc_redis_queue_cb cb, void *data)
{
    char key[KEY_CAP], stop[24];
    if (!r || !cb || limit < 1 || limit > LIST_MAX ||
        !make_key(r, key, "queue", tid, NULL, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    *put_dec(stop, limit - 1) = '\0';
    const char *argv[] = {"ZRANGE", key, "0", stop, "WITHSCORES"};
    return run(r, K_QLIST, -1, CB(cb), data, 5, argv, NULL);
}

int
cc_redis_claim(cc_redis *r, const char *tid, const char *sid,
               const char *agent, uint32_t ttl_ms, cc_redis_int_cb cb,
               void *data)
{
    char key[KEY_CAP], ttl[24];
    if (!r || !ttl_ms || !id_len(agent) ||
        !make_key(r, key, "claim", tid, sid, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    *put_dec(ttl, ttl_ms) = '\0';
    const char *argv[] = {"SET", key, agent, "NX", "PX", ttl};
    return run(r, K_SETNX, -1, CB(cb), data, 6, argv, NULL);
}

int
cc_redis_claim_release(cc_redis *r, const char *tid, const char *sid,
                       const char *agent, cc_redis_int_cb cb, void *data)
{
    if (!agent)
        return CC_EINVAL;
    return kv_del(r, "claim", tid, sid, agent, cb, data);
}

int
cc_redis_bucket_take(cc_redis *r, const char *key, double rate,
                     double burst, cc_redis_int_cb cb, void *data)
{
    char k[KEY_CAP], ra[40], bu[40];
    size_t kl = key ? strlen(key) : 0;
    if (!r || !cb || kl < 1 || kl > BUCKET_KEY_MAX || !(rate > 0) ||
        !(burst >= 1) || isinf(rate) || isinf(burst))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    memcpy(k, r->ns, r->ns_len);
    memcpy(k + r->ns_len, "bucket:", 7);
    memcpy(k + r->ns_len + 7, key, kl + 1);
    /* %.17g: the script reads back exactly the double given here */
    snprintf(ra, sizeof ra, "%.17g", rate);
    snprintf(bu, sizeof bu, "%.17g", burst);
    const char *argv[] = {"1", k, ra, bu};
    return run(r, K_INT, SCR_BUCKET, CB(cb), data, 4, argv, NULL);
}

int
cc_redis_nonce_use(cc_redis *r, const char *tid, const char *nonce,
                   uint32_t window_s, cc_redis_int_cb cb, void *data)
{
    char key[KEY_CAP], win[24];
    if (!r || !cb || !window_s || !make_key(r, key, "nonce", tid, nonce, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    *put_dec(win, window_s) = '\0';
    const char *argv[] = {"SET", key, "1", "NX", "EX", win};
    return run(r, K_SETNX, -1, CB(cb), data, 6, argv, NULL);
}

int
cc_redis_inbox_push(cc_redis *r, const char *tid, const char *uid,
                    uint64_t seq, const void *item, size_t len,
                    uint32_t ttl_ms, uint32_t max_items, cc_redis_int_cb cb,
                    void *data)
{
    char key[KEY_CAP], max[24], ttl[24];
    if (!r || seq > NUM53_MAX || (!item && len) || len > CONFIG_MAX ||
        !make_key(r, key, "inbox", tid, uid, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    /* the element is "<seq>:<bytes>", built in one allocation */
    size_t hl = dec_len(seq) + 1, el = hl + len;
    char *elem = cc_ctx_alloc(r->ctx, el);
    if (!elem)
        return CC_ENOMEM;
    *put_dec(elem, seq) = ':';
    if (len)
        memcpy(elem + hl, item, len);
    *put_dec(max, max_items) = '\0';
    *put_dec(ttl, ttl_ms) = '\0';
    const char *argv[] = {"1", key, elem, max, ttl};
    const size_t lens[] = {1, strlen(key), el, strlen(max), strlen(ttl)};
    rc = run(r, K_INT, SCR_INBOX_PUSH, CB(cb), data, 5, argv, lens);
    cc_ctx_free(r->ctx, elem, el);
    return rc;
}

int
cc_redis_inbox_range(cc_redis *r, const char *tid, const char *uid,
                     size_t start, size_t count, cc_redis_inbox_cb cb,
                     void *data)
{
    char key[KEY_CAP], a[24], b[24];
    if (!r || !cb || count < 1 || count > LIST_MAX ||
        start > (size_t)INT64_MAX - count ||
        !make_key(r, key, "inbox", tid, uid, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    *put_dec(a, start) = '\0';
    *put_dec(b, start + count - 1) = '\0';
    const char *argv[] = {"LRANGE", key, a, b};
    return run(r, K_INBOX, -1, CB(cb), data, 4, argv, NULL);
}

int
cc_redis_inbox_trim(cc_redis *r, const char *tid, const char *uid,
                    uint64_t upto_seq, cc_redis_int_cb cb, void *data)
{
    char key[KEY_CAP], upto[24];
    if (!r || !make_key(r, key, "inbox", tid, uid, 0))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    /* seqs are at most 2^53 - 1, so a larger bound means "all" */
    *put_dec(upto, upto_seq > NUM53_MAX ? NUM53_MAX : upto_seq) = '\0';
    const char *argv[] = {"1", key, upto};
    return run(r, K_INT, SCR_INBOX_TRIM, CB(cb), data, 3, argv, NULL);
}

int
cc_redis_tenant_config_set(cc_redis *r, const char *tid, const char *json,
                           size_t len, uint32_t ttl_ms, cc_redis_int_cb cb,
                           void *data)
{
    char key[KEY_CAP], ttl[24];
    if (!r || (!json && len) || len > CONFIG_MAX ||
        !make_key(r, key, "tenant", tid, "config", 1))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    const char *argv[] = {"SET", key, json ? json : "", "PX", ttl};
    const size_t lens[] = {3, strlen(key), len, 2, 0};
    if (!ttl_ms)
        return run(r, K_OK, -1, CB(cb), data, 3, argv, lens);
    *put_dec(ttl, ttl_ms) = '\0';
    const size_t lens2[] = {3, strlen(key), len, 2, strlen(ttl)};
    return run(r, K_OK, -1, CB(cb), data, 5, argv, lens2);
}

int
cc_redis_tenant_config_get(cc_redis *r, const char *tid, cc_redis_str_cb cb,
                           void *data)
{
    char key[KEY_CAP];
    if (!r || !cb || !make_key(r, key, "tenant", tid, "config", 1))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    const char *argv[] = {"GET", key};
    return run(r, K_STR, -1, CB(cb), data, 2, argv, NULL);
}

int
cc_redis_tenant_config_del(cc_redis *r, const char *tid, cc_redis_int_cb cb,
                           void *data)
{
    char key[KEY_CAP];
    if (!r || !make_key(r, key, "tenant", tid, "config", 1))
        return CC_EINVAL;
    int rc = check(r);
    if (rc)
        return rc;
    const char *argv[] = {"DEL", key};
    return run(r, K_INT, -1, CB(cb), data, 2, argv, NULL);
}
