/*
 * bench/hexfield.h - fixed-width lowercase hex fields that the load
 * generators (loadgen.c, chatload.c) embed in their messages to carry a
 * send time and sequence through the server and back. Header-only.
 */
#ifndef CC_BENCH_HEXFIELD_H
#define CC_BENCH_HEXFIELD_H

#include <stdint.h>

/* Write v as `digits` hex digits (most significant first) at p. */
static inline void
hex_put(char *p, uint64_t v, int digits)
{
    static const char hexd[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        p[i] = hexd[v & 15];
        v >>= 4;
    }
}

/* Read `digits` lowercase hex digits at p: 0 and *out, or -1. */
static inline int
hex_get(const char *p, int digits, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9')
            v = (v << 4) | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = (v << 4) | (uint64_t)(c - 'a' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

#endif
