/*
 * chatcore/server.h - an HTTP/1.1 server with WebSocket endpoints, on one
 * libuv loop.
 *
 * Lifecycle: cc_server_new() -> cc_server_route()/cc_server_static()/
 * cc_server_ws() -> cc_server_listen() or cc_server_accept() ->
 * cc_server_drain() and/or cc_server_close(). A server belongs to its ctx's
 * loop thread. For several cores run one loop per thread, each with its own
 * ctx and server listening on the same port with CC_OPT_REUSEPORT.
 *
 * HTTP handlers answer with exactly one cc_http_respond*() call, either in
 * the handler or later on the loop thread (async work). The request object
 * stays valid until then; if the client went away meanwhile the respond
 * call returns CC_EPIPE and still releases the request. One request per
 * connection is handled at a time (pipelined requests wait).
 *
 * Errors the server produces itself are JSON: {"error":"…","message":"…"}
 * (400 malformed, 404 no route, 405 method, 413 body, 426 WS version, 431
 * headers, 408 head not received within the header timeout).
 */
#ifndef CHATCORE_SERVER_H
#define CHATCORE_SERVER_H

#include "common.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_server cc_server;
typedef struct cc_http_req cc_http_req;
typedef struct cc_ws_endpoint cc_ws_endpoint; /* see ws.h */

typedef void (*cc_http_cb)(cc_server *srv, cc_http_req *req, void *data);

/* Reads CC_OPT_HTTP_*, CC_OPT_TLS_*, CC_OPT_LISTEN_BACKLOG,
 * CC_OPT_REUSEPORT from cfg (NULL = defaults). The certificate and key
 * files are read here, synchronously: create servers at startup. Returns
 * 0, CC_ENOMEM, CC_ETLS (unreadable certificate or key). Since 0.1. */
CC_API int cc_server_new(cc_server **out, cc_ctx *ctx, const cc_config *cfg);

/* Route `method` ("GET", or "*" for any) and `path` to cb. A path ending
 * in "/\x2a" (slash star) matches that prefix; otherwise the match is
 * exact (the query string is not part of the path). First registered match
 * wins. A path that matches with another method gets 405. GET routes also
 * answer HEAD. Returns 0, CC_EINVAL, CC_ENOMEM. Since 0.1. */
CC_API int cc_server_route(cc_server *srv, const char *method,
                           const char *path, cc_http_cb cb, void *data);

/* Serve files under directory `dir` at URL prefix `prefix` (e.g. "/" or
 * "/static/"), GET and HEAD (after routes: only paths no route matches),
 * with content types by extension, ETag and Last-Modified (304 on a
 * match), Cache-Control, index.html for directories, and no escape from
 * `dir` (".." and symlinks out are 404).
 * Files are read off the loop thread; `dir` itself is resolved here,
 * synchronously (at setup). Since 0.1. */
CC_API int cc_server_static(cc_server *srv, const char *prefix,
                            const char *dir, int max_age_s);

/* Mount a WebSocket endpoint (ws.h) at an exact path. Since 0.1. */
CC_API int cc_server_ws(cc_server *srv, const char *path,
                        cc_ws_endpoint *ep);

/* Bind and listen on host:port (port 0 = any; see cc_server_port).
 * With CC_OPT_REUSEPORT several servers on several loops may listen on
 * the same port. Returns 0 or a libuv error. Since 0.1. */
CC_API int cc_server_listen(cc_server *srv, const char *host, int port);
CC_API int cc_server_port(const cc_server *srv);

/* For hosts that own the listening socket: call from the listener's
 * connection callback; the server uv_accept()s the pending connection
 * into a handle of its own. Returns 0, CC_ESTATE (draining/closing),
 * CC_ENOMEM or a libuv error. Since 0.1. */
CC_API int cc_server_accept(cc_server *srv, uv_stream_t *listener);

/* Graceful drain: stop accepting; every WebSocket connection gets
 * `text` (a text frame, if not NULL) then a close with 1012; HTTP
 * connections close after their current response. `cb` runs once when
 * every connection is gone, or at `timeout_ms`, when the rest are cut.
 * Returns 0 or CC_ESTATE (already draining/closing). Since 0.1. */
CC_API int cc_server_drain(cc_server *srv, uint64_t timeout_ms,
                           const char *text, cc_close_cb cb, void *data);

/* Close listeners and every connection now (WS conns get close 1001),
 * then run cb and free the server. A drain still in progress completes
 * first (its callback runs before cb). Since 0.1. */
CC_API void cc_server_close(cc_server *srv, cc_close_cb cb, void *data);

CC_API size_t cc_server_conn_count(const cc_server *srv);
CC_API void cc_server_set_data(cc_server *srv, void *data);
CC_API void *cc_server_get_data(cc_server *srv);
CC_API cc_ctx *cc_server_ctx(cc_server *srv);

/* ---- requests (borrowed; valid until responded) ---- */

CC_API const char *cc_http_req_method(const cc_http_req *req);
/* Decoded path without the query, NUL-terminated. */
CC_API const char *cc_http_req_path(const cc_http_req *req);
/* Raw query string after '?', "" when none. */
CC_API const char *cc_http_req_query(const cc_http_req *req);
/* Percent-decoded value of query parameter `name` into out (NUL-terminated).
 * Returns its length, CC_ENOENT, CC_E2BIG when cap is too small, or
 * CC_EINVAL for a malformed escape. */
CC_API int cc_http_req_query_param(const cc_http_req *req, const char *name,
                                   char *out, size_t cap);
/* Header value by case-insensitive name, NUL-terminated; NULL if absent.
 * Repeated headers are joined with ", ". */
CC_API const char *cc_http_req_header(const cc_http_req *req,
                                      const char *name);
CC_API const uint8_t *cc_http_req_body(const cc_http_req *req, size_t *len);
/* Peer IP address as text ("127.0.0.1", "::1"). Returns its length or a
 * negative code. */
CC_API int cc_http_req_peer(const cc_http_req *req, char *out, size_t cap);
CC_API void cc_http_req_set_data(cc_http_req *req, void *data);
CC_API void *cc_http_req_get_data(const cc_http_req *req);
CC_API cc_server *cc_http_req_server(const cc_http_req *req);

/* Header lines (each ending in "\r\n") added to whatever response this
 * request gets, e.g. "Access-Control-Allow-Origin: *\r\n" set once at the
 * top of a handler whose error paths answer with cc_http_respond_error().
 * The string is not copied: it must stay valid until the response (a
 * string literal). NULL removes them. Returns 0 or CC_EINVAL. Since 0.2. */
CC_API int cc_http_req_extra_headers(cc_http_req *req, const char *lines);

/* Answer and release the request. `headers` is extra header lines, each
 * ending in "\r\n" (or NULL). Content-Length, Date and Connection are
 * added. Returns 0, CC_EPIPE (client gone; request released anyway),
 * CC_EINVAL (status outside 100..999 or NULL body with len: a 500 is sent
 * and the request released). Since 0.1. */
CC_API int cc_http_respond(cc_http_req *req, int status,
                           const char *content_type, const char *headers,
                           const void *body, size_t len);
/* application/json; `json` is NUL-terminated. */
CC_API int cc_http_respond_json(cc_http_req *req, int status,
                                const char *json);
/* {"error":code,"message":message}, JSON-escaped. */
CC_API int cc_http_respond_error(cc_http_req *req, int status,
                                 const char *code, const char *message);

#ifdef __cplusplus
}
#endif
#endif
