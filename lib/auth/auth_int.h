/*
 * lib/auth/auth_int.h - helpers shared by the JWT and signed-request code
 * (lib/auth/jwt.c, lib/auth/sig.c): base64url without padding, hex, the
 * constant-time compare and the id rule. Pure functions, no allocation.
 */
#ifndef CC_AUTH_INT_H
#define CC_AUTH_INT_H

#include <stddef.h>
#include <stdint.h>

/* A token longer than this is refused before any decoding. */
#define CC__JWT_MAX_LEN 8192
/* HMAC-SHA256 output size. */
#define CC__MAC_LEN 32
/* base64url of a 32-byte MAC without padding. */
#define CC__MAC_B64_LEN 43
/* Integer claims are JSON numbers, which are doubles: above 2^53 - 1 two
 * different texts can name the same value, so larger ones are refused. */
#define CC__JSON_INT_MAX 9007199254740991LL

/* Length of the unpadded base64url encoding of n bytes. */
size_t cc__b64url_len(size_t n);
/* Encode n bytes into out (cc__b64url_len(n) bytes, no NUL written).
 * Returns the number of characters written. */
size_t cc__b64url_encode(char *out, const uint8_t *in, size_t n);
/* Strict decode of unpadded base64url: only [A-Za-z0-9_-], no '=', no
 * whitespace, length % 4 != 1, and the unused low bits of the last
 * character must be zero (so every byte string has exactly one accepted
 * encoding). Writes at most cap bytes. Returns 0 and sets *out_len, or -1
 * (invalid input or cap too small). */
int cc__b64url_decode(uint8_t *out, size_t cap, const char *in, size_t n,
                      size_t *out_len);

/* Decode exactly 2 * n hex digits (either case) into n bytes. 0 or -1. */
int cc__hex_decode(uint8_t *out, const char *in, size_t n);
/* Encode n bytes as 2 * n lowercase hex digits (no NUL written). */
void cc__hex_encode(char *out, const uint8_t *in, size_t n);

/* 1 if a[0..n) == b[0..n), else 0. Time depends on n only, not on the
 * contents, so a MAC check leaks nothing about how many bytes matched. */
int cc__ct_equal(const uint8_t *a, const uint8_t *b, size_t n);


#endif
