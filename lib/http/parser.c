/*
 * lib/http/parser.c - the HTTP/1.1 message parser: llhttp's callbacks
 * collect method, target, headers and body into a cc__http_msg through
 * the ctx's allocator, and enforce the head and body limits. Also the
 * small pure helpers of the HTTP layer: percent-decoding, query lookup,
 * reason phrases, JSON escaping.
 *
 * How parsing stops at message boundaries: on_message_complete returns
 * HPE_PAUSED, so llhttp_execute returns with error_pos right after the
 * last byte of the message; cc__http_parser_next() resumes. For upgrades
 * (a request with Upgrade + Connection: upgrade, or a 101 response)
 * on_headers_complete returns 2, which makes llhttp skip any body and
 * return HPE_PAUSED_UPGRADE right after the head; the bytes after it are
 * left to the caller (they are WebSocket frames).
 *
 * How the head limit is exact: while the head is incomplete, feed hands
 * llhttp at most (max_head - head_bytes + 1) bytes per call, and
 * on_headers_complete pauses (HPE_PAUSED) so error_pos tells where the
 * head ended. head_bytes therefore counts precisely the head's bytes,
 * and one byte over the limit is enough to answer 431.
 *
 * msg.in_value doubles as the header-building state: HS_NAME before or
 * between header lines, HS_VALUE while a value is read, HS_DONE once the
 * head is complete. After the head, msg.name_len (unused by then) counts
 * the message's bytes that are neither head nor body data: chunk-size
 * lines, chunk extensions, CRLFs and trailers (llhttp reports trailers
 * through the header callbacks; they are dropped). Those may not exceed
 * max_head either (-> 413), so a client cannot stream them without end.
 * They are counted from byte positions (the gaps between body spans) and
 * an llhttp error is weighed against the count up to its position, so the
 * outcome never depends on how the input was split.
 *
 * Refused with 400 besides llhttp's own errors: CONNECT (no tunnels
 * here), a target that is not origin-form, absolute-form or "*", a bad or
 * NUL percent-escape in the path, an upgrade request with a body. Bytes
 * after a message with Connection: close are swallowed by llhttp (its
 * non-strict build); the caller closes after answering anyway.
 */
#include <stdio.h>

#include "http_int.h"

enum { HS_NAME = 0, HS_VALUE = 1, HS_DONE = 2 };

/* err_status for an allocation failure: feed returns CC_ENOMEM for it. */
#define OOM_STATUS 503

static int
fail(cc__http_parser *hp, int status, const char *msg)
{
    if (!hp->err_status) {
        hp->err_status = status;
        hp->err_msg = msg;
    }
    return -1;
}

static int
oom(cc__http_parser *hp)
{
    return fail(hp, OOM_STATUS, "out of memory");
}

/* What llhttp_t.data points to while llhttp runs: the parser, and for
 * an llhttp_execute after the head, the end of the last body span seen
 * (NULL in the head, and under llhttp_finish). */
typedef struct exec_ctx {
    cc__http_parser *hp;
    const char *last;
} exec_ctx;

static cc__http_parser *
parser_of(llhttp_t *p)
{
    return ((exec_ctx *)p->data)->hp;
}

/* Count n more bytes of chunk framing/trailers (see the top). */
static int
meta_add(cc__http_parser *hp, size_t n)
{
    hp->msg.name_len += n;
    if (hp->msg.name_len > hp->max_head)
        return fail(hp, 413, "chunk framing or trailers too large");
    return 0;
}

/* Append to the message's scratch buffer (grows by doubling). */
static int
scratch_append(cc__http_msg *m, const char *at, size_t len)
{
    if (len > SIZE_MAX - m->scratch_len - 1)
        return CC_ENOMEM;
    size_t need = m->scratch_len + len + 1;
    if (need > m->scratch_cap) {
        size_t cap = m->scratch_cap ? m->scratch_cap : 128;
        while (cap < need)
            cap *= 2;
        char *s = m->scratch
                      ? cc__realloc(m->a, m->scratch, m->scratch_cap, cap)
                      : cc__alloc(m->a, cap);
        if (!s)
            return CC_ENOMEM;
        m->scratch = s;
        m->scratch_cap = cap;
    }
    memcpy(m->scratch + m->scratch_len, at, len);
    m->scratch_len += len;
    m->scratch[m->scratch_len] = 0;
    return 0;
}

static void
scratch_release(cc__http_msg *m)
{
    cc__free(m->a, m->scratch, m->scratch_cap);
    m->scratch = NULL;
    m->scratch_len = m->scratch_cap = m->name_len = 0;
}

static char *
dup_n(const cc_allocator *a, const char *s, size_t n)
{
    char *d = cc__alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* ---- the message ---- */

void
cc__http_msg_clear(cc__http_msg *m)
{
    const cc_allocator *a = m->a;
    if (!a) {
        memset(m, 0, sizeof *m);
        return;
    }
    cc__free_str(a, m->target);
    cc__free_str(a, m->path);
    cc__free_str(a, m->query);
    for (size_t i = 0; i < m->nheaders; i++) {
        cc__free_str(a, m->headers[i].name);
        cc__free_str(a, m->headers[i].value);
    }
    cc__free(a, m->headers, m->cap_headers * sizeof *m->headers);
    cc__free(a, m->body, m->body_cap);
    cc__free(a, m->scratch, m->scratch_cap);
    memset(m, 0, sizeof *m);
    m->a = a;
}

const char *
cc__http_msg_header(const cc__http_msg *m, const char *name)
{
    if (!m || !name)
        return NULL;
    for (size_t i = 0; i < m->nheaders; i++)
        if (cc__strcaseeq(m->headers[i].name, name))
            return m->headers[i].value;
    return NULL;
}

/* Store the header in scratch (name = [0, name_len), value = the rest):
 * lower-case the name, trim the value's trailing whitespace (llhttp already
 * skips the leading), join a repeated header onto the earlier one. */
static int
commit_header(cc__http_msg *m)
{
    char *name = m->scratch ? m->scratch : (char *)"";
    size_t nlen = m->name_len;
    const char *val = name + nlen;
    size_t vlen = m->scratch_len - nlen;
    while (vlen && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
        vlen--;
    for (size_t i = 0; i < nlen; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] + 32);

    for (size_t i = 0; i < m->nheaders; i++) {
        cc__http_header *h = &m->headers[i];
        if (strlen(h->name) != nlen || memcmp(h->name, name, nlen) != 0)
            continue;
        size_t old = strlen(h->value);
        if (vlen == 0)
            return 0; /* joining an empty value would add only ", " */
        if (old == 0) {
            char *v = dup_n(m->a, val, vlen);
            if (!v)
                return CC_ENOMEM;
            cc__free_str(m->a, h->value);
            h->value = v;
            return 0;
        }
        char *v = cc__realloc(m->a, h->value, old + 1, old + 2 + vlen + 1);
        if (!v)
            return CC_ENOMEM;
        memcpy(v + old, ", ", 2);
        memcpy(v + old + 2, val, vlen);
        v[old + 2 + vlen] = 0;
        h->value = v;
        return 0;
    }

    if (m->nheaders == m->cap_headers) {
        size_t cap = m->cap_headers ? m->cap_headers * 2 : 8;
        cc__http_header *hs =
            m->headers ? cc__realloc(m->a, m->headers,
                                     m->cap_headers * sizeof *hs,
                                     cap * sizeof *hs)
                       : cc__alloc(m->a, cap * sizeof *hs);
        if (!hs)
            return CC_ENOMEM;
        m->headers = hs;
        m->cap_headers = cap;
    }
    char *n = dup_n(m->a, name, nlen);
    if (!n)
        return CC_ENOMEM;
    char *v = dup_n(m->a, val, vlen);
    if (!v) {
        cc__free_str(m->a, n);
        return CC_ENOMEM;
    }
    m->headers[m->nheaders].name = n;
    m->headers[m->nheaders].value = v;
    m->nheaders++;
    return 0;
}

/* ---- the request target ---- */

static int
starts_with_ci(const char *s, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && cc__strncaseeq(s, prefix, pl);
}

/* Split the raw target into the decoded path and the raw query. Accepts
 * origin-form ("/p?q"), absolute-form ("http://h/p?q", whose path is
 * kept) and "*" (OPTIONS). The fragment, if a client sends one, is
 * dropped. */
static int
parse_target(cc__http_parser *hp)
{
    cc__http_msg *m = &hp->msg;
    const char *t = m->scratch ? m->scratch : "";
    size_t n = m->scratch_len;

    m->target = dup_n(m->a, t, n);
    if (!m->target)
        return oom(hp);

    size_t ps; /* where the path starts */
    if (n > 0 && t[0] == '/') {
        ps = 0;
    } else if (n == 1 && t[0] == '*') {
        ps = 0;
    } else if (starts_with_ci(t, n, "http://") ||
               starts_with_ci(t, n, "https://")) {
        ps = (t[4] == ':') ? 7 : 8;
        while (ps < n && t[ps] != '/' && t[ps] != '?' && t[ps] != '#')
            ps++;
    } else {
        return fail(hp, 400, "bad request target");
    }
    size_t pe = ps;
    while (pe < n && t[pe] != '?' && t[pe] != '#')
        pe++;
    size_t qs = pe, qe = pe;
    if (pe < n && t[pe] == '?') {
        qs = pe + 1;
        qe = qs;
        while (qe < n && t[qe] != '#')
            qe++;
    }

    if (pe == ps) {
        m->path = dup_n(m->a, "/", 1); /* "http://host" or "http://host?q" */
    } else {
        size_t cap = pe - ps + 1; /* decoding never grows */
        m->path = cc__alloc(m->a, cap);
        if (m->path) {
            ssize_t dl = cc__http_pct_decode(t + ps, pe - ps, m->path, cap, 0);
            if (dl < 0) {
                cc__free(m->a, m->path, cap);
                m->path = NULL;
                return fail(hp, 400, "bad percent-encoding in path");
            }
            /* shrink to the exact size so cc__free_str frees it right */
            if ((size_t)dl + 1 != cap) {
                char *s = cc__realloc(m->a, m->path, cap, (size_t)dl + 1);
                if (!s) {
                    cc__free(m->a, m->path, cap);
                    m->path = NULL;
                    return oom(hp);
                }
                m->path = s;
            }
        }
    }
    if (!m->path)
        return oom(hp);
    m->query = dup_n(m->a, t + qs, qe - qs);
    if (!m->query)
        return oom(hp);
    return 0;
}

/* ---- llhttp callbacks ---- */

static int
on_message_begin(llhttp_t *p)
{
    cc__http_parser *hp = parser_of(p);
    hp->msg.in_value = HS_NAME;
    return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
    cc__http_parser *hp = parser_of(p);
    if (scratch_append(&hp->msg, at, len))
        return oom(hp);
    return 0;
}

static int
on_url_complete(llhttp_t *p)
{
    cc__http_parser *hp = parser_of(p);
    if (p->method == HTTP_CONNECT)
        return fail(hp, 400, "CONNECT is not supported");
    int rc = parse_target(hp);
    hp->msg.scratch_len = 0;
    return rc;
}

/* Bytes of a header name or value: both gather in the scratch buffer;
 * the _complete callbacks tell which one ended. */
static int
on_header_bytes(llhttp_t *p, const char *at, size_t len)
{
    cc__http_parser *hp = parser_of(p);
    if (hp->msg.in_value == HS_DONE)
        return 0; /* a trailer: dropped (counted in feed) */
    if (scratch_append(&hp->msg, at, len))
        return oom(hp);
    return 0;
}

static int
on_header_field_complete(llhttp_t *p)
{
    cc__http_parser *hp = parser_of(p);
    if (hp->msg.in_value == HS_DONE)
        return 0;
    hp->msg.name_len = hp->msg.scratch_len;
    hp->msg.in_value = HS_VALUE;
    return 0;
}

static int
on_header_value_complete(llhttp_t *p)
{
    cc__http_parser *hp = parser_of(p);
    if (hp->msg.in_value == HS_DONE)
        return 0;
    if (commit_header(&hp->msg))
        return oom(hp);
    hp->msg.scratch_len = 0;
    hp->msg.name_len = 0;
    hp->msg.in_value = HS_NAME;
    return 0;
}

static int
on_headers_complete(llhttp_t *p)
{
    cc__http_parser *hp = parser_of(p);
    cc__http_msg *m = &hp->msg;
    m->http_major = p->http_major;
    m->http_minor = p->http_minor;
    m->keep_alive = llhttp_should_keep_alive(p);
    m->upgrade = p->upgrade;
    if (p->type == HTTP_REQUEST) {
        m->method = p->method;
        m->method_str = llhttp_method_name((llhttp_method_t)p->method);
        if (!m->path)
            return fail(hp, 400, "missing request target");
    } else {
        m->status = p->status_code;
    }
    scratch_release(m); /* also zeroes name_len: the post-head count */
    m->in_value = HS_DONE;

    int has_body = (p->flags & F_CHUNKED) ||
                   ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    if (m->upgrade) {
        /* The bytes after the head belong to the new protocol; a body in
         * between would be taken for frames. */
        if (has_body && p->type == HTTP_REQUEST)
            return fail(hp, 400, "upgrade request with a body");
        return 2;
    }
    /* refuse a declared length over the limit before any of it arrives */
    if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED) &&
        p->content_length > hp->max_body)
        return fail(hp, 413, "body too large");
    return HPE_PAUSED; /* so feed learns where the head ended */
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
    cc__http_parser *hp = parser_of(p);
    cc__http_msg *m = &hp->msg;
    exec_ctx *x = p->data;
    if (x->last) {
        /* the framing between the previous body span and this one */
        if (meta_add(hp, (size_t)(at - x->last)))
            return -1;
        x->last = at + len;
    }
    if (len > hp->max_body || m->body_len > hp->max_body - len)
        return fail(hp, 413, "body too large");
    size_t need = m->body_len + len + 1;
    if (need > m->body_cap) {
        /* Grow with what arrives (a declared length is not trusted with
         * memory before the bytes come), never past the limit, nor past
         * a Content-Length (llhttp counts down what is still to come). */
        size_t top = hp->max_body + 1;
        if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED) &&
            p->content_length < top - need)
            top = need + (size_t)p->content_length;
        size_t cap = m->body_cap ? m->body_cap : 1024;
        while (cap < need)
            cap *= 2;
        if (cap > top)
            cap = top;
        uint8_t *b = m->body ? cc__realloc(m->a, m->body, m->body_cap, cap)
                             : cc__alloc(m->a, cap);
        if (!b)
            return oom(hp);
        m->body = b;
        m->body_cap = cap;
    }
    memcpy(m->body + m->body_len, at, len);
    m->body_len += len;
    m->body[m->body_len] = 0;
    return 0;
}

static int
on_message_complete(llhttp_t *p)
{
    cc__http_parser *hp = parser_of(p);
    hp->msg.keep_alive = llhttp_should_keep_alive(p);
    hp->ready = 1;
    /* for an upgrade llhttp pauses by itself (HPE_PAUSED_UPGRADE) */
    return p->upgrade ? 0 : HPE_PAUSED;
}

/* ---- the parser ---- */

void
cc__http_parser_init(cc__http_parser *hp, const cc_allocator *a, int type,
                     size_t max_head, size_t max_body)
{
    memset(hp, 0, sizeof *hp);
    hp->a = a ? a : cc__default_allocator();
    hp->max_head = max_head;
    hp->max_body = max_body;
    hp->msg.a = hp->a;
    llhttp_settings_init(&hp->s);
    hp->s.on_message_begin = on_message_begin;
    hp->s.on_url = on_url;
    hp->s.on_url_complete = on_url_complete;
    hp->s.on_header_field = on_header_bytes;
    hp->s.on_header_field_complete = on_header_field_complete;
    hp->s.on_header_value = on_header_bytes;
    hp->s.on_header_value_complete = on_header_value_complete;
    hp->s.on_headers_complete = on_headers_complete;
    hp->s.on_body = on_body;
    hp->s.on_message_complete = on_message_complete;
    llhttp_init(&hp->p, type == HTTP_RESPONSE ? HTTP_RESPONSE : HTTP_REQUEST,
                &hp->s);
    hp->p.data = NULL; /* set to an exec_ctx around each llhttp call */
}

void
cc__http_parser_free(cc__http_parser *hp)
{
    if (!hp->msg.a)
        hp->msg.a = hp->a;
    cc__http_msg_clear(&hp->msg);
    hp->ready = 0;
}

static const char *
errno_text(llhttp_errno_t e)
{
    switch (e) {
    case HPE_INVALID_METHOD:
        return "invalid method";
    case HPE_INVALID_URL:
        return "invalid request target";
    case HPE_INVALID_VERSION:
        return "invalid HTTP version";
    case HPE_INVALID_HEADER_TOKEN:
        return "invalid header";
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        return "invalid Content-Length";
    case HPE_INVALID_CHUNK_SIZE:
        return "invalid chunk size";
    case HPE_INVALID_TRANSFER_ENCODING:
        return "invalid Transfer-Encoding";
    case HPE_INVALID_STATUS:
        return "invalid status line";
    case HPE_CLOSED_CONNECTION:
        return "data after Connection: close";
    case HPE_CR_EXPECTED:
    case HPE_LF_EXPECTED:
        return "malformed line ending";
    case HPE_UNEXPECTED_SPACE:
        return "unexpected whitespace";
    case HPE_INVALID_EOF_STATE:
        return "connection closed inside a message";
    default:
        return "malformed HTTP message";
    }
}

static ssize_t
error_code(const cc__http_parser *hp)
{
    return hp->err_status == OOM_STATUS ? CC_ENOMEM : CC_EHTTP;
}

ssize_t
cc__http_parser_feed(cc__http_parser *hp, const uint8_t *p, size_t n)
{
    if (hp->err_status)
        return error_code(hp);
    if (hp->ready)
        return 0; /* the caller has not taken the last message yet */
    size_t off = 0;
    int resumed = 0;
    /* After a pause at the end of the head, execute once more even with
     * no bytes left: a message without a body completes right there. */
    while (off < n || resumed) {
        resumed = 0;
        const char *start = (const char *)p + off;
        size_t chunk = n - off;
        int in_head = hp->msg.in_value != HS_DONE;
        if (in_head) {
            size_t room = hp->max_head > hp->head_bytes
                              ? hp->max_head - hp->head_bytes
                              : 0;
            if (room < SIZE_MAX && chunk > room + 1)
                chunk = room + 1;
        }
        exec_ctx x = {hp, in_head ? NULL : start};
        hp->p.data = &x;
        llhttp_errno_t e = llhttp_execute(&hp->p, start, chunk);
        hp->p.data = NULL;
        /* where llhttp stopped: the end, a pause, or the bad byte */
        const char *stop = start + chunk;
        if (e != HPE_OK) {
            const char *ep = llhttp_get_error_pos(&hp->p);
            if (ep && ep >= start && ep <= stop)
                stop = ep;
        }
        if (x.last && x.last <= stop && !hp->err_status)
            meta_add(hp, (size_t)(stop - x.last));
        if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE)
            fail(hp, 400, errno_text(e)); /* unless a limit came first */
        if (hp->err_status) {
            hp->ready = 0;
            return error_code(hp);
        }
        size_t used = (size_t)(stop - start);
        off += used;
        if (in_head) {
            hp->head_bytes += used;
            if (hp->head_bytes > hp->max_head) {
                hp->ready = 0;
                fail(hp, 431, "request head too large");
                return error_code(hp);
            }
        }
        if (e == HPE_PAUSED_UPGRADE) {
            hp->ready = 1;
            break;
        }
        if (e == HPE_PAUSED) {
            if (hp->ready)
                break; /* a whole message: stop right after it */
            llhttp_resume(&hp->p); /* paused at the end of the head */
            resumed = 1;
        }
    }
    return (ssize_t)off;
}

void
cc__http_parser_next(cc__http_parser *hp)
{
    if (!hp->msg.a)
        hp->msg.a = hp->a;
    cc__http_msg_clear(&hp->msg);
    hp->ready = 0;
    hp->head_bytes = 0;
    llhttp_errno_t e = llhttp_get_errno(&hp->p);
    if (e == HPE_PAUSED)
        llhttp_resume(&hp->p);
    else if (e == HPE_PAUSED_UPGRADE)
        llhttp_resume_after_upgrade(&hp->p);
}

int
cc__http_parser_finish(cc__http_parser *hp)
{
    if (hp->err_status)
        return (int)error_code(hp);
    if (hp->ready)
        return 0;
    exec_ctx x = {hp, NULL};
    hp->p.data = &x;
    llhttp_errno_t e = llhttp_finish(&hp->p);
    hp->p.data = NULL;
    if (e == HPE_PAUSED || (e == HPE_OK && hp->ready)) {
        /* a body delimited by EOF ended; never complete it twice */
        hp->p.finish = HTTP_FINISH_SAFE;
        return 0;
    }
    if (e == HPE_OK)
        return 0;
    fail(hp, 400, errno_text(e));
    return (int)error_code(hp);
}

/* ---- helpers ---- */

const char *
cc__http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}


/* Decode one character at src[*i] (of n): an escape, '+' or itself.
 * Returns the byte, or -1 for a bad escape, an encoded or raw NUL. */
static int
pct_next(const char *src, size_t n, size_t *i, int plus_space)
{
    int c = (unsigned char)src[*i];
    if (c == '%') {
        if (n - *i < 3)
            return -1;
        int hi = cc__hex_digit((unsigned char)src[*i + 1]);
        int lo = cc__hex_digit((unsigned char)src[*i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        c = hi * 16 + lo;
        *i += 3;
    } else {
        if (c == '+' && plus_space)
            c = ' ';
        *i += 1;
    }
    return c == 0 ? -1 : c;
}

/* Returns the length, -1 on bad input, -2 when out is too small. */
static ssize_t
pct_decode(const char *src, size_t n, char *out, size_t cap, int plus_space)
{
    size_t i = 0, o = 0;
    int overflow = 0;
    while (i < n) {
        int c = pct_next(src, n, &i, plus_space);
        if (c < 0)
            return -1;
        if (o + 1 < cap)
            out[o] = (char)c;
        else
            overflow = 1;
        o++;
    }
    if (overflow || o >= cap) {
        if (cap)
            out[0] = 0;
        return -2;
    }
    out[o] = 0;
    return (ssize_t)o;
}

ssize_t
cc__http_pct_decode(const char *src, size_t n, char *out, size_t cap,
                    int plus_space)
{
    ssize_t r = pct_decode(src, n, out, cap, plus_space);
    return r < 0 ? -1 : r;
}

/* Does the encoded key src[0..n) decode to exactly name? */
static int
key_matches(const char *src, size_t n, const char *name)
{
    size_t i = 0, j = 0;
    while (i < n) {
        int c = pct_next(src, n, &i, 1);
        if (c < 0 || name[j] == 0 || (unsigned char)name[j] != c)
            return 0;
        j++;
    }
    return name[j] == 0;
}

int
cc__http_query_get(const char *query, const char *name, char *out,
                   size_t cap)
{
    if (!query || !name || !*name)
        return CC_ENOENT;
    const char *p = query;
    while (*p && *p != '#') {
        const char *e = p;
        while (*e && *e != '&' && *e != '#')
            e++;
        const char *eq = p;
        while (eq < e && *eq != '=')
            eq++;
        if (key_matches(p, (size_t)(eq - p), name)) {
            const char *v = eq < e ? eq + 1 : e;
            ssize_t r = pct_decode(v, (size_t)(e - v), out, cap, 1);
            if (r == -2)
                return CC_E2BIG;
            if (r < 0)
                return CC_EINVAL;
            return (int)r;
        }
        p = *e == '&' ? e + 1 : e;
    }
    return CC_ENOENT;
}

ssize_t
cc__json_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (!cap)
        return -1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        size_t k = 0;
        switch (c) {
        case '"': esc[k++] = '\\'; esc[k++] = '"'; break;
        case '\\': esc[k++] = '\\'; esc[k++] = '\\'; break;
        case '\n': esc[k++] = '\\'; esc[k++] = 'n'; break;
        case '\r': esc[k++] = '\\'; esc[k++] = 'r'; break;
        case '\t': esc[k++] = '\\'; esc[k++] = 't'; break;
        case '\b': esc[k++] = '\\'; esc[k++] = 'b'; break;
        case '\f': esc[k++] = '\\'; esc[k++] = 'f'; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                k = 6;
            } else {
                esc[k++] = (char)c;
            }
        }
        if (o + k >= cap) {
            out[0] = 0;
            return -1;
        }
        memcpy(out + o, esc, k);
        o += k;
    }
    out[o] = 0;
    return (ssize_t)o;
}
