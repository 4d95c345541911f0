/*
 * chatcore/ws.h - WebSocket connections (RFC 6455), server and client side,
 * sharing one framing engine.
 *
 * An endpoint (cc_ws_endpoint) is a table of callbacks plus message limits.
 * Mount it on a server (cc_server_ws) to accept connections, or pass it to
 * cc_ws_connect() to open client connections. Connections belong to the
 * endpoint's ctx thread.
 *
 * Events for one connection: on_open once (status 0 on success; a client
 * whose connect or handshake failed gets status < 0 and nothing else),
 * then any number of on_message, then on_close exactly once; the
 * connection is freed when on_close returns. Calling cc_ws_close() or a
 * send from inside any callback is allowed.
 *
 * Outbound data is queued per connection and written once per loop turn
 * (many frames, one writev). When CC_OPT_OUT_HIGH_WATER queued bytes are
 * reached, on_high_water runs once (until the queue drains below half,
 * when it may run again); a send that would pass CC_OPT_OUT_MAX closes the
 * connection with 1008 and returns CC_ENOBUFS.
 *
 * Idle connections hold no read buffer: reads go to one buffer per loop.
 */
#ifndef CHATCORE_WS_H
#define CHATCORE_WS_H

#include "common.h"
#include "config.h"
#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_ws_conn cc_ws_conn;
typedef struct cc_ws_msg cc_ws_msg;

enum {
    CC_WS_TEXT = 1,
    CC_WS_BINARY = 2,
    CC_WS_CLOSE = 8,
    CC_WS_PING = 9,
    CC_WS_PONG = 10
};

/* Close codes used by the library (RFC 6455 §7.4). */
enum {
    CC_WS_CLOSE_NORMAL = 1000,
    CC_WS_CLOSE_GOING_AWAY = 1001,
    CC_WS_CLOSE_PROTOCOL = 1002,
    CC_WS_CLOSE_UNSUPPORTED = 1003,
    CC_WS_CLOSE_NO_STATUS = 1005,   /* never sent: "peer gave no code" */
    CC_WS_CLOSE_ABNORMAL = 1006,    /* never sent: "no close frame" */
    CC_WS_CLOSE_INVALID_DATA = 1007,
    CC_WS_CLOSE_POLICY = 1008,
    CC_WS_CLOSE_TOO_BIG = 1009,
    CC_WS_CLOSE_INTERNAL = 1011,
    CC_WS_CLOSE_RESTART = 1012
};

/* Server side, before the upgrade: decide with cc_ws_accept() or refuse
 * with any cc_http_respond*() (e.g. 401), now or later. Without this
 * callback every valid handshake is accepted. */
typedef void (*cc_ws_upgrade_cb)(cc_ws_endpoint *ep, cc_http_req *req,
                                 void *data);
/* Origin check, before on_upgrade: return nonzero to allow. `origin` is
 * NULL when the header is absent. Refusal answers 403. */
typedef int (*cc_ws_origin_cb)(cc_ws_endpoint *ep, const char *origin,
                               void *data);
typedef void (*cc_ws_open_cb)(cc_ws_conn *c, int status, void *data);
/* A whole message (fragments joined, text validated as UTF-8). `msg` is
 * borrowed until return; it is NUL-terminated for convenience. */
typedef void (*cc_ws_message_cb)(cc_ws_conn *c, int opcode,
                                 const uint8_t *msg, size_t len, void *data);
/* The connection is gone. status: 0 after a close handshake, else why
 * (CC_EOF, CC_ECONNRESET, CC_ETIMEDOUT, CC_EFRAME, CC_ENOBUFS, ...).
 * code: the close code received from the peer, or the one we sent, or
 * 1006. reason borrowed. */
typedef void (*cc_ws_close_cb)(cc_ws_conn *c, int status, int code,
                               const char *reason, size_t reason_len,
                               void *data);
typedef void (*cc_ws_high_water_cb)(cc_ws_conn *c, int status,
                                    size_t queued, void *data);

/* cfg: CC_OPT_WS_*, CC_OPT_OUT_*, CC_OPT_CLOSE_TIMEOUT_MS (NULL =
 * defaults). Returns 0, CC_ENOMEM. Since 0.1. */
CC_API int cc_ws_endpoint_new(cc_ws_endpoint **out, cc_ctx *ctx,
                              const cc_config *cfg);
/* Frees the endpoint. Every connection using it must be gone and it must
 * not be mounted on a live server. Since 0.1. */
CC_API void cc_ws_endpoint_free(cc_ws_endpoint *ep);
CC_API void cc_ws_endpoint_on_upgrade(cc_ws_endpoint *ep, cc_ws_upgrade_cb cb,
                                      void *data);
CC_API void cc_ws_endpoint_on_origin(cc_ws_endpoint *ep, cc_ws_origin_cb cb,
                                     void *data);
CC_API void cc_ws_endpoint_on_open(cc_ws_endpoint *ep, cc_ws_open_cb cb,
                                   void *data);
CC_API void cc_ws_endpoint_on_message(cc_ws_endpoint *ep, cc_ws_message_cb cb,
                                      void *data);
CC_API void cc_ws_endpoint_on_close(cc_ws_endpoint *ep, cc_ws_close_cb cb,
                                    void *data);
CC_API void cc_ws_endpoint_on_high_water(cc_ws_endpoint *ep,
                                         cc_ws_high_water_cb cb, void *data);
CC_API size_t cc_ws_endpoint_conn_count(const cc_ws_endpoint *ep);
CC_API cc_ctx *cc_ws_endpoint_ctx(cc_ws_endpoint *ep);

/* Accept a pending upgrade (inside or after on_upgrade). conn_data becomes
 * the connection's data. The subprotocol is the first of the client's
 * offers that the endpoint lists. Returns 0 (on_open follows), CC_EPIPE
 * (client gone), CC_EINVAL (not an upgrade request). Since 0.1. */
CC_API int cc_ws_accept(cc_http_req *req, void *conn_data);

/* Client: open ws:// or wss:// `url`. cfg (may be NULL): CC_OPT_TLS_VERIFY,
 * CC_OPT_TLS_CA_FILE, CC_OPT_CLIENT_BIND_ADDR, CC_OPT_WS_SUBPROTOCOLS
 * (offered). headers: extra request header lines each ending "\r\n" (or
 * NULL). *out is valid at once (for set_data/close); on_open reports the
 * outcome; connecting and the handshake must finish within 10 s
 * (CC_ETIMEDOUT). The endpoint's first wss:// connection reads and parses
 * the CA bundle on the loop thread (once per endpoint, a few ms): open it
 * at startup if that stall matters. Returns 0, CC_EINVAL (bad URL,
 * headers not ending in "\r\n", bind address too long), CC_ENOMEM.
 * Since 0.1. */
CC_API int cc_ws_connect(cc_ws_conn **out, cc_ws_endpoint *ep,
                         const char *url, const cc_config *cfg,
                         const char *headers, void *conn_data);

/* Queue one message. opcode CC_WS_TEXT (caller guarantees UTF-8) or
 * CC_WS_BINARY. Returns 0; CC_EINVAL (bad opcode, NULL data with len);
 * CC_ESTATE (not open yet); CC_EPIPE (closing or closed); CC_ENOBUFS
 * when this message would take the queue past CC_OPT_OUT_MAX: the
 * connection is then closed with 1008 and later sends get CC_EPIPE.
 * Since 0.1. */
CC_API int cc_ws_send(cc_ws_conn *c, int opcode, const void *p, size_t len);
CC_API int cc_ws_send_text(cc_ws_conn *c, const char *s, size_t len);
CC_API int cc_ws_ping(cc_ws_conn *c, const void *p, size_t len);

/* Start the close handshake with `code` (1000..4999, valid per RFC) and a
 * reason (≤ 123 bytes). on_close follows. Idempotent. On a client
 * connection that is not open yet it abandons the attempt instead:
 * on_open then reports CC_ECANCELED. Returns 0 or CC_EINVAL.
 * Since 0.1. */
CC_API int cc_ws_close(cc_ws_conn *c, int code, const char *reason,
                       size_t len);

CC_API void cc_ws_conn_set_data(cc_ws_conn *c, void *data);
CC_API void *cc_ws_conn_get_data(const cc_ws_conn *c);
CC_API cc_ws_endpoint *cc_ws_conn_endpoint(const cc_ws_conn *c);
/* Selected subprotocol, "" when none. */
CC_API const char *cc_ws_conn_subprotocol(const cc_ws_conn *c);
CC_API size_t cc_ws_conn_queued(const cc_ws_conn *c);
/* Override the endpoint's idle timeout (CC_OPT_WS_IDLE_TIMEOUT_MS) for
 * this connection: closed with 1001 after `ms` without a frame from the
 * peer; 0 restores the endpoint's. Returns 0 or CC_EINVAL (ms over
 * 2^32 - 1). Since 0.2. */
CC_API int cc_ws_conn_set_idle_timeout(cc_ws_conn *c, uint64_t ms);
CC_API int cc_ws_conn_peer(const cc_ws_conn *c, char *out, size_t cap);

/* ---- shared messages: encode once, send to many ----
 * A cc_ws_msg is an encoded server frame with an atomic reference count.
 * It may be sent on connections of any loop (hand it over with
 * cc_ctx_post); new/release may run on any thread if the ctx's allocator
 * is thread-safe. Client connections (which must mask) copy it. */
CC_API int cc_ws_msg_new(cc_ws_msg **out, cc_ctx *ctx, int opcode,
                         const void *p, size_t len);
CC_API void cc_ws_msg_retain(cc_ws_msg *m);
CC_API void cc_ws_msg_release(cc_ws_msg *m);
CC_API int cc_ws_send_msg(cc_ws_conn *c, cc_ws_msg *m);
/* Send m to every open connection of the endpoint on this loop except
 * `skip` (may be NULL). Returns the number it was queued on. */
CC_API size_t cc_ws_endpoint_broadcast(cc_ws_endpoint *ep, cc_ws_msg *m,
                                       const cc_ws_conn *skip);

#ifdef __cplusplus
}
#endif
#endif
