/*
 * bench/chatload.c - the load generator of the chat benchmark (bench/chat.sh):
 * visitors and agents of one tenant talking through the all-in-one server
 * (examples/chatcore-server), or through a distributed-mode cluster with
 * the agents on another gateway (--agent-port), over the wire protocol
 * (PROTOCOL.md §3-§6),
 * built on libchatcore's own WebSocket client (cc_ws_connect) and token
 * minting (cc_jwt_mint).
 *
 *   1. Setup over HTTP with the admin key (a small blocking client, setup
 *      only): PUT a tenant with high rate limits and auto_assign on, PUT
 *      --agents agents. Tokens are minted here with the tenant's secret
 *      from the PUT response.
 *   2. Connect the agents, then the visitors (at most --pending handshakes
 *      at a time). Each visitor sends a first message on `hello`; the
 *      server queues the session and auto-assigns it (the agent gets
 *      `accepted`). Wait until every conversation is active.
 *   3. Load: visitors send `send` frames (kind text, ~--size bytes of
 *      text). Closed loop (--inflight K, the default): each visitor keeps K
 *      messages unfinished. Open loop (--rate N): N messages/s in all,
 *      spread evenly over time and round-robin over the visitors. A
 *      message is finished when its agent got the `msg` AND its visitor
 *      got `sent` (durably stored). Agents ack every `msg` at once
 *      (cumulative `ack`), or with --ack-ms M every M ms per session.
 *      --warmup seconds are not counted, --duration seconds are.
 *   4. Drain (stop sending, wait for what is in flight), close everything.
 *
 * Measured: durable messages/s (`sent` replies), finished messages/s,
 * visitor->agent latency (send -> the agent's `msg`), send -> `sent`
 * latency; with --server-pid, the server's CPU time over the measured
 * interval (utime + stime of /proc/PID/stat; a list of pids, e.g. every
 * process of a distributed-mode cluster, is summed) and its VmRSS after setup
 * (tenant, agents connected) and after every session is active, giving
 * bytes per active session (a visitor connection, its session and one
 * stored message).
 *
 * Every `send` carries cid "c" + 8 hex digits of the visitor's index + 8 of
 * its message number + 16 of uv_hrtime() at send, so the `sent` reply and
 * the agent's `msg` are both timed without a lookup; the body is
 * {"text":"…","t":<send time ns>}.
 *
 * Threads: --threads 1 (default) runs everything on one loop; 2 puts the
 * visitors on one loop and the agents on another. An agent's receipt
 * reaches its visitor's loop through a queue and a uv_async.
 *
 * Output: one JSON line on stdout, a human summary and progress on stderr.
 *
 * This is a tool, not library code: libc allocation, file statics.
 */
#define _GNU_SOURCE
#include <chatcore/chatcore.h>

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hexfield.h"
#include "procstat.h"
#include "hist.h"

#define MAX_ERRNAMES 24
#define ID_MAX 65               /* ids are 1..64 characters (§ conventions) */
#define TOKEN_MAX 600
#define CID_LEN 33              /* 'c' + 8 + 8 + 16 hex digits */
#define OPEN_LOOP_CAP 1000      /* open loop: unfinished per visitor, max */

/* Run phases, set by the main thread and read by every worker. */
enum phase {
    PH_INIT = 0,
    PH_AGENTS,      /* connecting the agents */
    PH_VISITORS,    /* connecting the visitors, first messages */
    PH_WARMUP,      /* load running, not counted */
    PH_MEASURE,     /* load running, counted */
    PH_DRAIN,       /* no new messages; waiting for what is in flight */
    PH_STOP         /* closing everything */
};

enum kind { K_AGENT, K_VISITOR };
enum pstate { S_IDLE, S_CONNECTING, S_UPGRADED, S_READY, S_CLOSING, S_GONE };

/* Counters: per worker, atomics so that main can read them while running. */
enum {
    C_OPENED,       /* upgrades that succeeded */
    C_FAILED,       /* connects or upgrades that failed */
    C_HELLO_A,      /* agent hellos */
    C_HELLO_V,      /* visitor hellos */
    C_DROPPED,      /* connections closed before PH_STOP */
    C_FIRST_OK,     /* visitors whose first message got `sent` */
    C_ACCEPTED,     /* `accepted` frames at agents */
    C_SESS_ACC,     /* `session_accepted` frames at visitors */
    C_SENDS,        /* `send` frames written */
    C_SENT_OK,      /* `sent` replies (durably stored) */
    C_SEND_ERR,     /* `error` replies to a send */
    C_DELIVERED,    /* `msg` frames at agents, new seq */
    C_DUPS,         /* `msg` frames at agents, seq already seen */
    C_GAPS,         /* a seq skipped at an agent */
    C_ACKS,         /* `ack` frames written */
    C_DONE,         /* messages finished (sent AND delivered) */
    C_SKIPPED,      /* open loop: a visitor was at its cap */
    C_ERRORS,       /* `error` frames of any kind */
    C_BAD,          /* frames we could not read */
    C_OTHER,        /* frames of a type we do not expect */
    C_WS_ERR,       /* cc_ws_send failures */
    C__N
};

static const char *const cnt_names[C__N] = {
    "opened", "failed", "hello_agents", "hello_visitors", "dropped",
    "first_ok", "accepted", "session_accepted", "sends", "sent_ok",
    "send_err", "delivered", "dup_msgs", "seq_gaps", "acks", "done",
    "open_loop_skipped", "error_frames", "bad_frames", "other_frames",
    "ws_send_err"
};

typedef struct worker worker;

/* What a connection's data points at: the first member of both kinds. */
typedef struct peer {
    int kind;
    int idx;
    int state;
    cc_ws_conn *c;
    worker *w;
    char id[ID_MAX];
} peer;

typedef struct visitor {
    peer p;
    /* the visitor's loop */
    char session[ID_MAX];
    uint64_t n_sent;        /* send frames written, first one included */
    uint64_t n_err;         /* of those, refused with `error` */
    uint64_t ok_seq;        /* highest seq in a `sent` */
    uint64_t done;          /* min(ok_seq, rcv_seq) last seen */
    _Atomic int queued;     /* in the kick queue */
    /* the agents' loop */
    _Atomic uint64_t rcv_seq;  /* highest seq its agent has received */
    uint64_t acked;         /* highest seq acked */
    char a_session[ID_MAX]; /* the session as the agent learnt it */
    int agent;              /* serving agent index, -1 before `accepted` */
} visitor;

typedef struct agent {
    peer p;
    int *vis;               /* visitors served, for batched acks */
    int nvis, capvis;
} agent;

typedef struct errname {
    char code[32];
    uint64_t n;
} errname;

struct worker {
    int id;
    pthread_t thread;
    uv_loop_t loop;
    cc_ctx *ctx;
    cc_ws_endpoint *ep;
    cc_config *ep_cfg;
    uv_async_t ctl;         /* main -> worker: the phase changed */
    uv_async_t kick;        /* agents' loop -> visitors' loop */
    uv_timer_t tick;        /* open-loop sends, batched acks */
    uv_timer_t fin;         /* deferred teardown */
    uv_idle_t nudge;        /* see on_nudge */
    int fin_armed;
    int ctl_seen;
    int has_visitors, has_agents;
    peer **todo;            /* connections to open, in order */
    size_t ntodo, todo_next;
    uint64_t pending;       /* connecting now */
    uint64_t nlive;         /* connecting or open */
    char *fbuf;             /* frame being built */
    size_t fcap;
    /* open loop */
    uint64_t ol_t0, ol_issued;
    size_t ol_rr;
    uint64_t ack_last;      /* batched acks: when the last round ran */
    /* kick queue: visitors whose agent received something */
    pthread_mutex_t kmu;
    int *kq, *kq2;
    size_t kn, kcap;
    hist h_deliver;         /* send -> agent's msg (agents' loop) */
    hist h_sent;            /* send -> sent (visitors' loop) */
    uint64_t *trace;        /* --trace: (send ns, latency ns) pairs */
    size_t ntrace, captrace;
    _Atomic uint64_t cnt[C__N];
    _Atomic int ready;
    _Atomic int done;
    errname errs[MAX_ERRNAMES];
    int nerrs_printed;
};

/* ---- settings (set once by main before the workers start) ---- */
static const char *g_host = "127.0.0.1";
static int g_port = 8080;
static const char *g_admin_key;
static char g_tenant[ID_MAX];
static int g_nvisitors = 1000;
static int g_nagents = 50;
static uint64_t g_inflight = 4;
static double g_rate = 0;           /* > 0: open loop */
static size_t g_size = 100;
static double g_duration = 10.0;
static double g_warmup = 2.0;
static double g_connect_timeout = 120.0;
static unsigned g_ack_ms = 0;
static int g_threads = 1;
static uint64_t g_pending = 64;
static long g_pid = 0;             /* the first of g_pids, for the JSON */
static long g_pids[16];            /* --server-pid P[,P...]: summed */
static int g_npids;
static int g_agent_port;           /* --agent-port: agents elsewhere */
static char g_agent_url[256];
static const char *g_label = "";
static int g_verbose = 0;
static int g_frame_bytes_only = 0;  /* print one send frame's size, exit */
static const char *g_trace;         /* --trace FILE: every delivery timed */

/* ---- shared run state ---- */
static char g_url[256];
static char g_secret[300];
static char g_text[4096];           /* the message text, g_size bytes */
static visitor *g_vis;
static agent *g_ag;
static worker *g_workers;
static _Atomic int g_phase = PH_INIT;

static void start_more(worker *w);
static void progress(visitor *v);

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

static worker *
vis_worker(void)
{
    return &g_workers[0];
}

static worker *
agent_worker(void)
{
    return &g_workers[g_threads - 1];
}

static void
cnt_add(worker *w, int which, uint64_t n)
{
    atomic_fetch_add_explicit(&w->cnt[which], n, memory_order_relaxed);
}

static int
phase(void)
{
    return atomic_load_explicit(&g_phase, memory_order_relaxed);
}

static void
count_err(worker *w, const char *code, size_t len)
{
    int i;

    if (len >= sizeof(w->errs[0].code))
        len = sizeof(w->errs[0].code) - 1;
    for (i = 0; i < MAX_ERRNAMES; i++) {
        errname *e = &w->errs[i];

        if (e->n == 0) {
            memcpy(e->code, code, len);
            e->code[len] = '\0';
        }
        if (strlen(e->code) == len && memcmp(e->code, code, len) == 0) {
            e->n++;
            return;
        }
    }
}

/* Bytes the process caused to be sent to storage (write_bytes of
 * /proc/PID/io: the WAL, checkpoints), or -1. */
static long long
proc_write_bytes(long pid)
{
    char path[64], line[128];
    long long v = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/io", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "write_bytes: %lld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* the measured server may be several processes (a cluster): CPU time,
 * RSS and bytes written are summed over --server-pid's list; -1 if any is
 * gone */
static double
srv_cpu_s(void)
{
    double sum = 0;
    for (int i = 0; i < g_npids; i++) {
        double v = proc_cpu_s(g_pids[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return g_npids ? sum : -1;
}

static long
srv_rss_kb(void)
{
    long sum = 0;
    for (int i = 0; i < g_npids; i++) {
        long v = proc_rss_kb(g_pids[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return g_npids ? sum : -1;
}

static long long
srv_write_bytes(void)
{
    long long sum = 0;
    for (int i = 0; i < g_npids; i++) {
        long long v = proc_write_bytes(g_pids[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return g_npids ? sum : -1;
}

/* CPU-seconds the whole machine spent busy (all of /proc/stat's "cpu"
 * line but idle and iowait), or -1: with the server's and our own share
 * taken out, what is left is other work that competed for the cores. */
static double
machine_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (f == NULL)
        return -1;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return -1;
    /* user nice system idle iowait irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
           (double)sysconf(_SC_CLK_TCK);
}

static double
self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
cid_make(char out[CID_LEN + 1], uint32_t vidx, uint32_t n, uint64_t ts)
{
    out[0] = 'c';
    hex_put(out + 1, vidx, 8);
    hex_put(out + 9, n, 8);
    hex_put(out + 17, ts, 16);
    out[CID_LEN] = '\0';
}

/* Returns 0 with the parts, -1 when it is not one of ours. */
static int
cid_parse(const char *p, size_t len, uint64_t *vidx, uint64_t *n,
          uint64_t *ts)
{
    if (len != CID_LEN || p[0] != 'c')
        return -1;
    if (hex_get(p + 1, 8, vidx) || hex_get(p + 9, 8, n) ||
        hex_get(p + 17, 16, ts))
        return -1;
    return 0;
}

/* --------------------------------------------------- a small JSON reader
 * The server's frames are flat objects whose fields we need are at the top
 * level; nested values (a msg's body, a hello's queue) are skipped. This
 * walks the top level once and hands back the raw spans of wanted keys:
 * strings without their quotes (our ids and codes hold no escapes), other
 * values as written. */

typedef struct span {
    const char *p;
    size_t n;
    int str;        /* the value was a string */
} span;

static const char *
jws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at the opening quote; returns the position after the closing one. */
static const char *
jstr_end(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Returns the position just after the value starting at p, NULL if bad. */
static const char *
jskip(const char *p, const char *e)
{
    int depth = 0;

    if (p >= e)
        return NULL;
    if (*p == '"')
        return jstr_end(p, e);
    if (*p != '{' && *p != '[') {
        while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
               *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        return p;
    }
    for (; p < e; p++) {
        if (*p == '"') {
            p = jstr_end(p, e);
            if (p == NULL)
                return NULL;
            p--;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
    }
    return NULL;
}

/* Fill out[i] for each of the nkeys keys found at the top level of the
 * object in [p, p+len) (out[i].p NULL when absent). Returns 0, or -1 when
 * the text is not a JSON object as far as this reader can tell. */
static int
jfields(const char *p, size_t len, const char *const *keys, int nkeys,
        span *out)
{
    const char *e = p + len;
    int i;

    for (i = 0; i < nkeys; i++)
        out[i].p = NULL, out[i].n = 0, out[i].str = 0;
    p = jws(p, e);
    if (p >= e || *p != '{')
        return -1;
    p = jws(p + 1, e);
    if (p < e && *p == '}')
        return 0;
    for (;;) {
        const char *k, *ke, *v, *ve;

        if (p >= e || *p != '"')
            return -1;
        k = p + 1;
        ke = jstr_end(p, e);
        if (ke == NULL)
            return -1;
        p = jws(ke, e);
        if (p >= e || *p != ':')
            return -1;
        v = jws(p + 1, e);
        ve = jskip(v, e);
        if (ve == NULL)
            return -1;
        for (i = 0; i < nkeys; i++) {
            size_t kl = (size_t)(ke - 1 - k);

            if (strlen(keys[i]) == kl && memcmp(keys[i], k, kl) == 0) {
                if (*v == '"') {
                    out[i].p = v + 1;
                    out[i].n = (size_t)(ve - v - 2);
                    out[i].str = 1;
                } else {
                    out[i].p = v;
                    out[i].n = (size_t)(ve - v);
                }
                break;
            }
        }
        p = jws(ve, e);
        if (p >= e)
            return -1;
        if (*p == '}')
            return 0;
        if (*p != ',')
            return -1;
        p = jws(p + 1, e);
    }
}

static bool
span_is(const span *s, const char *lit)
{
    return s->p != NULL && s->str && s->n == strlen(lit) &&
           memcmp(s->p, lit, s->n) == 0;
}

/* A non-negative integer value, or -1. */
static int64_t
span_uint(const span *s)
{
    int64_t v = 0;
    size_t i;

    if (s->p == NULL || s->str || s->n == 0 || s->n > 18)
        return -1;
    for (i = 0; i < s->n; i++) {
        if (s->p[i] < '0' || s->p[i] > '9')
            return -1;
        v = v * 10 + (s->p[i] - '0');
    }
    return v;
}

static int
span_copy(const span *s, char *out, size_t cap)
{
    if (s->p == NULL || !s->str || s->n == 0 || s->n >= cap)
        return -1;
    memcpy(out, s->p, s->n);
    out[s->n] = '\0';
    return 0;
}

/* --------------------------------------------------- setup over HTTP
 * Blocking, one request per connection (Connection: close): used before
 * the loops start, for a few dozen requests. */

static int
http_request(const char *method, const char *path, const char *body,
             int *status, char **resp)
{
    struct addrinfo hints, *ai = NULL;
    char portstr[16], *req = NULL, *buf = NULL, *p;
    size_t blen = strlen(body != NULL ? body : ""), cap = 65536, n = 0;
    int fd = -1, r, rc = -1;
    ssize_t k;

    *resp = NULL;
    *status = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", g_port);
    r = getaddrinfo(g_host, portstr, &hints, &ai);
    if (r != 0) {
        fprintf(stderr, "chatload: %s: %s\n", g_host, gai_strerror(r));
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "chatload: connect %s:%d: %s\n", g_host, g_port,
                strerror(errno));
        goto out;
    }
    req = malloc(blen + 1024);
    buf = malloc(cap + 1);
    if (req == NULL || buf == NULL)
        goto out;
    n = (size_t)snprintf(req, 1024,
                         "%s %s HTTP/1.1\r\nHost: %s:%d\r\n"
                         "Authorization: Bearer %s\r\n"
                         "Content-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                         method, path, g_host, g_port, g_admin_key, blen);
    memcpy(req + n, body != NULL ? body : "", blen);
    n += blen;
    for (size_t off = 0; off < n; off += (size_t)k) {
        k = write(fd, req + off, n - off);
        if (k <= 0) {
            fprintf(stderr, "chatload: write: %s\n", strerror(errno));
            goto out;
        }
    }
    n = 0;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);

            if (nb == NULL)
                goto out;
            buf = nb;
            cap *= 2;
        }
        k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
        fprintf(stderr, "chatload: %s %s: no HTTP status in the reply\n",
                method, path);
        goto out;
    }
    p = strstr(buf, "\r\n\r\n");
    if (p == NULL)
        goto out;
    p += 4;
    if (strcasestr(buf, "\r\ntransfer-encoding: chunked") != NULL &&
        strcasestr(buf, "\r\ntransfer-encoding: chunked") < p) {
        /* join the chunks in place */
        char *src = p, *dst = p, *end = buf + n;

        while (src < end) {
            char *nl;
            unsigned long sz = strtoul(src, &nl, 16);

            nl = strstr(src, "\r\n");
            if (nl == NULL || sz == 0)
                break;
            src = nl + 2;
            if ((size_t)(end - src) < sz)
                sz = (unsigned long)(end - src);
            memmove(dst, src, sz);
            dst += sz;
            src += sz + 2;
        }
        *dst = '\0';
    }
    *resp = strdup(p);
    rc = *resp != NULL ? 0 : -1;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    free(req);
    free(buf);
    return rc;
}

/* The value of one unlabelled counter in the server's /metrics (the
 * chat engine's Prometheus text), or -1 when absent or unreachable. */
static double
server_metric(const char *name)
{
    char *resp = NULL, *p;
    size_t n = strlen(name);
    double v = -1;
    int st;

    if (http_request("GET", "/metrics", NULL, &st, &resp) != 0)
        return -1;
    for (p = resp; st == 200 && p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    }
    free(resp);
    return v;
}

static int
setup_http(void)
{
    static const char *const keys[] = {"secret", "error", "message"};
    char path[256], body[1024], *resp = NULL;
    span f[3];
    int st, i;

    snprintf(path, sizeof(path), "/v1/tenants/%s", g_tenant);
    snprintf(body, sizeof(body),
             "{\"name\":\"chat benchmark\",\"session_ttl\":3600,"
             "\"heartbeat\":300,\"auto_assign\":true,"
             "\"agent_capacity\":1000,"
             "\"rate_limits\":{\"messages_per_s\":100000,"
             "\"burst\":100000,\"tenant_messages_per_s\":10000000,"
             "\"connections_per_ip_per_min\":100000}}");
    if (http_request("PUT", path, body, &st, &resp) != 0)
        return -1;
    if ((st != 200 && st != 201) ||
        jfields(resp, strlen(resp), keys, 3, f) != 0 ||
        span_copy(&f[0], g_secret, sizeof(g_secret)) != 0) {
        fprintf(stderr, "chatload: PUT %s: HTTP %d, no secret: %s\n", path,
                st, resp);
        free(resp);
        return -1;
    }
    free(resp);
    for (i = 0; i < g_nagents; i++) {
        snprintf(path, sizeof(path), "/v1/tenants/%s/agents/%s", g_tenant,
                 g_ag[i].p.id);
        snprintf(body, sizeof(body),
                 "{\"name\":\"Agent %d\",\"password\":\"bench-password-%d\"}",
                 i, i);
        if (http_request("PUT", path, body, &st, &resp) != 0)
            return -1;
        if (st != 200 && st != 201) {
            fprintf(stderr, "chatload: PUT %s: HTTP %d: %s\n", path, st,
                    resp);
            free(resp);
            return -1;
        }
        free(resp);
    }
    return 0;
}

/* "Authorization: Bearer <jwt>\r\n" for the peer, minted here. */
static int
peer_headers(const peer *p, char *out, size_t cap)
{
    cc_claims c;
    char tok[TOKEN_MAX];
    int64_t now = (int64_t)time(NULL);
    int n;

    memset(&c, 0, sizeof(c));
    snprintf(c.tid, sizeof(c.tid), "%s", g_tenant);
    snprintf(c.sub, sizeof(c.sub), "%s", p->id);
    c.role = p->kind == K_AGENT ? CC_ROLE_AGENT : CC_ROLE_VISITOR;
    c.iat = now;
    c.exp = now + 24 * 3600;
    n = cc_jwt_mint(&c, (const uint8_t *)g_secret, strlen(g_secret), tok,
                    sizeof(tok));
    if (n < 0) {
        fprintf(stderr, "chatload: cc_jwt_mint: %s\n", cc_strerror(n));
        return n;
    }
    n = snprintf(out, cap, "Authorization: Bearer %s\r\n", tok);
    return n > 0 && (size_t)n < cap ? 0 : CC_E2BIG;
}

/* ------------------------------------------------------------- sending */

static void
send_frame(worker *w, peer *p, const char *s, size_t n)
{
    int r = cc_ws_send_text(p->c, s, n);

    if (r != 0) {
        cnt_add(w, C_WS_ERR, 1);
        count_err(w, cc_err_name(r), strlen(cc_err_name(r)));
    }
}

static void
send_msg(visitor *v)
{
    worker *w = v->p.w;
    char cid[CID_LEN + 1];
    uint64_t ts = now_ns();
    int n;

    cid_make(cid, (uint32_t)v->p.idx, (uint32_t)v->n_sent, ts);
    n = snprintf(w->fbuf, w->fcap,
                 "{\"type\":\"send\",\"session\":\"%s\",\"cid\":\"%s\","
                 "\"kind\":\"text\",\"body\":{\"text\":\"%s\",\"t\":%" PRIu64
                 "}}",
                 v->session, cid, g_text, ts);
    v->n_sent++;
    cnt_add(w, C_SENDS, 1);
    send_frame(w, &v->p, w->fbuf, (size_t)n);
}

static uint64_t
unfinished(const visitor *v)
{
    return v->n_sent - v->n_err - v->done;
}

static bool
load_on(void)
{
    int ph = phase();

    return ph == PH_WARMUP || ph == PH_MEASURE;
}

/* The visitors' loop: account for what finished; in the closed loop, top
 * the window up again. */
static void
progress(visitor *v)
{
    worker *w = v->p.w;
    uint64_t rcv = atomic_load_explicit(&v->rcv_seq, memory_order_acquire);
    uint64_t d = rcv < v->ok_seq ? rcv : v->ok_seq;

    if (d > v->done) {
        cnt_add(w, C_DONE, d - v->done);
        v->done = d;
    }
    if (g_rate > 0 || v->p.state != S_READY || !load_on() ||
        w->ctl_seen < PH_WARMUP)
        return;
    while (unfinished(v) < g_inflight)
        send_msg(v);
}

/* The agents' loop: tell the visitors' loop that v moved. */
static void
notify(worker *aw, visitor *v)
{
    worker *vw = v->p.w;

    if (vw == aw) {
        progress(v);
        return;
    }
    if (atomic_exchange(&v->queued, 1))
        return;
    pthread_mutex_lock(&vw->kmu);
    if (vw->kn == vw->kcap) {
        size_t nc = vw->kcap ? vw->kcap * 2 : 1024;
        int *a = realloc(vw->kq, nc * sizeof(int));
        int *b = realloc(vw->kq2, nc * sizeof(int));

        if (a != NULL)
            vw->kq = a;
        if (b != NULL)
            vw->kq2 = b;
        if (a == NULL || b == NULL) {
            pthread_mutex_unlock(&vw->kmu);
            fprintf(stderr, "chatload: out of memory\n");
            exit(1);
        }
        vw->kcap = nc;
    }
    vw->kq[vw->kn++] = v->p.idx;
    pthread_mutex_unlock(&vw->kmu);
    uv_async_send(&vw->kick);
}

static void
on_kick(uv_async_t *a)
{
    worker *w = a->data;
    size_t n, i;
    int *q;

    pthread_mutex_lock(&w->kmu);
    q = w->kq;
    w->kq = w->kq2;
    w->kq2 = q;
    n = w->kn;
    w->kn = 0;
    pthread_mutex_unlock(&w->kmu);
    for (i = 0; i < n; i++) {
        visitor *v = &g_vis[q[i]];

        atomic_store(&v->queued, 0);
        progress(v);
    }
}

static void
send_ack(worker *w, agent *ag, visitor *v, uint64_t seq)
{
    int n = snprintf(w->fbuf, w->fcap,
                     "{\"type\":\"ack\",\"session\":\"%s\",\"seq\":%" PRIu64
                     "}",
                     v->a_session, seq);

    v->acked = seq;
    cnt_add(w, C_ACKS, 1);
    send_frame(w, &ag->p, w->fbuf, (size_t)n);
}

/* The library writes queued frames from a uv_check handle, i.e. after the
 * loop's poll phase; frames queued from a timer callback (before poll)
 * would wait for the poll to time out or see I/O. An active idle handle
 * makes that poll return at once, so the tick's frames leave this turn
 * and the tool adds no delay of its own. Runs once and stops. */
static void
on_nudge(uv_idle_t *h)
{
    uv_idle_stop(h);
}

/* The tick timer: the open loop's schedule on the visitors' loop, batched
 * acks on the agents' loop (one timer serves both in one-thread mode). */
static void
on_tick(uv_timer_t *t)
{
    worker *w = t->data;
    int i, j;

    if (w->has_visitors && g_rate > 0 && load_on() && w->ol_t0 != 0) {
        uint64_t due = (uint64_t)((double)(now_ns() - w->ol_t0) * g_rate /
                                  1e9);
        size_t tries = 0;

        while (w->ol_issued < due) {
            visitor *v = &g_vis[w->ol_rr];

            w->ol_rr = (w->ol_rr + 1) % (size_t)g_nvisitors;
            if (v->p.state != S_READY) {
                if (++tries > (size_t)g_nvisitors)
                    break;  /* nobody to send with */
                continue;
            }
            tries = 0;
            w->ol_issued++;
            if (unfinished(v) >= OPEN_LOOP_CAP) {
                cnt_add(w, C_SKIPPED, 1);
                continue;
            }
            send_msg(v);
        }
    }
    uv_idle_start(&w->nudge, on_nudge);
    if (w->has_agents && g_ack_ms > 0 &&
        now_ns() - w->ack_last >= (uint64_t)g_ack_ms * 1000000u) {
        w->ack_last = now_ns();
        for (i = 0; i < g_nagents; i++) {
            agent *ag = &g_ag[i];

            if (ag->p.state != S_READY)
                continue;
            for (j = 0; j < ag->nvis; j++) {
                visitor *v = &g_vis[ag->vis[j]];
                uint64_t rs = atomic_load_explicit(&v->rcv_seq,
                                                   memory_order_relaxed);

                if (rs > v->acked)
                    send_ack(w, ag, v, rs);
            }
        }
    }
}

/* ---------------------------------------------------------- frames in */

static void
error_frame(worker *w, peer *p, const span *code, const span *msg,
            const span *ref)
{
    cnt_add(w, C_ERRORS, 1);
    if (code->p != NULL)
        count_err(w, code->p, code->n);
    else
        count_err(w, "?", 1);
    if (w->nerrs_printed < 5 || g_verbose) {
        w->nerrs_printed++;
        fprintf(stderr, "chatload: %s %s got error %.*s: %.*s (ref %.*s)\n",
                p->kind == K_AGENT ? "agent" : "visitor", p->id,
                (int)code->n, code->p ? code->p : "", (int)msg->n,
                msg->p ? msg->p : "", (int)ref->n, ref->p ? ref->p : "");
    }
}

enum { F_TYPE, F_SESSION, F_SEQ, F_CID, F_CODE, F_MESSAGE, F_REF, F_VISITOR,
       F_LAST_SEQ, F__N };
static const char *const fkeys[F__N] = {
    "type", "session", "seq", "cid", "code", "message", "ref", "visitor",
    "last_seq"
};

static void
agent_frame(worker *w, agent *ag, const char *m, size_t len)
{
    span f[F__N];
    uint64_t vidx, n, ts;
    int64_t seq;
    visitor *v;

    if (jfields(m, len, fkeys, F__N, f) != 0 || f[F_TYPE].p == NULL) {
        cnt_add(w, C_BAD, 1);
        return;
    }
    if (span_is(&f[F_TYPE], "msg")) {
        seq = span_uint(&f[F_SEQ]);
        if (seq < 1 || cid_parse(f[F_CID].p, f[F_CID].n, &vidx, &n, &ts) ||
            vidx >= (uint64_t)g_nvisitors) {
            cnt_add(w, C_BAD, 1);
            return;
        }
        v = &g_vis[vidx];
        if (v->a_session[0] == '\0' &&
            span_copy(&f[F_SESSION], v->a_session, sizeof(v->a_session)))
            return;
        if ((uint64_t)seq <= atomic_load_explicit(&v->rcv_seq,
                                                  memory_order_relaxed)) {
            /* a retransmission: our ack may have crossed it; ack again */
            cnt_add(w, C_DUPS, 1);
            if (g_ack_ms == 0)
                send_ack(w, ag, v, (uint64_t)seq);
            return;
        }
        if ((uint64_t)seq != atomic_load_explicit(&v->rcv_seq,
                                                  memory_order_relaxed) + 1)
            cnt_add(w, C_GAPS, 1);
        if (phase() == PH_MEASURE) {
            uint64_t now = now_ns();

            hist_record(&w->h_deliver, now > ts ? now - ts : 0);
            if (w->ntrace < w->captrace) {
                w->trace[2 * w->ntrace] = ts;
                w->trace[2 * w->ntrace + 1] = now > ts ? now - ts : 0;
                w->ntrace++;
            }
        }
        cnt_add(w, C_DELIVERED, 1);
        atomic_store_explicit(&v->rcv_seq, (uint64_t)seq,
                              memory_order_release);
        if (g_ack_ms == 0)
            send_ack(w, ag, v, (uint64_t)seq);
        notify(w, v);
        return;
    }
    if (span_is(&f[F_TYPE], "accepted")) {
        const char *us;
        int64_t last = span_uint(&f[F_LAST_SEQ]);
        char vid[ID_MAX];

        if (span_copy(&f[F_VISITOR], vid, sizeof(vid)) != 0 ||
            (us = strrchr(vid, '_')) == NULL ||
            (vidx = strtoull(us + 1, NULL, 10)) >= (uint64_t)g_nvisitors ||
            strcmp(g_vis[vidx].p.id, vid) != 0) {
            cnt_add(w, C_BAD, 1);
            return;
        }
        v = &g_vis[vidx];
        span_copy(&f[F_SESSION], v->a_session, sizeof(v->a_session));
        v->agent = ag->p.idx;
        if (ag->nvis == ag->capvis) {
            int nc = ag->capvis ? ag->capvis * 2 : 32;
            int *a = realloc(ag->vis, (size_t)nc * sizeof(int));

            if (a == NULL) {
                fprintf(stderr, "chatload: out of memory\n");
                exit(1);
            }
            ag->vis = a;
            ag->capvis = nc;
        }
        ag->vis[ag->nvis++] = v->p.idx;
        /* the history covers up to last_seq: those count as received */
        if (last > 0 && (uint64_t)last > atomic_load(&v->rcv_seq))
            atomic_store_explicit(&v->rcv_seq, (uint64_t)last,
                                  memory_order_release);
        /* the server starts our cursor at last_seq (docs rule 54) */
        if (last > 0 && (uint64_t)last > v->acked)
            v->acked = (uint64_t)last;
        cnt_add(w, C_ACCEPTED, 1);
        notify(w, v);
        return;
    }
    if (span_is(&f[F_TYPE], "hello")) {
        if (ag->p.state == S_UPGRADED) {
            ag->p.state = S_READY;
            cnt_add(w, C_HELLO_A, 1);
        }
        return;
    }
    if (span_is(&f[F_TYPE], "queue") || span_is(&f[F_TYPE], "pong"))
        return;
    if (span_is(&f[F_TYPE], "error")) {
        error_frame(w, &ag->p, &f[F_CODE], &f[F_MESSAGE], &f[F_REF]);
        return;
    }
    cnt_add(w, C_OTHER, 1);
    if (g_verbose)
        fprintf(stderr, "chatload: agent %s: %.*s\n", ag->p.id, (int)len, m);
}

static void
visitor_frame(worker *w, visitor *v, const char *m, size_t len)
{
    span f[F__N];
    uint64_t vidx, n, ts;
    int64_t seq;

    if (jfields(m, len, fkeys, F__N, f) != 0 || f[F_TYPE].p == NULL) {
        cnt_add(w, C_BAD, 1);
        return;
    }
    if (span_is(&f[F_TYPE], "sent")) {
        seq = span_uint(&f[F_SEQ]);
        if (seq < 1 || cid_parse(f[F_CID].p, f[F_CID].n, &vidx, &n, &ts) ||
            vidx != (uint64_t)v->p.idx) {
            cnt_add(w, C_BAD, 1);
            return;
        }
        if (phase() == PH_MEASURE) {
            uint64_t now = now_ns();

            hist_record(&w->h_sent, now > ts ? now - ts : 0);
        }
        if (v->ok_seq == 0)
            cnt_add(w, C_FIRST_OK, 1);
        if ((uint64_t)seq > v->ok_seq)
            v->ok_seq = (uint64_t)seq;
        cnt_add(w, C_SENT_OK, 1);
        progress(v);
        return;
    }
    if (span_is(&f[F_TYPE], "hello")) {
        if (v->p.state != S_UPGRADED)
            return;
        if (span_copy(&f[F_SESSION], v->session, sizeof(v->session)) != 0) {
            cnt_add(w, C_BAD, 1);
            return;
        }
        v->p.state = S_READY;
        cnt_add(w, C_HELLO_V, 1);
        /* the first message queues the session; auto-assign follows */
        if (v->n_sent == 0)
            send_msg(v);
        return;
    }
    if (span_is(&f[F_TYPE], "session_accepted")) {
        cnt_add(w, C_SESS_ACC, 1);
        return;
    }
    if (span_is(&f[F_TYPE], "queued") || span_is(&f[F_TYPE], "pong"))
        return;
    if (span_is(&f[F_TYPE], "error")) {
        error_frame(w, &v->p, &f[F_CODE], &f[F_MESSAGE], &f[F_REF]);
        if (f[F_REF].p != NULL &&
            cid_parse(f[F_REF].p, f[F_REF].n, &vidx, &n, &ts) == 0 &&
            vidx == (uint64_t)v->p.idx) {
            v->n_err++;
            cnt_add(w, C_SEND_ERR, 1);
            progress(v);
        }
        return;
    }
    cnt_add(w, C_OTHER, 1);
    if (g_verbose)
        fprintf(stderr, "chatload: visitor %s: %.*s\n", v->p.id, (int)len, m);
}

/* ---------------------------------------------------------- callbacks */

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

    if (w->ep == NULL)
        return;
    cc_ws_endpoint_free(w->ep);
    w->ep = NULL;
    cc_config_free(w->ep_cfg);
    w->ep_cfg = NULL;
    uv_close((uv_handle_t *)&w->ctl, NULL);
    uv_close((uv_handle_t *)&w->kick, NULL);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_close((uv_handle_t *)&w->fin, NULL);
    uv_close((uv_handle_t *)&w->nudge, NULL);
    cc_ctx_close(w->ctx, ctx_closed, w);
}

/* The endpoint is freed from a zero timer: the last on_close is still
 * running when the count reaches zero. */
static void
maybe_finish(worker *w)
{
    if (w->ctl_seen != PH_STOP || w->nlive != 0 || w->ep == NULL ||
        w->fin_armed)
        return;
    w->fin_armed = 1;
    uv_timer_start(&w->fin, finish, 0, 0);
}

static void
on_open(cc_ws_conn *c, int status, void *data)
{
    worker *w = data;
    peer *p = cc_ws_conn_get_data(c);

    if (w->pending > 0)
        w->pending--;
    if (status != 0) {
        if (phase() < PH_STOP) {
            cnt_add(w, C_FAILED, 1);
            count_err(w, cc_err_name(status), strlen(cc_err_name(status)));
            if (w->nerrs_printed++ < 5)
                fprintf(stderr, "chatload: %s %s: connect failed: %s\n",
                        p->kind == K_AGENT ? "agent" : "visitor", p->id,
                        cc_strerror(status));
        }
        p->state = S_GONE;
        p->c = NULL;
        w->nlive--;
        start_more(w);
        maybe_finish(w);
        return;
    }
    cnt_add(w, C_OPENED, 1);
    if (p->state == S_CLOSING || phase() >= PH_STOP) {
        p->state = S_CLOSING;
        cc_ws_close(c, CC_WS_CLOSE_NORMAL, NULL, 0);
        return;
    }
    p->state = S_UPGRADED;  /* ready once `hello` arrives */
    start_more(w);
}

static void
on_message(cc_ws_conn *c, int opcode, const uint8_t *msg, size_t len,
           void *data)
{
    worker *w = data;
    peer *p = cc_ws_conn_get_data(c);

    if (opcode != CC_WS_TEXT) {
        cnt_add(w, C_BAD, 1);
        return;
    }
    if (p->kind == K_AGENT)
        agent_frame(w, (agent *)p, (const char *)msg, len);
    else
        visitor_frame(w, (visitor *)p, (const char *)msg, len);
}

static void
on_close(cc_ws_conn *c, int status, int code, const char *reason,
         size_t reason_len, void *data)
{
    worker *w = data;
    peer *p = cc_ws_conn_get_data(c);

    if (p->state != S_CLOSING && phase() < PH_STOP) {
        char what[48];

        cnt_add(w, C_DROPPED, 1);
        snprintf(what, sizeof(what), "close_%d", code);
        count_err(w, what, strlen(what));
        if (w->nerrs_printed++ < 5 || g_verbose)
            fprintf(stderr, "chatload: %s %s closed by the server: %s, "
                    "code %d \"%.*s\"\n",
                    p->kind == K_AGENT ? "agent" : "visitor", p->id,
                    status ? cc_strerror(status) : "close handshake", code,
                    (int)reason_len, reason ? reason : "");
    }
    p->state = S_GONE;
    p->c = NULL;
    w->nlive--;
    maybe_finish(w);
}

/* ------------------------------------------------------------ opening */

static void
start_one(worker *w, peer *p)
{
    char hdr[TOKEN_MAX + 64];
    int r;

    r = peer_headers(p, hdr, sizeof(hdr));
    if (r == 0)
        r = cc_ws_connect(&p->c, w->ep,
                          p->kind == K_AGENT && g_agent_port ? g_agent_url
                                                             : g_url,
                          NULL, hdr, p);
    if (r != 0) {
        cnt_add(w, C_FAILED, 1);
        count_err(w, cc_err_name(r), strlen(cc_err_name(r)));
        p->state = S_GONE;
        return;
    }
    p->state = S_CONNECTING;
    w->pending++;
    w->nlive++;
}

static void
start_more(worker *w)
{
    if (phase() >= PH_STOP || w->ctl_seen >= PH_STOP)
        return;
    while (w->todo_next < w->ntodo && w->pending < g_pending)
        start_one(w, w->todo[w->todo_next++]);
}

/* ------------------------------------------------------ phase control */

static void
queue_peers(worker *w, int kind)
{
    int i, n = kind == K_AGENT ? g_nagents : g_nvisitors;

    free(w->todo);
    w->todo = malloc((size_t)n * sizeof(peer *));
    if (w->todo == NULL) {
        fprintf(stderr, "chatload: out of memory\n");
        exit(1);
    }
    for (i = 0; i < n; i++)
        w->todo[i] = kind == K_AGENT ? &g_ag[i].p : &g_vis[i].p;
    w->ntodo = (size_t)n;
    w->todo_next = 0;
    start_more(w);
}

static void
close_peer(peer *p)
{
    if (p->state == S_CONNECTING || p->state == S_UPGRADED ||
        p->state == S_READY) {
        p->state = S_CLOSING;
        cc_ws_close(p->c, CC_WS_CLOSE_NORMAL, NULL, 0);
    }
}

static void
stop_all(worker *w)
{
    int i;

    uv_timer_stop(&w->tick);
    w->todo_next = w->ntodo;
    if (w->has_visitors)
        for (i = 0; i < g_nvisitors; i++)
            close_peer(&g_vis[i].p);
    if (w->has_agents)
        for (i = 0; i < g_nagents; i++)
            close_peer(&g_ag[i].p);
    maybe_finish(w);
}

static void
on_ctl(uv_async_t *a)
{
    worker *w = a->data;
    int ph = atomic_load(&g_phase), i;

    while (w->ctl_seen < ph) {
        int next = ++w->ctl_seen;

        switch (next) {
        case PH_AGENTS:
            if (w->has_agents)
                queue_peers(w, K_AGENT);
            break;
        case PH_VISITORS:
            if (w->has_visitors)
                queue_peers(w, K_VISITOR);
            break;
        case PH_WARMUP:
            if (w->has_visitors && g_rate > 0) {
                w->ol_t0 = now_ns();
                w->ol_issued = 0;
            } else if (w->has_visitors) {
                for (i = 0; i < g_nvisitors; i++)
                    progress(&g_vis[i]);
            }
            break;
        case PH_STOP:
            stop_all(w);
            break;
        default:
            break;
        }
    }
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    int r;

    r = uv_loop_init(&w->loop);
    if (r == 0)
        r = cc_ctx_new(&w->ctx, &w->loop, NULL);
    if (r == 0)
        r = cc_config_new(&w->ep_cfg, NULL);
    if (r == 0) {
        /* an agent's hello or accepted may carry history and queues */
        cc_config_set_int(w->ep_cfg, CC_OPT_WS_MAX_MESSAGE, 16 << 20);
        cc_config_set_ms(w->ep_cfg, CC_OPT_WS_IDLE_TIMEOUT_MS, 0);
        cc_config_set_ms(w->ep_cfg, CC_OPT_CLOSE_TIMEOUT_MS, 2000);
        cc_config_set_int(w->ep_cfg, CC_OPT_OUT_HIGH_WATER, 1 << 20);
        cc_config_set_int(w->ep_cfg, CC_OPT_OUT_MAX, 64 << 20);
        r = cc_ws_endpoint_new(&w->ep, w->ctx, w->ep_cfg);
    }
    if (r != 0) {
        fprintf(stderr, "chatload: worker %d setup failed: %s\n", w->id,
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
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_init(&w->loop, &w->fin);
    w->fin.data = w;
    uv_idle_init(&w->loop, &w->nudge);
    if ((w->has_visitors && g_rate > 0) || (w->has_agents && g_ack_ms > 0))
        uv_timer_start(&w->tick, on_tick, 1,
                       w->has_visitors && g_rate > 0 ? 1 : g_ack_ms);
    atomic_store(&w->ready, 1);
    on_ctl(&w->ctl);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    atomic_store(&w->done, 1);
    return NULL;
}

/* ------------------------------------------------------------ results */

typedef struct snap {
    uint64_t c[C__N];
    double server_cpu;
    double self_cpu;
    double machine_busy;
    uint64_t t;
} snap;

static void
take_snap(snap *s)
{
    int i, j;

    memset(s, 0, sizeof(*s));
    s->t = now_ns();
    for (i = 0; i < g_threads; i++)
        for (j = 0; j < C__N; j++)
            s->c[j] += atomic_load(&g_workers[i].cnt[j]);
    s->server_cpu = srv_cpu_s();
    s->self_cpu = self_cpu_s();
    s->machine_busy = machine_busy_s();
}

static void
set_phase(int ph)
{
    int i;

    atomic_store(&g_phase, ph);
    for (i = 0; i < g_threads; i++)
        uv_async_send(&g_workers[i].ctl);
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
print_latency(const char *name, const hist *h)
{
    printf("\"%s\":{\"count\":%" PRIu64 ",\"min\":%.1f,"
           "\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
           "\"p999\":%.1f,\"max\":%.1f}",
           name, h->total, h->total ? (double)h->min / 1e3 : 0.0,
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
        "usage: chatload --port N [--host H] [--admin-key K]\n"
        "  [--visitors 1000] [--agents 50] [--inflight K | --rate N]\n"
        "  [--size BYTES] [--warmup SEC] [--duration SEC] [--ack-ms MS]\n"
        "  [--threads 1|2] [--pending P] [--server-pid PID[,PID...]]\n"
        "  [--agent-port N]   (agents connect there: another gateway)\n"
        "  [--tenant ID] [--connect-timeout SEC] [--label TEXT] [--verbose]\n"
        "  [--trace FILE]   (per delivery: ms into the interval, latency us,\n"
        "                    send time s CLOCK_MONOTONIC)\n"
        "  chatload --frame-bytes [--size BYTES]   (one send frame's size)\n"
        "  chatload --selftest\n"
        "The admin key defaults to $CHATCORE_ADMIN_KEY. --duration 0 stops\n"
        "after the sessions are active (memory per session only).\n");
    exit(2);
}

static int selftest(void);

static void
parse_args(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(a, "--selftest"))
            exit(selftest());
        if (!strcmp(a, "--frame-bytes")) {
            g_frame_bytes_only = 1;
            continue;
        }
        if (!strcmp(a, "--verbose")) {
            g_verbose = 1;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (!strcmp(a, "--host"))
            g_host = v;
        else if (!strcmp(a, "--port"))
            g_port = atoi(v);
        else if (!strcmp(a, "--admin-key"))
            g_admin_key = v;
        else if (!strcmp(a, "--visitors"))
            g_nvisitors = atoi(v);
        else if (!strcmp(a, "--agents"))
            g_nagents = atoi(v);
        else if (!strcmp(a, "--inflight"))
            g_inflight = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--rate"))
            g_rate = atof(v);
        else if (!strcmp(a, "--size"))
            g_size = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--duration"))
            g_duration = atof(v);
        else if (!strcmp(a, "--warmup"))
            g_warmup = atof(v);
        else if (!strcmp(a, "--ack-ms"))
            g_ack_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--threads"))
            g_threads = atoi(v);
        else if (!strcmp(a, "--pending"))
            g_pending = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--server-pid")) {
            char *e = v ? (char *)v : "";
            while (*e && g_npids < 16) {
                g_pids[g_npids++] = strtol(e, &e, 10);
                if (*e == ',')
                    e++;
                else
                    break;
            }
            g_pid = g_npids ? g_pids[0] : 0;
        } else if (!strcmp(a, "--agent-port"))
            g_agent_port = atoi(v);
        else if (!strcmp(a, "--tenant")) {
            if (strlen(v) >= sizeof(g_tenant))
                usage();
            memcpy(g_tenant, v, strlen(v) + 1);
        }
        else if (!strcmp(a, "--connect-timeout"))
            g_connect_timeout = atof(v);
        else if (!strcmp(a, "--label"))
            g_label = v;
        else if (!strcmp(a, "--trace"))
            g_trace = v;
        else
            usage();
    }
    if (g_admin_key == NULL)
        g_admin_key = getenv("CHATCORE_ADMIN_KEY");
    if (!g_frame_bytes_only &&
        (g_admin_key == NULL || g_admin_key[0] == '\0')) {
        fprintf(stderr, "chatload: no admin key (--admin-key or "
                "CHATCORE_ADMIN_KEY)\n");
        exit(2);
    }
    if (g_port <= 0 || g_port > 65535 || g_agent_port < 0 ||
        g_agent_port > 65535 || g_nvisitors < 1 ||
        g_nvisitors > 100000 || g_nagents < 1 || g_nagents > 10000 ||
        g_inflight < 1 || g_inflight > 512 || g_rate < 0 || g_size < 1 ||
        g_size >= sizeof(g_text) || g_duration < 0 || g_warmup < 0 ||
        g_threads < 1 || g_threads > 2 || g_pending < 1)
        usage();
}

/* --------------------------------------------------------------- main */

static uint64_t
diff(const snap *a, const snap *b, int which)
{
    return b->c[which] - a->c[which];
}

/* Wait until cond(s) holds, giving up after timeout seconds. */
static bool
wait_for(bool (*cond)(const snap *), double timeout, snap *s)
{
    uint64_t t0 = now_ns();
    double last_print = 0;

    for (;;) {
        double el;

        take_snap(s);
        if (cond(s))
            return true;
        el = (double)(s->t - t0) / 1e9;
        if (el > timeout)
            return false;
        if (el - last_print >= 5) {
            last_print = el;
            fprintf(stderr, "chatload: ... opened %" PRIu64 " hello %" PRIu64
                    "+%" PRIu64 " first_ok %" PRIu64 " accepted %" PRIu64
                    " failed %" PRIu64 " dropped %" PRIu64 "\n",
                    s->c[C_OPENED], s->c[C_HELLO_A], s->c[C_HELLO_V],
                    s->c[C_FIRST_OK], s->c[C_ACCEPTED], s->c[C_FAILED],
                    s->c[C_DROPPED]);
        }
        sleep_s(0.005);
    }
}

static bool
agents_up(const snap *s)
{
    return s->c[C_HELLO_A] + s->c[C_FAILED] + s->c[C_DROPPED] >=
           (uint64_t)g_nagents;
}

static bool
sessions_up(const snap *s)
{
    return (s->c[C_ACCEPTED] >= (uint64_t)g_nvisitors &&
            s->c[C_FIRST_OK] >= (uint64_t)g_nvisitors) ||
           s->c[C_FAILED] + s->c[C_DROPPED] > 0;
}

static bool
drained(const snap *s)
{
    return s->c[C_DONE] + s->c[C_SEND_ERR] >= s->c[C_SENDS];
}

int
main(int argc, char **argv)
{
    snap s0, s_ag, s_sess, s_m0, s_m1, s_drain, s_end;
    long rss_start, rss_setup = -1, rss_sess = -1, rss_end = -1;
    double waited = 0, meas_s = 0, srv_cpu = -1, cli_cpu = 0, mach = -1;
    double commits0 = -1, commits1 = -1;
    long long wb0 = -1, wb1 = -1;
    uint32_t tag;
    bool ok_agents, ok_sess, clean = true;
    hist hd, hs;
    int i, frame_len;

    parse_args(argc, argv);
    tag = (uint32_t)getpid() ^ (uint32_t)time(NULL) * 2654435761u;
    if (g_tenant[0] == '\0')
        snprintf(g_tenant, sizeof(g_tenant), "bench_%08x", tag);
    snprintf(g_url, sizeof(g_url), "ws://%s:%d/v1/ws", g_host, g_port);
    snprintf(g_agent_url, sizeof(g_agent_url), "ws://%s:%d/v1/ws", g_host,
             g_agent_port);
    {
        /* ~g_size bytes of plain text, no JSON escapes */
        static const char words[] = "Hello, I have a question about my "
                                    "order and the delivery date. ";
        size_t k;

        for (k = 0; k < g_size; k++)
            g_text[k] = words[k % (sizeof(words) - 1)];
        g_text[g_size] = '\0';
    }
    g_vis = calloc((size_t)g_nvisitors, sizeof(*g_vis));
    g_ag = calloc((size_t)g_nagents, sizeof(*g_ag));
    g_workers = calloc((size_t)g_threads, sizeof(*g_workers));
    if (g_vis == NULL || g_ag == NULL || g_workers == NULL)
        return 1;
    for (i = 0; i < g_threads; i++) {
        worker *w = &g_workers[i];

        w->id = i;
        w->fcap = g_size + 1024;
        w->fbuf = malloc(w->fcap);
        if (w->fbuf == NULL)
            return 1;
        pthread_mutex_init(&w->kmu, NULL);
        hist_init(&w->h_deliver);
        hist_init(&w->h_sent);
        if (g_trace != NULL) {
            /* room for 2 M deliveries (32 MiB) per worker */
            w->captrace = 2u << 20;
            w->trace = malloc(w->captrace * 2 * sizeof(uint64_t));
            if (w->trace == NULL)
                return 1;
        }
    }
    vis_worker()->has_visitors = 1;
    agent_worker()->has_agents = 1;
    for (i = 0; i < g_nagents; i++) {
        g_ag[i].p.kind = K_AGENT;
        g_ag[i].p.idx = i;
        g_ag[i].p.w = agent_worker();
        snprintf(g_ag[i].p.id, ID_MAX, "a_%d", i);
    }
    for (i = 0; i < g_nvisitors; i++) {
        g_vis[i].p.kind = K_VISITOR;
        g_vis[i].p.idx = i;
        g_vis[i].p.w = vis_worker();
        g_vis[i].agent = -1;
        snprintf(g_vis[i].p.id, ID_MAX, "v_%08x_%d", tag, i);
    }
    {
        /* the size of one send frame, for the echo comparison */
        char cid[CID_LEN + 1];

        cid_make(cid, 0, 0, 0);
        frame_len = snprintf(NULL, 0,
                             "{\"type\":\"send\",\"session\":\"%s\","
                             "\"cid\":\"%s\",\"kind\":\"text\",\"body\":"
                             "{\"text\":\"%s\",\"t\":%" PRIu64 "}}",
                             "S_0123456789abcdef0123", cid, g_text,
                             (uint64_t)1700000000000000000ull);
    }

    if (g_frame_bytes_only) {
        printf("%d\n", frame_len);
        return 0;
    }
    rss_start = srv_rss_kb();
    fprintf(stderr, "chatload: setting up tenant %s with %d agents at "
            "%s:%d\n", g_tenant, g_nagents, g_host, g_port);
    if (setup_http() != 0)
        return 1;

    take_snap(&s0);
    for (i = 0; i < g_threads; i++)
        if (pthread_create(&g_workers[i].thread, NULL, worker_main,
                           &g_workers[i]) != 0) {
            fprintf(stderr, "chatload: pthread_create failed\n");
            return 1;
        }
    for (i = 0; i < g_threads; i++)
        while (!atomic_load(&g_workers[i].ready))
            sleep_s(0.001);

    set_phase(PH_AGENTS);
    ok_agents = wait_for(agents_up, g_connect_timeout, &s_ag);
    if (!ok_agents || s_ag.c[C_HELLO_A] < (uint64_t)g_nagents) {
        fprintf(stderr, "chatload: only %" PRIu64 " of %d agents up\n",
                s_ag.c[C_HELLO_A], g_nagents);
        ok_agents = false;
    }
    sleep_s(0.3);
    rss_setup = srv_rss_kb();

    ok_sess = false;
    if (ok_agents) {
        fprintf(stderr, "chatload: %d agents up in %.2f s; connecting %d "
                "visitors\n", g_nagents, (double)(s_ag.t - s0.t) / 1e9,
                g_nvisitors);
        set_phase(PH_VISITORS);
        ok_sess = wait_for(sessions_up, g_connect_timeout, &s_sess) &&
                  s_sess.c[C_FAILED] + s_sess.c[C_DROPPED] == 0;
        if (!ok_sess)
            fprintf(stderr, "chatload: sessions not all active: hello %"
                    PRIu64 " first sent %" PRIu64 " accepted %" PRIu64
                    " failed %" PRIu64 " dropped %" PRIu64 "\n",
                    s_sess.c[C_HELLO_V], s_sess.c[C_FIRST_OK],
                    s_sess.c[C_ACCEPTED], s_sess.c[C_FAILED],
                    s_sess.c[C_DROPPED]);
        sleep_s(1.0);   /* let the server settle before reading RSS */
        rss_sess = srv_rss_kb();
        fprintf(stderr, "chatload: %" PRIu64 " sessions active in %.2f s\n",
                s_sess.c[C_ACCEPTED], (double)(s_sess.t - s_ag.t) / 1e9);
    } else {
        s_sess = s_ag;
    }

    if (ok_sess && g_duration > 0) {
        set_phase(PH_WARMUP);
        sleep_s(g_warmup);
        commits0 = server_metric("chatcore_store_commits_total");
        wb0 = srv_write_bytes();
        take_snap(&s_m0);
        set_phase(PH_MEASURE);
        sleep_s(g_duration);
        take_snap(&s_m1);
        wb1 = srv_write_bytes();
        commits1 = server_metric("chatcore_store_commits_total");
        set_phase(PH_DRAIN);
        meas_s = (double)(s_m1.t - s_m0.t) / 1e9;
        if (s_m0.server_cpu >= 0 && s_m1.server_cpu >= 0)
            srv_cpu = s_m1.server_cpu - s_m0.server_cpu;
        cli_cpu = s_m1.self_cpu - s_m0.self_cpu;
        if (s_m0.machine_busy >= 0 && s_m1.machine_busy >= 0)
            mach = s_m1.machine_busy - s_m0.machine_busy;
        wait_for(drained, 10.0, &s_drain);
    } else {
        take_snap(&s_m0);
        s_m1 = s_m0;
        s_drain = s_m0;
    }
    rss_end = srv_rss_kb();

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

    if (g_trace != NULL) {
        /* one line per delivery in the measured interval: ms since its
         * start, the visitor->agent latency in us, and the send time in
         * s of CLOCK_MONOTONIC (uv_hrtime), to line up with perf */
        FILE *tf = fopen(g_trace, "w");

        if (tf == NULL) {
            fprintf(stderr, "chatload: %s: %s\n", g_trace, strerror(errno));
        } else {
            for (i = 0; i < g_threads; i++)
                for (size_t k = 0; k < g_workers[i].ntrace; k++) {
                    const uint64_t *e = &g_workers[i].trace[2 * k];

                    fprintf(tf, "%.3f %.1f %.6f\n",
                            (double)(int64_t)(e[0] - s_m0.t) / 1e6,
                            (double)e[1] / 1e3, (double)e[0] / 1e9);
                }
            fclose(tf);
        }
    }
    hist_init(&hd);
    hist_init(&hs);
    for (i = 0; i < g_threads; i++) {
        hist_merge(&hd, &g_workers[i].h_deliver);
        hist_merge(&hs, &g_workers[i].h_sent);
    }

    /* ---- the JSON line ---- */
    {
        uint64_t durable = diff(&s_m0, &s_m1, C_SENT_OK);
        uint64_t done = diff(&s_m0, &s_m1, C_DONE);
        double rate = meas_s > 0 ? (double)durable / meas_s : 0;
        long per_sess = rss_setup >= 0 && rss_sess >= 0 ?
            (rss_sess - rss_setup) * 1024 / g_nvisitors : -1;
        int j;

        printf("{\"tool\":\"chatload\",\"label\":");
        print_json_string(g_label);
        printf(",\"mode\":\"%s\",\"url\":", g_rate > 0 ? "open" : "closed");
        print_json_string(g_url);
        printf(",\"tenant\":");
        print_json_string(g_tenant);
        printf(",\"threads\":%d,\"visitors\":%d,\"agents\":%d,"
               "\"inflight\":%" PRIu64 ",\"target_rate\":%.1f,"
               "\"text_bytes\":%zu,\"send_frame_bytes\":%d,\"ack_ms\":%u,"
               "\"warmup_s\":%.3f,\"duration_s\":%.3f,",
               g_threads, g_nvisitors, g_nagents,
               g_rate > 0 ? 0 : g_inflight, g_rate, g_size, frame_len,
               g_ack_ms, g_warmup, meas_s);
        printf("\"setup\":{\"agents_up\":%" PRIu64 ",\"agents_s\":%.3f,"
               "\"sessions_active\":%" PRIu64 ",\"visitors_s\":%.3f,"
               "\"sessions_per_s\":%.1f,\"ok\":%s,"
               "\"server_cpu_s\":%.3f},",
               s_ag.c[C_HELLO_A], (double)(s_ag.t - s0.t) / 1e9,
               s_sess.c[C_ACCEPTED], (double)(s_sess.t - s_ag.t) / 1e9,
               s_sess.t > s_ag.t ? (double)s_sess.c[C_ACCEPTED] /
                   ((double)(s_sess.t - s_ag.t) / 1e9) : 0.0,
               ok_sess ? "true" : "false",
               s_ag.server_cpu >= 0 && s_sess.server_cpu >= 0 ?
                   s_sess.server_cpu - s_ag.server_cpu : -1.0);
        printf("\"durable\":%" PRIu64 ",\"rate\":%.1f,\"done\":%" PRIu64
               ",\"done_rate\":%.1f,\"send_rate\":%.1f,"
               "\"delivered_rate\":%.1f,\"ack_rate\":%.1f,",
               durable, rate, done, meas_s > 0 ? (double)done / meas_s : 0,
               meas_s > 0 ? (double)diff(&s_m0, &s_m1, C_SENDS) / meas_s : 0,
               meas_s > 0 ? (double)diff(&s_m0, &s_m1, C_DELIVERED) / meas_s
                          : 0,
               meas_s > 0 ? (double)diff(&s_m0, &s_m1, C_ACKS) / meas_s : 0);
        print_latency("latency_deliver_us", &hd);
        putchar(',');
        print_latency("latency_sent_us", &hs);
        printf(",\"unfinished_after_drain\":%" PRId64 ",",
               (int64_t)(s_drain.c[C_SENDS] - s_drain.c[C_DONE] -
                         s_drain.c[C_SEND_ERR]));
        printf("\"client_cpu_s\":%.3f,", cli_cpu);
        /* other = what else ran on the machine meanwhile, in cores */
        printf("\"machine\":{\"cpus\":%ld,\"busy_cpu_s\":%.3f,"
               "\"other_cores\":%.3f},",
               sysconf(_SC_NPROCESSORS_ONLN), mach,
               mach >= 0 && srv_cpu >= 0 && meas_s > 0 ?
                   (mach - srv_cpu - cli_cpu) / meas_s : -1.0);
        printf("\"server\":{\"pid\":%ld,\"cpu_s\":%.3f,\"cpu_util\":%.3f,"
               "\"rate_per_cpu_s\":%.1f,\"rss_kb_start\":%ld,"
               "\"rss_kb_setup\":%ld,\"rss_kb_sessions\":%ld,"
               "\"rss_kb_end\":%ld,\"bytes_per_session\":%ld,",
               g_pid, srv_cpu,
               srv_cpu >= 0 && meas_s > 0 ? srv_cpu / meas_s : -1.0,
               srv_cpu > 0 ? (double)durable / srv_cpu : -1.0,
               rss_start, rss_setup, rss_sess, rss_end, per_sess);
        /* storage work per message: what a durable message costs */
        printf("\"disk_write_bytes\":%lld,\"disk_bytes_per_msg\":%.1f,"
               "\"store_commits\":%.0f,\"msgs_per_commit\":%.2f},",
               wb0 >= 0 && wb1 >= 0 ? wb1 - wb0 : -1,
               wb0 >= 0 && wb1 >= 0 && durable > 0 ?
                   (double)(wb1 - wb0) / (double)durable : -1.0,
               commits0 >= 0 && commits1 >= 0 ? commits1 - commits0 : -1.0,
               commits0 >= 0 && commits1 > commits0 ?
                   (double)durable / (commits1 - commits0) : -1.0);
        printf("\"counters\":{");
        for (j = 0; j < C__N; j++)
            printf("%s\"%s\":%" PRIu64, j ? "," : "", cnt_names[j],
                   s_end.c[j]);
        printf("},\"errors_by_code\":{");
        {
            /* sum the per-worker tallies (each written by its own loop,
             * read now that the loops have stopped) */
            errname all[MAX_ERRNAMES * 2];
            int na = 0, k, first = 1;

            memset(all, 0, sizeof(all));
            for (i = 0; i < g_threads && clean; i++)
                for (j = 0; j < MAX_ERRNAMES; j++) {
                    errname *e = &g_workers[i].errs[j];

                    if (e->n == 0)
                        continue;
                    for (k = 0; k < na && strcmp(all[k].code, e->code); k++)
                        ;
                    if (k == na)
                        snprintf(all[na++].code, sizeof(all[0].code), "%s",
                                 e->code);
                    all[k].n += e->n;
                }
            for (k = 0; k < na; k++) {
                printf("%s", first ? "" : ",");
                print_json_string(all[k].code);
                printf(":%" PRIu64, all[k].n);
                first = 0;
            }
        }
        printf("},\"ok\":%s,\"clean_shutdown\":%s}\n",
               ok_sess ? "true" : "false", clean ? "true" : "false");
        fflush(stdout);

        /* ---- the human summary ---- */
        fprintf(stderr, "\n== chatload %s: %d visitors, %d agents, %s",
                g_label, g_nvisitors, g_nagents,
                g_rate > 0 ? "open loop" : "closed loop");
        if (g_rate > 0)
            fprintf(stderr, " at %.0f msg/s\n", g_rate);
        else
            fprintf(stderr, ", %" PRIu64 " in flight per visitor\n",
                    g_inflight);
        fprintf(stderr, "  setup: agents %.2f s, %" PRIu64 " sessions "
                "active in %.2f s\n", (double)(s_ag.t - s0.t) / 1e9,
                s_sess.c[C_ACCEPTED], (double)(s_sess.t - s_ag.t) / 1e9);
        if (meas_s > 0) {
            fprintf(stderr, "  durable messages/s   %.0f  (finished %.0f/s, "
                    "sends %.0f/s)\n", rate, (double)done / meas_s,
                    (double)diff(&s_m0, &s_m1, C_SENDS) / meas_s);
            fprintf(stderr, "  visitor->agent us    p50 %.0f  p90 %.0f  "
                    "p99 %.0f  max %.0f\n",
                    (double)hist_quantile(&hd, 0.5) / 1e3,
                    (double)hist_quantile(&hd, 0.9) / 1e3,
                    (double)hist_quantile(&hd, 0.99) / 1e3,
                    (double)hd.max / 1e3);
            fprintf(stderr, "  send->sent us        p50 %.0f  p99 %.0f  "
                    "max %.0f\n", (double)hist_quantile(&hs, 0.5) / 1e3,
                    (double)hist_quantile(&hs, 0.99) / 1e3,
                    (double)hs.max / 1e3);
            if (srv_cpu >= 0)
                fprintf(stderr, "  server CPU %.2f s over %.2f s (%.2f "
                        "cores): %.0f durable msgs per CPU-s; client CPU "
                        "%.2f s\n", srv_cpu, meas_s, srv_cpu / meas_s,
                        srv_cpu > 0 ? (double)durable / srv_cpu : 0.0,
                        cli_cpu);
            if (wb0 >= 0 && wb1 >= 0 && durable > 0)
                fprintf(stderr, "  server storage writes %.1f MB (%.0f bytes "
                        "per durable message), %.0f store commits (%.2f "
                        "messages each)\n", (double)(wb1 - wb0) / 1e6,
                        (double)(wb1 - wb0) / (double)durable,
                        commits1 - commits0, commits1 > commits0 ?
                            (double)durable / (commits1 - commits0) : 0.0);
            if (mach >= 0 && srv_cpu >= 0)
                fprintf(stderr, "  other work on the machine meanwhile: "
                        "%.2f cores%s\n", (mach - srv_cpu - cli_cpu) / meas_s,
                        (mach - srv_cpu - cli_cpu) / meas_s > 0.1 ?
                            " (the numbers are disturbed)" : "");
        }
        if (per_sess >= 0)
            fprintf(stderr, "  server RSS: %ld KiB after setup, %ld KiB "
                    "with %d sessions -> %ld bytes per active session; "
                    "%ld KiB at the end\n", rss_setup, rss_sess,
                    g_nvisitors, per_sess, rss_end);
        fprintf(stderr, "  errors: failed %" PRIu64 " dropped %" PRIu64
                " error frames %" PRIu64 " dup msgs %" PRIu64 " gaps %"
                PRIu64 "\n", s_end.c[C_FAILED], s_end.c[C_DROPPED],
                s_end.c[C_ERRORS], s_end.c[C_DUPS], s_end.c[C_GAPS]);
    }
    if (!clean) {
        fprintf(stderr, "chatload: workers did not finish closing\n");
        _exit(ok_sess ? 0 : 1);
    }
    for (i = 0; i < g_threads; i++) {
        pthread_join(g_workers[i].thread, NULL);
        free(g_workers[i].fbuf);
        free(g_workers[i].todo);
        free(g_workers[i].kq);
        free(g_workers[i].kq2);
        free(g_workers[i].trace);
    }
    for (i = 0; i < g_nagents; i++)
        free(g_ag[i].vis);
    free(g_workers);
    free(g_vis);
    free(g_ag);
    return ok_sess ? 0 : 1;
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

/* The parts that need no server: the JSON field reader and the cid. */
static int
selftest(void)
{
    static const char *const k[] = {"type", "seq", "cid", "body", "x"};
    const char *m = "{ \"type\" : \"msg\", \"body\":{\"seq\":9,\"a\":[1,"
                    "{\"b\":\"}\"}]},\"seq\":42,\"cid\":\"c\\\"q\","
                    "\"x\":null }";
    char cid[CID_LEN + 1];
    uint64_t a, b, c;
    span f[5];

    CHECK(jfields(m, strlen(m), k, 5, f) == 0);
    CHECK(span_is(&f[0], "msg"));
    CHECK(span_uint(&f[1]) == 42);
    CHECK(f[2].str && f[2].n == 4 && memcmp(f[2].p, "c\\\"q", 4) == 0);
    CHECK(f[3].p != NULL && !f[3].str && f[3].p[0] == '{' &&
          f[3].p[f[3].n - 1] == '}');
    CHECK(f[4].p != NULL && f[4].n == 4 && span_uint(&f[4]) == -1);
    CHECK(jfields("{}", 2, k, 5, f) == 0 && f[0].p == NULL);
    CHECK(jfields("[1]", 3, k, 5, f) == -1);
    CHECK(jfields("{\"type\":\"x\"", 11, k, 5, f) == -1);
    CHECK(jfields("{\"type\":\"x\",}", 13, k, 5, f) == -1);
    CHECK(jfields("{\"type\" \"x\"}", 12, k, 5, f) == -1);

    cid_make(cid, 999, 0x12345678u, 0x0123456789abcdefull);
    CHECK(strlen(cid) == CID_LEN);
    CHECK(cid_parse(cid, CID_LEN, &a, &b, &c) == 0);
    CHECK(a == 999 && b == 0x12345678u && c == 0x0123456789abcdefull);
    CHECK(cid_parse(cid, CID_LEN - 1, &a, &b, &c) == -1);
    cid[5] = 'z';
    CHECK(cid_parse(cid, CID_LEN, &a, &b, &c) == -1);

    printf("selftest: ok\n");
    return 0;
}
