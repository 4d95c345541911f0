/*
 * lib/chat/tenant.c - tenants and agents as data (see tenant.h): the
 * defaults, strict validation of PUT/PATCH bodies, JSON merge patch
 * (RFC 7396), the API and storage JSON forms, secrets and their rotation,
 * PBKDF2 password hashes.
 *
 * Parsing runs in two steps. A strict RFC 8259 scan of our own comes
 * first, because cJSON 1.7 accepts more than JSON ("01", raw control
 * characters in strings, invalid UTF-8, trailing garbage) and silently
 * cuts a string at an escaped U+0000. cJSON then builds the tree. One
 * thing the tree loses is whether a number was written as an integer
 * ("5" against "5.0" or "5e0"); integer fields need that, so it is read
 * back from the text: cJSON keeps members in source order, so the k-th
 * number node of a pre-order walk is the k-th number literal of the text.
 *
 * The tenant's fields are described by a table (fdesc) that drives the
 * merge, the reset to defaults of a null and the validation, so PUT
 * (a merge patch over the defaults), PATCH (over the current tenant) and
 * the storage form (over the defaults, with two more fields) share one
 * code path and one set of messages.
 *
 * Error messages are static strings, except those naming an unknown or
 * duplicated member: that name comes from the body, so the message is
 * built inside *out (a field scratched on failure) and *err points there.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>

#include "chat/tenant.h"

#define JSON_DEPTH_MAX 16   /* tenant bodies nest 3 deep */
#define NUM_LITERAL_MAX 63  /* cJSON fails on longer number literals */
#define SAFE_INT_MAX 9007199254740991.0   /* 2^53 - 1 */
#define KEY_SHOWN_MAX 64    /* bytes of a member name quoted in a message */

/* ---- strict JSON scan ---- */

enum { JS_OK = 0, JS_SYNTAX, JS_DEEP, JS_NUL, JS_UTF8, JS_LONGNUM };

typedef struct jscan {
    const unsigned char *p;
    size_t n, i;
} jscan;

static void
js_ws(jscan *s)
{
    while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' ||
                           s->p[s->i] == '\n' || s->p[s->i] == '\r'))
        s->i++;
}

static long
js_hex4(const jscan *s, size_t i)
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

static int
js_string(jscan *s)
{
    s->i++; /* the opening quote */
    while (s->i < s->n) {
        unsigned char c = s->p[s->i];
        if (c == '"') {
            s->i++;
            return JS_OK;
        }
        if (c < 0x20)
            return JS_SYNTAX;
        if (c == '\\') {
            if (s->i + 1 >= s->n)
                return JS_SYNTAX;
            unsigned char e = s->p[s->i + 1];
            if (e != 'u') {
                if (!strchr("\"\\/bfnrt", e) || e == '\0')
                    return JS_SYNTAX;
                s->i += 2;
                continue;
            }
            long v = js_hex4(s, s->i + 2);
            if (v < 0)
                return JS_SYNTAX;
            if (v == 0)
                return JS_NUL; /* cJSON would cut the string here */
            s->i += 6;
            if (v >= 0xdc00 && v <= 0xdfff)
                return JS_SYNTAX; /* a lone low surrogate */
            if (v >= 0xd800 && v <= 0xdbff) {
                if (s->i + 1 >= s->n || s->p[s->i] != '\\' ||
                    s->p[s->i + 1] != 'u')
                    return JS_SYNTAX;
                long lo = js_hex4(s, s->i + 2);
                if (lo < 0xdc00 || lo > 0xdfff)
                    return JS_SYNTAX;
                s->i += 6;
            }
            continue;
        }
        if (c >= 0x80) {
            size_t bad;
            size_t len = cc__proto_utf8_seq(s->p + s->i, s->n - s->i, &bad);
            if (len == 0)
                return JS_UTF8;
            s->i += len;
            continue;
        }
        s->i++;
    }
    return JS_SYNTAX;
}

static int
js_digits(jscan *s)
{
    size_t start = s->i;
    while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
        s->i++;
    return s->i > start;
}

static int
js_number(jscan *s)
{
    size_t start = s->i;
    if (s->p[s->i] == '-')
        s->i++;
    if (s->i < s->n && s->p[s->i] == '0')
        s->i++;
    else if (!js_digits(s))
        return JS_SYNTAX;
    if (s->i < s->n && s->p[s->i] == '.') {
        s->i++;
        if (!js_digits(s))
            return JS_SYNTAX;
    }
    if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
        s->i++;
        if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
            s->i++;
        if (!js_digits(s))
            return JS_SYNTAX;
    }
    return s->i - start > NUM_LITERAL_MAX ? JS_LONGNUM : JS_OK;
}

static int
js_word(jscan *s, const char *w)
{
    size_t n = strlen(w);
    if (s->n - s->i < n || memcmp(s->p + s->i, w, n) != 0)
        return JS_SYNTAX;
    s->i += n;
    return JS_OK;
}

static int
js_value(jscan *s, int level)
{
    int rc;
    js_ws(s);
    if (s->i >= s->n)
        return JS_SYNTAX;
    unsigned char c = s->p[s->i];
    if (c == '{' || c == '[') {
        unsigned char closer = c == '{' ? '}' : ']';
        if (level >= JSON_DEPTH_MAX)
            return JS_DEEP;
        s->i++;
        js_ws(s);
        if (s->i < s->n && s->p[s->i] == closer) {
            s->i++;
            return JS_OK;
        }
        for (;;) {
            if (c == '{') {
                js_ws(s);
                if (s->i >= s->n || s->p[s->i] != '"')
                    return JS_SYNTAX;
                if ((rc = js_string(s)) != JS_OK)
                    return rc;
                js_ws(s);
                if (s->i >= s->n || s->p[s->i] != ':')
                    return JS_SYNTAX;
                s->i++;
            }
            if ((rc = js_value(s, level + 1)) != JS_OK)
                return rc;
            js_ws(s);
            if (s->i >= s->n)
                return JS_SYNTAX;
            if (s->p[s->i] == closer) {
                s->i++;
                return JS_OK;
            }
            if (s->p[s->i] != ',')
                return JS_SYNTAX;
            s->i++;
        }
    }
    if (c == '"')
        return js_string(s);
    if (c == '-' || (c >= '0' && c <= '9'))
        return js_number(s);
    if (c == 't')
        return js_word(s, "true");
    if (c == 'f')
        return js_word(s, "false");
    if (c == 'n')
        return js_word(s, "null");
    return JS_SYNTAX;
}

/* Is the k-th (0-based) number literal of the (already scanned) text
 * written as an integer, without fraction or exponent? */
static int
nth_number_is_int(const char *t, size_t n, size_t k)
{
    size_t i = 0;
    while (i < n) {
        char c = t[i];
        if (c == '"') {
            for (i++; i < n && t[i] != '"'; i++)
                if (t[i] == '\\')
                    i++;
            i++;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            int whole = 1;
            for (; i < n; i++) {
                c = t[i];
                if (c == '.' || c == 'e' || c == 'E')
                    whole = 0;
                else if (!(c == '-' || c == '+' || (c >= '0' && c <= '9')))
                    break;
            }
            if (k == 0)
                return whole;
            k--;
            continue;
        }
        i++;
    }
    return 0;
}

/* Pre-order position of `target` among the number nodes from n on. */
static int
number_ordinal(const cJSON *n, const cJSON *target, size_t *k)
{
    for (; n != NULL; n = n->next) {
        if (n == target)
            return 1;
        if (cJSON_IsNumber(n))
            (*k)++;
        if (n->child != NULL && number_ordinal(n->child, target, k))
            return 1;
    }
    return 0;
}

/* ---- parse context ---- */

enum { M_PUT, M_PATCH, M_STORE };

typedef struct pctx {
    const char *json;
    size_t len;
    cJSON *root;
    int mode;
    const char *err;
    char *ebuf;     /* scratch for messages quoting a member name */
    size_t ecap;
    int saw_secret; /* the body set "secret" to a string */
} pctx;

static int
fail(pctx *p, const char *msg)
{
    p->err = msg;
    return CC_EINVAL;
}

static void
ecat(char *dst, size_t cap, size_t *n, const char *s, size_t len)
{
    if (len > cap - 1 - *n)
        len = cap - 1 - *n;
    memcpy(dst + *n, s, len);
    *n += len;
    dst[*n] = '\0';
}

/* "<parent>.<key>: <what>", the key cut to KEY_SHOWN_MAX bytes at a
 * character boundary (the scan made it valid UTF-8). */
static int
name_fail(pctx *p, const char *parent, const char *key, const char *what)
{
    size_t n = 0, klen = strlen(key), cut = 0;
    while (cut < klen) {
        size_t bad, l = cc__proto_utf8_seq((const unsigned char *)key + cut,
                                           klen - cut, &bad);
        if (l == 0 || cut + l > KEY_SHOWN_MAX)
            break;
        cut += l;
    }
    p->ebuf[0] = '\0';
    if (parent != NULL) {
        ecat(p->ebuf, p->ecap, &n, parent, strlen(parent));
        ecat(p->ebuf, p->ecap, &n, ".", 1);
    }
    ecat(p->ebuf, p->ecap, &n, key, cut);
    if (cut < klen)
        ecat(p->ebuf, p->ecap, &n, "...", 3);
    ecat(p->ebuf, p->ecap, &n, ": ", 2);
    ecat(p->ebuf, p->ecap, &n, what, strlen(what));
    p->err = p->ebuf;
    return CC_EINVAL;
}

/* Scan, then build the tree; the root must be an object. */
static int
parse_body(pctx *p, const char *json, size_t len)
{
    p->json = json;
    p->len = len;
    p->root = NULL;
    if (json == NULL)
        len = 0;
    jscan s = {(const unsigned char *)json, len, 0};
    js_ws(&s);
    if (s.i == s.n)
        return fail(p, "body: must be a JSON object");
    int rc = js_value(&s, 0);
    if (rc == JS_OK) {
        js_ws(&s);
        if (s.i != s.n)
            rc = JS_SYNTAX;
    }
    switch (rc) {
    case JS_OK:
        break;
    case JS_DEEP:
        return fail(p, "body: nested too deeply");
    case JS_NUL:
        return fail(p, "body: strings must not contain U+0000");
    case JS_UTF8:
        return fail(p, "body: not valid UTF-8");
    case JS_LONGNUM:
        return fail(p, "body: number literal too long");
    default:
        return fail(p, "body: not valid JSON");
    }
    const char *end = NULL;
    p->root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (p->root == NULL) {
        /* strict JSON that cJSON refuses: its allocation failed */
        p->err = "out of memory";
        return CC_ENOMEM;
    }
    /* cJSON stops after the value; what follows must be whitespace
     * only (the scan guarantees it; checked again in case they differ) */
    jscan t = {(const unsigned char *)json, len, (size_t)(end - json)};
    js_ws(&t);
    if (end < json || t.i != len) {
        cJSON_Delete(p->root);
        p->root = NULL;
        return fail(p, "body: not valid JSON");
    }
    if (!cJSON_IsObject(p->root)) {
        cJSON_Delete(p->root);
        p->root = NULL;
        return fail(p, "body: must be a JSON object");
    }
    return 0;
}

int
cc__json_parse_object(const char *json, size_t len, cJSON **out,
                       const char **err)
{
    pctx p;
    memset(&p, 0, sizeof(p));
    int rc = parse_body(&p, json, len);
    *err = rc == 0 ? "" : p.err;
    *out = rc == 0 ? p.root : NULL;
    return rc;
}

/* A number node written as an integer whose value is within [lo, hi]. */
static int
get_int(const pctx *p, const cJSON *v, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    size_t k = 0;
    if (!number_ordinal(p->root, v, &k) ||
        !nth_number_is_int(p->json, p->len, k))
        return 0;
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi))
        return 0;
    *out = (int64_t)d;
    return 1;
}

/* Is there a member named like c before c in obj? */
static int
dup_before(const cJSON *obj, const cJSON *c)
{
    for (const cJSON *o = obj->child; o != NULL && o != c; o = o->next)
        if (strcmp(o->string, c->string) == 0)
            return 1;
    return 0;
}

/* ---- value rules (on C strings, shared by input and storage) ---- */

enum { OK = 0, P_LEN, P_CHARS, P_OTHER };

/* A name: 1..CC__NAME_MAX code points of valid UTF-8, no C0 control. */
static int
name_problem(const char *s)
{
    size_t n = strlen(s), cps = 0;
    for (size_t i = 0; i < n; cps++) {
        size_t bad, l = cc__proto_utf8_seq((const unsigned char *)s + i,
                                           n - i, &bad);
        if (l == 0)
            return P_CHARS;
        if ((unsigned char)s[i] < 0x20)
            return P_OTHER;
        i += l;
    }
    return cps >= 1 && cps <= CC__NAME_MAX ? OK : P_LEN;
}

static int
printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* A secret: 16..CC__SECRET_MAX bytes of printable ASCII, no space. */
static int
secret_problem(const char *s)
{
    size_t n = strlen(s);
    if (n < 16 || n > CC__SECRET_MAX)
        return P_LEN;
    return printable(s) ? OK : P_CHARS;
}

/* An http(s) URL of at most 2048 bytes, printable ASCII, with a host. */
static int
url_problem(const char *s)
{
    size_t n = strlen(s), skip;
    if (n > 2048)
        return P_LEN;
    if (!printable(s))
        return P_CHARS;
    if (cc__strncaseeq(s, "http://", 7))
        skip = 7;
    else if (cc__strncaseeq(s, "https://", 8))
        skip = 8;
    else
        return P_OTHER;
    if (s[skip] == '\0' || strchr("/?#@:", s[skip]) != NULL)
        return P_OTHER;
    return OK;
}

/* type/subtype, both non-empty, of [a-z0-9.+-], at most 127 bytes. */
static int
mime_ok(const char *s)
{
    size_t n = strlen(s), slash = 0, nslash = 0;
    if (n == 0 || n > 127)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '/') {
            slash = i;
            nslash++;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '+' || c == '-')) {
            return 0;
        }
    }
    return nslash == 1 && slash > 0 && slash < n - 1;
}

/* ---- the tenant's fields ---- */

enum { K_ID, K_NAME, K_SECRET, K_INT, K_I64, K_DBL, K_BOOL, K_MIME, K_URL,
       K_OBJ };
#define F_NULLABLE 1  /* "" in the struct is null in JSON */
#define F_STORE 2     /* only in the storage form */
#define F_OPEN 4      /* K_DBL: the lower bound is excluded */

typedef struct fdesc {
    const char *key;
    int kind, flags;
    size_t off, size;
    double lo, hi;
    /* m[0]: wrong type (and for numbers: out of range);
     * strings: m[1] length, m[2] characters, m[3] other (see *_problem);
     * secret: m[3] is the refusal of null in a patch */
    const char *m[4];
    const struct fdesc *sub;
    size_t nsub;
} fdesc;

#define T(f) offsetof(cc__tenant_cfg, f), sizeof(((cc__tenant_cfg *)0)->f)

static const fdesc rate_fields[] = {
    {"messages_per_s", K_DBL, F_OPEN, T(messages_per_s), 0, 100000,
     {"rate_limits.messages_per_s: must be a number greater than 0 and at "
      "most 100000"}, NULL, 0},
    {"burst", K_DBL, 0, T(burst), 1, 1000000,
     {"rate_limits.burst: must be a number from 1 to 1000000"}, NULL, 0},
    {"tenant_messages_per_s", K_DBL, F_OPEN, T(tenant_messages_per_s), 0,
     10000000,
     {"rate_limits.tenant_messages_per_s: must be a number greater than 0 "
      "and at most 10000000"}, NULL, 0},
    {"connections_per_ip_per_min", K_INT, 0, T(connections_per_ip_per_min),
     1, 100000,
     {"rate_limits.connections_per_ip_per_min: must be an integer from 1 "
      "to 100000"}, NULL, 0},
};

static const fdesc upload_fields[] = {
    {"max_bytes", K_I64, 0, T(upload_max_bytes), 1, 1099511627776.0,
     {"uploads.max_bytes: must be an integer from 1 to 1099511627776"},
     NULL, 0},
    {"allowed_mime", K_MIME, 0, T(allowed_mime), 0, CC__MIME_MAX,
     {"uploads.allowed_mime: must be an array of at most 16 strings",
      "uploads.allowed_mime: each entry must be a type/subtype of "
      "a-z 0-9 . + - of at most 127 bytes"}, NULL, 0},
    {"presign_per_min", K_INT, 0, T(presign_per_min), 1, 100000,
     {"uploads.presign_per_min: must be an integer from 1 to 100000"},
     NULL, 0},
};

static const fdesc webhook_fields[] = {
    {"url", K_URL, F_NULLABLE, T(webhook_url), 0, 0,
     {"webhook.url: must be a string or null",
      "webhook.url: must be at most 2048 bytes",
      "webhook.url: must be printable ASCII without spaces",
      "webhook.url: must be an http:// or https:// URL with a host"},
     NULL, 0},
    {"secret", K_SECRET, F_NULLABLE, T(webhook_secret), 0, 0,
     {"webhook.secret: must be a string or null",
      "webhook.secret: must be 16 to 256 characters",
      "webhook.secret: must be printable ASCII without spaces"}, NULL, 0},
};

static const fdesc tenant_fields[] = {
    {"id", K_ID, 0, T(id), 0, 0, {"id: must match the id in the URL"},
     NULL, 0},
    {"name", K_NAME, 0, T(name), 0, 0,
     {"name: must be a string", "name: must be 1 to 200 characters",
      "name: must be valid UTF-8",
      "name: must not contain control characters"}, NULL, 0},
    {"secret", K_SECRET, 0, T(secret), 0, 0,
     {"secret: must be a string", "secret: must be 16 to 256 characters",
      "secret: must be printable ASCII without spaces",
      "secret: cannot be removed; rotate it instead"}, NULL, 0},
    {"old_secret", K_SECRET, F_NULLABLE | F_STORE, T(old_secret), 0, 0,
     {"old_secret: must be a string or null",
      "old_secret: must be 16 to 256 characters",
      "old_secret: must be printable ASCII without spaces"}, NULL, 0},
    {"old_secret_until", K_I64, F_STORE, T(old_secret_until), 0,
     SAFE_INT_MAX,
     {"old_secret_until: must be an integer from 0 to 9007199254740991"},
     NULL, 0},
    {"session_ttl", K_INT, 0, T(session_ttl), 1, 604800,
     {"session_ttl: must be an integer from 1 to 604800"}, NULL, 0},
    {"heartbeat", K_INT, 0, T(heartbeat), 5, 300,
     {"heartbeat: must be an integer from 5 to 300"}, NULL, 0},
    {"auto_assign", K_BOOL, 0, T(auto_assign), 0, 0,
     {"auto_assign: must be true or false"}, NULL, 0},
    {"agent_capacity", K_INT, 0, T(agent_capacity), 1, 1000,
     {"agent_capacity: must be an integer from 1 to 1000"}, NULL, 0},
    {"rate_limits", K_OBJ, 0, 0, 0, 0, 0, {"rate_limits: must be an object"},
     rate_fields, CC__ARRAY_LEN(rate_fields)},
    {"uploads", K_OBJ, 0, 0, 0, 0, 0, {"uploads: must be an object"},
     upload_fields, CC__ARRAY_LEN(upload_fields)},
    {"webhook", K_OBJ, 0, 0, 0, 0, 0, {"webhook: must be an object"},
     webhook_fields, CC__ARRAY_LEN(webhook_fields)},
};

#define FIELD(t, fd, type) ((type *)((char *)(t) + (fd)->off))
#define CFIELD(t, fd, type) ((const type *)((const char *)(t) + (fd)->off))

/* The message for what is wrong with field fd of t, or NULL. */
static const char *
check_field(const fdesc *fd, const cc__tenant_cfg *t)
{
    int pr;
    switch (fd->kind) {
    case K_ID:
        return cc__valid_id(t->id, strlen(t->id)) ? NULL : fd->m[0];
    case K_NAME:
        pr = name_problem(CFIELD(t, fd, char));
        return pr ? fd->m[pr] : NULL;
    case K_SECRET:
    case K_URL: {
        const char *s = CFIELD(t, fd, char);
        if (s[0] == '\0' && (fd->flags & F_NULLABLE))
            return NULL;
        pr = fd->kind == K_URL ? url_problem(s) : secret_problem(s);
        return pr ? fd->m[pr] : NULL;
    }
    case K_INT: {
        int v = *CFIELD(t, fd, int);
        return v >= fd->lo && v <= fd->hi ? NULL : fd->m[0];
    }
    case K_I64: {
        int64_t v = *CFIELD(t, fd, int64_t);
        return (double)v >= fd->lo && (double)v <= fd->hi ? NULL : fd->m[0];
    }
    case K_DBL: {
        double v = *CFIELD(t, fd, double);
        int lo_ok = (fd->flags & F_OPEN) ? v > fd->lo : v >= fd->lo;
        return lo_ok && v <= fd->hi ? NULL : fd->m[0];
    }
    case K_BOOL: {
        int v = *CFIELD(t, fd, int);
        return v == 0 || v == 1 ? NULL : fd->m[0];
    }
    case K_MIME:
        if (t->n_mime < 0 || t->n_mime > CC__MIME_MAX)
            return fd->m[0];
        for (int i = 0; i < t->n_mime; i++)
            if (!mime_ok(t->allowed_mime[i]))
                return fd->m[1];
        return NULL;
    case K_OBJ:
        for (size_t i = 0; i < fd->nsub; i++) {
            const char *m = check_field(&fd->sub[i], t);
            if (m != NULL)
                return m;
        }
        return NULL;
    default:
        return fd->m[0];
    }
}

static const char *
check_tenant(const cc__tenant_cfg *t)
{
    for (size_t i = 0; i < CC__ARRAY_LEN(tenant_fields); i++) {
        const char *m = check_field(&tenant_fields[i], t);
        if (m != NULL)
            return m;
    }
    return NULL;
}

/* Field fd (and, for an object, its members) back to the default. */
static void
reset_field(const fdesc *fd, cc__tenant_cfg *t, const cc__tenant_cfg *defs)
{
    if (fd->kind == K_OBJ) {
        for (size_t i = 0; i < fd->nsub; i++)
            reset_field(&fd->sub[i], t, defs);
        return;
    }
    memcpy((char *)t + fd->off, (const char *)defs + fd->off, fd->size);
    if (fd->kind == K_MIME)
        t->n_mime = defs->n_mime;
}

/* A string value into the field's buffer, then its rules. */
static int
set_string(pctx *p, const fdesc *fd, const cJSON *v, cc__tenant_cfg *t)
{
    if (!cJSON_IsString(v))
        return fail(p, fd->m[0]);
    size_t n = strlen(v->valuestring);
    if (n >= fd->size)
        return fail(p, fd->m[1]); /* length: the kinds keep it in m[1] */
    memcpy(FIELD(t, fd, char), v->valuestring, n + 1);
    if (n == 0 && (fd->flags & F_NULLABLE)) /* "" would read back as null */
        return fail(p, fd->m[fd->kind == K_URL ? 3 : 1]);
    const char *m = check_field(fd, t);
    return m ? fail(p, m) : 0;
}

static int apply_members(pctx *p, const fdesc *tab, size_t ntab,
                         const char *parent, const cJSON *obj,
                         cc__tenant_cfg *t, const cc__tenant_cfg *defs);

static int
apply_field(pctx *p, const fdesc *fd, const cJSON *v, cc__tenant_cfg *t,
            const cc__tenant_cfg *defs)
{
    int64_t iv;

    if (cJSON_IsNull(v)) {
        if (fd->kind == K_ID)
            return fail(p, fd->m[0]);
        if (fd->kind == K_SECRET && !(fd->flags & F_NULLABLE)) {
            if (p->mode == M_PATCH)
                return fail(p, fd->m[3]);
            if (p->mode == M_STORE)
                return fail(p, fd->m[0]);
            return 0; /* PUT: as if absent, a secret is generated */
        }
        reset_field(fd, t, defs);
        return 0;
    }
    switch (fd->kind) {
    case K_ID:
        if (!cJSON_IsString(v) || strcmp(v->valuestring, t->id) != 0)
            return fail(p, fd->m[0]);
        return 0;
    case K_SECRET:
        if (fd->off == offsetof(cc__tenant_cfg, secret))
            p->saw_secret = 1;
        return set_string(p, fd, v, t);
    case K_NAME:
    case K_URL:
        return set_string(p, fd, v, t);
    case K_INT:
        if (!get_int(p, v, fd->lo, fd->hi, &iv))
            return fail(p, fd->m[0]);
        *FIELD(t, fd, int) = (int)iv;
        return 0;
    case K_I64:
        if (!get_int(p, v, fd->lo, fd->hi, &iv))
            return fail(p, fd->m[0]);
        *FIELD(t, fd, int64_t) = iv;
        return 0;
    case K_DBL: {
        if (!cJSON_IsNumber(v))
            return fail(p, fd->m[0]);
        double d = v->valuedouble;
        int lo_ok = (fd->flags & F_OPEN) ? d > fd->lo : d >= fd->lo;
        if (!lo_ok || !(d <= fd->hi))
            return fail(p, fd->m[0]);
        *FIELD(t, fd, double) = d;
        return 0;
    }
    case K_BOOL:
        if (!cJSON_IsBool(v))
            return fail(p, fd->m[0]);
        *FIELD(t, fd, int) = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    case K_MIME: {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > CC__MIME_MAX)
            return fail(p, fd->m[0]);
        int n = 0;
        for (const cJSON *e = v->child; e != NULL; e = e->next) {
            if (!cJSON_IsString(e))
                return fail(p, fd->m[0]);
            if (!mime_ok(e->valuestring))
                return fail(p, fd->m[1]);
            memcpy(t->allowed_mime[n++], e->valuestring,
                   strlen(e->valuestring) + 1);
        }
        t->n_mime = n;
        return 0;
    }
    case K_OBJ:
        if (!cJSON_IsObject(v))
            return fail(p, fd->m[0]);
        return apply_members(p, fd->sub, fd->nsub, fd->key, v, t, defs);
    default:
        return fail(p, fd->m[0]);
    }
}

static int
apply_members(pctx *p, const fdesc *tab, size_t ntab, const char *parent,
              const cJSON *obj, cc__tenant_cfg *t, const cc__tenant_cfg *defs)
{
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        if (dup_before(obj, c))
            return name_fail(p, parent, c->string, "duplicate field");
        const fdesc *fd = NULL;
        for (size_t i = 0; i < ntab && fd == NULL; i++)
            if (strcmp(tab[i].key, c->string) == 0 &&
                (!(tab[i].flags & F_STORE) || p->mode == M_STORE))
                fd = &tab[i];
        if (fd == NULL)
            return name_fail(p, parent, c->string, "unknown field");
        int rc = apply_field(p, fd, c, t, defs);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Merge the body over *t (which holds the base and its id). */
static int
tenant_merge(pctx *p, const char *json, size_t len, cc__tenant_cfg *t)
{
    cc__tenant_cfg defs;
    /* messages quoting a member name are built in t's URL buffer: on
     * failure *t is scratch anyway */
    p->ebuf = t->webhook_url;
    p->ecap = sizeof(t->webhook_url);
    p->saw_secret = 0;
    int rc = parse_body(p, json, len);
    if (rc != 0)
        return rc;
    cc__tenant_defaults(&defs, t->id);
    rc = apply_members(p, tenant_fields, CC__ARRAY_LEN(tenant_fields), NULL,
                       p->root, t, &defs);
    cJSON_Delete(p->root);
    p->root = NULL;
    return rc;
}

void
cc__tenant_defaults(cc__tenant_cfg *t, const char *id)
{
    static const char *const mime[] = {"image/png", "image/jpeg",
                                       "application/pdf"};
    memset(t, 0, sizeof(*t));
    if (id != NULL) {
        size_t n = strlen(id);
        if (n >= sizeof(t->id))
            n = sizeof(t->id) - 1;
        memcpy(t->id, id, n);
        memcpy(t->name, id, n);
    }
    t->session_ttl = 600;
    t->heartbeat = 20;
    t->auto_assign = 0;
    t->agent_capacity = 5;
    t->messages_per_s = 20;
    t->burst = 40;
    t->tenant_messages_per_s = 2000;
    t->connections_per_ip_per_min = 60;
    t->upload_max_bytes = 10485760;
    for (size_t i = 0; i < CC__ARRAY_LEN(mime); i++)
        memcpy(t->allowed_mime[i], mime[i], strlen(mime[i]) + 1);
    t->n_mime = (int)CC__ARRAY_LEN(mime);
    t->presign_per_min = 30;
}

static void
set_err(const char **err, const char *m)
{
    if (err != NULL)
        *err = m;
}

int
cc__tenant_replace(const char *id, const cc__tenant_cfg *cur,
                   const char *json, size_t len, cc__tenant_cfg *out,
                   const char **err)
{
    pctx p = {0};
    set_err(err, "");
    if (id == NULL || !cc__valid_id(id, strlen(id))) {
        set_err(err, "id: not a valid id");
        return CC_EINVAL;
    }
    cc__tenant_defaults(out, id);
    p.mode = M_PUT;
    int rc = tenant_merge(&p, json, len, out);
    if (rc == 0 && !p.saw_secret && cur) {
        /* a replace without "secret" keeps the current one */
        memcpy(out->secret, cur->secret, sizeof(out->secret));
    } else if (rc == 0 && !p.saw_secret) {
        rc = cc__secret_gen(out->secret);
    }
    if (rc == 0 && cur && strcmp(out->secret, cur->secret) == 0) {
        /* same secret: a rotation's grace period goes on */
        memcpy(out->old_secret, cur->old_secret, sizeof(out->old_secret));
        out->old_secret_until = cur->old_secret_until;
    }
    if (rc != 0)
        set_err(err, p.err ? p.err : "cannot generate a secret");
    return rc;
}

int
cc__tenant_from_put(const char *id, const char *json, size_t len,
                    cc__tenant_cfg *out, const char **err)
{
    return cc__tenant_replace(id, NULL, json, len, out, err);
}

int
cc__tenant_patch(const cc__tenant_cfg *cur, const char *patch, size_t len,
                 cc__tenant_cfg *out, const char **err)
{
    pctx p = {0};
    set_err(err, "");
    *out = *cur;
    p.mode = M_PATCH;
    int rc = tenant_merge(&p, patch, len, out);
    if (rc == 0 && (p.err = check_tenant(out)) != NULL)
        rc = CC_EINVAL; /* cur itself was invalid */
    if (rc != 0)
        set_err(err, p.err);
    return rc;
}

int
cc__tenant_from_storage(const char *id, const char *json,
                        cc__tenant_cfg *out)
{
    pctx p = {0};
    if (id == NULL || json == NULL || !cc__valid_id(id, strlen(id)))
        return CC_EINVAL;
    cc__tenant_defaults(out, id);
    p.mode = M_STORE;
    int rc = tenant_merge(&p, json, strlen(json), out);
    if (rc == 0 && check_tenant(out) != NULL)
        rc = CC_EINVAL; /* no secret, for one */
    return rc;
}

/* ---- JSON output ---- */

static void
lit(cc__jbuf *b, const char *s)
{
    cc__jbuf_raw(b, s, strlen(s));
}

/* "" as null, for the nullable strings */
static void
str_or_null(cc__jbuf *b, const char *s)
{
    cc__jbuf_str(b, s[0] ? s : NULL);
}

/* A double as the shortest text that reads back as the same value;
 * integral values (the usual case) as integers. The C library writes
 * the locale's decimal point, so the check reads back in that locale and
 * the text is then normalised to JSON's '.'. */
static void
jbuf_double(cc__jbuf *b, double v)
{
    if (v >= -SAFE_INT_MAX && v <= SAFE_INT_MAX && (double)(int64_t)v == v) {
        cc__jbuf_i64(b, (int64_t)v);
        return;
    }
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    for (char *c = tmp; *c; c++)
        if (!strchr("0123456789+-eE", *c))
            *c = '.';
    lit(b, tmp);
}

static void
write_tenant(cc__jbuf *b, const cc__tenant_cfg *t, int with_secret,
             int storage)
{
    lit(b, "{\"id\":");
    cc__jbuf_str(b, t->id);
    lit(b, ",\"name\":");
    cc__jbuf_str(b, t->name);
    if (with_secret || storage) {
        lit(b, ",\"secret\":");
        cc__jbuf_str(b, t->secret);
    }
    if (storage) {
        lit(b, ",\"old_secret\":");
        str_or_null(b, t->old_secret);
        lit(b, ",\"old_secret_until\":");
        cc__jbuf_i64(b, t->old_secret_until);
    }
    lit(b, ",\"session_ttl\":");
    cc__jbuf_i64(b, t->session_ttl);
    lit(b, ",\"heartbeat\":");
    cc__jbuf_i64(b, t->heartbeat);
    lit(b, ",\"auto_assign\":");
    cc__jbuf_bool(b, t->auto_assign);
    lit(b, ",\"agent_capacity\":");
    cc__jbuf_i64(b, t->agent_capacity);
    lit(b, ",\"rate_limits\":{\"messages_per_s\":");
    jbuf_double(b, t->messages_per_s);
    lit(b, ",\"burst\":");
    jbuf_double(b, t->burst);
    lit(b, ",\"tenant_messages_per_s\":");
    jbuf_double(b, t->tenant_messages_per_s);
    lit(b, ",\"connections_per_ip_per_min\":");
    cc__jbuf_i64(b, t->connections_per_ip_per_min);
    lit(b, "},\"uploads\":{\"max_bytes\":");
    cc__jbuf_i64(b, t->upload_max_bytes);
    lit(b, ",\"allowed_mime\":[");
    for (int i = 0; i < t->n_mime && i < CC__MIME_MAX; i++) {
        if (i > 0)
            lit(b, ",");
        cc__jbuf_str(b, t->allowed_mime[i]);
    }
    lit(b, "],\"presign_per_min\":");
    cc__jbuf_i64(b, t->presign_per_min);
    lit(b, "},\"webhook\":{\"url\":");
    str_or_null(b, t->webhook_url);
    /* the webhook secret is write-only like the tenant's: hidden, it is
     * left out rather than written as null, so that PATCHing a tenant
     * with its own GET form does not remove it; null still says "none" */
    if (with_secret || storage || t->webhook_secret[0] == '\0') {
        lit(b, ",\"secret\":");
        str_or_null(b, t->webhook_secret);
    }
    lit(b, "}}");
}

void
cc__tenant_to_json(cc__jbuf *b, const cc__tenant_cfg *t, int with_secret)
{
    write_tenant(b, t, with_secret, 0);
}

void
cc__tenant_to_storage(cc__jbuf *b, const cc__tenant_cfg *t)
{
    write_tenant(b, t, 1, 1);
}

/* ---- secrets ---- */

int
cc__tenant_rotate(cc__tenant_cfg *t, int64_t now_s)
{
    char fresh[65];
    int rc = cc__secret_gen(fresh);
    if (rc != 0)
        return rc;
    memcpy(t->old_secret, t->secret, sizeof(t->old_secret));
    t->old_secret_until = now_s + CC__OLD_SECRET_GRACE_S;
    memcpy(t->secret, fresh, sizeof(fresh));
    mbedtls_platform_zeroize(fresh, sizeof(fresh));
    return 0;
}

int
cc__tenant_secrets(const cc__tenant_cfg *t, int64_t now_s,
                   const char *out[2])
{
    out[0] = t->secret;
    out[1] = NULL;
    if (t->old_secret[0] != '\0' && now_s < t->old_secret_until) {
        out[1] = t->old_secret;
        return 2;
    }
    return 1;
}

int
cc__random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return CC_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int
cc__secret_gen(char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[32];
    int rc = cc__random(r, sizeof(r));
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < sizeof(r); i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[64] = '\0';
    mbedtls_platform_zeroize(r, sizeof(r));
    return 0;
}

/* ---- agents ---- */

#define AM_ID "id: must match the id in the URL"
#define AM_TENANT "tenant: must match the tenant in the URL"
#define AM_CAP "capacity: must be an integer from 1 to 1000 or null"
#define AM_PW "password: must be a string of 8 to 256 bytes"

static const char *const agent_name_msg[] = {
    NULL, "name: must be 1 to 200 characters", "name: must be valid UTF-8",
    "name: must not contain control characters"};

static const char *
check_agent(const cc__agent_cfg *ag)
{
    if (!cc__valid_id(ag->tenant, strlen(ag->tenant)))
        return "tenant: not a valid id";
    if (!cc__valid_id(ag->id, strlen(ag->id)))
        return "id: not a valid id";
    int pr = name_problem(ag->name);
    if (pr)
        return agent_name_msg[pr];
    if (strlen(ag->pwhash) >= CC__PWHASH_MAX || !printable(ag->pwhash))
        return "pwhash: must be printable ASCII";
    if (ag->capacity < 0 || ag->capacity > 1000)
        return AM_CAP;
    return NULL;
}

static int
agent_member(pctx *p, const cJSON *c, cc__agent_cfg *ag, char *pw_out,
             int *pw_set)
{
    const char *k = c->string;
    int null = cJSON_IsNull(c);
    if (strcmp(k, "id") == 0 || strcmp(k, "tenant") == 0) {
        const char *want = k[0] == 'i' ? ag->id : ag->tenant;
        if (!cJSON_IsString(c) || strcmp(c->valuestring, want) != 0)
            return fail(p, k[0] == 'i' ? AM_ID : AM_TENANT);
        return 0;
    }
    if (strcmp(k, "name") == 0) {
        const char *v = null ? ag->id : c->valuestring;
        if (!null && !cJSON_IsString(c))
            return fail(p, "name: must be a string");
        if (strlen(v) >= sizeof(ag->name))
            return fail(p, agent_name_msg[P_LEN]);
        int pr = name_problem(v);
        if (pr)
            return fail(p, agent_name_msg[pr]);
        memmove(ag->name, v, strlen(v) + 1);
        return 0;
    }
    if (strcmp(k, "capacity") == 0) {
        int64_t v = 0;
        if (!null && !get_int(p, c, p->mode == M_STORE ? 0 : 1, 1000, &v))
            return fail(p, AM_CAP);
        ag->capacity = (int)v;
        return 0;
    }
    if (strcmp(k, "password") == 0 && p->mode != M_STORE) {
        if (null)
            return fail(p, p->mode == M_PATCH
                               ? "password: cannot be removed"
                               : "password: required");
        if (!cJSON_IsString(c))
            return fail(p, AM_PW);
        size_t n = strlen(c->valuestring), bad;
        if (n < CC__PW_MIN || n > CC__PW_MAX)
            return fail(p, AM_PW);
        for (size_t i = 0; i < n;) {
            size_t l = cc__proto_utf8_seq(
                (const unsigned char *)c->valuestring + i, n - i, &bad);
            if (l == 0)
                return fail(p, "password: must be valid UTF-8");
            i += l;
        }
        memcpy(pw_out, c->valuestring, n + 1);
        *pw_set = 1;
        return 0;
    }
    if (strcmp(k, "pwhash") == 0 && p->mode == M_STORE) {
        if (!cJSON_IsString(c) ||
            strlen(c->valuestring) >= sizeof(ag->pwhash) ||
            !printable(c->valuestring))
            return fail(p, "pwhash: must be printable ASCII");
        memcpy(ag->pwhash, c->valuestring, strlen(c->valuestring) + 1);
        return 0;
    }
    return name_fail(p, NULL, k, "unknown field");
}

/* Merge the body over *ag. pw_out gets a password the body sets. */
static int
agent_merge(pctx *p, const char *json, size_t len, cc__agent_cfg *ag,
            char *pw_out, int *pw_set)
{
    char ebuf[KEY_SHOWN_MAX + 64];
    p->ebuf = ebuf;
    p->ecap = sizeof(ebuf);
    *pw_set = 0;
    int rc = parse_body(p, json, len);
    if (rc != 0)
        return rc;
    for (const cJSON *c = p->root->child; c != NULL && rc == 0; c = c->next)
        rc = dup_before(p->root, c)
                 ? name_fail(p, NULL, c->string, "duplicate field")
                 : agent_member(p, c, ag, pw_out, pw_set);
    cJSON_Delete(p->root);
    p->root = NULL;
    if (rc == CC_EINVAL && p->err == ebuf) {
        /* the message must outlive this frame: move it into *ag, which
         * is scratch on failure */
        memcpy(ag->name, ebuf, strlen(ebuf) + 1);
        p->err = ag->name;
    }
    return rc;
}

static int
agent_base(const char *tenant, const char *id, cc__agent_cfg *out,
           const char **msg)
{
    memset(out, 0, sizeof(*out));
    if (tenant == NULL || !cc__valid_id(tenant, strlen(tenant))) {
        *msg = "tenant: not a valid id";
        return CC_EINVAL;
    }
    if (id == NULL || !cc__valid_id(id, strlen(id))) {
        *msg = "id: not a valid id";
        return CC_EINVAL;
    }
    memcpy(out->tenant, tenant, strlen(tenant) + 1);
    memcpy(out->id, id, strlen(id) + 1);
    memcpy(out->name, id, strlen(id) + 1);
    return 0;
}

int
cc__agent_from_put(const char *tenant, const char *id, const char *json,
                   size_t len, cc__agent_cfg *out, char *pw_out,
                   const char **err)
{
    pctx p = {0};
    int pw_set = 0;
    set_err(err, "");
    pw_out[0] = '\0';
    int rc = agent_base(tenant, id, out, &p.err);
    if (rc == 0) {
        p.mode = M_PUT;
        rc = agent_merge(&p, json, len, out, pw_out, &pw_set);
    }
    if (rc == 0 && !pw_set)
        rc = fail(&p, "password: required");
    if (rc != 0) {
        mbedtls_platform_zeroize(pw_out, CC__PW_MAX + 1);
        set_err(err, p.err);
    }
    return rc;
}

int
cc__agent_patch(const cc__agent_cfg *cur, const char *json, size_t len,
                cc__agent_cfg *out, char *pw_out, const char **err)
{
    pctx p = {0};
    int pw_set = 0;
    set_err(err, "");
    pw_out[0] = '\0';
    *out = *cur;
    p.mode = M_PATCH;
    int rc = agent_merge(&p, json, len, out, pw_out, &pw_set);
    if (rc == 0 && (p.err = check_agent(out)) != NULL)
        rc = CC_EINVAL;
    if (rc != 0) {
        mbedtls_platform_zeroize(pw_out, CC__PW_MAX + 1);
        set_err(err, p.err);
    }
    return rc;
}

static void
write_agent(cc__jbuf *b, const cc__agent_cfg *ag, int storage)
{
    lit(b, "{\"id\":");
    cc__jbuf_str(b, ag->id);
    lit(b, ",\"tenant\":");
    cc__jbuf_str(b, ag->tenant);
    lit(b, ",\"name\":");
    cc__jbuf_str(b, ag->name);
    if (storage) {
        lit(b, ",\"pwhash\":");
        cc__jbuf_str(b, ag->pwhash);
    }
    lit(b, ",\"capacity\":");
    if (ag->capacity > 0)
        cc__jbuf_i64(b, ag->capacity);
    else
        lit(b, "null");
    lit(b, "}");
}

void
cc__agent_to_json(cc__jbuf *b, const cc__agent_cfg *ag)
{
    write_agent(b, ag, 0);
}

void
cc__agent_to_storage(cc__jbuf *b, const cc__agent_cfg *ag)
{
    write_agent(b, ag, 1);
}

int
cc__agent_from_storage(const char *tenant, const char *id, const char *json,
                       cc__agent_cfg *out)
{
    pctx p = {0};
    int pw_set;
    int rc = agent_base(tenant, id, out, &p.err);
    if (rc != 0 || json == NULL)
        return CC_EINVAL;
    p.mode = M_STORE;
    rc = agent_merge(&p, json, strlen(json), out, NULL, &pw_set);
    if (rc == 0 && check_agent(out) != NULL)
        rc = CC_EINVAL;
    return rc;
}

/* ---- password hashes ---- */

#define PW_PREFIX "pbkdf2-sha256$"
#define PW_SALT 16
#define PW_DK 32
#define PW_ITER_MIN 1000
#define PW_ITER_MAX 10000000

static int
pbkdf2(const char *pw, const unsigned char *salt, unsigned iter,
       unsigned char dk[PW_DK])
{
    mbedtls_md_context_t md;
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(
        MBEDTLS_MD_SHA256);
    mbedtls_md_init(&md);
    int rc = info ? mbedtls_md_setup(&md, info, 1) : -1;
    if (rc == 0)
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)pw,
                                       strlen(pw), salt, PW_SALT, iter,
                                       PW_DK, dk);
    mbedtls_md_free(&md);
    if (rc == MBEDTLS_ERR_MD_ALLOC_FAILED)
        return CC_ENOMEM;
    return rc == 0 ? 0 : CC_EINVAL;
}

/* RFC 4648 §4 base64 without padding; returns the length written. */
static size_t
b64_enc(const unsigned char *in, size_t n, char *out)
{
    static const char d[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                     in[i + 2];
        out[o++] = d[v >> 18];
        out[o++] = d[(v >> 12) & 63];
        out[o++] = d[(v >> 6) & 63];
        out[o++] = d[v & 63];
    }
    if (n - i == 1) {
        out[o++] = d[in[i] >> 2];
        out[o++] = d[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        out[o++] = d[v >> 10];
        out[o++] = d[(v >> 4) & 63];
        out[o++] = d[(v & 15) << 2];
    }
    out[o] = '\0';
    return o;
}

/* Exactly n bytes from the unpadded base64 at s[0..len), canonical (the
 * unused low bits of the last digit zero). 1 or 0. */
static int
b64_dec_exact(const char *s, size_t len, unsigned char *out, size_t n)
{
    if (len != (n * 4 + 2) / 3)
        return 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = cc__b64_digit((unsigned char)s[i], 0);
        if (v < 0)
            return 0;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o == n && acc == 0;
}

int
cc__pw_hash(const char *password, int iter, char out[CC__PWHASH_MAX])
{
    unsigned char salt[PW_SALT], dk[PW_DK];
    char s64[32], d64[48];
    out[0] = '\0';
    if (iter == 0)
        iter = CC__PW_ITER;
    if (password == NULL || iter < PW_ITER_MIN || iter > PW_ITER_MAX)
        return CC_EINVAL;
    int rc = cc__random(salt, sizeof(salt));
    if (rc == 0)
        rc = pbkdf2(password, salt, (unsigned)iter, dk);
    if (rc == 0) {
        b64_enc(salt, sizeof(salt), s64);
        b64_enc(dk, sizeof(dk), d64);
        snprintf(out, CC__PWHASH_MAX, PW_PREFIX "%d$%s$%s", iter, s64, d64);
    }
    mbedtls_platform_zeroize(dk, sizeof(dk));
    mbedtls_platform_zeroize(d64, sizeof(d64));
    return rc;
}

int
cc__pw_verify(const char *password, const char *stored)
{
    unsigned char salt[PW_SALT], want[PW_DK], got[PW_DK];
    const size_t plen = sizeof(PW_PREFIX) - 1;
    if (password == NULL || stored == NULL ||
        strncmp(stored, PW_PREFIX, plen) != 0)
        return 0;
    /* iterations: decimal, no sign, no leading zero, in range */
    const char *s = stored + plen;
    long iter = 0;
    size_t nd = 0;
    while (s[nd] >= '0' && s[nd] <= '9' && nd < 9)
        iter = iter * 10 + (s[nd++] - '0');
    if (nd == 0 || s[nd] != '$' || (s[0] == '0') || iter < PW_ITER_MIN ||
        iter > PW_ITER_MAX)
        return 0;
    s += nd + 1;
    const char *d = strchr(s, '$');
    if (d == NULL || !b64_dec_exact(s, (size_t)(d - s), salt, PW_SALT) ||
        !b64_dec_exact(d + 1, strlen(d + 1), want, PW_DK))
        return 0;
    if (pbkdf2(password, salt, (unsigned)iter, got) != 0)
        return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < PW_DK; i++)
        diff |= (unsigned char)(got[i] ^ want[i]);
    mbedtls_platform_zeroize(got, sizeof(got));
    return diff == 0;
}
