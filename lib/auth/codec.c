/*
 * lib/auth/codec.c - the byte-level helpers of the auth module: base64url
 * (RFC 4648 §5, unpadded, as JWS uses it), hex and a constant-time
 * compare (digit values and the id rule are lib/core/util.c's). See
 * auth_int.h for the contracts.
 *
 * The decoder is deliberately strict. A lenient one (padding allowed,
 * non-zero leftover bits ignored) would give each signature several
 * encodings, so a token with a changed last character could still verify
 * and a token could not be used as its own replay key.
 */
#include <string.h>

#include "auth/auth_int.h"
#include "core/internal.h"

static const char b64url_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
cc__b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t
cc__b64url_encode(char *out, const uint8_t *in, size_t n)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                     in[i + 2];
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    return o;
}

int
cc__b64url_decode(uint8_t *out, size_t cap, const char *in, size_t n,
                  size_t *out_len)
{
    if (n % 4 == 1)
        return -1;
    size_t need = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = cc__b64_digit((unsigned char)in[i], 1);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* 2 or 4 bits are left over after a partial group; they must be 0 */
    if (acc != 0)
        return -1;
    *out_len = o;
    return 0;
}


int
cc__hex_decode(uint8_t *out, const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = cc__hex_digit((unsigned char)in[2 * i]);
        int lo = cc__hex_digit((unsigned char)in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void
cc__hex_encode(char *out, const uint8_t *in, size_t n)
{
    static const char digits[16] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

int
cc__ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    /* volatile keeps the compiler from turning the loop into an early-exit
     * memcmp once it sees that only "all zero" matters */
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff = (uint8_t)(diff | (a[i] ^ b[i]));
    return diff == 0;
}

