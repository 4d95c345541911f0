/*
 * examples/chatcore-server/log.c - the structured logger of log.h.
 *
 * Each line is built whole in memory (a stack buffer, the heap when a line
 * outgrows it) and handed to one fwrite followed by fflush: stdio locks the
 * FILE for the duration of a call, so lines from several threads never
 * interleave, and a crash loses at most the line being built.
 *
 * The caller's fields fragment is trusted to be JSON members (it comes from
 * the library or from cc_logf with escaped strings); the only thing done to
 * it is replacing raw control characters, which valid JSON can only hold as
 * whitespace between tokens, so a line can never be split by it.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* gmtime_r, clock_gettime */
#endif

#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a growable line buffer ---- */

typedef struct linebuf {
    char *p;
    size_t len, cap;
    int heap;   /* p is malloc'd */
    int oom;    /* a growth failed: the line is truncated */
} linebuf;

static void
lb_init(linebuf *b, char *stack, size_t cap)
{
    b->p = stack;
    b->len = 0;
    b->cap = cap;
    b->heap = 0;
    b->oom = 0;
}

/* Make room for n more bytes; 0 on success. */
static int
lb_reserve(linebuf *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->cap - b->len >= n)
        return 0;
    size_t ncap = b->cap * 2;
    while (ncap - b->len < n)
        ncap *= 2;
    char *np = b->heap ? realloc(b->p, ncap) : malloc(ncap);
    if (!np) {
        b->oom = 1;
        return -1;
    }
    if (!b->heap)
        memcpy(np, b->p, b->len);
    b->p = np;
    b->cap = ncap;
    b->heap = 1;
    return 0;
}

static void
lb_put(linebuf *b, const char *s, size_t n)
{
    if (lb_reserve(b, n) == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void
lb_puts(linebuf *b, const char *s)
{
    lb_put(b, s, strlen(s));
}

static void
lb_release(linebuf *b)
{
    if (b->heap)
        free(b->p);
}

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes at s
 * are not one (bad lead byte, bad or missing continuation, overlong form,
 * surrogate, above U+10FFFF). */
static size_t
utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* The escaped form of the unit at s: writes it to tmp (at least 7 bytes) or
 * points *out at s itself; returns its length and the input consumed.
 * quotes: escape '"' and '\' too (JSON); without, only what would break the
 * line or the encoding (text format). */
static size_t
escape_unit(const unsigned char *s, size_t avail, int quotes, char *tmp,
            const char **out, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned c = s[0];
    if (c < 0x20) {
        tmp[0] = '\\';
        tmp[1] = 'u';
        tmp[2] = '0';
        tmp[3] = '0';
        tmp[4] = hex[c >> 4];
        tmp[5] = hex[c & 15];
        *out = tmp;
        *used = 1;
        return 6;
    }
    if (quotes && (c == '"' || c == '\\')) {
        tmp[0] = '\\';
        tmp[1] = (char)c;
        *out = tmp;
        *used = 1;
        return 2;
    }
    size_t n = utf8_seq(s, avail);
    if (n == 0) {
        memcpy(tmp, "\\ufffd", 6);
        *out = tmp;
        *used = 1;
        return 6;
    }
    *out = (const char *)s;
    *used = n;
    return n;
}

size_t
cc_json_escape_n(char *dst, size_t cap, const char *src, size_t len)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t need = 0, w = 0, i = 0;
    int full = cap == 0;
    while (i < len) {
        char tmp[8];
        const char *unit;
        size_t used;
        size_t n = escape_unit(s + i, len - i, 1, tmp, &unit, &used);
        /* once one unit did not fit, stop writing so no later, shorter
         * unit lands after the gap */
        if (!full && w + n <= cap - 1) {
            memcpy(dst + w, unit, n);
            w += n;
        } else {
            full = 1;
        }
        need += n;
        i += used;
    }
    if (cap > 0)
        dst[w] = '\0';
    return need;
}

size_t
cc_json_escape(char *dst, size_t cap, const char *src)
{
    return cc_json_escape_n(dst, cap, src ? src : "", src ? strlen(src) : 0);
}

static void
lb_escaped(linebuf *b, const char *src, int quotes)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t len = strlen(src), i = 0;
    while (i < len) {
        char tmp[8];
        const char *unit;
        size_t used;
        size_t n = escape_unit(s + i, len - i, quotes, tmp, &unit, &used);
        lb_put(b, unit, n);
        i += used;
    }
}

/* The caller's fragment as given, except raw control characters (only
 * legal as whitespace in JSON) become spaces: one event, one line. */
static void
lb_fragment(linebuf *b, const char *s, size_t n)
{
    if (lb_reserve(b, n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        b->p[b->len++] = c < 0x20 ? ' ' : (char)c;
    }
}

/* ---- text rendering of a fields fragment ---- */

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* End of the JSON string starting at p (on its opening quote), just past
 * the closing quote; NULL when unterminated. */
static const char *
scan_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* End of the JSON value starting at p; NULL when malformed. Containers are
 * matched by depth, strings skipped whole; scalars run to ',' or the end. */
static const char *
scan_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return scan_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = scan_string(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']')
                depth--;
            p++;
            if (depth == 0)
                return p;
        }
        return NULL;
    }
    const char *q = p;
    while (q < end && *q != ',' && *q != ' ' && *q != '\t' && *q != '\n' &&
           *q != '\r')
        q++;
    return q > p ? q : NULL;
}

/* A string value goes bare when that reads unambiguously as key=value. */
static int
bare_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

/* " key=value" per member: strings unquoted when bare_ok, everything else
 * as its JSON text. What cannot be parsed is appended as it is. */
static void
lb_fields_text(linebuf *b, const char *f)
{
    const char *p = f, *end = f + strlen(f);
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end)
            return;
        if (*p != '"')
            break;
        const char *kend = scan_string(p, end);
        if (!kend)
            break;
        const char *q = skip_ws(kend, end);
        if (q >= end || *q != ':')
            break;
        q = skip_ws(q + 1, end);
        const char *vend = scan_value(q, end);
        if (!vend)
            break;
        lb_put(b, " ", 1);
        lb_fragment(b, p + 1, (size_t)(kend - p - 2));
        lb_put(b, "=", 1);
        if (*q == '"' && bare_ok(q + 1, (size_t)(vend - q - 2)))
            lb_put(b, q + 1, (size_t)(vend - q - 2));
        else
            lb_fragment(b, q, (size_t)(vend - q));
        p = skip_ws(vend, end);
        if (p < end && *p == ',')
            p++;
        else if (p < end)
            break;
    }
    lb_put(b, " ", 1);
    lb_fragment(b, p, (size_t)(end - p));
}

/* ---- the logger ---- */

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static int
clamp_level(int level)
{
    return level < CC_LOGGER_DEBUG   ? CC_LOGGER_DEBUG
           : level > CC_LOGGER_ERROR ? CC_LOGGER_ERROR
                                     : level;
}

void
cc_logger_init(cc_logger *lg, FILE *out, int level, int format)
{
    lg->out = out;
    lg->level = level;
    lg->format = format;
    lg->now_ms = NULL;
    lg->now_data = NULL;
}

int
cc_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

int
cc_log_format_parse(const char *name)
{
    if (name && strcmp(name, "json") == 0)
        return CC_LOGGER_JSON;
    if (name && strcmp(name, "text") == 0)
        return CC_LOGGER_TEXT;
    return -1;
}

int
cc_log_enabled(const cc_logger *lg, int level)
{
    return lg && level >= lg->level;
}

char *
cc_log_time(char *buf, size_t cap, uint64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm))
        memset(&tm, 0, sizeof tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
    return buf;
}

static uint64_t
real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
cc_log(cc_logger *lg, int level, const char *msg, const char *fields)
{
    if (!cc_log_enabled(lg, level))
        return;
    level = clamp_level(level);
    if (!msg)
        msg = "";
    if (fields && !*fields)
        fields = NULL;

    char ts[32];
    cc_log_time(ts, sizeof ts, lg->now_ms ? lg->now_ms(lg->now_data)
                                          : real_now_ms());
    char stack[1024];
    linebuf b;
    lb_init(&b, stack, sizeof stack);
    if (lg->format == CC_LOGGER_TEXT) {
        lb_puts(&b, ts);
        lb_put(&b, " ", 1);
        lb_puts(&b, level_upper[level]);
        lb_put(&b, " ", 1);
        lb_escaped(&b, msg, 0);
        if (fields)
            lb_fields_text(&b, fields);
    } else {
        lb_puts(&b, "{\"ts\":\"");
        lb_puts(&b, ts);
        lb_puts(&b, "\",\"level\":\"");
        lb_puts(&b, level_names[level]);
        lb_puts(&b, "\",\"msg\":\"");
        lb_escaped(&b, msg, 1);
        lb_put(&b, "\"", 1);
        if (fields) {
            lb_put(&b, ",", 1);
            lb_fragment(&b, fields, strlen(fields));
        }
        lb_put(&b, "}", 1);
    }
    /* the newline always fits: on OOM, overwrite the last byte */
    if (lb_reserve(&b, 1) == 0)
        b.p[b.len++] = '\n';
    else
        b.p[b.len - 1] = '\n';
    FILE *out = lg->out ? lg->out : stderr;
    fwrite(b.p, 1, b.len, out);
    fflush(out);
    lb_release(&b);
}

void
cc_log_hook(void *data, int level, const char *msg, const char *fields)
{
    cc_log(data, level, msg, fields);
}

void
cc_logf(cc_logger *lg, int level, const char *msg, const char *fmt, ...)
{
    if (!cc_log_enabled(lg, level))
        return;
    if (!fmt) {
        cc_log(lg, level, msg, NULL);
        return;
    }
    char stack[512];
    char *f = stack;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n < 0) {
        cc_log(lg, level, msg, NULL);
        return;
    }
    if ((size_t)n >= sizeof stack) {
        f = malloc((size_t)n + 1);
        if (f) {
            va_start(ap, fmt);
            vsnprintf(f, (size_t)n + 1, fmt, ap);
            va_end(ap);
        } else {
            /* out of memory: log the line without its fields rather than
             * with a cut (invalid) fragment */
            cc_log(lg, level, msg, NULL);
            return;
        }
    }
    cc_log(lg, level, msg, f);
    if (f != stack)
        free(f);
}
