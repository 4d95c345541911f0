/*
 * lib/http/http_int.h - HTTP/1.1 message parsing on llhttp, the request
 * object, the router, static files and the WebSocket handshake checks.
 *
 * The parser wrapper is pure (no I/O, no clock): bytes in, a parsed
 * message out. It enforces the head limit (request line + headers, -> 431)
 * and the body limit (-> 413). llhttp itself does not allocate; the
 * wrapper copies the pieces into one growable buffer per message,
 * allocated through the ctx's allocator and freed with the message.
 */
#ifndef CC_HTTP_INT_H
#define CC_HTTP_INT_H

#include <llhttp.h>
#include <sys/types.h>

#include "../core/internal.h"

typedef struct cc__http_header {
    char *name;  /* lower-cased, NUL-terminated */
    char *value; /* NUL-terminated, repeated headers joined with ", " */
} cc__http_header;

/* One parsed message (a request on the server, a response on the client). */
typedef struct cc__http_msg {
    const cc_allocator *a;
    int method;            /* llhttp_method_t (requests) */
    const char *method_str; /* "GET", ... (static string) */
    int status;            /* responses */
    int http_major, http_minor;
    char *target;          /* raw request target, NUL-terminated */
    char *path;            /* percent-decoded path part, NUL-terminated */
    char *query;           /* raw query after '?', "" if none */
    cc__http_header *headers;
    size_t nheaders, cap_headers;
    uint8_t *body;         /* NUL-terminated for convenience; may be NULL if empty */
    size_t body_len, body_cap;
    int keep_alive;        /* per llhttp_should_keep_alive */
    int upgrade;           /* Connection: upgrade + Upgrade header present */
    /* internal building state */
    char *scratch;         /* current header name/value under construction */
    size_t scratch_len, scratch_cap;
    size_t name_len;       /* length of the name part in scratch while reading a value */
    int in_value;
} cc__http_msg;

/* Free everything the message holds (not the struct itself). Idempotent. */
void cc__http_msg_clear(cc__http_msg *m);
/* Header lookup, case-insensitive; NULL if absent. */
const char *cc__http_msg_header(const cc__http_msg *m, const char *name);

typedef struct cc__http_parser {
    llhttp_t p;
    llhttp_settings_t s;
    const cc_allocator *a;
    size_t max_head, max_body;
    size_t head_bytes;   /* bytes of the current head seen so far */
    cc__http_msg msg;    /* the message being built / just completed */
    int ready;           /* 1 when msg is complete (on_message_complete, or
                            on_headers_complete of an upgrade request) */
    int err_status;      /* HTTP status to answer on error: 400/413/431 */
    const char *err_msg; /* static text */
} cc__http_parser;

/* type: HTTP_REQUEST or HTTP_RESPONSE. Limits in bytes. */
void cc__http_parser_init(cc__http_parser *hp, const cc_allocator *a, int type,
                          size_t max_head, size_t max_body);
/* Release the current message and parser memory. */
void cc__http_parser_free(cc__http_parser *hp);

/*
 * Feed bytes. Returns the number of bytes consumed (0..n) or a negative
 * code (CC_EHTTP, with hp->err_status/err_msg set; CC_ENOMEM).
 * When a message completes, parsing stops right after it, hp->ready is 1
 * and the return value counts only the bytes up to its end; the caller
 * handles hp->msg, then calls cc__http_parser_next() and feeds the rest.
 * For a request with Upgrade (and for a 101 response), ready is set after
 * the head and the bytes after it are not consumed: they belong to the
 * upgraded protocol.
 */
ssize_t cc__http_parser_feed(cc__http_parser *hp, const uint8_t *p, size_t n);
/* Clear the finished message and get ready for the next one on the same
 * connection (keep-alive). */
void cc__http_parser_next(cc__http_parser *hp);
/* Signal EOF (for responses delimited by close). Returns 0 or CC_EHTTP. */
int cc__http_parser_finish(cc__http_parser *hp);

/* Reason phrase for a status code ("OK", "Not Found", ...; "Unknown"). */
const char *cc__http_status_text(int status);

/* Percent-decode src[0..n) into out (cap bytes incl. NUL); '+' stays '+'
 * in paths, becomes ' ' when plus_space. Returns length, or -1 on a bad
 * escape, an encoded NUL, or overflow. */
ssize_t cc__http_pct_decode(const char *src, size_t n, char *out, size_t cap,
                            int plus_space);
/* Query parameter lookup (raw query string) -> decoded into out. Returns
 * length, CC_ENOENT, CC_E2BIG. */
int cc__http_query_get(const char *query, const char *name, char *out,
                       size_t cap);
/* JSON-escape s into out (cap incl NUL); returns length or -1 if too small. */
ssize_t cc__json_escape(const char *s, char *out, size_t cap);

/* ---- the request object the public API hands out ---- */
struct cc__conn; /* the server-side connection (lib/http/server.c) */
struct cc_http_req {
    cc__http_msg msg;          /* moved out of the parser */
    struct cc_server *srv;
    struct cc__conn *conn;     /* NULL once the client has gone */
    void *data;
    struct cc_ws_endpoint *ws; /* set when this is an upgrade to a mounted endpoint */
    int head_only;             /* HEAD request: no body in the response */
    const char *extra;         /* cc_http_req_extra_headers(), or NULL */
};

/* ---- router ---- */
typedef struct cc__route {
    char *method;   /* "GET" ... or "*" */
    char *path;     /* exact, or prefix when is_prefix (stored without "*") */
    size_t path_len;
    int is_prefix;
    cc_http_cb cb;
    void *data;
} cc__route;

typedef struct cc__router {
    const cc_allocator *a;
    cc__route *routes;
    size_t n, cap;
} cc__router;

void cc__router_init(cc__router *r, const cc_allocator *a);
void cc__router_free(cc__router *r);
int cc__router_add(cc__router *r, const char *method, const char *path,
                   cc_http_cb cb, void *data);
/* Returns the matching route, or NULL with *status = 404 (no path match)
 * or 405 (path matches with another method). */
const cc__route *cc__router_match(const cc__router *r, const char *method,
                                  const char *path, int *status);

/* ---- static files (lib/http/static.c) ---- */
typedef struct cc__static_mount {
    char *prefix;   /* URL prefix, ends with '/' */
    char *dir;      /* realpath of the directory */
    int max_age_s;
    int cors;       /* CC_OPT_HTTP_STATIC_CORS of the server */
} cc__static_mount;
/* Pure helpers of static.c (unit-tested in tests/test_mime.c):
 * map URL path under prefix to a relative file path (".." segments,
 * hidden names and NUL refused: returns -1), match If-None-Match against
 * an ETag, format an IMF-fixdate (locale independent; 29 chars + NUL). */
ssize_t cc__static_relpath(const char *prefix, const char *path, char *out,
                           size_t cap);
int cc__static_etag_match(const char *if_none_match, const char *etag);
size_t cc__http_imf_date(int64_t t, char out[30]);
/* Content type for a file name by extension ("application/octet-stream"). */
const char *cc__mime_type(const char *filename);
/* Serve req (GET/HEAD whose path starts with m->prefix) asynchronously:
 * resolves the file under m->dir (no escape), reads it with uv_fs_* calls
 * on the loop's thread pool, answers with cc_http_respond (200 with ETag,
 * Last-Modified, Cache-Control: public, max-age=N; 304 on If-None-Match;
 * 404 as JSON error). */
void cc__static_serve(cc_ctx *ctx, cc_http_req *req, const cc__static_mount *m);

/* ---- WebSocket handshake (lib/http/handshake.c) ---- */
/* Sec-WebSocket-Accept for a key: base64(sha1(key + GUID)), out >= 29 bytes
 * (28 chars + NUL). Returns 0 or CC_EINVAL. */
int cc__ws_accept_key(const char *key, char out[29]);
/* Validate an upgrade request. Returns 0 when valid; else the HTTP status
 * to refuse with (400 bad request, 426 wrong/missing version: the caller
 * adds "Sec-WebSocket-Version: 13") and *msg set to static text. */
int cc__ws_handshake_check(const cc__http_msg *m, const char **msg);
/* Pick the first of the client's offers (comma list, header value; NULL
 * = none) that appears in `supported` (comma list). Writes it into out
 * (NUL-terminated) or "" when none. */
void cc__ws_pick_subprotocol(const char *offered, const char *supported,
                             char *out, size_t cap);
/* A random 16-byte key, base64 (24 chars + NUL), for clients; `rnd` is 16
 * random bytes supplied by the caller (pure). */
void cc__ws_make_key(const uint8_t rnd[16], char out[25]);
/* base64 encode n bytes into out (cap incl NUL). Returns length or -1. */
ssize_t cc__base64_encode(const uint8_t *p, size_t n, char *out, size_t cap);

#endif
