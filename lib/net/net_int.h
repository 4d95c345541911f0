/*
 * lib/net/net_int.h - connections: the libuv edge that wires sockets to the
 * pure cores (HTTP parser, WebSocket frame codec, TLS engine).
 *
 * One struct serves every connection kind: an HTTP server connection (which
 * may upgrade to WebSocket) and a WebSocket client connection. Memory is
 * kept small for idle connections: no read buffer (reads land in the loop's
 * shared buffer; only the unfinished tail of a frame is kept), no parser
 * after the upgrade, no timer (one sweep timer per loop), no write request
 * unless a write is pending.
 *
 * Lifetime: a connection is freed only from its uv_close callback, so
 * callbacks that close it (directly or by error) never free memory the
 * caller still uses; `closing` makes every later operation a no-op.
 */
#ifndef CC_NET_INT_H
#define CC_NET_INT_H

#include "../core/internal.h"
#include "../http/http_int.h"
#include "../tls/tls.h"
#include "../ws/frame.h"

/* A shared, encoded server frame (cc_ws_msg): header + payload, once. */
struct cc_ws_msg {
    atomic_uint refs;
    cc_allocator a;
    uint8_t opcode;
    size_t len;     /* whole frame */
    size_t hdr_len; /* header bytes at the front */
    uint8_t data[]; /* frame */
};
/* The payload (after the header) of an encoded server frame: the chat
 * engine's bus forwards it as text. */
const uint8_t *cc__ws_msg_payload(const cc_ws_msg *m, size_t *len);

/* An outbound segment: either bytes of our own (data[] follows), or a
 * reference to a shared message. */
typedef struct cc__seg {
    struct cc__seg *next;
    uint8_t *base;
    uint32_t len; /* bytes in use from base */
    uint32_t off; /* bytes already written */
    uint32_t cap; /* capacity of data[] (0 for shared) */
    cc_ws_msg *shared;
    uint8_t data[];
} cc__seg;

/* Two pooled segment sizes: a small one that a few frames fit in (most
 * connections queue one small frame per turn; broadcast to thousands of
 * connections must not take 16 KiB each), and a large one for bursts and
 * big frames. Larger single frames get exact-size blocks. */
#define CC__SEG_SMALL (1024 - 64)
#define CC__SEG_SIZE (16 * 1024 - 64)
#define CC__SEG_SMALL_FREE_MAX 8192
#define CC__SEG_FREE_MAX 256
#define CC__WREQ_FREE_MAX 256
#define CC__SWEEP_MS 250

enum cc__phase {
    CC__PH_HTTP = 1,     /* server: reading/answering HTTP requests */
    CC__PH_CONNECTING,   /* client: resolving / connecting / TLS */
    CC__PH_CLIENT_HS,    /* client: handshake sent, reading the 101 */
    CC__PH_WS            /* WebSocket open (or closing) */
};

typedef struct cc__conn {
    uv_tcp_t tcp;
    cc_ctx *ctx;
    struct cc_server *srv;     /* server connections */
    struct cc_ws_endpoint *ep; /* WebSocket connections */
    void *data;
    cc__list ctx_link;         /* ctx->conns */
    cc__list ep_link;          /* ep->conns while WS, or srv->conns in HTTP */
    cc__list dirty_link;       /* ctx->dirty while output waits */
    cc__seg *out_head, *out_tail;
    size_t out_bytes;
    uint8_t *in;               /* unconsumed input (partial frame/head) */
    uint32_t in_len, in_cap;
    uint64_t deadline;         /* loop ms; 0 = none */
    uint64_t last_rx;          /* loop ms of the last frame received */
    uint32_t idle_ms;          /* this connection's idle timeout; 0 = ep's */
    cc__http_parser *hp;       /* HTTP phase only */
    cc_http_req *req;          /* request being answered */
    cc__tls *tls;
    /* WebSocket message assembly (fragmented messages only) */
    uint8_t *msg;
    size_t msg_len, msg_cap;
    uint32_t utf8;
    char *subproto;
    char *close_reason;        /* the peer's close reason, when it gave one */
    uint16_t close_code;       /* the code on_close reports */
    uint8_t phase;
    uint8_t msg_op;            /* opcode of the message being assembled, 0 = none */
    uint8_t is_client : 1;
    uint8_t closing : 1;       /* uv_close called */
    uint8_t close_sent : 1;
    uint8_t close_rcvd : 1;
    uint8_t close_after_flush : 1;
    uint8_t write_pending : 1;
    uint8_t reading : 1;
    uint8_t high_water : 1;
    uint8_t open_notified : 1;
    uint8_t in_dirty : 1;
    uint8_t ping_sent : 1;
    uint8_t in_input : 1;
    int close_status;          /* status for on_close */
    /* client only */
    struct cc__client *cl;
} cc__conn;

struct cc_ws_conn {
    cc__conn c;
};

struct cc_ws_endpoint {
    cc_ctx *ctx;
    cc__list conns; /* open WebSocket connections */
    size_t nconns;
    size_t max_message;
    uint64_t idle_ms, ping_ms, close_ms;
    size_t out_hwm, out_max;
    int allow_binary;
    char *subprotocols;
    cc_ws_upgrade_cb on_upgrade;
    void *upgrade_data;
    cc_ws_origin_cb on_origin;
    void *origin_data;
    cc_ws_open_cb on_open;
    void *open_data;
    cc_ws_message_cb on_message;
    void *message_data;
    cc_ws_close_cb on_close;
    void *close_data;
    cc_ws_high_water_cb on_hw;
    void *hw_data;
    /* client TLS configuration shared by this endpoint's connections
     * (one conf costs ~50 KiB: entropy pool, DRBG, CA chain) */
    cc__tls_conf *client_tls;
    int client_tls_verify;
    char *client_tls_ca;
};

/* conn.c */
cc__conn *cc__conn_new(cc_ctx *ctx);
/* With a socket of `family` created at once (AF_UNSPEC: lazily). */
cc__conn *cc__conn_new_ex(cc_ctx *ctx, int family);
int cc__conn_start_read(cc__conn *c);
void cc__conn_stop_read(cc__conn *c);
/* Queue bytes (copied) for writing; encrypted first on TLS connections. */
int cc__conn_write(cc__conn *c, const void *p, size_t n);
/* Queue bytes without encryption (TLS engine output, or plain). */
int cc__conn_write_raw(cc__conn *c, const void *p, size_t n);
/* Queue a shared message (plain server connections only). */
int cc__conn_write_shared(cc__conn *c, cc_ws_msg *m);
/* Reserve n contiguous bytes at the tail of the out queue (plain only);
 * returns the pointer to fill, or NULL on ENOMEM. */
uint8_t *cc__conn_reserve(cc__conn *c, size_t n);
void cc__conn_mark_dirty(cc__conn *c);
/* Close after everything queued is written. */
void cc__conn_close_after_flush(cc__conn *c, int status);
/* Close now (drop queued output). */
void cc__conn_destroy(cc__conn *c, int status);
/* Feed received plaintext: handles leftover buffering, dispatches by phase. */
void cc__conn_input(cc__conn *c, const uint8_t *p, size_t n);
/* Keep the unconsumed tail (copy) so it is joined with the next read. */
int cc__conn_keep(cc__conn *c, const uint8_t *p, size_t n);
void cc__conn_sweep_arm(cc_ctx *ctx);
int cc__conn_tls_attach(cc__conn *c, cc__tls_conf *conf, const char *host);
void cc__ctx_free_pools(cc_ctx *ctx);
/* Resume input processing after an asynchronous decision (a response, an
 * accepted upgrade): restart reading and run what was kept. */
void cc__conn_resume(cc__conn *c);
void cc__flush_dirty(uv_check_t *h);
int cc__conn_peer(const cc__conn *c, char *out, size_t cap);

/* server.c: the HTTP phase */
size_t cc__http_input(cc__conn *c, uint8_t *p, size_t n);
void cc__http_conn_gone(cc__conn *c);
void cc__server_conn_closed(cc__conn *c);
void cc__http_timeout(cc__conn *c);

/* ws.c */
size_t cc__ws_input(cc__conn *c, uint8_t *p, size_t n);
int cc__ws_open(cc__conn *c, cc_ws_endpoint *ep);
void cc__ws_conn_gone(cc__conn *c);
void cc__ws_timeout(cc__conn *c, uint64_t now);
int cc__ws_send_frame(cc__conn *c, int opcode, const void *p, size_t len);
int cc__ws_close_code(cc__conn *c, int code, const char *reason, size_t len,
                      int status);

/* client.c */
size_t cc__client_input(cc__conn *c, uint8_t *p, size_t n);
void cc__client_conn_gone(cc__conn *c);
void cc__client_timeout(cc__conn *c);

#endif
