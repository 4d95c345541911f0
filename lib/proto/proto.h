/*
 * lib/proto/proto.h - the chat wire protocol codec (PROTOCOL.md §3-§6):
 * decode and validate client frames, encode server frames. Pure: no I/O,
 * no clock. Decoding uses cJSON for the tree, behind a strict RFC 8259
 * pre-pass of our own (cJSON 1.7 accepts more than JSON; see decode.c).
 * Encoding writes JSON text directly into a growable buffer (cc__jbuf)
 * through the ctx allocator, with correct escaping, so the hot frames
 * (msg, sent) cost no cJSON tree.
 *
 * Every rule the contract leaves open is written down in docs/protocol.md,
 * "Decisions where the contract is silent"; keep the two in step.
 */
#ifndef CC_PROTO_H
#define CC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "../core/internal.h"

/* Limits. "characters" are Unicode code points of the decoded string. */
#define CC__ID_MAX 64          /* ids: 1..64 chars of [A-Za-z0-9_.:-] */
#define CC__REF_MAX 64         /* ref: any string of <= 64 chars */
#define CC__CID_MAX 64         /* cid: 1..64 chars, none of them C0/DEL */
#define CC__REASON_MAX 200     /* close reason, chars */
#define CC__BODY_MAX 16384     /* send body, bytes of compact JSON */
#define CC__TOKEN_MAX 4096     /* refresh token, chars */
#define CC__JSON_DEPTH_MAX 64  /* nesting of a client frame (root = 1) */
/* Largest seq/after/limit value accepted: 2^53 - 1, the largest integer a
 * JavaScript client holds exactly (Number.MAX_SAFE_INTEGER). */
#define CC__NUM_MAX UINT64_C(9007199254740991)
#define CC__SYNC_LIMIT_DEFAULT 50
#define CC__SYNC_LIMIT_MAX 200

typedef enum cc__ftype {
    CC__F_PING = 1, CC__F_REFRESH, CC__F_SEND, CC__F_ACK, CC__F_READ,
    CC__F_TYPING, CC__F_SYNC, CC__F_ACCEPT, CC__F_TRANSFER, CC__F_CLOSE,
    CC__F_STATUS
} cc__ftype;

typedef enum cc__kind {
    CC__K_TEXT = 1, CC__K_IMAGE, CC__K_FILE, CC__K_EVENT
} cc__kind;

/* Error codes of §6 (the `code` strings are cc__proto_err_code()). */
typedef enum cc__perr {
    CC__E_NONE = 0, CC__E_BAD_REQUEST, CC__E_UNAUTHORIZED, CC__E_FORBIDDEN,
    CC__E_NOT_FOUND, CC__E_NOT_IN_SESSION, CC__E_ALREADY_TAKEN,
    CC__E_INVALID_STATE, CC__E_RATE_LIMITED, CC__E_TOO_LARGE, CC__E_INTERNAL
} cc__perr;

/* "bad_request", "unauthorized", ...; "internal" for anything out of
 * range (CC__E_NONE included), never NULL. */
const char *cc__proto_err_code(cc__perr e);
/* "text", "image", "file", "event"; "text" for anything out of range. */
const char *cc__kind_name(cc__kind k);
/* The frame type's wire name ("ping", ...), or NULL when out of range. */
const char *cc__ftype_name(cc__ftype t);

/* A decoded client frame. Strings are NUL-terminated UTF-8 copies inside
 * the struct, except body_json and token, which are allocated with the
 * allocator passed to decode and freed by cc__cframe_clear. */
typedef struct cc__cframe {
    cc__ftype type;    /* 0 when the type could not be determined */
    /* What an `error` caused by this frame must carry in its `ref`
     * (§3, §4): the frame's `ref` when it had a valid one; otherwise, for
     * a `send`, its `cid` when that is valid; otherwise nothing
     * (has_ref = 0, ref ""). Set on success and on decode errors alike,
     * so a later error about the frame (not_found, ...) echoes the same. */
    char ref[CC__REF_MAX * 4 + 1];
    int has_ref;
    int ref_is_cid;    /* has_ref and the echo is the send's cid */
    char session[CC__ID_MAX + 1];
    char cid[CC__CID_MAX * 4 + 1];
    cc__kind kind;
    char *body_json;   /* send: the body object, compacted (see decode.c) */
    size_t body_len;   /* strlen(body_json), <= CC__BODY_MAX */
    uint64_t seq;      /* ack, read */
    uint64_t after;    /* sync: default 0 */
    int limit;         /* sync: default 50, 1..200 (> 200 clamped) */
    int on;            /* typing: 0/1 */
    char to[CC__ID_MAX + 1];  /* transfer: agent id, or "" with to_null=1 */
    int to_null;
    char reason[CC__REASON_MAX * 4 + 1]; /* close: "" when absent */
    int status_away;   /* status: 0 online, 1 away */
    char *token;       /* refresh (may be ""; the auth layer judges it) */
    const cc_allocator *a;
} cc__cframe;

/* Decode one client text message json[0..len) (need not be NUL-
 * terminated). `a` NULL means libc. Returns CC__E_NONE and fills *f, or:
 *   CC__E_BAD_REQUEST  not UTF-8, not JSON, not an object, nesting over
 *                      CC__JSON_DEPTH_MAX, unknown or missing type, a
 *                      missing, wrongly typed, duplicated or malformed
 *                      field;
 *   CC__E_TOO_LARGE    body over CC__BODY_MAX, a string field over its
 *                      limit (ref, cid, session, to, reason, token);
 *   CC__E_INTERNAL     an allocation failed (ours or cJSON's).
 * On every return *msg (if msg is not NULL) is set: a static English
 * message naming the field, for the error frame's `message`; "" on
 * success. On error nothing stays allocated, f->type/ref/has_ref are set
 * as far as they could be determined, and cc__cframe_clear(f) is
 * harmless. On success the caller must cc__cframe_clear(f).
 * The exact rules, including precedence, are in docs/protocol.md. */
cc__perr cc__proto_decode(const char *json, size_t len, const cc_allocator *a,
                          cc__cframe *f, const char **msg);
/* Frees what decode allocated and zeroes *f. Idempotent. */
void cc__cframe_clear(cc__cframe *f);
/* The id rule: 1..64 bytes, each of [A-Za-z0-9_.:-]. 1 if s[0..n) is a
 * valid id, else 0. */
int cc__proto_valid_id(const char *s, size_t n);

/* UTF-8 at p[0..n), n >= 1, strict (no overlong forms, no surrogates,
 * nothing above U+10FFFF): returns the length (1..4) of the valid
 * sequence starting at p, or 0 when there is none, with *bad set to the
 * length of the maximal invalid subpart there (>= 1; Unicode §3.9: the
 * bytes one U+FFFD replaces). */
size_t cc__proto_utf8_seq(const unsigned char *p, size_t n, size_t *bad);

/* ---- encoding ----
 * A growable byte buffer. Appends never fail visibly: the first failed
 * allocation sets `oom` (sticky until reset) and later appends do
 * nothing, so a frame is built with plain calls and checked once. While
 * p != NULL, p[len] == '\0'. */
typedef struct cc__jbuf {
    const cc_allocator *a;
    char *p;
    size_t len, cap;   /* cap = bytes allocated at p */
    int oom;
} cc__jbuf;
void cc__jbuf_init(cc__jbuf *b, const cc_allocator *a); /* a NULL = libc */
void cc__jbuf_free(cc__jbuf *b);   /* frees p; b may be reused after init */
void cc__jbuf_reset(cc__jbuf *b);  /* len = 0, oom = 0; keeps the memory */
void cc__jbuf_raw(cc__jbuf *b, const char *s, size_t n);   /* verbatim */
/* A JSON string: quoted; `"` and `\` backslash-escaped; U+0000..U+001F
 * as \u00XX; valid UTF-8 (DEL, U+2028 ... included) copied as is; each
 * maximal invalid UTF-8 subpart replaced by U+FFFD, so the output is
 * always valid UTF-8 JSON. s NULL writes null. */
void cc__jbuf_str(cc__jbuf *b, const char *s);
void cc__jbuf_strn(cc__jbuf *b, const char *s, size_t n);  /* may hold NUL */
void cc__jbuf_u64(cc__jbuf *b, uint64_t v);
void cc__jbuf_i64(cc__jbuf *b, int64_t v);
void cc__jbuf_bool(cc__jbuf *b, int v);

/* A stored message as the server sends it. */
typedef struct cc__msgv {
    const char *session;
    uint64_t seq;
    const char *from;      /* "visitor:ID", "agent:ID" or "system" */
    cc__kind kind;
    const char *body_json; /* an object, already JSON; NULL writes {} */
    uint64_t ts;           /* unix ms */
    const char *cid;       /* NULL (a system message) writes null */
} cc__msgv;

/* One waiting session, for `queue` and the agent's `hello`. */
typedef struct cc__queue_item {
    const char *session, *visitor; /* visitor: bare id */
    uint64_t since;                /* unix ms */
    const char *preview;           /* NULL writes "" */
} cc__queue_item;

/* One session of an agent, for the agent's `hello`. */
typedef struct cc__sess_item {
    const char *session, *visitor, *state;
    uint64_t last_seq;
} cc__sess_item;

/* The first frame of a connection (§3). role_agent selects the shape:
 * visitor: session, state, resumed; agent: status, queue, sessions. */
typedef struct cc__hello {
    const char *tenant, *user, *node;
    int role_agent;
    int heartbeat_s;
    /* visitor */
    const char *session, *state;
    int resumed;
    /* agent */
    const char *status;            /* "online" | "away" */
    const cc__queue_item *queue;
    size_t nqueue;
    const cc__sess_item *sessions;
    size_t nsessions;
} cc__hello;

/* Each appends one complete frame object to b; field names and order as
 * in PROTOCOL.md §3/§4. A NULL string argument writes null unless the
 * comment says otherwise. */
void cc__enc_hello(cc__jbuf *b, const cc__hello *h);
void cc__enc_pong(cc__jbuf *b);
void cc__enc_refreshed(cc__jbuf *b, uint64_t expires);   /* unix s */
void cc__enc_sent(cc__jbuf *b, const char *cid, const char *session,
                  uint64_t seq, uint64_t ts);
/* with_type=0 inside arrays (history, HTTP messages): no "type" member */
void cc__enc_msg_obj(cc__jbuf *b, const cc__msgv *m, int with_type);
void cc__enc_msg(cc__jbuf *b, const cc__msgv *m);
void cc__enc_history(cc__jbuf *b, const char *session, const cc__msgv *ms,
                     size_t n, int more);
/* ref NULL: no "ref" member; retry_after_ms < 0: no "retry_after_ms".
 * message NULL writes "". */
void cc__enc_error(cc__jbuf *b, cc__perr code, const char *message,
                   const char *ref, int64_t retry_after_ms);
void cc__enc_queued(cc__jbuf *b, const char *session, int position);
void cc__enc_queue(cc__jbuf *b, const cc__queue_item *it, size_t n);
void cc__enc_session_started(cc__jbuf *b, const char *session,
                             const char *state);
void cc__enc_session_accepted(cc__jbuf *b, const char *session,
                              const char *agent);
void cc__enc_accepted(cc__jbuf *b, const char *session, const char *visitor,
                      const cc__msgv *hist, size_t n, uint64_t last_seq);
/* to NULL = back to the queue (null); hist/last_seq only for the new
 * agent (hist NULL = omit both; n may be 0 with hist non-NULL). */
void cc__enc_transferred(cc__jbuf *b, const char *session, const char *from,
                         const char *to, const cc__msgv *hist, size_t n,
                         uint64_t last_seq);
/* reason NULL writes "" */
void cc__enc_session_closed(cc__jbuf *b, const char *session,
                            const char *reason, const char *by);
/* peer_online when online, else peer_offline */
void cc__enc_peer(cc__jbuf *b, int online, const char *session,
                  const char *who);
void cc__enc_read(cc__jbuf *b, const char *session, const char *who,
                  uint64_t seq);
void cc__enc_typing(cc__jbuf *b, const char *session, const char *who,
                    int on);
void cc__enc_reconnect(cc__jbuf *b, uint64_t after_ms);

#endif
