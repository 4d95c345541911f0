/*
 * The network core end to end in one process: the library's server and its
 * own WebSocket client on one loop, plus raw blocking sockets driven from a
 * helper thread for HTTP and misbehaving peers. Every test checks that the
 * counting allocator ends at zero outstanding bytes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"
#include "core/internal.h"
#include "net/net_int.h"

typedef struct fx {
    uv_loop_t loop;
    cc_test_alloc ta;
    cc_ctx *ctx;
    cc_server *srv;
    cc_ws_endpoint *sep; /* server endpoint */
    cc_ws_endpoint *cep; /* client endpoint */
    int port;
    /* server side observations */
    int s_open, s_closed, s_close_status, s_close_code;
    char s_close_reason[128];
    cc_ws_conn *s_conn;
    int echo;
    /* client side observations */
    int c_open, c_open_status, c_closed, c_close_status, c_close_code;
    int c_msgs;
    size_t c_bytes;
    char c_last[256];
    int c_last_op;
    int done;
    int srv_closed;
} fx;

static fx F;

static void
s_on_open(cc_ws_conn *c, int status, void *data)
{
    fx *f = data;
    f->s_open++;
    f->s_conn = c;
    ck_assert_int_eq(status, 0);
}

static void
s_on_message(cc_ws_conn *c, int op, const uint8_t *m, size_t n, void *data)
{
    fx *f = data;
    ck_assert_int_eq(m[n], 0); /* NUL-terminated for convenience */
    if (f->echo)
        cc_ws_send(c, op, m, n);
}

static void
s_on_close(cc_ws_conn *c, int status, int code, const char *r, size_t rl,
           void *data)
{
    fx *f = data;
    (void)c;
    (void)r;
    (void)rl;
    f->s_closed++;
    f->s_close_status = status;
    f->s_close_code = code;
    ck_assert_uint_eq(strlen(r), rl);
    snprintf(f->s_close_reason, sizeof f->s_close_reason, "%s", r);
    f->s_conn = NULL;
}

static void
c_on_open(cc_ws_conn *c, int status, void *data)
{
    fx *f = data;
    (void)c;
    f->c_open++;
    f->c_open_status = status;
    if (status)
        f->done = 1;
}

static void
c_on_message(cc_ws_conn *c, int op, const uint8_t *m, size_t n, void *data)
{
    fx *f = data;
    (void)c;
    f->c_msgs++;
    f->c_bytes += n;
    f->c_last_op = op;
    size_t k = n < sizeof f->c_last - 1 ? n : sizeof f->c_last - 1;
    memcpy(f->c_last, m, k);
    f->c_last[k] = 0;
}

static void
c_on_close(cc_ws_conn *c, int status, int code, const char *r, size_t rl,
           void *data)
{
    fx *f = data;
    (void)c;
    (void)r;
    (void)rl;
    f->c_closed++;
    f->c_close_status = status;
    f->c_close_code = code;
    f->done = 1;
}

static void
setup_with(cc_config *cfg)
{
    memset(&F, 0, sizeof F);
    F.echo = 1;
    cc_test_alloc_init(&F.ta);
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
    ck_assert_int_eq(cc_ctx_new(&F.ctx, &F.loop, &F.ta.a), 0);
    ck_assert_int_eq(cc_server_new(&F.srv, F.ctx, cfg), 0);
    ck_assert_int_eq(cc_ws_endpoint_new(&F.sep, F.ctx, cfg), 0);
    ck_assert_int_eq(cc_ws_endpoint_new(&F.cep, F.ctx, NULL), 0);
    cc_ws_endpoint_on_open(F.sep, s_on_open, &F);
    cc_ws_endpoint_on_message(F.sep, s_on_message, &F);
    cc_ws_endpoint_on_close(F.sep, s_on_close, &F);
    cc_ws_endpoint_on_open(F.cep, c_on_open, &F);
    cc_ws_endpoint_on_message(F.cep, c_on_message, &F);
    cc_ws_endpoint_on_close(F.cep, c_on_close, &F);
    ck_assert_int_eq(cc_server_ws(F.srv, "/ws", F.sep), 0);
    ck_assert_int_eq(cc_server_listen(F.srv, "127.0.0.1", 0), 0);
    F.port = cc_server_port(F.srv);
    ck_assert_int_gt(F.port, 0);
}

/* Replace the fixture with one built from cfg (then freed). */
static void teardown(void);
static void
restart_with(cc_config *cfg)
{
    teardown();
    setup_with(cfg);
    cc_config_free(cfg);
}

static void
setup(void)
{
    setup_with(NULL);
}

static void
on_srv_closed(void *obj, void *data)
{
    (void)obj;
    ((fx *)data)->srv_closed = 1;
}

static void
teardown(void)
{
    if (F.srv)
        cc_server_close(F.srv, on_srv_closed, &F);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    F.srv = NULL;
    ck_assert_int_eq(F.srv_closed, 1);
    cc_ws_endpoint_free(F.sep);
    cc_ws_endpoint_free(F.cep);
    cc_ctx_close(F.ctx, NULL, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&F.loop), 0);
    ck_assert_uint_eq(F.ta.bytes, 0);
    ck_assert_uint_eq(F.ta.blocks, 0);
}

static cc_ws_conn *
connect_client(const char *path)
{
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", F.port, path);
    cc_ws_conn *c = NULL;
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, url, NULL, NULL, &F), 0);
    return c;
}

static int
wait_for(volatile int *flag, unsigned ms)
{
    return cc_test_run_until(&F.loop, flag, ms);
}

static volatile int want;
static int
count_reached(int *counter, int n, unsigned ms)
{
    uint64_t end = uv_now(&F.loop) + ms;
    while (*counter < n && uv_now(&F.loop) < end)
        uv_run(&F.loop, UV_RUN_ONCE);
    return *counter >= n;
}

START_TEST(echo_text_binary_and_clean_close)
{
    cc_ws_conn *c = connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    ck_assert_int_eq(F.c_open_status, 0);
    ck_assert_int_eq(cc_ws_send_text(c, "hello", 5), 0);
    ck_assert(count_reached(&F.c_msgs, 1, 3000));
    ck_assert_str_eq(F.c_last, "hello");
    ck_assert_int_eq(F.c_last_op, CC_WS_TEXT);
    uint8_t bin[3] = {0, 1, 255};
    ck_assert_int_eq(cc_ws_send(c, CC_WS_BINARY, bin, 3), 0);
    ck_assert(count_reached(&F.c_msgs, 2, 3000));
    ck_assert_int_eq(F.c_last_op, CC_WS_BINARY);
    ck_assert_int_eq(cc_ws_send(c, 99, bin, 3), CC_EINVAL);
    ck_assert_int_eq(cc_ws_close(c, 1000, "bye", 3), 0);
    ck_assert_int_eq(cc_ws_send_text(c, "late", 4), CC_EPIPE);
    ck_assert(wait_for(&F.done, 3000));
    ck_assert(count_reached(&F.s_closed, 1, 3000));
    ck_assert_int_eq(F.c_close_status, 0);
    ck_assert_int_eq(F.c_close_code, 1000);
    ck_assert_int_eq(F.s_close_status, 0);
    ck_assert_int_eq(F.s_close_code, 1000);
    ck_assert_str_eq(F.s_close_reason, "bye");
}
END_TEST

START_TEST(invalid_close_codes_refused)
{
    cc_ws_conn *c = connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    ck_assert_int_eq(cc_ws_close(c, 1005, NULL, 0), CC_EINVAL);
    ck_assert_int_eq(cc_ws_close(c, 999, NULL, 0), CC_EINVAL);
    char big[200];
    memset(big, 'x', sizeof big);
    ck_assert_int_eq(cc_ws_close(c, 1000, big, 124), CC_EINVAL);
    ck_assert_int_eq(cc_ws_close(c, 4000, "app", 3), 0);
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_eq(F.c_close_code, 4000);
}
END_TEST

static size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536};

START_TEST(message_sizes_round_trip)
{
    cc_ws_conn *c = connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    uint8_t *buf = malloc(65536);
    for (size_t i = 0; i < 65536; i++)
        buf[i] = (uint8_t)('a' + i % 26);
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ck_assert_int_eq(cc_ws_send(c, CC_WS_TEXT, buf, sizes[i]), 0);
        total += sizes[i];
    }
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    ck_assert(count_reached(&F.c_msgs, n, 5000));
    ck_assert_uint_eq(F.c_bytes, total);
    /* one byte over the limit: the server closes with 1009 */
    uint8_t *big = malloc(65537);
    memset(big, 'z', 65537);
    ck_assert_int_eq(cc_ws_send(c, CC_WS_TEXT, big, 65537), 0);
    ck_assert(wait_for(&F.done, 5000));
    ck_assert_int_eq(F.c_close_code, 1009);
    ck_assert(count_reached(&F.s_closed, 1, 3000));
    ck_assert_int_eq(F.s_close_status, CC_E2BIG);
    free(buf);
    free(big);
}
END_TEST

START_TEST(one_mib_message)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_int(cfg, CC_OPT_WS_MAX_MESSAGE, 2 << 20);
    cc_config_set_int(cfg, CC_OPT_OUT_MAX, 8 << 20);
    cc_ws_endpoint_free(F.cep);
    ck_assert_int_eq(cc_ws_endpoint_new(&F.cep, F.ctx, cfg), 0);
    cc_ws_endpoint_on_open(F.cep, c_on_open, &F);
    cc_ws_endpoint_on_message(F.cep, c_on_message, &F);
    cc_ws_endpoint_on_close(F.cep, c_on_close, &F);
    /* the server endpoint too */
    cc_server_close(F.srv, NULL, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT);
    cc_ws_endpoint_free(F.sep);
    ck_assert_int_eq(cc_server_new(&F.srv, F.ctx, cfg), 0);
    ck_assert_int_eq(cc_ws_endpoint_new(&F.sep, F.ctx, cfg), 0);
    cc_ws_endpoint_on_message(F.sep, s_on_message, &F);
    cc_ws_endpoint_on_close(F.sep, s_on_close, &F);
    cc_server_ws(F.srv, "/ws", F.sep);
    ck_assert_int_eq(cc_server_listen(F.srv, "127.0.0.1", 0), 0);
    F.port = cc_server_port(F.srv);
    cc_config_free(cfg);
    cc_ws_conn *c = connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    size_t n = 1 << 20;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 7);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(cc_ws_send(c, CC_WS_BINARY, buf, n), 0);
    ck_assert(count_reached(&F.c_msgs, 3, 10000));
    ck_assert_uint_eq(F.c_bytes, 3 * n);
    free(buf);
    cc_ws_close(c, 1000, NULL, 0);
    ck_assert(wait_for(&F.done, 3000));
}
END_TEST

START_TEST(thousand_messages_in_order)
{
    cc_ws_conn *c = connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    for (int i = 0; i < 1000; i++) {
        char m[16];
        int k = snprintf(m, sizeof m, "%d", i);
        ck_assert_int_eq(cc_ws_send_text(c, m, (size_t)k), 0);
    }
    ck_assert(count_reached(&F.c_msgs, 1000, 5000));
    ck_assert_str_eq(F.c_last, "999");
    cc_ws_close(c, 1000, NULL, 0);
    ck_assert(wait_for(&F.done, 3000));
}
END_TEST

static void
s_close_on_message(cc_ws_conn *c, int op, const uint8_t *m, size_t n, void *data)
{
    (void)op;
    (void)m;
    (void)n;
    (void)data;
    cc_ws_close(c, 4001, "token expired", 13);
    /* sending after our close frame is refused */
    ck_assert_int_eq(cc_ws_send_text(c, "x", 1), CC_EPIPE);
}

START_TEST(server_initiated_close)
{
    cc_ws_endpoint_on_message(F.sep, s_close_on_message, &F);
    cc_ws_conn *c = connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    cc_ws_send_text(c, "hi", 2);
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_eq(F.c_close_code, 4001);
    ck_assert_int_eq(F.c_close_status, 0);
    ck_assert(count_reached(&F.s_closed, 1, 3000));
    ck_assert_int_eq(F.s_close_code, 4001);
    ck_assert_int_eq(F.s_close_status, 0);
}
END_TEST

static void
send_from_timer(uv_timer_t *t)
{
    (void)t;
    ck_assert_int_eq(cc_ws_send_text(F.s_conn, "tick", 4), 0);
}

static void
far_timer(uv_timer_t *t)
{
    (void)t;
}

/* A frame queued from a timer callback is written in that loop turn, not
 * when some later event wakes the poll. With every other timer stopped,
 * the only later wake-up is a timer 2 s away: the frame must arrive long
 * before it. */
START_TEST(output_from_a_timer_is_written_at_once)
{
    connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    ck_assert(count_reached(&F.s_open, 1, 3000));
    uv_timer_stop(&F.ctx->sweep);
    F.ctx->sweep_on = 0;
    static uv_timer_t send_t, far_t;   /* outlive the test body's frame */
    uv_timer_init(&F.loop, &send_t);
    uv_timer_init(&F.loop, &far_t);
    uv_timer_start(&send_t, send_from_timer, 20, 0);
    uv_timer_start(&far_t, far_timer, 2000, 0);
    uint64_t t0 = uv_now(&F.loop);
    while (F.c_msgs < 1 && uv_now(&F.loop) - t0 < 5000)
        uv_run(&F.loop, UV_RUN_ONCE);
    ck_assert_int_eq(F.c_msgs, 1);
    ck_assert_str_eq(F.c_last, "tick");
    ck_assert_uint_lt(uv_now(&F.loop) - t0, 1000);
    uv_close((uv_handle_t *)&send_t, NULL);
    uv_close((uv_handle_t *)&far_t, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT);   /* the close callbacks */
    cc__conn_sweep_arm(F.ctx);
}
END_TEST

START_TEST(idle_timeout_closes_1001)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_ms(cfg, CC_OPT_WS_IDLE_TIMEOUT_MS, 300);
    restart_with(cfg);
    connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    uint64_t t0 = uv_now(&F.loop);
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_eq(F.c_close_code, 1001);
    ck_assert_uint_lt(uv_now(&F.loop) - t0, 2000);
    ck_assert(count_reached(&F.s_closed, 1, 3000));
    ck_assert_int_eq(F.s_close_status, CC_ETIMEDOUT);
}
END_TEST

static int drained;
static void
on_drained(void *obj, void *data)
{
    (void)obj;
    (void)data;
    drained = 1;
}

START_TEST(drain_sends_text_then_1012)
{
    connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    drained = 0;
    ck_assert_int_eq(cc_server_drain(F.srv, 3000, "{\"type\":\"reconnect\"}", on_drained, NULL), 0);
    ck_assert_int_eq(cc_server_drain(F.srv, 3000, NULL, on_drained, NULL), CC_ESTATE);
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_eq(F.c_msgs, 1);
    ck_assert_str_eq(F.c_last, "{\"type\":\"reconnect\"}");
    ck_assert_int_eq(F.c_close_code, 1012);
    ck_assert(wait_for(&drained, 3000));
    /* no new connections while draining */
    F.done = 0;
    F.c_open = 0;
    connect_client("/ws");
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_lt(F.c_open_status, 0);
}
END_TEST

START_TEST(connect_refused_reports_status)
{
    /* a port nobody listens on */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", ntohs(a.sin_port));
    cc_ws_conn *c;
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, url, NULL, NULL, &F), 0);
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_eq(F.c_open, 1);
    ck_assert_int_eq(F.c_open_status, UV_ECONNREFUSED);
    ck_assert_int_eq(F.c_closed, 0);
    /* bad URLs */
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, "http://x/", NULL, NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, "ws://:80/", NULL, NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, "ws://h:99999/", NULL, NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, "ws://h/a b", NULL, NULL, NULL), CC_EINVAL);
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, "ws://h/", NULL, "X: y", NULL), CC_EINVAL);
}
END_TEST

static void
s_refuse(cc_ws_endpoint *ep, cc_http_req *req, void *data)
{
    (void)ep;
    (void)data;
    ck_assert_str_eq(cc_http_req_path(req), "/ws");
    const char *tok = cc_http_req_header(req, "authorization");
    if (tok && strcmp(tok, "Bearer good") == 0)
        cc_ws_accept(req, NULL);
    else
        cc_http_respond_error(req, 401, "unauthorized", "bad token");
}

START_TEST(upgrade_hook_refuses_with_401)
{
    cc_ws_endpoint_on_upgrade(F.sep, s_refuse, &F);
    connect_client("/ws");
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_eq(F.c_open_status, CC_EHANDSHAKE);
    F.done = 0;
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", F.port);
    cc_ws_conn *c;
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, url, NULL, "Authorization: Bearer good\r\n", &F), 0);
    ck_assert(count_reached(&F.c_open, 2, 3000));
    ck_assert_int_eq(F.c_open_status, 0);
    ck_assert_ptr_eq(cc_ws_conn_get_data(c), &F);
    cc_ws_close(c, 1000, NULL, 0);
    ck_assert(wait_for(&F.done, 3000));
}
END_TEST

static cc_http_req *pending;
static void
s_defer(cc_ws_endpoint *ep, cc_http_req *req, void *data)
{
    (void)ep;
    (void)data;
    pending = req;
}

static void
accept_later(uv_timer_t *t)
{
    (void)t;
    ck_assert_int_eq(cc_ws_accept(pending, NULL), 0);
    pending = NULL;
}

START_TEST(upgrade_accepted_asynchronously)
{
    cc_ws_endpoint_on_upgrade(F.sep, s_defer, &F);
    cc_ws_conn *c = connect_client("/ws");
    uv_timer_t t;
    uv_timer_init(&F.loop, &t);
    uv_timer_start(&t, accept_later, 100, 0);
    ck_assert(count_reached(&F.c_open, 1, 3000));
    ck_assert_int_eq(F.c_open_status, 0);
    cc_ws_send_text(c, "after", 5);
    ck_assert(count_reached(&F.c_msgs, 1, 3000));
    ck_assert_str_eq(F.c_last, "after");
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT); /* t lives on this stack frame */
    cc_ws_close(c, 1000, NULL, 0);
    ck_assert(wait_for(&F.done, 3000));
}
END_TEST

START_TEST(subprotocol_negotiated)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_str(cfg, CC_OPT_WS_SUBPROTOCOLS, "chatcore.v1");
    teardown();
    setup_with(cfg);
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", F.port);
    cc_config_set_str(cfg, CC_OPT_WS_SUBPROTOCOLS, "other, chatcore.v1");
    cc_ws_conn *c;
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, url, cfg, NULL, &F), 0);
    cc_config_free(cfg);
    ck_assert(count_reached(&F.c_open, 1, 3000));
    ck_assert_int_eq(F.c_open_status, 0);
    ck_assert_str_eq(cc_ws_conn_subprotocol(c), "chatcore.v1");
    ck_assert_str_eq(cc_ws_conn_subprotocol(F.s_conn), "chatcore.v1");
    cc_ws_close(c, 1000, NULL, 0);
    ck_assert(wait_for(&F.done, 3000));
}
END_TEST

static int bcast_msgs;
static void
count_msg(cc_ws_conn *c, int op, const uint8_t *m, size_t n, void *data)
{
    (void)c;
    (void)op;
    (void)data;
    ck_assert_uint_eq(n, 2000);
    ck_assert_int_eq(m[1999], 'b');
    bcast_msgs++;
}

START_TEST(broadcast_shared_message)
{
    cc_ws_endpoint_on_message(F.cep, count_msg, &F);
    for (int i = 0; i < 5; i++)
        connect_client("/ws");
    ck_assert(count_reached(&F.s_open, 5, 3000));
    char body[2000];
    memset(body, 'b', sizeof body);
    cc_ws_msg *m;
    ck_assert_int_eq(cc_ws_msg_new(&m, F.ctx, CC_WS_TEXT, body, sizeof body), 0);
    bcast_msgs = 0;
    ck_assert_uint_eq(cc_ws_endpoint_broadcast(F.sep, m, NULL), 5);
    ck_assert_uint_eq(cc_ws_endpoint_broadcast(F.sep, m, F.s_conn), 4);
    cc_ws_msg_release(m);
    ck_assert(count_reached(&bcast_msgs, 9, 3000));
    ck_assert_uint_eq(cc_ws_endpoint_conn_count(F.sep), 5);
}
END_TEST

/* ---- raw sockets from a helper thread ---- */

typedef struct raw {
    int port;
    const char *send;   /* request bytes */
    size_t send_len;
    int shut_wr;
    char resp[65536];
    size_t resp_len;
    volatile int done;
} raw;

static void
raw_run(void *arg)
{
    raw *r = arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
        size_t off = 0;
        while (off < r->send_len) {
            ssize_t k = send(s, r->send + off, r->send_len - off, MSG_NOSIGNAL);
            if (k <= 0)
                break;
            off += (size_t)k;
        }
        if (r->shut_wr)
            shutdown(s, SHUT_WR);
        struct pollfd p = {.fd = s, .events = POLLIN};
        while (poll(&p, 1, 3000) > 0) {
            ssize_t k = recv(s, r->resp + r->resp_len, sizeof r->resp - 1 - r->resp_len, 0);
            if (k <= 0)
                break;
            r->resp_len += (size_t)k;
        }
    }
    r->resp[r->resp_len] = 0;
    close(s);
    r->done = 1;
}

static void
raw_exchange(raw *r)
{
    r->port = F.port;
    uv_thread_t t;
    uv_thread_create(&t, raw_run, r);
    while (!r->done)
        uv_run(&F.loop, UV_RUN_NOWAIT), usleep(1000);
    uv_thread_join(&t);
}

static void
hello_handler(cc_server *srv, cc_http_req *req, void *data)
{
    (void)srv;
    (void)data;
    char q[32];
    int n = cc_http_req_query_param(req, "name", q, sizeof q);
    char body[64];
    snprintf(body, sizeof body, "{\"hello\":\"%s\"}", n > 0 ? q : "world");
    cc_http_respond_json(req, 200, body);
}

START_TEST(http_routes_keepalive_and_errors)
{
    ck_assert_int_eq(cc_server_route(F.srv, "GET", "/hello", hello_handler, NULL), 0);
    ck_assert_int_eq(cc_server_route(F.srv, "GET", "nope", hello_handler, NULL), CC_EINVAL);
    static const char two[] =
        "GET /hello?name=ann HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw r = {.send = two, .send_len = sizeof two - 1};
    raw_exchange(&r);
    ck_assert_ptr_nonnull(strstr(r.resp, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(r.resp, "{\"hello\":\"ann\"}"));
    char *second = strstr(strstr(r.resp, "ann"), "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(second);
    ck_assert_ptr_nonnull(strstr(second, "{\"hello\":\"world\"}"));
    ck_assert_ptr_nonnull(strstr(second, "Connection: close"));

    static const char nf[] = "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n";
    raw r2 = {.send = nf, .send_len = sizeof nf - 1, .shut_wr = 0};
    raw_exchange(&r2);
    ck_assert_ptr_nonnull(strstr(r2.resp, "HTTP/1.1 404 "));
    ck_assert_ptr_nonnull(strstr(r2.resp, "\"error\":\"not_found\""));

    static const char post[] = "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    raw r3 = {.send = post, .send_len = sizeof post - 1};
    raw_exchange(&r3);
    ck_assert_ptr_nonnull(strstr(r3.resp, "HTTP/1.1 405 "));

    static const char nohost[] = "GET /hello HTTP/1.1\r\n\r\n";
    raw r5 = {.send = nohost, .send_len = sizeof nohost - 1};
    raw_exchange(&r5);
    ck_assert_ptr_nonnull(strstr(r5.resp, "HTTP/1.1 400 "));
    ck_assert_ptr_nonnull(strstr(r5.resp, "missing Host header"));
    static const char http10[] = "GET /hello HTTP/1.0\r\n\r\n";
    raw r6 = {.send = http10, .send_len = sizeof http10 - 1};
    raw_exchange(&r6);
    ck_assert_ptr_nonnull(strstr(r6.resp, "HTTP/1.1 200 OK"));

    static const char garbage[] = "\x16\x03\x01 hello\r\n\r\n";
    raw r4 = {.send = garbage, .send_len = sizeof garbage - 1};
    raw_exchange(&r4);
    ck_assert_ptr_nonnull(strstr(r4.resp, "HTTP/1.1 400 "));
}
END_TEST

START_TEST(http_head_too_large_431)
{
    char *big = malloc(20000);
    int n = snprintf(big, 20000, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', 10000);
    memcpy(big + n + 10000, "\r\n\r\n", 4);
    raw r = {.send = big, .send_len = (size_t)n + 10004};
    raw_exchange(&r);
    ck_assert_ptr_nonnull(strstr(r.resp, "HTTP/1.1 431 "));
    free(big);
}
END_TEST

START_TEST(ws_handshake_refusals)
{
    static const char v12[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 12\r\n\r\n";
    raw r = {.send = v12, .send_len = sizeof v12 - 1};
    raw_exchange(&r);
    ck_assert_ptr_nonnull(strstr(r.resp, "HTTP/1.1 426 "));
    ck_assert_ptr_nonnull(strstr(r.resp, "Sec-WebSocket-Version: 13\r\n"));
    static const char nokey[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    raw r2 = {.send = nokey, .send_len = sizeof nokey - 1};
    raw_exchange(&r2);
    ck_assert_ptr_nonnull(strstr(r2.resp, "HTTP/1.1 400 "));
    static const char ok[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n"
                             /* a masked close frame, code 1000, right behind the head */
                             "\x88\x82\x01\x02\x03\x04\x02\xea";
    raw r3 = {.send = ok, .send_len = sizeof ok - 1};
    raw_exchange(&r3);
    ck_assert_ptr_nonnull(strstr(r3.resp, "HTTP/1.1 101 Switching Protocols\r\n"));
    ck_assert_ptr_nonnull(strstr(r3.resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    /* the echoed close frame: 88 02 03 e8 */
    char *end = strstr(r3.resp, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    ck_assert_int_eq((unsigned char)end[4], 0x88);
    ck_assert_int_eq((unsigned char)end[5], 0x02);
    ck_assert_int_eq((unsigned char)end[6], 0x03);
    ck_assert_int_eq((unsigned char)end[7], 0xe8);
}
END_TEST

/* A blocking client socket with a small receive buffer that completes the
 * WebSocket handshake and then never reads: a slow consumer. */
static int
raw_ws_never_reading(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)F.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    static const char hs[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    ck_assert_int_eq(send(s, hs, sizeof hs - 1, 0), (ssize_t)(sizeof hs - 1));
    ck_assert(count_reached(&F.s_open, 1, 3000));
    return s;
}

static int unread_closed;
static void
flood(uv_timer_t *t)
{
    static char chunk[16384];
    if (!F.s_conn) {
        uv_timer_stop(t);
        return;
    }
    for (int i = 0; i < 64; i++) {
        int rc = cc_ws_send(F.s_conn, CC_WS_BINARY, chunk, sizeof chunk);
        if (rc == CC_ENOBUFS) {
            unread_closed = 1;
            uv_timer_stop(t);
            return;
        }
        if (rc)
            return;
    }
}

START_TEST(slow_consumer_closed_1008)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_int(cfg, CC_OPT_OUT_MAX, 256 * 1024);
    cc_config_set_int(cfg, CC_OPT_OUT_HIGH_WATER, 64 * 1024);
    cc_config_set_ms(cfg, CC_OPT_CLOSE_TIMEOUT_MS, 200);
    restart_with(cfg);
    /* a raw client that completes the handshake and never reads */
    int s = raw_ws_never_reading();
    uv_timer_t t;
    uv_timer_init(&F.loop, &t);
    unread_closed = 0;
    uv_timer_start(&t, flood, 1, 1);
    ck_assert(count_reached(&F.s_closed, 1, 10000));
    ck_assert_int_eq(unread_closed, 1);
    ck_assert_int_eq(F.s_close_code, 1008);
    ck_assert_int_eq(F.s_close_status, CC_ENOBUFS);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT); /* t lives on this stack frame */
    close(s);
}
END_TEST

START_TEST(slowloris_header_timeout)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_ms(cfg, CC_OPT_HTTP_HEADER_TIMEOUT_MS, 300);
    restart_with(cfg);
    static const char part[] = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    raw r = {.send = part, .send_len = sizeof part - 1};
    uint64_t t0 = uv_now(&F.loop);
    raw_exchange(&r);
    uv_update_time(&F.loop);
    ck_assert_ptr_nonnull(strstr(r.resp, "HTTP/1.1 408 "));
    ck_assert_uint_lt(uv_now(&F.loop) - t0, 2500);
    ck_assert_uint_eq(cc_server_conn_count(F.srv), 0);
}
END_TEST

START_TEST(connect_close_cycles_leak_nothing)
{
    for (int i = 0; i < 300; i++) {
        F.done = 0;
        cc_ws_conn *c = connect_client("/ws");
        if (i % 3 == 0) {
            /* close before it even opened */
            cc_ws_close(c, 1000, NULL, 0);
        } else {
            ck_assert(count_reached(&F.c_open, (int)(i - i / 3), 3000));
            cc_ws_close(c, 1000, NULL, 0);
        }
        ck_assert(wait_for(&F.done, 3000));
    }
    ck_assert(count_reached(&F.s_closed, F.s_open, 3000));
    ck_assert_uint_eq(cc_ws_endpoint_conn_count(F.sep), 0);
}
END_TEST


static char static_dir[256];

static void
make_static_dir(void)
{
    snprintf(static_dir, sizeof static_dir, "/tmp/cc-static-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(static_dir));
    char p[512];
    snprintf(p, sizeof p, "%s/index.html", static_dir);
    FILE *f = fopen(p, "w");
    fputs("<h1>hi</h1>", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/app.js", static_dir);
    f = fopen(p, "w");
    fputs("export const x = 1;", f);
    fclose(f);
}

static void
remove_static_dir(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/index.html", static_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/app.js", static_dir);
    unlink(p);
    rmdir(static_dir);
}

START_TEST(static_files_served_with_caching)
{
    make_static_dir();
    ck_assert_int_eq(cc_server_static(F.srv, "/", static_dir, 60), 0);
    ck_assert_int_eq(cc_server_static(F.srv, "/x/", "/nonexistent-dir-cc", 60), CC_ENOENT);
    static const char get[] = "GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw r = {.send = get, .send_len = sizeof get - 1};
    raw_exchange(&r);
    ck_assert_ptr_nonnull(strstr(r.resp, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(r.resp, "text/javascript"));
    ck_assert_ptr_nonnull(strstr(r.resp, "Cache-Control: public, max-age=60"));
    ck_assert_ptr_nonnull(strstr(r.resp, "\r\n\r\nexport const x = 1;"));
    char *et = strstr(r.resp, "ETag: ");
    ck_assert_ptr_nonnull(et);
    char etag[128];
    size_t k = strcspn(et + 6, "\r");
    ck_assert_uint_lt(k, sizeof etag);
    memcpy(etag, et + 6, k);
    etag[k] = 0;

    char cond[512];
    int n = snprintf(cond, sizeof cond,
                     "GET /app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n"
                     "Connection: close\r\n\r\n", etag);
    raw r2 = {.send = cond, .send_len = (size_t)n};
    raw_exchange(&r2);
    ck_assert_ptr_nonnull(strstr(r2.resp, "HTTP/1.1 304 "));
    ck_assert_ptr_null(strstr(r2.resp, "export const"));

    static const char idx[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw r3 = {.send = idx, .send_len = sizeof idx - 1};
    raw_exchange(&r3);
    ck_assert_ptr_nonnull(strstr(r3.resp, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(r3.resp, "text/html"));
    ck_assert_ptr_nonnull(strstr(r3.resp, "<h1>hi</h1>"));

    static const char head[] = "HEAD /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw r4 = {.send = head, .send_len = sizeof head - 1};
    raw_exchange(&r4);
    ck_assert_ptr_nonnull(strstr(r4.resp, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(r4.resp, "Content-Length: 11\r\n"));
    ck_assert_ptr_null(strstr(r4.resp, "<h1>"));

    static const char esc[] = "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw r5 = {.send = esc, .send_len = sizeof esc - 1};
    raw_exchange(&r5);
    ck_assert_ptr_null(strstr(r5.resp, "root:"));
    ck_assert(strstr(r5.resp, "HTTP/1.1 404 ") || strstr(r5.resp, "HTTP/1.1 400 ") ||
              strstr(r5.resp, "HTTP/1.1 403 "));

    static const char enc[] = "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw r6 = {.send = enc, .send_len = sizeof enc - 1};
    raw_exchange(&r6);
    ck_assert_ptr_null(strstr(r6.resp, "root:"));

    static const char missing[] = "GET /nope.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw r7 = {.send = missing, .send_len = sizeof missing - 1};
    raw_exchange(&r7);
    ck_assert_ptr_nonnull(strstr(r7.resp, "HTTP/1.1 404 "));
    ck_assert_ptr_nonnull(strstr(r7.resp, "\"error\":"));
    remove_static_dir();
}
END_TEST

static int
origin_ok(cc_ws_endpoint *ep, const char *origin, void *data)
{
    (void)ep;
    (void)data;
    return origin && strcmp(origin, "https://good.example") == 0;
}

START_TEST(origin_hook_refuses_403)
{
    cc_ws_endpoint_on_origin(F.sep, origin_ok, NULL);
    static const char bad[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n";
    raw r = {.send = bad, .send_len = sizeof bad - 1};
    raw_exchange(&r);
    ck_assert_ptr_nonnull(strstr(r.resp, "HTTP/1.1 403 "));
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", F.port);
    cc_ws_conn *c;
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, url, NULL, "Origin: https://good.example\r\n", &F), 0);
    ck_assert(count_reached(&F.c_open, 1, 3000));
    ck_assert_int_eq(F.c_open_status, 0);
    cc_ws_close(c, 1000, NULL, 0);
    ck_assert(wait_for(&F.done, 3000));
}
END_TEST

START_TEST(binary_refused_when_disabled)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_int(cfg, CC_OPT_WS_ALLOW_BINARY, 0);
    restart_with(cfg);
    cc_ws_conn *c = connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    cc_ws_send_text(c, "text is fine", 12);
    ck_assert(count_reached(&F.c_msgs, 1, 3000));
    uint8_t b[2] = {1, 2};
    cc_ws_send(c, CC_WS_BINARY, b, 2);
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_eq(F.c_close_code, 1003);
}
END_TEST

static int hw_calls;
static size_t hw_queued;
static void
on_hw(cc_ws_conn *c, int status, size_t queued, void *data)
{
    (void)c;
    (void)data;
    ck_assert_int_eq(status, 0);
    hw_calls++;
    hw_queued = queued;
}

START_TEST(high_water_callback_fires_once)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_int(cfg, CC_OPT_OUT_HIGH_WATER, 4096);
    cc_config_set_int(cfg, CC_OPT_OUT_MAX, 1 << 20);
    restart_with(cfg);
    cc_ws_endpoint_on_high_water(F.sep, on_hw, NULL);
    hw_calls = 0;
    connect_client("/ws");
    ck_assert(count_reached(&F.s_open, 1, 3000));
    char chunk[1000];
    memset(chunk, 'q', sizeof chunk);
    /* queued within one loop turn: nothing is written yet */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(cc_ws_send(F.s_conn, CC_WS_TEXT, chunk, sizeof chunk), 0);
    ck_assert_int_eq(hw_calls, 1);
    ck_assert_uint_ge(hw_queued, 4096);
    ck_assert_uint_ge(cc_ws_conn_queued(F.s_conn), 10 * 1000);
    ck_assert(count_reached(&F.c_msgs, 10, 3000));
    ck_assert_uint_eq(cc_ws_conn_queued(F.s_conn), 0);
}
END_TEST

static int pongs_seen;
START_TEST(server_pings_idle_clients)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_ms(cfg, CC_OPT_WS_PING_INTERVAL_MS, 200);
    cc_config_set_ms(cfg, CC_OPT_WS_IDLE_TIMEOUT_MS, 700);
    restart_with(cfg);
    /* our client answers pings with pongs, which count as activity: the
     * idle timeout never fires while the server keeps pinging */
    cc_ws_conn *c = connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    pongs_seen = 0;
    uint64_t end = uv_now(&F.loop) + 1800;
    while (uv_now(&F.loop) < end && !F.done)
        uv_run(&F.loop, UV_RUN_ONCE);
    ck_assert_int_eq(F.done, 0);
    ck_assert_int_eq(F.s_closed, 0);
    cc_ws_close(c, 1000, NULL, 0);
    ck_assert(wait_for(&F.done, 3000));
}
END_TEST

static char cert_dir[256];
static void
make_cert(void)
{
    snprintf(cert_dir, sizeof cert_dir, "/tmp/cc-cert-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(cert_dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s/k.pem -out %s/c.pem -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1",
             cert_dir, cert_dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(wss_round_trip_with_verification)
{
    make_cert();
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s/c.pem", cert_dir);
    snprintf(key, sizeof key, "%s/k.pem", cert_dir);
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_str(cfg, CC_OPT_TLS_CERT_FILE, cert);
    cc_config_set_str(cfg, CC_OPT_TLS_KEY_FILE, key);
    restart_with(cfg);
    cc_config *ccfg;
    cc_config_new(&ccfg, NULL);
    cc_config_set_str(ccfg, CC_OPT_TLS_CA_FILE, cert);
    char url[128];
    snprintf(url, sizeof url, "wss://localhost:%d/ws", F.port);
    cc_ws_conn *c;
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, url, ccfg, NULL, &F), 0);
    ck_assert(count_reached(&F.c_open, 1, 5000));
    ck_assert_int_eq(F.c_open_status, 0);
    char *big = malloc(60000);
    memset(big, 'w', 60000);
    cc_ws_send_text(c, "secure", 6);
    cc_ws_send_text(c, big, 60000);
    ck_assert(count_reached(&F.c_msgs, 2, 5000));
    ck_assert_uint_eq(F.c_bytes, 60006);
    free(big);
    cc_ws_close(c, 1000, NULL, 0);
    ck_assert(wait_for(&F.done, 3000));
    ck_assert_int_eq(F.c_close_code, 1000);
    /* without the CA the handshake must fail */
    F.done = 0;
    F.c_open = 0;
    ck_assert_int_eq(cc_ws_connect(&c, F.cep, url, NULL, NULL, &F), 0);
    ck_assert(wait_for(&F.done, 5000));
    ck_assert_int_eq(F.c_open_status, CC_ETLS);
    cc_config_free(ccfg);
    /* a missing key file is refused at server creation */
    cc_config_new(&cfg, NULL);
    cc_config_set_str(cfg, CC_OPT_TLS_CERT_FILE, cert);
    cc_config_set_str(cfg, CC_OPT_TLS_KEY_FILE, "/nonexistent.pem");
    cc_server *s2;
    ck_assert_int_eq(cc_server_new(&s2, F.ctx, cfg), CC_ETLS);
    cc_config_free(cfg);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(ping_flood_without_reading_closed_1008)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_int(cfg, CC_OPT_OUT_MAX, 64 * 1024);
    cc_config_set_ms(cfg, CC_OPT_CLOSE_TIMEOUT_MS, 200);
    restart_with(cfg);
    int s = raw_ws_never_reading();
    /* masked pings with a 125-byte payload, never reading the pongs */
    uint8_t frame[2 + 4 + 125];
    frame[0] = 0x89;
    frame[1] = 0x80 | 125;
    memset(frame + 2, 0, 4 + 125);
    int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
    uint64_t end = uv_now(&F.loop) + 10000;
    while (!F.s_closed && uv_now(&F.loop) < end) {
        for (int i = 0; i < 200; i++)
            if (send(s, frame, sizeof frame, flags) < 0)
                break;
        uv_run(&F.loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&F.loop);
    }
    ck_assert_int_eq(F.s_closed, 1);
    ck_assert_int_eq(F.s_close_code, 1008);
    ck_assert_int_eq(F.s_close_status, CC_ENOBUFS);
    close(s);
}
END_TEST

static void
bad_status_handler(cc_server *srv, cc_http_req *req, void *data)
{
    (void)srv;
    (void)data;
    ck_assert_int_eq(cc_http_respond(req, 42, NULL, NULL, NULL, 0), CC_EINVAL);
}

START_TEST(keepalive_request_gets_header_timeout)
{
    cc_config *cfg;
    cc_config_new(&cfg, NULL);
    cc_config_set_ms(cfg, CC_OPT_HTTP_HEADER_TIMEOUT_MS, 300);
    cc_config_set_ms(cfg, CC_OPT_HTTP_KEEPALIVE_MS, 20000);
    restart_with(cfg);
    ck_assert_int_eq(cc_server_route(F.srv, "GET", "/hello", hello_handler, NULL), 0);
    ck_assert_int_eq(cc_server_route(F.srv, "GET", "/bad", bad_status_handler, NULL), 0);
    /* a full request, then only part of the next head: the second head's
     * deadline is the header timeout, not the 20 s keep-alive */
    static const char reqs[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHo";
    raw r = {.send = reqs, .send_len = sizeof reqs - 1};
    uint64_t t0 = uv_now(&F.loop);
    raw_exchange(&r);
    uv_update_time(&F.loop);
    ck_assert_ptr_nonnull(strstr(r.resp, "HTTP/1.1 200 OK"));
    ck_assert_ptr_nonnull(strstr(r.resp, "HTTP/1.1 408 "));
    ck_assert_uint_lt(uv_now(&F.loop) - t0, 2900);
    static const char bad[] = "GET /bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw r2 = {.send = bad, .send_len = sizeof bad - 1};
    raw_exchange(&r2);
    ck_assert_ptr_nonnull(strstr(r2.resp, "HTTP/1.1 500 "));
}
END_TEST

START_TEST(listen_failure_can_be_retried)
{
    cc_server *s2;
    ck_assert_int_eq(cc_server_new(&s2, F.ctx, NULL), 0);
    /* the fixture's port is taken */
    ck_assert_int_eq(cc_server_listen(s2, "127.0.0.1", F.port), UV_EADDRINUSE);
    ck_assert_int_eq(cc_server_listen(s2, "127.0.0.1", 0), CC_EBUSY);
    uv_run(&F.loop, UV_RUN_NOWAIT); /* the failed handle closes */
    ck_assert_int_eq(cc_server_listen(s2, "127.0.0.1", 0), 0);
    ck_assert_int_gt(cc_server_port(s2), 0);
    ck_assert_int_eq(cc_server_listen(s2, "not an address", 0), CC_EBUSY);
    cc_server_close(s2, NULL, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT);
    cc_server *s3;
    ck_assert_int_eq(cc_server_new(&s3, F.ctx, NULL), 0);
    ck_assert_int_eq(cc_server_listen(s3, "not an address", 0), UV_EINVAL);
    ck_assert_int_eq(cc_server_listen(s3, "127.0.0.1", 70000), CC_EINVAL);
    cc_server_close(s3, NULL, NULL);
}
END_TEST

START_TEST(close_during_drain_completes_the_drain)
{
    connect_client("/ws");
    ck_assert(count_reached(&F.c_open, 1, 3000));
    drained = 0;
    ck_assert_int_eq(cc_server_drain(F.srv, 60000, NULL, on_drained, NULL), 0);
    cc_server_close(F.srv, on_srv_closed, &F);
    ck_assert_int_eq(drained, 1);
    F.srv = NULL;
    ck_assert(wait_for(&F.srv_closed, 3000));
    ck_assert(wait_for(&F.done, 3000));
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, echo_text_binary_and_clean_close);
    tcase_add_test(tc, invalid_close_codes_refused);
    tcase_add_test(tc, message_sizes_round_trip);
    tcase_add_test(tc, one_mib_message);
    tcase_add_test(tc, thousand_messages_in_order);
    tcase_add_test(tc, server_initiated_close);
    tcase_add_test(tc, output_from_a_timer_is_written_at_once);
    tcase_add_test(tc, idle_timeout_closes_1001);
    tcase_add_test(tc, drain_sends_text_then_1012);
    tcase_add_test(tc, connect_refused_reports_status);
    tcase_add_test(tc, upgrade_hook_refuses_with_401);
    tcase_add_test(tc, upgrade_accepted_asynchronously);
    tcase_add_test(tc, subprotocol_negotiated);
    tcase_add_test(tc, broadcast_shared_message);
    tcase_add_test(tc, http_routes_keepalive_and_errors);
    tcase_add_test(tc, http_head_too_large_431);
    tcase_add_test(tc, ws_handshake_refusals);
    tcase_add_test(tc, slow_consumer_closed_1008);
    tcase_add_test(tc, slowloris_header_timeout);
    tcase_add_test(tc, connect_close_cycles_leak_nothing);
    tcase_add_test(tc, static_files_served_with_caching);
    tcase_add_test(tc, origin_hook_refuses_403);
    tcase_add_test(tc, binary_refused_when_disabled);
    tcase_add_test(tc, high_water_callback_fires_once);
    tcase_add_test(tc, server_pings_idle_clients);
    tcase_add_test(tc, wss_round_trip_with_verification);
    tcase_add_test(tc, ping_flood_without_reading_closed_1008);
    tcase_add_test(tc, keepalive_request_gets_header_timeout);
    tcase_add_test(tc, listen_failure_can_be_retried);
    tcase_add_test(tc, close_during_drain_completes_the_drain);
    suite_add_tcase(s, tc);
    return s;
}
