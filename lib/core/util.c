/* lib/core/util.c - small string helpers shared by the modules. */
#include <time.h>

#include "internal.h"

size_t cc__http_imf_date(int64_t t, char out[30]); /* lib/http/static.c */

static int
lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

int
cc__strcaseeq(const char *a, const char *b)
{
    while (*a && *b) {
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return 0;
        a++;
        b++;
    }
    return *a == *b;
}

int
cc__strncaseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
        if (!a[i])
            return 1;
    }
    return 1;
}

int
cc__header_has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;
    if (!p)
        return 0;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && cc__strncaseeq(s, token, tl))
            return 1;
    }
    return 0;
}

size_t
cc__u64_to_str(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = 0;
    return n;
}

const char *
cc__ctx_http_date(cc_ctx *ctx)
{
    uint64_t now = uv_now(ctx->loop) / 1000;
    if (ctx->http_date[0] == 0 || now != ctx->http_date_at) {
        /* not strftime: its day and month names follow the locale */
        cc__http_imf_date((int64_t)time(NULL), ctx->http_date);
        ctx->http_date_at = now;
    }
    return ctx->http_date;
}

int
cc__valid_id(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
              c == '-'))
            return 0;
    }
    return 1;
}

int
cc__hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
cc__b64_digit(int c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}
