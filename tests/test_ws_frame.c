/*
 * tests/test_ws_frame.c - the WebSocket frame codec (lib/ws/frame.c):
 * header encode/decode in all three length forms, partial headers, every
 * RFC 6455 rejection with its close code, masking against a naive
 * reference, close codes and close payloads. Regression inputs found by
 * the fuzzer (tests/fuzz/fuzz_frame.c) go at the end.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "testutil.h"
#include "ws/frame.h"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A value decode must overwrite: catches a missing *close_code store. */
#define NO_CODE 0xbeef

static int
decode(const uint8_t *p, size_t n, int expect_masked, cc__ws_hdr *h,
       uint16_t *code)
{
    *code = NO_CODE;
    return cc__ws_hdr_decode(p, n, expect_masked, h, code);
}

/* ---- length forms and round trips ---- */

static const uint64_t LENGTHS[] = {
    0, 1, 124, 125, 126, 127, 255, 256, 65534, 65535, 65536, 65537,
    (1ull << 32) - 1, (1ull << 32) + 1, (1ull << 63) - 1,
};

static size_t
len_form_size(uint64_t len)
{
    if (len <= 125)
        return 2;
    if (len <= 65535)
        return 4;
    return 10;
}

START_TEST(test_roundtrip_lengths)
{
    for (size_t i = 0; i < CC__ARRAY_LEN(LENGTHS); i++) {
        for (int m = 0; m <= 1; m++) {
            for (int op = 1; op <= 2; op++) {
                for (int fin = 0; fin <= 1; fin++) {
                    uint64_t len = LENGTHS[i];
                    uint8_t buf[CC__WS_MAX_HEADER + 4];
                    memset(buf, 0xaa, sizeof buf);
                    size_t n = cc__ws_hdr_encode(buf, fin, op, len,
                                                 m ? MASK : NULL);
                    size_t want = len_form_size(len) + (m ? 4 : 0);
                    ck_assert_uint_eq(n, want);
                    /* nothing written past the header */
                    ck_assert_uint_eq(buf[n], 0xaa);

                    cc__ws_hdr h;
                    uint16_t code;
                    /* trailing payload bytes must not change anything */
                    int r = decode(buf, sizeof buf, m, &h, &code);
                    ck_assert_int_eq(r, (int)want);
                    ck_assert_uint_eq(code, NO_CODE);
                    ck_assert_uint_eq(h.hdr_len, want);
                    ck_assert_uint_eq(h.fin, fin);
                    ck_assert_uint_eq(h.opcode, op);
                    ck_assert_uint_eq(h.masked, m);
                    ck_assert(h.len == len);
                    if (m)
                        ck_assert_mem_eq(h.mask, MASK, 4);
                }
            }
        }
    }
}
END_TEST

START_TEST(test_encode_exact_bytes)
{
    uint8_t b[CC__WS_MAX_HEADER];

    /* RFC 6455 §5.7 examples */
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 1, 5, NULL), 2);
    ck_assert_mem_eq(b, "\x81\x05", 2);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 1, 5, MASK), 6);
    ck_assert_mem_eq(b, "\x81\x85\x37\xfa\x21\x3d", 6);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 0, 1, 3, NULL), 2);
    ck_assert_mem_eq(b, "\x01\x03", 2);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 0, 2, NULL), 2);
    ck_assert_mem_eq(b, "\x80\x02", 2);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 9, 5, NULL), 2);
    ck_assert_mem_eq(b, "\x89\x05", 2);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 10, 5, MASK), 6);
    ck_assert_mem_eq(b, "\x8a\x85\x37\xfa\x21\x3d", 6);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 2, 256, NULL), 4);
    ck_assert_mem_eq(b, "\x82\x7e\x01\x00", 4);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 2, 65536, NULL), 10);
    ck_assert_mem_eq(b, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);

    /* shortest form at each boundary */
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 2, 0, NULL), 2);
    ck_assert_mem_eq(b, "\x82\x00", 2);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 2, 125, NULL), 2);
    ck_assert_mem_eq(b, "\x82\x7d", 2);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 2, 126, NULL), 4);
    ck_assert_mem_eq(b, "\x82\x7e\x00\x7e", 4);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 2, 65535, NULL), 4);
    ck_assert_mem_eq(b, "\x82\x7e\xff\xff", 4);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 1, 2, (1ull << 32) + 1, MASK),
                      14);
    ck_assert_mem_eq(b, "\x82\xff\x00\x00\x00\x01\x00\x00\x00\x01"
                        "\x37\xfa\x21\x3d", 14);
    ck_assert_uint_eq(cc__ws_hdr_encode(b, 0, 0, (1ull << 63) - 1, NULL),
                      10);
    ck_assert_mem_eq(b, "\x00\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10);
}
END_TEST

START_TEST(test_decode_rfc_examples)
{
    cc__ws_hdr h;
    uint16_t code;

    /* a masked "Hello" from a client, on the server */
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ck_assert_int_eq(decode(hello, sizeof hello, 1, &h, &code), 6);
    ck_assert_uint_eq(h.fin, 1);
    ck_assert_uint_eq(h.opcode, 1);
    ck_assert_uint_eq(h.masked, 1);
    ck_assert(h.len == 5);
    ck_assert_mem_eq(h.mask, MASK, 4);
    uint8_t pl[5];
    memcpy(pl, hello + 6, 5);
    cc__ws_mask(pl, 5, h.mask, 0);
    ck_assert_mem_eq(pl, "Hello", 5);

    /* unmasked from a server, on the client; decode clears the mask */
    memset(&h, 0x55, sizeof h);
    ck_assert_int_eq(decode((const uint8_t *)"\x01\x03Hel", 5, 0, &h, &code),
                     2);
    ck_assert_uint_eq(h.fin, 0);
    ck_assert_uint_eq(h.opcode, 1);
    ck_assert_uint_eq(h.masked, 0);
    ck_assert(h.len == 3);
    ck_assert_mem_eq(h.mask, "\0\0\0\0", 4);

    /* 64-bit form with the largest legal length */
    ck_assert_int_eq(decode((const uint8_t *)"\x82\x7f\x7f\xff\xff\xff\xff"
                                             "\xff\xff\xff",
                            10, 0, &h, &code),
                     10);
    ck_assert(h.len == (1ull << 63) - 1);

    /* Non-minimal length forms are accepted (frame.h lists no error for
     * them), and decode to the same length. */
    ck_assert_int_eq(decode((const uint8_t *)"\x82\x7e\x00\x05", 4, 0, &h,
                            &code),
                     4);
    ck_assert(h.len == 5);
    ck_assert_int_eq(decode((const uint8_t *)"\x82\x7f\x00\x00\x00\x00\x00"
                                             "\x00\x00\x05",
                            10, 0, &h, &code),
                     10);
    ck_assert(h.len == 5);
}
END_TEST

START_TEST(test_partial_headers)
{
    for (size_t i = 0; i < CC__ARRAY_LEN(LENGTHS); i++) {
        for (int m = 0; m <= 1; m++) {
            for (int op = 0; op <= 10; op++) {
                int control = op >= 8;
                if ((op > 2 && op < 8) || (control && LENGTHS[i] > 125))
                    continue;
                uint8_t buf[CC__WS_MAX_HEADER];
                size_t n = cc__ws_hdr_encode(buf, 1, op, LENGTHS[i],
                                             m ? MASK : NULL);
                for (size_t k = 0; k < n; k++) {
                    cc__ws_hdr h;
                    uint16_t code;
                    memset(&h, 0x5a, sizeof h);
                    ck_assert_int_eq(decode(buf, k, m, &h, &code), 0);
                    ck_assert_uint_eq(code, NO_CODE);
                    /* h is left alone until the header is complete */
                    ck_assert_uint_eq(h.hdr_len, 0x5a);
                }
                cc__ws_hdr h;
                uint16_t code;
                ck_assert_int_eq(decode(buf, n, m, &h, &code), (int)n);
            }
        }
    }
    /* NULL pointer with n == 0 is "need more" */
    cc__ws_hdr h;
    uint16_t code;
    ck_assert_int_eq(decode(NULL, 0, 1, &h, &code), 0);
}
END_TEST

/* ---- rejections ---- */

static void
expect_reject(const uint8_t *p, size_t n, int expect_masked)
{
    cc__ws_hdr h;
    uint16_t code;
    ck_assert_int_eq(decode(p, n, expect_masked, &h, &code), CC_EFRAME);
    ck_assert_uint_eq(code, 1002);
}

/* A frame whose first byte is b0 on the wire, masked or not as the side
 * wants, with a 5-byte payload. */
static void
expect_reject_b0(uint8_t b0)
{
    for (int m = 0; m <= 1; m++) {
        uint8_t f[] = {b0, (uint8_t)((m ? 0x80 : 0) | 5), 0x37, 0xfa, 0x21,
                       0x3d, 'a', 'b', 'c', 'd', 'e'};
        expect_reject(f, m ? sizeof f : sizeof f - 4, m);
        /* refused as soon as the first byte is in */
        expect_reject(f, 1, m);
    }
}

START_TEST(test_reject_rsv)
{
    expect_reject_b0(0x80 | 0x40 | 1); /* RSV1 */
    expect_reject_b0(0x80 | 0x20 | 1); /* RSV2 */
    expect_reject_b0(0x80 | 0x10 | 1); /* RSV3 */
    expect_reject_b0(0x80 | 0x70 | 2);
    expect_reject_b0(0x40 | 0);        /* on a continuation */
    expect_reject_b0(0x80 | 0x40 | 9); /* on a control frame */
}
END_TEST

START_TEST(test_reject_opcodes)
{
    for (int op = 3; op <= 7; op++) {
        expect_reject_b0((uint8_t)(0x80 | op));
        expect_reject_b0((uint8_t)op);
    }
    for (int op = 11; op <= 15; op++) {
        expect_reject_b0((uint8_t)(0x80 | op));
        expect_reject_b0((uint8_t)op);
    }
    /* and the valid ones pass */
    static const int ok[] = {0, 1, 2, 8, 9, 10};
    for (size_t i = 0; i < CC__ARRAY_LEN(ok); i++) {
        uint8_t f[] = {(uint8_t)(0x80 | ok[i]), 0x00};
        cc__ws_hdr h;
        uint16_t code;
        ck_assert_int_eq(decode(f, 2, 0, &h, &code), 2);
        ck_assert_uint_eq(h.opcode, ok[i]);
    }
}
END_TEST

START_TEST(test_reject_fragmented_control)
{
    expect_reject_b0(0x08);
    expect_reject_b0(0x09);
    expect_reject_b0(0x0a);
}
END_TEST

START_TEST(test_reject_control_too_long)
{
    for (int op = 8; op <= 10; op++) {
        for (int m = 0; m <= 1; m++) {
            uint8_t mb = m ? 0x80 : 0;
            cc__ws_hdr h;
            uint16_t code;
            /* 125 in the 7-bit form is fine */
            uint8_t ok[] = {(uint8_t)(0x80 | op), (uint8_t)(mb | 125), 1, 2,
                            3, 4};
            ck_assert_int_eq(decode(ok, sizeof ok, m, &h, &code),
                             m ? 6 : 2);
            ck_assert(h.len == 125);
            /* 16-bit form, even with a small value: refused at byte 2 */
            uint8_t l16[] = {(uint8_t)(0x80 | op), (uint8_t)(mb | 126), 0,
                             126};
            expect_reject(l16, sizeof l16, m);
            expect_reject(l16, 2, m);
            uint8_t l16s[] = {(uint8_t)(0x80 | op), (uint8_t)(mb | 126), 0,
                              5};
            expect_reject(l16s, sizeof l16s, m);
            /* 64-bit form */
            uint8_t l64[] = {(uint8_t)(0x80 | op), (uint8_t)(mb | 127),
                             0, 0, 0, 0, 0, 1, 0, 0};
            expect_reject(l64, sizeof l64, m);
            expect_reject(l64, 2, m);
        }
    }
}
END_TEST

START_TEST(test_reject_len64_msb)
{
    for (int m = 0; m <= 1; m++) {
        uint8_t f[14] = {0x82, (uint8_t)((m ? 0x80 : 0) | 127), 0x80, 0, 0,
                         0, 0, 0, 0, 0, 1, 2, 3, 4};
        expect_reject(f, m ? 14 : 10, m);
        /* refused as soon as the top length byte is in */
        expect_reject(f, 3, m);
        f[2] = 0xff;
        expect_reject(f, m ? 14 : 10, m);
        /* 2^63 - 1 passes */
        f[2] = 0x7f;
        cc__ws_hdr h;
        uint16_t code;
        ck_assert_int_eq(decode(f, 3, m, &h, &code), 0);
        ck_assert_int_eq(decode(f, m ? 14 : 10, m, &h, &code), m ? 14 : 10);
    }
}
END_TEST

START_TEST(test_reject_masking)
{
    /* server (expect_masked=1) gets an unmasked frame */
    expect_reject((const uint8_t *)"\x81\x05Hello", 7, 1);
    expect_reject((const uint8_t *)"\x81\x05", 2, 1);
    expect_reject((const uint8_t *)"\x89\x00", 2, 1);
    expect_reject((const uint8_t *)"\x82\x7e\x01\x00", 4, 1);
    /* client (expect_masked=0) gets a masked frame */
    expect_reject((const uint8_t *)"\x81\x85\x37\xfa\x21\x3d", 6, 0);
    expect_reject((const uint8_t *)"\x81\x85", 2, 0);
    expect_reject((const uint8_t *)"\x8a\x80\x00\x00\x00\x00", 6, 0);
    /* any nonzero expect_masked means "server" */
    cc__ws_hdr h;
    uint16_t code;
    ck_assert_int_eq(decode((const uint8_t *)"\x81\x80\x01\x02\x03\x04", 6,
                            7, &h, &code),
                     6);
}
END_TEST

START_TEST(test_reject_null_close_code)
{
    /* close_code may be NULL; the error still comes back */
    ck_assert_int_eq(cc__ws_hdr_decode((const uint8_t *)"\xc1\x00", 2, 0,
                                       &(cc__ws_hdr){0}, NULL),
                     CC_EFRAME);
}
END_TEST

/* ---- masking ---- */

static void
naive_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(offset + i) % 4];
}

START_TEST(test_mask_vs_naive)
{
    enum { MAXLEN = 300, SLACK = 16 };
    static const uint8_t masks[][4] = {
        {0x37, 0xfa, 0x21, 0x3d},
        {0x00, 0x00, 0x00, 0x00},
        {0xff, 0xff, 0xff, 0xff},
        {0x01, 0x80, 0x7f, 0xfe},
    };
    static const uint64_t offsets[] = {
        0, 1, 2, 3, 4, 5, 6, 7, 125, 4095, (1ull << 32) + 3, UINT64_MAX,
    };
    uint8_t *a = malloc(MAXLEN + 2 * SLACK);
    uint8_t *b = malloc(MAXLEN + 2 * SLACK);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);

    for (size_t mi = 0; mi < CC__ARRAY_LEN(masks); mi++)
        for (size_t oi = 0; oi < CC__ARRAY_LEN(offsets); oi++)
            for (size_t align = 0; align < 9; align++)
                for (size_t len = 0; len <= MAXLEN; len++) {
                    for (size_t i = 0; i < MAXLEN + 2 * SLACK; i++)
                        a[i] = b[i] = (uint8_t)(i * 131 + len);
                    cc__ws_mask(a + SLACK + align, len, masks[mi],
                                offsets[oi]);
                    naive_mask(b + SLACK + align, len, masks[mi],
                               offsets[oi]);
                    /* also checks nothing outside [0, len) was touched */
                    ck_assert_mem_eq(a, b, MAXLEN + 2 * SLACK);
                }
    free(a);
    free(b);
}
END_TEST

START_TEST(test_mask_in_pieces)
{
    enum { LEN = 1000 };
    uint8_t whole[LEN], pieces[LEN];
    for (size_t i = 0; i < LEN; i++)
        whole[i] = (uint8_t)(i ^ (i >> 3));
    memcpy(pieces, whole, LEN);
    cc__ws_mask(whole, LEN, MASK, 0);

    /* cut at every first piece size, then in ragged pieces */
    for (size_t cut = 0; cut <= LEN; cut++) {
        uint8_t t[LEN];
        memcpy(t, pieces, LEN);
        cc__ws_mask(t, cut, MASK, 0);
        size_t off = cut, step = 1;
        while (off < LEN) {
            size_t n = step < LEN - off ? step : LEN - off;
            cc__ws_mask(t + off, n, MASK, off);
            off += n;
            step = step * 3 % 97 + 1;
        }
        ck_assert_mem_eq(t, whole, LEN);
    }
    /* masking twice is the identity */
    cc__ws_mask(whole, LEN, MASK, 0);
    ck_assert_mem_eq(whole, pieces, LEN);
}
END_TEST

START_TEST(test_mask_large)
{
    /* a long buffer at an odd address: exercises the aligning head, the
     * 32-byte loop and the tail together */
    enum { LEN = 70001 };
    uint8_t *a = malloc(LEN + 1), *b = malloc(LEN + 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < LEN + 1; i++)
        a[i] = b[i] = (uint8_t)(i * 7);
    cc__ws_mask(a + 1, LEN, MASK, 6);
    naive_mask(b + 1, LEN, MASK, 6);
    ck_assert_mem_eq(a, b, LEN + 1);
    free(a);
    free(b);
}
END_TEST

/* ---- close codes ---- */

START_TEST(test_close_code_table)
{
    static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                1010, 1011, 1012, 1013, 1014, 3000, 3999,
                                4000, 4008, 4999};
    static const int invalid[] = {-1, 0, 1, 999, 1004, 1005, 1006, 1015,
                                  1016, 1100, 2000, 2999, 5000, 65535,
                                  65536, 100000};
    for (size_t i = 0; i < CC__ARRAY_LEN(valid); i++)
        ck_assert_msg(cc__ws_close_code_valid(valid[i]) == 1, "%d",
                      valid[i]);
    for (size_t i = 0; i < CC__ARRAY_LEN(invalid); i++)
        ck_assert_msg(cc__ws_close_code_valid(invalid[i]) == 0, "%d",
                      invalid[i]);

    /* and the whole 16-bit range against the rule written out */
    int count = 0;
    for (int c = 0; c <= 65535; c++) {
        int want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                   (c >= 3000 && c <= 4999);
        ck_assert_msg(cc__ws_close_code_valid(c) == want, "%d", c);
        count += want;
    }
    ck_assert_int_eq(count, 4 + 8 + 2000);
}
END_TEST

static int
close_parse(const void *p, size_t n, int *code, const uint8_t **reason,
            size_t *rlen)
{
    *code = -7;
    *reason = (const uint8_t *)"junk";
    *rlen = 99;
    return cc__ws_close_parse(p, n, code, reason, rlen);
}

START_TEST(test_close_parse)
{
    int code;
    const uint8_t *reason;
    size_t rlen;

    /* empty: no status, 1005 */
    ck_assert_int_eq(close_parse("", 0, &code, &reason, &rlen), 0);
    ck_assert_int_eq(code, 1005);
    ck_assert_ptr_null(reason);
    ck_assert_uint_eq(rlen, 0);

    /* one byte */
    ck_assert_int_eq(close_parse("\x03", 1, &code, &reason, &rlen), 1002);

    /* code only */
    ck_assert_int_eq(close_parse("\x03\xe8", 2, &code, &reason, &rlen), 0);
    ck_assert_int_eq(code, 1000);
    ck_assert_uint_eq(rlen, 0);

    /* code and reason: points into the payload */
    static const uint8_t bye[] = "\x0f\xa8rate limited \xce\xba";
    ck_assert_int_eq(close_parse(bye, sizeof bye - 1, &code, &reason, &rlen),
                     0);
    ck_assert_int_eq(code, 4008);
    ck_assert_ptr_eq(reason, bye + 2);
    ck_assert_uint_eq(rlen, sizeof bye - 3);

    /* invalid codes */
    static const int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999,
                              5000, 65535};
    for (size_t i = 0; i < CC__ARRAY_LEN(bad); i++) {
        uint8_t p[4] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i], 'o', 'k'};
        ck_assert_int_eq(close_parse(p, 2, &code, &reason, &rlen), 1002);
        ck_assert_int_eq(close_parse(p, 4, &code, &reason, &rlen), 1002);
    }
    /* an invalid code wins over a bad reason */
    ck_assert_int_eq(close_parse("\x03\xed\xff", 3, &code, &reason, &rlen),
                     1002);

    /* bad UTF-8 in the reason: 1007, including a truncated sequence */
    ck_assert_int_eq(close_parse("\x03\xe8\xff", 3, &code, &reason, &rlen),
                     1007);
    ck_assert_int_eq(close_parse("\x03\xe8"
                                 "ab\xed\xa0\x80",
                                 7, &code, &reason, &rlen),
                     1007);
    ck_assert_int_eq(close_parse("\x03\xe8"
                                 "ab\xce",
                                 5, &code, &reason, &rlen),
                     1007);
    ck_assert_int_eq(close_parse("\x03\xe8\xc0\xaf", 4, &code, &reason,
                                 &rlen),
                     1007);

    /* longest legal: 2 + 123 */
    uint8_t big[125];
    big[0] = 0x0b;
    big[1] = 0xb8; /* 3000 */
    memset(big + 2, 'x', sizeof big - 2);
    ck_assert_int_eq(close_parse(big, sizeof big, &code, &reason, &rlen), 0);
    ck_assert_int_eq(code, 3000);
    ck_assert_uint_eq(rlen, 123);

    /* reason outputs are optional */
    ck_assert_int_eq(cc__ws_close_parse((const uint8_t *)"\x03\xe9", 2, &code,
                                        NULL, NULL),
                     0);
    ck_assert_int_eq(code, 1001);
}
END_TEST

/* ---- regressions from fuzzing (tests/fuzz/fuzz_frame.c) ---- */

START_TEST(test_fuzz_regressions)
{
    /* No crash has been found so far. These are corner cases the fuzzer's
     * invariants rely on, kept so the invariants stay true. */
    cc__ws_hdr h;
    uint16_t code;
    /* 0x7f after a masked 127 marker with only the first length byte in:
     * need more, not an error */
    ck_assert_int_eq(decode((const uint8_t *)"\x82\xff\x7f", 3, 1, &h, &code),
                     0);
    /* opcode 0 with fin=0 is a legal continuation header */
    ck_assert_int_eq(decode((const uint8_t *)"\x00\x00", 2, 0, &h, &code), 2);
    ck_assert_uint_eq(h.fin, 0);
    ck_assert_uint_eq(h.opcode, 0);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("ws_frame");
    TCase *tc = tcase_create("header");
    tcase_add_test(tc, test_roundtrip_lengths);
    tcase_add_test(tc, test_encode_exact_bytes);
    tcase_add_test(tc, test_decode_rfc_examples);
    tcase_add_test(tc, test_partial_headers);
    suite_add_tcase(s, tc);

    tc = tcase_create("reject");
    tcase_add_test(tc, test_reject_rsv);
    tcase_add_test(tc, test_reject_opcodes);
    tcase_add_test(tc, test_reject_fragmented_control);
    tcase_add_test(tc, test_reject_control_too_long);
    tcase_add_test(tc, test_reject_len64_msb);
    tcase_add_test(tc, test_reject_masking);
    tcase_add_test(tc, test_reject_null_close_code);
    suite_add_tcase(s, tc);

    tc = tcase_create("mask");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mask_vs_naive);
    tcase_add_test(tc, test_mask_in_pieces);
    tcase_add_test(tc, test_mask_large);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_test(tc, test_close_code_table);
    tcase_add_test(tc, test_close_parse);
    suite_add_tcase(s, tc);

    tc = tcase_create("regress");
    tcase_add_test(tc, test_fuzz_regressions);
    suite_add_tcase(s, tc);
    return s;
}
