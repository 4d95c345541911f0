/*
 * lib/proto/decode.c - client frames (PROTOCOL.md §4, client -> server)
 * from JSON text to a cc__cframe, with the checks of §3 and §6.
 *
 * Three linear passes over one message:
 *
 * 1. strict_scan: our own RFC 8259 validator. cJSON 1.7 accepts more than
 *    JSON: "01" and "1.", raw control characters in strings, any byte
 *    <= 0x20 as whitespace, "\u00zz" (read as U+0000), invalid UTF-8; and
 *    it cuts a string at an escaped U+0000. `body` is relayed to the peer,
 *    so whatever we let through must be JSON every peer's parser takes;
 *    after this pass cJSON only ever sees strict JSON.
 * 2. cJSON_ParseWithLength: the tree, for types and unescaped strings.
 * 3. A walk over the root object's members, in lock step with cJSON's
 *    children (cJSON keeps source order), giving each member's raw value
 *    span. It serves what cJSON's tree loses: the exact number text
 *    (seq/after/limit are evaluated exactly, never through a double), the
 *    body's own bytes (relayed as the client wrote them, minus
 *    insignificant whitespace) and whether a string held U+0000.
 *
 * Checks then run in a fixed order and the first failure wins: envelope,
 * ref, type, then the frame's fields in the order of §4's table; for each
 * field: duplicated, missing, wrong JSON type, over its length limit
 * (too_large), bad content. docs/protocol.md states the same rules.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "proto/proto.h"

/* ---- pass 1: strict RFC 8259 scanner ---- */

enum { SCAN_OK = 0, SCAN_BAD = -1, SCAN_DEEP = -2, SCAN_UTF8 = -3,
       SCAN_LONGNUM = -4 };

/* cJSON copies a number into a 64-byte buffer before strtod and fails on
 * a longer literal; refusing those here keeps its failures to OOM. */
#define NUM_LITERAL_MAX 63

typedef struct scan {
    const unsigned char *p;
    size_t n, i;
    int nul; /* a string scanned since the last reset held \u0000 */
    int err;
} scan;

static void
skip_ws(scan *s)
{
    while (s->i < s->n) {
        unsigned char c = s->p[s->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        s->i++;
    }
}


/* Four hex digits at p[i..i+4), or -1. */
static long
hex4(const scan *s, size_t i)
{
    if (i > s->n || s->n - i < 4)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = cc__hex_digit(s->p[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A string at s->p[s->i] == '"'. Escapes must be JSON's; \u escapes must
 * form valid Unicode (a high surrogate followed by a low one, no lone
 * surrogate), as cJSON requires too; raw bytes must be strict UTF-8. */
static int
scan_string(scan *s)
{
    s->i++;
    for (;;) {
        if (s->i >= s->n)
            return SCAN_BAD;
        unsigned char c = s->p[s->i];
        if (c == '"') {
            s->i++;
            return SCAN_OK;
        }
        if (c < 0x20)
            return SCAN_BAD;
        if (c == '\\') {
            if (s->i + 1 >= s->n)
                return SCAN_BAD;
            switch (s->p[s->i + 1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n':
            case 'r': case 't':
                s->i += 2;
                break;
            case 'u': {
                long u = hex4(s, s->i + 2);
                if (u < 0)
                    return SCAN_BAD;
                s->i += 6;
                if (u == 0)
                    s->nul = 1;
                if (u >= 0xdc00 && u <= 0xdfff)
                    return SCAN_BAD;
                if (u >= 0xd800 && u <= 0xdbff) {
                    if (s->i + 1 >= s->n || s->p[s->i] != '\\' ||
                        s->p[s->i + 1] != 'u')
                        return SCAN_BAD;
                    long lo = hex4(s, s->i + 2);
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return SCAN_BAD;
                    s->i += 6;
                }
                break;
            }
            default:
                return SCAN_BAD;
            }
            continue;
        }
        if (c < 0x80) {
            s->i++;
            continue;
        }
        size_t bad;
        size_t k = cc__proto_utf8_seq(s->p + s->i, s->n - s->i, &bad);
        if (k == 0)
            return SCAN_UTF8;
        s->i += k;
    }
}

static int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int
scan_number(scan *s)
{
    size_t start = s->i;
    if (s->i < s->n && s->p[s->i] == '-')
        s->i++;
    if (s->i >= s->n || !is_digit(s->p[s->i]))
        return SCAN_BAD;
    if (s->p[s->i] == '0') {
        s->i++;
    } else {
        while (s->i < s->n && is_digit(s->p[s->i]))
            s->i++;
    }
    if (s->i < s->n && s->p[s->i] == '.') {
        s->i++;
        if (s->i >= s->n || !is_digit(s->p[s->i]))
            return SCAN_BAD;
        while (s->i < s->n && is_digit(s->p[s->i]))
            s->i++;
    }
    if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
        s->i++;
        if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
            s->i++;
        if (s->i >= s->n || !is_digit(s->p[s->i]))
            return SCAN_BAD;
        while (s->i < s->n && is_digit(s->p[s->i]))
            s->i++;
    }
    if (s->i - start > NUM_LITERAL_MAX)
        return SCAN_LONGNUM;
    return SCAN_OK;
}

static int
scan_word(scan *s, const char *w, size_t n)
{
    if (s->n - s->i < n || memcmp(s->p + s->i, w, n) != 0)
        return SCAN_BAD;
    s->i += n;
    return SCAN_OK;
}

/* An object member's name and the colon after it. */
static int
scan_key(scan *s)
{
    skip_ws(s);
    if (s->i >= s->n || s->p[s->i] != '"')
        return SCAN_BAD;
    int r = scan_string(s);
    if (r != SCAN_OK)
        return r;
    skip_ws(s);
    if (s->i >= s->n || s->p[s->i] != ':')
        return SCAN_BAD;
    s->i++;
    return SCAN_OK;
}

/* One complete value, iteratively (input is hostile: no recursion).
 * `level` is the nesting level of the container the value sits in (0 for
 * the root value); containers deeper than CC__JSON_DEPTH_MAX fail. */
static int
scan_value(scan *s, int level)
{
    unsigned char stack[CC__JSON_DEPTH_MAX];
    int top = 0, r = SCAN_OK;

    for (;;) {
        /* expect a value */
        skip_ws(s);
        if (s->i >= s->n)
            return SCAN_BAD;
        unsigned char c = s->p[s->i];
        int closed = 0;
        if (c == '{' || c == '[') {
            if (level + top + 1 > CC__JSON_DEPTH_MAX)
                return SCAN_DEEP;
            stack[top++] = c;
            s->i++;
            skip_ws(s);
            if (s->i < s->n && s->p[s->i] == (c == '{' ? '}' : ']')) {
                s->i++;
                top--;
                closed = 1;
            } else if (c == '{') {
                if ((r = scan_key(s)) != SCAN_OK)
                    return r;
                continue;
            } else {
                continue;
            }
        } else if (c == '"') {
            r = scan_string(s);
        } else if (c == '-' || is_digit(c)) {
            r = scan_number(s);
        } else if (c == 't') {
            r = scan_word(s, "true", 4);
        } else if (c == 'f') {
            r = scan_word(s, "false", 5);
        } else if (c == 'n') {
            r = scan_word(s, "null", 4);
        } else {
            return SCAN_BAD;
        }
        if (!closed && r != SCAN_OK)
            return r;

        /* after a value: close containers or go on to the next element */
        for (;;) {
            if (top == 0)
                return SCAN_OK;
            skip_ws(s);
            if (s->i >= s->n)
                return SCAN_BAD;
            c = s->p[s->i];
            unsigned char open = stack[top - 1];
            if (c == ',') {
                s->i++;
                if (open == '{' && (r = scan_key(s)) != SCAN_OK)
                    return r;
                break;
            }
            if (c != (open == '{' ? '}' : ']'))
                return SCAN_BAD;
            s->i++;
            top--;
        }
    }
}

/* One member of the root object, as member_next finds it. */
typedef struct member {
    int key_nul;        /* the name held \u0000 */
    size_t vs, ve;      /* value text: p[vs..ve) */
    int val_nul;        /* the value is/contains a string with \u0000 */
} member;

/* Iterates the members of a validated root object. Call with s->i just
 * past the '{'. Returns 1 and the spans of the next member, or 0. */
static int
member_next(scan *s, member *m)
{
    skip_ws(s);
    if (s->i >= s->n || s->p[s->i] == '}')
        return 0;
    if (s->p[s->i] == ',')
        s->i++;
    s->nul = 0;
    if (scan_key(s) != SCAN_OK)
        return 0;
    m->key_nul = s->nul;
    skip_ws(s);
    s->nul = 0;
    m->vs = s->i;
    if (scan_value(s, 1) != SCAN_OK)
        return 0;
    m->ve = s->i;
    m->val_nul = s->nul;
    return 1;
}

/* ---- fields ---- */

enum {
    FLD_TYPE, FLD_REF, FLD_SESSION, FLD_CID, FLD_KIND, FLD_BODY, FLD_SEQ,
    FLD_ON, FLD_AFTER, FLD_LIMIT, FLD_TO, FLD_REASON, FLD_STATUS, FLD_TOKEN,
    FLD__N
};

/* Per field, its name and the message for each way it can be wrong. */
typedef struct fdesc {
    const char *name;
    const char *missing, *type, *big, *bad, *nul, *dup;
} fdesc;

#define FD(n, type, big, bad)                                              \
    {n, n ": missing", n ": " type, n ": " big, n ": " bad,               \
     n ": must not contain U+0000", n ": given more than once"}

static const fdesc FIELDS[FLD__N] = {
    FD("type", "must be a string", "", "unknown frame type"),
    FD("ref", "must be a string", "over 64 characters", ""),
    FD("session", "must be a string", "over 64 characters",
       "not a valid id ([A-Za-z0-9_.:-], 1 to 64)"),
    FD("cid", "must be a string", "over 64 characters",
       "must be non-empty, without control characters"),
    FD("kind", "must be a string", "",
       "must be text, image, file or event"),
    FD("body", "must be an object", "over 16384 bytes as JSON", ""),
    FD("seq", "must be an integer", "",
       "must be from 0 to 9007199254740991"),
    FD("on", "must be true or false", "", ""),
    FD("after", "must be an integer", "",
       "must be from 0 to 9007199254740991"),
    FD("limit", "must be an integer", "",
       "must be from 1 to 9007199254740991 (above 200 means 200)"),
    FD("to", "must be an agent id or null", "over 64 characters",
       "not a valid id ([A-Za-z0-9_.:-], 1 to 64)"),
    FD("reason", "must be a string", "over 200 characters", ""),
    FD("status", "must be a string", "", "must be online or away"),
    FD("token", "must be a string", "over 4096 characters", ""),
};

typedef struct slot {
    const cJSON *item; /* first occurrence */
    size_t vs, ve;
    int nul;
    int count;
} slot;

typedef struct dec {
    const char *json;
    slot sl[FLD__N];
    cc__cframe *f;
    const char *msg;
} dec;

static const char *const FTYPE_NAMES[] = {
    NULL, "ping", "refresh", "send", "ack", "read", "typing", "sync",
    "accept", "transfer", "close", "status",
};

static const char *const KIND_NAMES[] = {
    NULL, "text", "image", "file", "event",
};

static const char *const ERR_CODES[] = {
    "internal", "bad_request", "unauthorized", "forbidden", "not_found",
    "not_in_session", "already_taken", "invalid_state", "rate_limited",
    "too_large", "internal",
};

const char *
cc__proto_err_code(cc__perr e)
{
    if ((int)e <= 0 || (size_t)e >= CC__ARRAY_LEN(ERR_CODES))
        return "internal";
    return ERR_CODES[e];
}

const char *
cc__kind_name(cc__kind k)
{
    if ((int)k <= 0 || (size_t)k >= CC__ARRAY_LEN(KIND_NAMES))
        return "text";
    return KIND_NAMES[k];
}

const char *
cc__ftype_name(cc__ftype t)
{
    if ((int)t <= 0 || (size_t)t >= CC__ARRAY_LEN(FTYPE_NAMES))
        return NULL;
    return FTYPE_NAMES[t];
}

int
cc__proto_valid_id(const char *s, size_t n)
{
    return cc__valid_id(s, n);
}

/* Code points of valid UTF-8: every byte that is not a continuation. */
static size_t
cp_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static cc__perr
fail(dec *d, cc__perr e, const char *msg)
{
    d->msg = msg;
    return e;
}

/* Absent covers JSON null: an optional field given as null means its
 * default (as in proto3's JSON mapping), a required one is missing. */
static int
absent(const slot *s)
{
    return s->count == 0 || cJSON_IsNull(s->item);
}

/* The checks every field starts with: given twice -> bad_request;
 * absent -> bad_request when required. *here says whether to go on. */
static cc__perr
presence(dec *d, int k, int required, int *here)
{
    const slot *s = &d->sl[k];
    const fdesc *fd = &FIELDS[k];
    *here = 0;
    if (s->count > 1)
        return fail(d, CC__E_BAD_REQUEST, fd->dup);
    if (absent(s))
        return required ? fail(d, CC__E_BAD_REQUEST, fd->missing)
                        : CC__E_NONE;
    *here = 1;
    return CC__E_NONE;
}

/* A string field. Returns CC__E_NONE with *out and *out_len pointing into the
 * cJSON tree, or the error; *out NULL when absent and not required. */
static cc__perr
get_str(dec *d, int k, int required, size_t max_cp, const char **out,
        size_t *out_len)
{
    const slot *s = &d->sl[k];
    const fdesc *fd = &FIELDS[k];
    *out = NULL;
    *out_len = 0;
    int here;
    cc__perr e = presence(d, k, required, &here);
    if (!here)
        return e;
    if (!cJSON_IsString(s->item) || s->item->valuestring == NULL)
        return fail(d, CC__E_BAD_REQUEST, fd->type);
    if (s->nul)
        return fail(d, CC__E_BAD_REQUEST, fd->nul);
    size_t n = strlen(s->item->valuestring);
    if (max_cp && cp_count(s->item->valuestring, n) > max_cp)
        return fail(d, CC__E_TOO_LARGE, fd->big);
    *out = s->item->valuestring;
    *out_len = n;
    return CC__E_NONE;
}

/* A string field copied into dst (sized for max_cp * 4 + 1). */
static cc__perr
copy_str(dec *d, int k, int required, size_t max_cp, char *dst)
{
    const char *v;
    size_t n;
    cc__perr e = get_str(d, k, required, max_cp, &v, &n);
    dst[0] = '\0';
    if (e == CC__E_NONE && v != NULL) {
        memcpy(dst, v, n);
        dst[n] = '\0';
    }
    return e;
}

static cc__perr
get_id(dec *d, int k, char *dst)
{
    const char *v;
    size_t n;
    cc__perr e = get_str(d, k, 1, CC__ID_MAX, &v, &n);
    if (e != CC__E_NONE)
        return e;
    if (!cc__proto_valid_id(v, n))
        return fail(d, CC__E_BAD_REQUEST, FIELDS[k].bad);
    memcpy(dst, v, n);
    dst[n] = '\0';
    return CC__E_NONE;
}

static int
cid_ok(const char *v, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Exact value of a JSON number literal (validated by scan_number) as an
 * integer in 0..CC__NUM_MAX. The literal's mathematical value counts, so
 * 1.0, 1e2 and -0 are integers (JSON Schema's "integer"), and nothing is
 * rounded: 9007199254740992.5 is not an integer, 9007199254740993 is out
 * of range. Returns 0, -1 (not an integer) or -2 (out of range). */
static int
exact_uint(const char *p, size_t n, uint64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && p[i] == '-') {
        neg = 1;
        i++;
    }
    size_t ib = i;
    while (i < n && is_digit((unsigned char)p[i]))
        i++;
    size_t ilen = i - ib, fb = i, flen = 0;
    if (i < n && p[i] == '.') {
        fb = ++i;
        while (i < n && is_digit((unsigned char)p[i]))
            i++;
        flen = i - fb;
    }
    long long ex = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        int eneg = 0;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        /* saturate: |ex| beyond any digit count we can see decides alone */
        while (i < n && is_digit((unsigned char)p[i])) {
            if (ex < 100000000)
                ex = ex * 10 + (p[i] - '0');
            i++;
        }
        if (eneg)
            ex = -ex;
    }
    /* the digits int||frac as one sequence d[0..t) */
    size_t t = ilen + flen;
#define DIG(j) ((j) < ilen ? p[ib + (j)] : p[fb + (j)-ilen])
    size_t lo = 0;
    while (lo < t && DIG(lo) == '0')
        lo++;
    if (lo == t) {
        *out = 0; /* zero, whatever its sign or exponent */
        return 0;
    }
    size_t hi = t - 1;
    while (DIG(hi) == '0')
        hi--;
    /* value = D * 10^k, D = d[lo..hi] (no trailing zero) */
    long long k = ex - (long long)flen + (long long)(t - 1 - hi);
    if (k < 0)
        return -1;
    if (neg)
        return -2;
    size_t m = hi - lo + 1;
    if ((long long)m + k > 16) /* CC__NUM_MAX has 16 digits */
        return -2;
    uint64_t v = 0;
    for (size_t j = lo; j <= hi; j++)
        v = v * 10 + (uint64_t)(DIG(j) - '0');
    for (long long j = 0; j < k; j++)
        v *= 10;
#undef DIG
    if (v > CC__NUM_MAX)
        return -2;
    *out = v;
    return 0;
}

/* A number field; *present 0 leaves *out alone. */
static cc__perr
get_num(dec *d, int k, int required, uint64_t *out, int *present)
{
    const slot *s = &d->sl[k];
    const fdesc *fd = &FIELDS[k];
    *present = 0;
    int here;
    cc__perr e = presence(d, k, required, &here);
    if (!here)
        return e;
    if (!cJSON_IsNumber(s->item))
        return fail(d, CC__E_BAD_REQUEST, fd->type);
    int r = exact_uint(d->json + s->vs, s->ve - s->vs, out);
    if (r == -1)
        return fail(d, CC__E_BAD_REQUEST, fd->type);
    if (r == -2)
        return fail(d, CC__E_BAD_REQUEST, fd->bad);
    *present = 1;
    return CC__E_NONE;
}

/* Whitespace outside strings removed; everything else byte for byte. */
static size_t
compact(const char *src, size_t n, char *dst)
{
    size_t o = 0;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (in_str) {
            if (dst)
                dst[o] = c;
            o++;
            if (c == '\\') {
                i++;
                if (dst)
                    dst[o] = src[i];
                o++;
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            if (dst)
                dst[o] = c;
            o++;
            if (c == '"')
                in_str = 1;
        }
    }
    return o;
}

static cc__perr
get_body(dec *d)
{
    const slot *s = &d->sl[FLD_BODY];
    const fdesc *fd = &FIELDS[FLD_BODY];
    int here;
    cc__perr e = presence(d, FLD_BODY, 1, &here);
    if (!here)
        return e;
    if (!cJSON_IsObject(s->item))
        return fail(d, CC__E_BAD_REQUEST, fd->type);
    const char *src = d->json + s->vs;
    size_t n = compact(src, s->ve - s->vs, NULL);
    if (n > CC__BODY_MAX)
        return fail(d, CC__E_TOO_LARGE, fd->big);
    char *p = cc__alloc(d->f->a, n + 1);
    if (p == NULL)
        return fail(d, CC__E_INTERNAL, "out of memory");
    compact(src, s->ve - s->vs, p);
    p[n] = '\0';
    d->f->body_json = p;
    d->f->body_len = n;
    return CC__E_NONE;
}

/* The fields of each frame type, in the order of §4's table. */
static cc__perr
decode_fields(dec *d)
{
    cc__cframe *f = d->f;
    cc__perr e;
    uint64_t v;
    int present;
    const char *s;
    size_t n;

    switch (f->type) {
    case CC__F_PING:
        return CC__E_NONE;
    case CC__F_REFRESH:
        if ((e = get_str(d, FLD_TOKEN, 1, CC__TOKEN_MAX, &s, &n)))
            return e;
        f->token = cc__alloc(f->a, n + 1);
        if (f->token == NULL)
            return fail(d, CC__E_INTERNAL, "out of memory");
        memcpy(f->token, s, n + 1);
        return CC__E_NONE;
    case CC__F_SEND:
        if ((e = get_id(d, FLD_SESSION, f->session)))
            return e;
        if ((e = get_str(d, FLD_CID, 1, CC__CID_MAX, &s, &n)))
            return e;
        if (!cid_ok(s, n))
            return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_CID].bad);
        memcpy(f->cid, s, n + 1);
        if ((e = get_str(d, FLD_KIND, 1, 0, &s, &n)))
            return e;
        for (int k = CC__K_TEXT; k <= CC__K_EVENT; k++)
            if (strcmp(s, KIND_NAMES[k]) == 0)
                f->kind = (cc__kind)k;
        if (f->kind == 0)
            return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_KIND].bad);
        return get_body(d);
    case CC__F_ACK:
    case CC__F_READ:
        if ((e = get_id(d, FLD_SESSION, f->session)))
            return e;
        return get_num(d, FLD_SEQ, 1, &f->seq, &present);
    case CC__F_TYPING: {
        if ((e = get_id(d, FLD_SESSION, f->session)))
            return e;
        const slot *sl = &d->sl[FLD_ON];
        if (sl->count > 1)
            return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_ON].dup);
        if (absent(sl))
            return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_ON].missing);
        if (!cJSON_IsBool(sl->item))
            return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_ON].type);
        f->on = cJSON_IsTrue(sl->item) ? 1 : 0;
        return CC__E_NONE;
    }
    case CC__F_SYNC:
        if ((e = get_id(d, FLD_SESSION, f->session)))
            return e;
        f->after = 0;
        if ((e = get_num(d, FLD_AFTER, 0, &f->after, &present)))
            return e;
        f->limit = CC__SYNC_LIMIT_DEFAULT;
        if ((e = get_num(d, FLD_LIMIT, 0, &v, &present)))
            return e;
        if (present) {
            if (v < 1)
                return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_LIMIT].bad);
            f->limit = v > CC__SYNC_LIMIT_MAX ? CC__SYNC_LIMIT_MAX : (int)v;
        }
        return CC__E_NONE;
    case CC__F_ACCEPT:
        return get_id(d, FLD_SESSION, f->session);
    case CC__F_TRANSFER: {
        if ((e = get_id(d, FLD_SESSION, f->session)))
            return e;
        /* `to` is required; null is a value here (back to the queue) */
        const slot *sl = &d->sl[FLD_TO];
        if (sl->count > 1)
            return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_TO].dup);
        if (sl->count == 0)
            return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_TO].missing);
        if (cJSON_IsNull(sl->item)) {
            f->to_null = 1;
            return CC__E_NONE;
        }
        return get_id(d, FLD_TO, f->to);
    }
    case CC__F_CLOSE:
        if ((e = get_id(d, FLD_SESSION, f->session)))
            return e;
        return copy_str(d, FLD_REASON, 0, CC__REASON_MAX, f->reason);
    case CC__F_STATUS:
        if ((e = get_str(d, FLD_STATUS, 1, 0, &s, &n)))
            return e;
        if (strcmp(s, "online") == 0)
            f->status_away = 0;
        else if (strcmp(s, "away") == 0)
            f->status_away = 1;
        else
            return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_STATUS].bad);
        return CC__E_NONE;
    }
    return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_TYPE].bad);
}

/* What an error about this frame echoes (see proto.h): a valid ref, or
 * for a send without one a valid cid. Worked out before any check can
 * fail, so even an error about the ref itself still carries the cid. */
static void
set_echo(dec *d)
{
    cc__cframe *f = d->f;
    const slot *r = &d->sl[FLD_REF];
    if (r->count == 1 && cJSON_IsString(r->item) && !r->nul) {
        const char *v = r->item->valuestring;
        size_t n = strlen(v);
        if (cp_count(v, n) <= CC__REF_MAX) {
            memcpy(f->ref, v, n + 1);
            f->has_ref = 1;
            return;
        }
    }
    const slot *t = &d->sl[FLD_TYPE];
    const slot *c = &d->sl[FLD_CID];
    if (t->count == 1 && cJSON_IsString(t->item) &&
        strcmp(t->item->valuestring, "send") == 0 && c->count == 1 &&
        cJSON_IsString(c->item) && !c->nul) {
        const char *v = c->item->valuestring;
        size_t n = strlen(v);
        if (cp_count(v, n) <= CC__CID_MAX && cid_ok(v, n)) {
            memcpy(f->ref, v, n + 1);
            f->has_ref = 1;
            f->ref_is_cid = 1;
        }
    }
}

static cc__perr
decode_tree(dec *d, const cJSON *root, scan *s)
{
    cc__cframe *f = d->f;
    cc__perr e;
    const char *v;
    size_t n;

    /* index the fields we know; count duplicates */
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        member m;
        if (!member_next(s, &m))
            return fail(d, CC__E_INTERNAL, "internal parser mismatch");
        if (m.key_nul)
            return fail(d, CC__E_BAD_REQUEST,
                        "a member name contains U+0000");
        for (int k = 0; k < FLD__N; k++) {
            if (c->string != NULL && strcmp(c->string, FIELDS[k].name) == 0) {
                slot *sl = &d->sl[k];
                if (sl->count++ == 0) {
                    sl->item = c;
                    sl->vs = m.vs;
                    sl->ve = m.ve;
                    sl->nul = m.val_nul;
                }
                break;
            }
        }
    }

    set_echo(d);

    char scratch[CC__REF_MAX * 4 + 1];
    if ((e = copy_str(d, FLD_REF, 0, CC__REF_MAX, scratch)))
        return e;

    if ((e = get_str(d, FLD_TYPE, 1, 0, &v, &n)))
        return e;
    for (int t = CC__F_PING; t <= CC__F_STATUS; t++)
        if (strcmp(v, FTYPE_NAMES[t]) == 0)
            f->type = (cc__ftype)t;
    if (f->type == 0)
        return fail(d, CC__E_BAD_REQUEST, FIELDS[FLD_TYPE].bad);

    return decode_fields(d);
}

cc__perr
cc__proto_decode(const char *json, size_t len, const cc_allocator *a,
                 cc__cframe *f, const char **msg)
{
    dec d;
    cc__perr e;

    memset(f, 0, sizeof *f);
    f->a = a ? a : cc__default_allocator();
    memset(&d, 0, sizeof d);
    d.f = f;
    d.msg = "";

    if (json == NULL)
        len = 0;
    /* A UTF-8 byte order mark is ignored (RFC 8259 §8.1 allows it). */
    if (len >= 3 && memcmp(json, "\xef\xbb\xbf", 3) == 0) {
        json += 3;
        len -= 3;
    }
    d.json = json;

    scan s = {(const unsigned char *)json, len, 0, 0, 0};
    int r = scan_value(&s, 0);
    if (r == SCAN_OK) {
        skip_ws(&s);
        if (s.i != s.n)
            r = SCAN_BAD;
    }
    switch (r) {
    case SCAN_OK:
        break;
    case SCAN_DEEP:
        e = fail(&d, CC__E_BAD_REQUEST, "nested deeper than 64 levels");
        goto out;
    case SCAN_UTF8:
        e = fail(&d, CC__E_BAD_REQUEST, "invalid UTF-8");
        goto out;
    case SCAN_LONGNUM:
        e = fail(&d, CC__E_BAD_REQUEST,
                 "a number literal is over 63 characters");
        goto out;
    default:
        e = fail(&d, CC__E_BAD_REQUEST, "not JSON");
        goto out;
    }
    /* the scanner accepted it, so the first non-space byte is the root's */
    s.i = 0;
    skip_ws(&s);
    if (json[s.i] != '{') {
        e = fail(&d, CC__E_BAD_REQUEST, "not a JSON object");
        goto out;
    }
    s.i++;

    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        /* valid JSON that cJSON refuses: its allocator failed */
        cJSON_Delete(root);
        e = fail(&d, CC__E_INTERNAL, "out of memory");
        goto out;
    }
    e = decode_tree(&d, root, &s);
    cJSON_Delete(root);

out:
    if (e != CC__E_NONE) {
        /* keep what the caller needs for the error frame */
        cc__ftype t = f->type;
        int has_ref = f->has_ref, is_cid = f->ref_is_cid;
        char ref[sizeof f->ref];
        memcpy(ref, f->ref, sizeof ref);
        cc__cframe_clear(f);
        f->a = a ? a : cc__default_allocator();
        f->type = t;
        f->has_ref = has_ref;
        f->ref_is_cid = is_cid;
        memcpy(f->ref, ref, sizeof ref);
    }
    if (msg != NULL)
        *msg = d.msg;
    return e;
}

void
cc__cframe_clear(cc__cframe *f)
{
    if (f == NULL)
        return;
    if (f->a != NULL) {
        if (f->body_json != NULL)
            cc__free(f->a, f->body_json, f->body_len + 1);
        if (f->token != NULL)
            cc__free_str(f->a, f->token);
    }
    memset(f, 0, sizeof *f);
}
