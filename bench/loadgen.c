/*
 * bench/loadgen.c - the WebSocket load generator behind bench/run.sh,
 * built on libchatcore's own public client API (cc_ws_connect and the
 * endpoint callbacks), one libuv loop and one cc_ctx per thread.
 *
 * Modes (--mode):
 *   echo       --conns C connections, each keeping --inflight W messages
 *              of --size S bytes in flight; every echo is timed and
 *              answered with a fresh message. Reports round trips/s and
 *              round-trip latency percentiles.
 *   broadcast  --conns C connections; the first one also sends. The server
 *              relays each message to every connection (sender included).
 *              A broadcast is complete when all C copies have arrived; the
 *              sender keeps W broadcasts outstanding. Reports deliveries/s
 *              and send-to-receive latency of every delivery.
 *   idle       open --conns C connections (--pending handshakes at once),
 *              print "READY ..." on stderr, hold them --duration seconds,
 *              then report the connect rate and how many survived.
 *   connect    churn: keep --pending connections opening; each one that
 *              opens is closed again at once and replaced. Reports
 *              handshakes/s and connect latency (connect call to on_open).
 *
 * Timing: connect everything (echo/broadcast/idle), then --warmup seconds
 * of load that is not counted, then --duration seconds that are. With
 * --pid P the server's utime+stime (/proc/P/stat) is read at both ends of
 * the measured interval, so each rate is also given per second of server
 * CPU; VmRSS (/proc/P/status) is read before connecting and once every
 * connection is open.
 *
 * Output: one JSON line on stdout. Errors and progress go to stderr.
 *
 * Message layout (ASCII, so the same bytes are valid text or binary):
 *   'T', 16 hex digits of uv_hrtime() at send, 8 hex digits of a sequence
 *   number, then 'x' padding up to --size.
 *
 * This is a tool, not library code: it uses libc allocation directly and
 * keeps its run-wide settings in file statics.
 */
#define _GNU_SOURCE
#include <chatcore/chatcore.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "hexfield.h"
#include "procstat.h"
#include "hist.h"

#define HDR_LEN 25          /* 'T' + 16 + 8 */
#define BC_RING 65536       /* broadcast completion slots (> window) */
#define MAX_BIND 64
#define MAX_ERRNAMES 16

enum mode { MODE_ECHO, MODE_BROADCAST, MODE_IDLE, MODE_CONNECT };

/* Run phases, set by the main thread and read by every worker. */
enum phase {
    PH_CONNECT = 0, /* opening the connection set */
    PH_WARMUP,      /* load running, not counted */
    PH_MEASURE,     /* load running, counted */
    PH_DRAIN,       /* load still running, not counted: results frozen */
    PH_STOP         /* closing everything */
};

enum lstate { LC_CONNECTING, LC_OPEN, LC_CLOSING };

typedef struct worker worker;

typedef struct lconn {
    struct lconn *next, *prev;  /* worker's live list */
    worker *w;
    cc_ws_conn *c;
    uint64_t t_start;           /* connect mode: when cc_ws_connect ran */
    int state;
} lconn;

typedef struct errname {
    int code;
    uint64_t n;
} errname;

struct worker {
    int id;
    pthread_t thread;
    uv_loop_t loop;
    cc_ctx *ctx;
    cc_ws_endpoint *ep;
    cc_config *ep_cfg;
    cc_config *bind_cfg[MAX_BIND];
    int nbind;
    uv_async_t ctl;             /* main -> worker: phase changed */
    uv_async_t kick;            /* broadcast: a broadcast completed */
    uv_timer_t fin;             /* deferred teardown */
    int fin_armed;
    int ctl_seen;               /* last phase acted on */
    lconn live;                 /* list head */
    uint64_t nlive;
    uint64_t to_open;           /* connections still to start */
    uint64_t pending;           /* started, not yet open (or, churn: live) */
    uint64_t max_pending;
    uint64_t bind_next;
    uint8_t *buf;               /* outgoing message template */
    lconn *sender;              /* broadcast: worker 0 only */
    uint64_t bc_sent;           /* broadcast: seq of the next send */
    hist h;                     /* written by this worker only */
    /* counters read by the main thread while running */
    _Atomic uint64_t opened;    /* on_open status 0 */
    _Atomic uint64_t failed;    /* on_open status < 0 */
    _Atomic uint64_t msgs;      /* echoes / deliveries / handshakes */
    _Atomic uint64_t bytes;
    _Atomic uint64_t dropped;   /* closed before PH_STOP */
    _Atomic uint64_t send_err;
    _Atomic uint64_t bad_msg;
    _Atomic uint64_t close_err; /* on_close status != 0 after PH_STOP */
    _Atomic int ready;          /* handles exist: main may signal */
    _Atomic int done;
    errname errs[MAX_ERRNAMES];
};

/* ---- settings (set once by main before the workers start) ---- */
static enum mode g_mode = MODE_ECHO;
static const char *g_url;
static uint64_t g_conns = 100;
static uint64_t g_inflight = 1;
static uint64_t g_pending = 256;
static size_t g_size = 32;
static double g_duration = 10.0;
static double g_warmup = 2.0;
static double g_connect_timeout = 60.0;
static int g_threads = 1;
static int g_opcode = CC_WS_BINARY;
static long g_pid = 0;
static char *g_bind[MAX_BIND];
static int g_nbind;
static const char *g_label = "";

/* ---- shared run state ---- */
static worker *g_workers;
static _Atomic int g_phase = PH_CONNECT;
static _Atomic uint64_t g_bc_expected;          /* receivers per broadcast */
static _Atomic uint32_t g_bc_slot[BC_RING];     /* copies seen per seq */
static _Atomic uint64_t g_bc_done;              /* completed broadcasts */
/* worker 0's kick handle may be closed while other threads still see
 * completions; the flag under the mutex keeps them off a closed handle */
static pthread_mutex_t g_kick_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_kick_open;

static void start_more(worker *w);

/* ---------------------------------------------------------------- util */

static uint64_t
now_ns(void)
{
    return uv_hrtime();
}

static void
sleep_s(double s)
{
    struct timespec ts;

    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void
msg_fill(uint8_t *buf, size_t size)
{
    memset(buf, 'x', size);
    buf[0] = 'T';
}

static void
msg_stamp(uint8_t *buf, uint64_t ts, uint64_t seq)
{
    hex_put((char *)buf + 1, ts, 16);
    hex_put((char *)buf + 17, seq & 0xffffffffu, 8);
}

/* Returns 0 with ts and seq, or -1 when the message is not ours. */
static int
msg_parse(const uint8_t *p, size_t len, uint64_t *ts, uint64_t *seq)
{
    if (len < HDR_LEN || p[0] != 'T')
        return -1;
    const char *t = (const char *)p;
    if (hex_get(t + 1, 16, ts) != 0 || hex_get(t + 17, 8, seq) != 0)
        return -1;
    return 0;
}

static void
count_err(worker *w, int code)
{
    int i;

    for (i = 0; i < MAX_ERRNAMES; i++) {
        if (w->errs[i].n == 0 || w->errs[i].code == code) {
            w->errs[i].code = code;
            w->errs[i].n++;
            return;
        }
    }
}

static double
self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------ connection list */

static void
live_add(worker *w, lconn *lc)
{
    lc->next = &w->live;
    lc->prev = w->live.prev;
    w->live.prev->next = lc;
    w->live.prev = lc;
    w->nlive++;
}

static void
live_remove(worker *w, lconn *lc)
{
    lc->prev->next = lc->next;
    lc->next->prev = lc->prev;
    lc->next = lc->prev = lc;
    w->nlive--;
}

/* Once everything is closed after PH_STOP, release the worker's objects;
 * the loop then runs out of handles and uv_run returns. */
static void
ctx_closed(void *obj, void *data)
{
    (void)obj;
    (void)data;
}

static void
finish(uv_timer_t *t)
{
    worker *w = t->data;
    int i;

    if (w->ep == NULL)
        return;
    cc_ws_endpoint_free(w->ep);
    w->ep = NULL;
    cc_config_free(w->ep_cfg);
    w->ep_cfg = NULL;
    for (i = 0; i < w->nbind; i++)
        cc_config_free(w->bind_cfg[i]);
    w->nbind = 0;
    uv_close((uv_handle_t *)&w->ctl, NULL);
    if (w->id == 0) {
        pthread_mutex_lock(&g_kick_mu);
        g_kick_open = 0;
        pthread_mutex_unlock(&g_kick_mu);
    }
    uv_close((uv_handle_t *)&w->kick, NULL);
    uv_close((uv_handle_t *)&w->fin, NULL);
    cc_ctx_close(w->ctx, ctx_closed, w);
}

/* The last on_close is still running when the list empties, and the
 * connection is freed only after it returns, so the endpoint is freed
 * from a zero timer on the next loop turn. */
static void
maybe_finish(worker *w)
{
    if (w->ctl_seen != PH_STOP || w->nlive != 0 || w->ep == NULL ||
        w->fin_armed)
        return;
    w->fin_armed = 1;
    uv_timer_start(&w->fin, finish, 0, 0);
}

/* ------------------------------------------------------------- sending */

static void
send_one(worker *w, lconn *lc, uint64_t seq)
{
    int r;

    msg_stamp(w->buf, now_ns(), seq);
    r = cc_ws_send(lc->c, g_opcode, w->buf, g_size);
    if (r != 0) {
        atomic_fetch_add_explicit(&w->send_err, 1, memory_order_relaxed);
        count_err(w, r);
    }
}

/* Broadcast, worker 0: keep g_inflight broadcasts outstanding. */
static void
bc_pump(worker *w)
{
    int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);

    if (w->sender == NULL || w->sender->state != LC_OPEN || ph >= PH_STOP ||
        ph == PH_CONNECT)
        return;
    while (w->bc_sent - atomic_load(&g_bc_done) < g_inflight) {
        send_one(w, w->sender, w->bc_sent);
        w->bc_sent++;
    }
}

static void
on_kick(uv_async_t *a)
{
    bc_pump(a->data);
}

/* ---------------------------------------------------------- callbacks */

static void
on_open(cc_ws_conn *c, int status, void *data)
{
    worker *w = data;
    lconn *lc = cc_ws_conn_get_data(c);
    int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);
    uint64_t i;

    /* churn counts a connection as pending until on_close */
    if (w->pending > 0 && (g_mode != MODE_CONNECT || status != 0))
        w->pending--;
    if (status != 0) {
        /* a failed client gets nothing after this: it is gone */
        if (ph < PH_STOP) {
            atomic_fetch_add_explicit(&w->failed, 1, memory_order_relaxed);
            count_err(w, status);
        }
        live_remove(w, lc);
        free(lc);
        start_more(w);
        maybe_finish(w);
        return;
    }
    atomic_fetch_add_explicit(&w->opened, 1, memory_order_relaxed);
    if (lc->state == LC_CLOSING) {
        /* asked to close while connecting; ask again now that it is open,
         * in case the first request came too early to count */
        cc_ws_close(c, CC_WS_CLOSE_NORMAL, NULL, 0);
        return;
    }
    lc->state = LC_OPEN;
    if (ph >= PH_STOP) {
        lc->state = LC_CLOSING;
        cc_ws_close(c, CC_WS_CLOSE_NORMAL, NULL, 0);
        return;
    }
    switch (g_mode) {
    case MODE_CONNECT:
        if (ph == PH_MEASURE) {
            hist_record(&w->h, now_ns() - lc->t_start);
            atomic_fetch_add_explicit(&w->msgs, 1, memory_order_relaxed);
        }
        lc->state = LC_CLOSING;
        cc_ws_close(c, CC_WS_CLOSE_NORMAL, NULL, 0);
        break;
    case MODE_ECHO:
        /* a late opener joins a run that this thread has started */
        if (w->ctl_seen >= PH_WARMUP && w->ctl_seen < PH_STOP)
            for (i = 0; i < g_inflight; i++)
                send_one(w, lc, i);
        start_more(w);
        break;
    default:
        start_more(w);
        break;
    }
}

static void
on_message(cc_ws_conn *c, int opcode, const uint8_t *msg, size_t len,
           void *data)
{
    worker *w = data;
    lconn *lc = cc_ws_conn_get_data(c);
    int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);
    uint64_t ts, seq, now = now_ns();

    if (len != g_size || opcode != g_opcode ||
        msg_parse(msg, len, &ts, &seq) != 0) {
        atomic_fetch_add_explicit(&w->bad_msg, 1, memory_order_relaxed);
        return;
    }
    if (ph == PH_MEASURE) {
        hist_record(&w->h, now > ts ? now - ts : 0);
        atomic_fetch_add_explicit(&w->msgs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->bytes, len, memory_order_relaxed);
    }
    if (g_mode == MODE_ECHO) {
        if (ph < PH_STOP && lc->state == LC_OPEN)
            send_one(w, lc, seq + g_inflight);
        return;
    }
    if (g_mode == MODE_BROADCAST) {
        _Atomic uint32_t *slot = &g_bc_slot[seq % BC_RING];
        uint64_t want = atomic_load_explicit(&g_bc_expected,
                                             memory_order_relaxed);

        if (atomic_fetch_add(slot, 1) + 1 == want) {
            /* last copy: free the slot, let the sender go on */
            atomic_store(slot, 0);
            atomic_fetch_add(&g_bc_done, 1);
            if (w->id == 0) {
                bc_pump(w);
            } else {
                pthread_mutex_lock(&g_kick_mu);
                if (g_kick_open)
                    uv_async_send(&g_workers[0].kick);
                pthread_mutex_unlock(&g_kick_mu);
            }
        }
    }
}

static void
on_close(cc_ws_conn *c, int status, int code, const char *reason,
         size_t reason_len, void *data)
{
    worker *w = data;
    lconn *lc = cc_ws_conn_get_data(c);
    int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);
    bool expected = lc->state == LC_CLOSING;

    (void)code;
    (void)reason;
    (void)reason_len;
    if (!expected && ph < PH_STOP) {
        atomic_fetch_add_explicit(&w->dropped, 1, memory_order_relaxed);
        count_err(w, status != 0 ? status : CC_ECLOSED);
    } else if (status != 0 && ph >= PH_STOP) {
        atomic_fetch_add_explicit(&w->close_err, 1, memory_order_relaxed);
        count_err(w, status);
    } else if (status != 0 && g_mode == MODE_CONNECT) {
        count_err(w, status);
        atomic_fetch_add_explicit(&w->close_err, 1, memory_order_relaxed);
    }
    if (lc == w->sender)
        w->sender = NULL;
    live_remove(w, lc);
    free(lc);
    if (g_mode == MODE_CONNECT && w->pending > 0)
        w->pending--; /* churn counts a connection until it is closed */
    start_more(w);
    maybe_finish(w);
}

/* ------------------------------------------------------------ opening */

static void
start_one(worker *w)
{
    lconn *lc = calloc(1, sizeof(*lc));
    const cc_config *cfg = NULL;
    int r;

    if (lc == NULL) {
        atomic_fetch_add(&w->failed, 1);
        count_err(w, CC_ENOMEM);
        return;
    }
    lc->w = w;
    lc->state = LC_CONNECTING;
    lc->t_start = now_ns();
    if (w->nbind > 0)
        cfg = w->bind_cfg[w->bind_next++ % (uint64_t)w->nbind];
    r = cc_ws_connect(&lc->c, w->ep, g_url, cfg, NULL, lc);
    if (r != 0) {
        atomic_fetch_add(&w->failed, 1);
        count_err(w, r);
        free(lc);
        return;
    }
    live_add(w, lc);
    w->pending++;
}

static void
start_more(worker *w)
{
    int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);

    if (ph >= PH_STOP || w->ctl_seen >= PH_STOP)
        return;
    if (g_mode == MODE_CONNECT) {
        if (ph == PH_CONNECT)
            return;
        while (w->pending < w->max_pending)
            start_one(w);
        return;
    }
    while (w->to_open > 0 && w->pending < w->max_pending) {
        w->to_open--;
        start_one(w);
    }
}

/* ------------------------------------------------------ phase control */

static void
stop_all(worker *w)
{
    lconn *lc, *next;

    for (lc = w->live.next; lc != &w->live; lc = next) {
        next = lc->next;
        if (lc->state == LC_CLOSING)
            continue;
        lc->state = LC_CLOSING;
        /* a connecting one reports through on_open (status < 0 or
         * 0 then on_close); either way it leaves the list */
        cc_ws_close(lc->c, CC_WS_CLOSE_NORMAL, NULL, 0);
    }
    maybe_finish(w);
}

static void
on_ctl(uv_async_t *a)
{
    worker *w = a->data;
    int ph = atomic_load(&g_phase);
    lconn *lc;
    uint64_t i;

    if (ph == w->ctl_seen)
        return;
    if (w->ctl_seen == PH_CONNECT && ph >= PH_WARMUP && ph < PH_STOP) {
        /* the load starts */
        w->ctl_seen = ph;
        switch (g_mode) {
        case MODE_ECHO:
            for (lc = w->live.next; lc != &w->live; lc = lc->next)
                if (lc->state == LC_OPEN)
                    for (i = 0; i < g_inflight; i++)
                        send_one(w, lc, i);
            break;
        case MODE_BROADCAST:
            if (w->id == 0) {
                for (lc = w->live.next; lc != &w->live; lc = lc->next)
                    if (lc->state == LC_OPEN) {
                        w->sender = lc;
                        break;
                    }
                bc_pump(w);
            }
            break;
        case MODE_CONNECT:
            start_more(w);
            break;
        default:
            break;
        }
        return;
    }
    w->ctl_seen = ph;
    if (ph >= PH_STOP)
        stop_all(w);
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    int i, r;

    r = uv_loop_init(&w->loop);
    if (r == 0)
        r = cc_ctx_new(&w->ctx, &w->loop, NULL);
    if (r == 0)
        r = cc_config_new(&w->ep_cfg, NULL);
    if (r == 0) {
        int64_t maxmsg = (int64_t)g_size * 2;

        if (maxmsg < 65536)
            maxmsg = 65536;
        cc_config_set_int(w->ep_cfg, CC_OPT_WS_MAX_MESSAGE, maxmsg);
        /* the tool decides when connections end, not an idle timer */
        cc_config_set_ms(w->ep_cfg, CC_OPT_WS_IDLE_TIMEOUT_MS, 0);
        cc_config_set_ms(w->ep_cfg, CC_OPT_CLOSE_TIMEOUT_MS, 2000);
        cc_config_set_int(w->ep_cfg, CC_OPT_OUT_HIGH_WATER, 1 << 20);
        cc_config_set_int(w->ep_cfg, CC_OPT_OUT_MAX, 64 << 20);
        r = cc_ws_endpoint_new(&w->ep, w->ctx, w->ep_cfg);
    }
    for (i = 0; r == 0 && i < g_nbind; i++) {
        r = cc_config_new(&w->bind_cfg[i], NULL);
        if (r == 0)
            r = cc_config_set_str(w->bind_cfg[i], CC_OPT_CLIENT_BIND_ADDR,
                                  g_bind[i]);
        if (r == 0)
            w->nbind = i + 1;
    }
    if (r != 0) {
        fprintf(stderr, "loadgen: worker %d setup failed: %s\n", w->id,
                cc_strerror(r));
        exit(1);
    }
    cc_ws_endpoint_on_open(w->ep, on_open, w);
    cc_ws_endpoint_on_message(w->ep, on_message, w);
    cc_ws_endpoint_on_close(w->ep, on_close, w);
    uv_async_init(&w->loop, &w->ctl, on_ctl);
    w->ctl.data = w;
    uv_async_init(&w->loop, &w->kick, on_kick);
    w->kick.data = w;
    uv_timer_init(&w->loop, &w->fin);
    w->fin.data = w;
    if (w->id == 0) {
        pthread_mutex_lock(&g_kick_mu);
        g_kick_open = 1;
        pthread_mutex_unlock(&g_kick_mu);
    }
    atomic_store(&w->ready, 1);

    start_more(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    atomic_store(&w->done, 1);
    return NULL;
}

/* ------------------------------------------------------------ results */

typedef struct snap {
    uint64_t opened, failed, msgs, bytes, dropped, send_err, bad_msg,
        close_err;
    double server_cpu;
    double self_cpu;
    uint64_t t;
} snap;

static void
take_snap(snap *s)
{
    int i;

    memset(s, 0, sizeof(*s));
    s->t = now_ns();
    for (i = 0; i < g_threads; i++) {
        worker *w = &g_workers[i];

        s->opened += atomic_load(&w->opened);
        s->failed += atomic_load(&w->failed);
        s->msgs += atomic_load(&w->msgs);
        s->bytes += atomic_load(&w->bytes);
        s->dropped += atomic_load(&w->dropped);
        s->send_err += atomic_load(&w->send_err);
        s->bad_msg += atomic_load(&w->bad_msg);
        s->close_err += atomic_load(&w->close_err);
    }
    s->server_cpu = g_pid > 0 ? proc_cpu_s(g_pid) : -1;
    s->self_cpu = self_cpu_s();
}

static void
set_phase(int ph)
{
    int i;

    atomic_store(&g_phase, ph);
    for (i = 0; i < g_threads; i++)
        uv_async_send(&g_workers[i].ctl);
}

static const char *
mode_name(enum mode m)
{
    switch (m) {
    case MODE_ECHO: return "echo";
    case MODE_BROADCAST: return "broadcast";
    case MODE_IDLE: return "idle";
    case MODE_CONNECT: return "connect";
    }
    return "?";
}

static void
print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void
print_latency(const hist *h)
{
    printf("\"latency_us\":{\"count\":%" PRIu64 ",\"min\":%.1f,"
           "\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
           "\"p999\":%.1f,\"max\":%.1f}",
           h->total, h->total ? (double)h->min / 1e3 : 0.0,
           h->total ? h->sum / (double)h->total / 1e3 : 0.0,
           (double)hist_quantile(h, 0.50) / 1e3,
           (double)hist_quantile(h, 0.90) / 1e3,
           (double)hist_quantile(h, 0.99) / 1e3,
           (double)hist_quantile(h, 0.999) / 1e3,
           (double)h->max / 1e3);
}

/* ------------------------------------------------------------ options */

static void
usage(void)
{
    fprintf(stderr,
        "usage: loadgen --url ws://HOST:PORT/PATH --mode echo|broadcast|idle|connect\n"
        "  [--conns C] [--inflight W] [--size S] [--duration SEC]\n"
        "  [--warmup SEC] [--threads N] [--pending P] [--text]\n"
        "  [--bind 127.0.0.2,127.0.0.3,...] [--pid SERVER_PID]\n"
        "  [--connect-timeout SEC] [--label TEXT]\n"
        "  loadgen --selftest\n");
    exit(2);
}

static int selftest(void);

static void
parse_bind(char *list)
{
    char *save = NULL, *tok;

    for (tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (g_nbind == MAX_BIND) {
            fprintf(stderr, "loadgen: at most %d --bind addresses\n",
                    MAX_BIND);
            exit(2);
        }
        g_bind[g_nbind++] = tok;
    }
}

static void
parse_args(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(a, "--selftest"))
            exit(selftest());
        if (!strcmp(a, "--text")) {
            g_opcode = CC_WS_TEXT;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (!strcmp(a, "--url"))
            g_url = v;
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "echo"))
                g_mode = MODE_ECHO;
            else if (!strcmp(v, "broadcast"))
                g_mode = MODE_BROADCAST;
            else if (!strcmp(v, "idle"))
                g_mode = MODE_IDLE;
            else if (!strcmp(v, "connect"))
                g_mode = MODE_CONNECT;
            else
                usage();
        } else if (!strcmp(a, "--conns"))
            g_conns = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--inflight"))
            g_inflight = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--pending"))
            g_pending = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--size"))
            g_size = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--duration"))
            g_duration = atof(v);
        else if (!strcmp(a, "--warmup"))
            g_warmup = atof(v);
        else if (!strcmp(a, "--connect-timeout"))
            g_connect_timeout = atof(v);
        else if (!strcmp(a, "--threads"))
            g_threads = atoi(v);
        else if (!strcmp(a, "--pid"))
            g_pid = atol(v);
        else if (!strcmp(a, "--label"))
            g_label = v;
        else if (!strcmp(a, "--bind"))
            parse_bind(argv[i]);
        else
            usage();
    }
    if (g_url == NULL || g_threads < 1 || g_threads > 64 || g_conns < 1 ||
        g_pending < 1 || g_duration <= 0 || g_warmup < 0)
        usage();
    if (g_mode == MODE_BROADCAST || g_mode == MODE_ECHO) {
        if (g_size < HDR_LEN) {
            fprintf(stderr, "loadgen: --size must be >= %d\n", HDR_LEN);
            exit(2);
        }
        if (g_inflight < 1 || g_inflight >= BC_RING / 2) {
            fprintf(stderr, "loadgen: --inflight must be 1..%d\n",
                    BC_RING / 2 - 1);
            exit(2);
        }
    }
    if ((uint64_t)g_threads > g_conns && g_mode != MODE_CONNECT)
        g_threads = (int)g_conns;
}

/* --------------------------------------------------------------- main */

int
main(int argc, char **argv)
{
    snap s_conn0, s_conn1, s_m0, s_m1, s_end;
    long rss_before = -1, rss_after = -1;
    uint64_t total_opened = 0, bc_done0 = 0, bc_done1 = 0;
    double conn_s, meas_s, srv_cpu = -1, waited = 0, hold_s = 0;
    bool clean = true;
    hist h;
    int i;

    parse_args(argc, argv);
    g_workers = calloc((size_t)g_threads, sizeof(*g_workers));
    if (g_workers == NULL)
        return 1;
    if (g_pid > 0)
        rss_before = proc_rss_kb(g_pid);

    for (i = 0; i < g_threads; i++) {
        worker *w = &g_workers[i];
        uint64_t share = g_conns / (uint64_t)g_threads +
                         ((uint64_t)i < g_conns % (uint64_t)g_threads);

        w->id = i;
        w->live.next = w->live.prev = &w->live;
        w->to_open = g_mode == MODE_CONNECT ? 0 : share;
        w->max_pending = g_pending / (uint64_t)g_threads;
        if (w->max_pending < 1)
            w->max_pending = 1;
        if (g_mode == MODE_CONNECT)
            w->max_pending = share > 0 ? share : 1;
        w->buf = malloc(g_size > HDR_LEN ? g_size : HDR_LEN);
        if (w->buf == NULL)
            return 1;
        msg_fill(w->buf, g_size > HDR_LEN ? g_size : HDR_LEN);
        hist_init(&w->h);
    }
    take_snap(&s_conn0);
    for (i = 0; i < g_threads; i++)
        if (pthread_create(&g_workers[i].thread, NULL, worker_main,
                           &g_workers[i]) != 0) {
            fprintf(stderr, "loadgen: pthread_create failed\n");
            return 1;
        }

    /* Phases are signalled through each worker's async handle, which
     * must exist first. */
    for (i = 0; i < g_threads; i++)
        while (!atomic_load(&g_workers[i].ready))
            sleep_s(0.001);

    /* Phase 1: open the connection set (not in connect mode). */
    if (g_mode != MODE_CONNECT) {
        for (;;) {
            take_snap(&s_conn1);
            if (s_conn1.opened + s_conn1.failed >= g_conns)
                break;
            if ((double)(s_conn1.t - s_conn0.t) / 1e9 > g_connect_timeout) {
                fprintf(stderr, "loadgen: connect timeout: %" PRIu64
                        " of %" PRIu64 " open\n", s_conn1.opened, g_conns);
                break;
            }
            sleep_s(0.002);
        }
        total_opened = s_conn1.opened;
        atomic_store(&g_bc_expected, total_opened);
        if (g_pid > 0) {
            sleep_s(0.5); /* let the server settle its last handshakes */
            rss_after = proc_rss_kb(g_pid);
        }
        fprintf(stderr, "READY opened=%" PRIu64 " failed=%" PRIu64 "\n",
                s_conn1.opened, s_conn1.failed);
    } else {
        s_conn1 = s_conn0;
    }
    conn_s = (double)(s_conn1.t - s_conn0.t) / 1e9;

    if (g_mode == MODE_IDLE) {
        /* hold: nothing to send; the count of drops is the result */
        take_snap(&s_m0);
        set_phase(PH_MEASURE);
        sleep_s(g_duration);
        take_snap(&s_m1);
        hold_s = (double)(s_m1.t - s_m0.t) / 1e9;
    } else {
        set_phase(PH_WARMUP);
        sleep_s(g_warmup);
        bc_done0 = atomic_load(&g_bc_done);
        take_snap(&s_m0);
        set_phase(PH_MEASURE);
        sleep_s(g_duration);
        set_phase(PH_DRAIN);
        take_snap(&s_m1);
        bc_done1 = atomic_load(&g_bc_done);
    }
    meas_s = (double)(s_m1.t - s_m0.t) / 1e9;
    if (s_m0.server_cpu >= 0 && s_m1.server_cpu >= 0)
        srv_cpu = s_m1.server_cpu - s_m0.server_cpu;

    /* Workers record only in PH_MEASURE; a record that raced the switch
     * has finished by the time the loops have run once more. */
    sleep_s(0.05);
    set_phase(PH_STOP);
    while (waited < 15.0) {
        int done = 1;

        for (i = 0; i < g_threads; i++)
            done &= atomic_load(&g_workers[i].done);
        if (done)
            break;
        sleep_s(0.01);
        waited += 0.01;
    }
    for (i = 0; i < g_threads; i++)
        if (!atomic_load(&g_workers[i].done))
            clean = false;
    take_snap(&s_end);

    hist_init(&h);
    for (i = 0; i < g_threads; i++)
        hist_merge(&h, &g_workers[i].h);

    /* ---- the JSON line ---- */
    {
        uint64_t n = s_m1.msgs - s_m0.msgs;
        double rate = meas_s > 0 ? (double)n / meas_s : 0;
        double cli_cpu = s_m1.self_cpu - s_m0.self_cpu;

        printf("{\"tool\":\"loadgen\",\"label\":");
        print_json_string(g_label);
        printf(",\"mode\":\"%s\",\"url\":", mode_name(g_mode));
        print_json_string(g_url);
        printf(",\"threads\":%d,\"conns\":%" PRIu64 ",\"inflight\":%" PRIu64
               ",\"pending\":%" PRIu64 ",\"size\":%zu,\"opcode\":\"%s\","
               "\"warmup_s\":%.3f,\"duration_s\":%.3f,",
               g_threads, g_conns, g_inflight, g_pending, g_size,
               g_opcode == CC_WS_TEXT ? "text" : "binary", g_warmup, meas_s);
        printf("\"connect\":{\"opened\":%" PRIu64 ",\"failed\":%" PRIu64
               ",\"seconds\":%.3f,\"rate\":%.1f},",
               s_conn1.opened, s_conn1.failed, conn_s,
               conn_s > 0 ? (double)s_conn1.opened / conn_s : 0.0);
        switch (g_mode) {
        case MODE_ECHO:
            printf("\"round_trips\":%" PRIu64 ",\"rate\":%.1f,"
                   "\"mbytes_per_s\":%.2f,",
                   n, rate,
                   meas_s > 0 ? (double)(s_m1.bytes - s_m0.bytes) / meas_s /
                                    1e6 : 0.0);
            break;
        case MODE_BROADCAST:
            printf("\"receivers\":%" PRIu64 ",\"broadcasts\":%" PRIu64
                   ",\"deliveries\":%" PRIu64 ",\"rate\":%.1f,"
                   "\"broadcasts_per_s\":%.1f,",
                   total_opened, bc_done1 - bc_done0, n, rate,
                   meas_s > 0 ? (double)(bc_done1 - bc_done0) / meas_s : 0.0);
            break;
        case MODE_CONNECT:
            printf("\"handshakes\":%" PRIu64 ",\"rate\":%.1f,", n, rate);
            break;
        case MODE_IDLE: {
            uint64_t held = s_m1.opened - s_m1.dropped;

            printf("\"held\":%" PRIu64 ",\"hold_s\":%.3f,\"rate\":%.1f,",
                   held, hold_s,
                   conn_s > 0 ? (double)s_conn1.opened / conn_s : 0.0);
            break;
        }
        }
        if (g_mode != MODE_IDLE) {
            print_latency(&h);
            putchar(',');
        }
        printf("\"client_cpu_s\":%.3f,", cli_cpu);
        printf("\"server\":{\"pid\":%ld,\"cpu_s\":%.3f,\"cpu_util\":%.3f,"
               "\"rate_per_cpu_s\":%.1f,\"rss_kb_before\":%ld,"
               "\"rss_kb_after\":%ld,\"conn_cpu_s\":%.3f},",
               g_pid, srv_cpu,
               srv_cpu >= 0 && meas_s > 0 ? srv_cpu / meas_s : -1.0,
               srv_cpu > 0 && g_mode != MODE_IDLE ? (double)n / srv_cpu :
               -1.0,
               rss_before, rss_after,
               s_conn0.server_cpu >= 0 && s_conn1.server_cpu >= 0 ?
                   s_conn1.server_cpu - s_conn0.server_cpu : -1.0);
        printf("\"errors\":{\"connect\":%" PRIu64 ",\"dropped\":%" PRIu64
               ",\"send\":%" PRIu64 ",\"bad_msg\":%" PRIu64
               ",\"close\":%" PRIu64 ",\"by_code\":{",
               s_end.failed, s_end.dropped, s_end.send_err, s_end.bad_msg,
               s_end.close_err);
        {
            /* sum the per-worker tallies by code */
            errname all[MAX_ERRNAMES * 4];
            int na = 0, j, k, first = 1;

            memset(all, 0, sizeof(all));
            for (i = 0; i < g_threads && clean; i++)
                for (j = 0; j < MAX_ERRNAMES; j++) {
                    errname *e = &g_workers[i].errs[j];

                    if (e->n == 0)
                        continue;
                    for (k = 0; k < na && all[k].code != e->code; k++)
                        ;
                    if (k == na && na < (int)(sizeof(all) / sizeof(all[0])))
                        all[na++].code = e->code;
                    if (k < na)
                        all[k].n += e->n;
                }
            for (k = 0; k < na; k++) {
                printf("%s\"%s\":%" PRIu64, first ? "" : ",",
                       cc_err_name(all[k].code), all[k].n);
                first = 0;
            }
        }
        printf("}},\"clean_shutdown\":%s}\n", clean ? "true" : "false");
        fflush(stdout);
    }
    if (!clean) {
        fprintf(stderr, "loadgen: workers did not finish closing\n");
        _exit(0);
    }
    for (i = 0; i < g_threads; i++) {
        pthread_join(g_workers[i].thread, NULL);
        free(g_workers[i].buf);
    }
    free(g_workers);
    return 0;
}

/* ----------------------------------------------------------- selftest */

#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "selftest: %s:%d: %s\n", __FILE__, __LINE__,  \
                    #cond);                                               \
            return 1;                                                     \
        }                                                                 \
    } while (0)

/* Checks the parts of the tool that need no server: the histogram's
 * buckets and quantiles, and the message stamp round trip. */
static int
selftest(void)
{
    static hist h, h2;
    uint8_t buf[64];
    uint64_t ts, seq, v;
    unsigned i;

    /* every bucket's bounds map back to that bucket, buckets tile */
    for (i = 0; i < HIST_BUCKETS; i++) {
        CHECK(hist_index(hist_bucket_lo(i)) == i);
        CHECK(hist_index(hist_bucket_hi(i)) == i);
        if (i + 1 < HIST_BUCKETS)
            CHECK(hist_bucket_hi(i) + 1 == hist_bucket_lo(i + 1));
    }
    CHECK(hist_bucket_hi(HIST_BUCKETS - 1) == UINT64_MAX);
    CHECK(hist_index(63) == 63);
    CHECK(hist_index(64) == 64);
    CHECK(hist_index(65) == 64);
    CHECK(hist_index(66) == 65);
    /* relative error bound: bucket width / lo <= 1/32 */
    for (v = 64; v < (1ull << 40); v = v * 3 + 7) {
        i = hist_index(v);
        CHECK(hist_bucket_lo(i) <= v && v <= hist_bucket_hi(i));
        CHECK((double)(hist_bucket_hi(i) - hist_bucket_lo(i)) /
                  (double)hist_bucket_lo(i) <= 1.0 / 32 + 1e-12);
    }

    /* 1..10000 µs in ns: quantiles within 1/64 of the exact value */
    hist_init(&h);
    for (v = 1; v <= 10000; v++)
        hist_record(&h, v * 1000);
    CHECK(h.total == 10000);
    CHECK(h.min == 1000 && h.max == 10000000);
    {
        const double qs[] = {0.5, 0.9, 0.99, 0.999};
        const double exact[] = {5000e3, 9000e3, 9900e3, 9990e3};

        for (i = 0; i < 4; i++) {
            double got = (double)hist_quantile(&h, qs[i]);

            CHECK(got > exact[i] * (1 - 1.0 / 64) &&
                  got < exact[i] * (1 + 1.0 / 64));
        }
    }
    CHECK(hist_quantile(&h, 1.0) == 10000000);
    CHECK(hist_quantile(&h, 0.0) == 1000);
    /* small exact values */
    hist_init(&h2);
    hist_record(&h2, 7);
    hist_record(&h2, 7);
    hist_record(&h2, 50);
    CHECK(hist_quantile(&h2, 0.5) == 7);
    CHECK(hist_quantile(&h2, 0.67) == 50);
    /* merge adds */
    hist_merge(&h, &h2);
    CHECK(h.total == 10003 && h.min == 7 && h.max == 10000000);
    hist_init(&h2);
    CHECK(hist_quantile(&h2, 0.5) == 0);

    /* stamp round trip */
    msg_fill(buf, sizeof(buf));
    msg_stamp(buf, 0x0123456789abcdefull, 0xfeedbeefull);
    CHECK(msg_parse(buf, sizeof(buf), &ts, &seq) == 0);
    CHECK(ts == 0x0123456789abcdefull && seq == 0xfeedbeefull);
    CHECK(buf[HDR_LEN] == 'x' && buf[sizeof(buf) - 1] == 'x');
    msg_stamp(buf, 1, 0x1ffffffffull); /* seq keeps 32 bits */
    CHECK(msg_parse(buf, sizeof(buf), &ts, &seq) == 0 && seq == 0xffffffff);
    CHECK(msg_parse(buf, HDR_LEN - 1, &ts, &seq) == -1);
    buf[5] = 'g';
    CHECK(msg_parse(buf, sizeof(buf), &ts, &seq) == -1);
    buf[0] = 'X';
    CHECK(msg_parse(buf, sizeof(buf), &ts, &seq) == -1);

    printf("selftest: ok\n");
    return 0;
}
