/*
 * tests/test_utf8.c - the incremental UTF-8 validator (cc__utf8_validate in
 * lib/ws/frame.c): tables of valid and invalid input, exhaustive checks of
 * short sequences against a naive code-point reference, splitting at every
 * position, sticky rejection, fail-fast, and the ASCII fast path.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "testutil.h"
#include "ws/frame.h"

#define ACCEPT CC__UTF8_ACCEPT
#define REJECT CC__UTF8_REJECT

/* What the validator's result means, for comparisons. */
enum { R_ACCEPT, R_REJECT, R_PARTIAL };

static int
kind(uint32_t state)
{
    if (state == ACCEPT)
        return R_ACCEPT;
    if (state == REJECT)
        return R_REJECT;
    return R_PARTIAL;
}

static uint32_t
v(const void *p, size_t n)
{
    return cc__utf8_validate(ACCEPT, p, n);
}

/* ---- a naive reference, written from the Unicode definition ---- */

static int
cp_ok(uint32_t c)
{
    return c <= 0x10ffff && !(c >= 0xd800 && c <= 0xdfff);
}

/*
 * Can the incomplete sequence t[0..k) (a lead byte and k-1 continuation
 * bytes, 1 <= k < len) still be completed to a valid code point? The
 * missing low bits range from all zeros to all ones; ask whether any
 * valid, non-overlong code point lies in that range.
 */
static int
prefix_ok(const uint8_t *t, size_t k, size_t len)
{
    static const uint32_t lead_mask[] = {0, 0, 0x1f, 0x0f, 0x07};
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t max_cp[] = {0, 0, 0x7ff, 0xffff, 0x10ffff};
    uint32_t c = t[0] & lead_mask[len];
    for (size_t i = 1; i < k; i++)
        c = (c << 6) | (t[i] & 0x3f);
    size_t missing = len - k;
    uint32_t lo = c << (6 * missing);
    uint32_t hi = lo | ((1u << (6 * missing)) - 1);
    /* clip to the range this length may encode */
    if (lo < min_cp[len])
        lo = min_cp[len];
    if (hi > max_cp[len])
        hi = max_cp[len];
    if (lo > hi)
        return 0;
    /* all surrogates? */
    return !(lo >= 0xd800 && hi <= 0xdfff);
}

/* R_ACCEPT / R_REJECT / R_PARTIAL for the whole of p[0..n). */
static int
reference(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t len;
        if (b < 0x80)
            len = 1;
        else if (b >= 0xc0 && b <= 0xdf)
            len = 2;
        else if (b >= 0xe0 && b <= 0xef)
            len = 3;
        else if (b >= 0xf0 && b <= 0xf7)
            len = 4;
        else
            return R_REJECT; /* continuation or F8..FF */
        if (len == 1) {
            i++;
            continue;
        }
        size_t k = 1;
        while (k < len && i + k < n) {
            if ((p[i + k] & 0xc0) != 0x80)
                return R_REJECT;
            k++;
        }
        if (k < len) /* input ends inside the sequence */
            return prefix_ok(p + i, k, len) ? R_PARTIAL : R_REJECT;
        uint32_t c = b & (0xff >> (len + 1));
        for (size_t j = 1; j < len; j++)
            c = (c << 6) | (p[i + j] & 0x3f);
        static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        if (c < min_cp[len] || !cp_ok(c))
            return R_REJECT;
        i += len;
    }
    return R_ACCEPT;
}

/* ---- tables ---- */

typedef struct {
    const char *s;
    size_t n; /* 0 = strlen */
    int want;
    const char *what;
} u8case;

#define S(x) x, sizeof(x) - 1

static const u8case CASES[] = {
    /* valid */
    {S(""), R_ACCEPT, "empty"},
    {S("hello, world"), R_ACCEPT, "ascii"},
    {S("\x00"), R_ACCEPT, "NUL"},
    {S("\x7f"), R_ACCEPT, "DEL"},
    {S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), R_ACCEPT, "kosme"},
    {S("\xc2\x80"), R_ACCEPT, "U+0080"},
    {S("\xdf\xbf"), R_ACCEPT, "U+07FF"},
    {S("\xe0\xa0\x80"), R_ACCEPT, "U+0800"},
    {S("\xed\x9f\xbf"), R_ACCEPT, "U+D7FF"},
    {S("\xee\x80\x80"), R_ACCEPT, "U+E000"},
    {S("\xef\xbf\xbd"), R_ACCEPT, "U+FFFD"},
    {S("\xef\xbf\xbe"), R_ACCEPT, "U+FFFE noncharacter"},
    {S("\xef\xbf\xbf"), R_ACCEPT, "U+FFFF"},
    {S("\xf0\x90\x80\x80"), R_ACCEPT, "U+10000"},
    {S("\xf0\x9f\x98\x80"), R_ACCEPT, "U+1F600"},
    {S("\xf3\xbf\xbf\xbf"), R_ACCEPT, "U+FFFFF"},
    {S("\xf4\x80\x80\x80"), R_ACCEPT, "U+100000"},
    {S("\xf4\x8f\xbf\xbf"), R_ACCEPT, "U+10FFFF"},
    {S("\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c"),
     R_ACCEPT, "CJK"},
    /* overlong */
    {S("\xc0\x80"), R_REJECT, "overlong NUL 2"},
    {S("\xc0\xaf"), R_REJECT, "overlong / 2"},
    {S("\xc1\xbf"), R_REJECT, "overlong U+7F 2"},
    {S("\xe0\x80\x80"), R_REJECT, "overlong NUL 3"},
    {S("\xe0\x80\xaf"), R_REJECT, "overlong / 3"},
    {S("\xe0\x9f\xbf"), R_REJECT, "overlong U+7FF 3"},
    {S("\xf0\x80\x80\x80"), R_REJECT, "overlong NUL 4"},
    {S("\xf0\x80\x80\xaf"), R_REJECT, "overlong / 4"},
    {S("\xf0\x8f\xbf\xbf"), R_REJECT, "overlong U+FFFF 4"},
    {S("\xf8\x80\x80\x80\xaf"), R_REJECT, "overlong / 5"},
    {S("\xfc\x80\x80\x80\x80\xaf"), R_REJECT, "overlong / 6"},
    /* surrogates */
    {S("\xed\xa0\x80"), R_REJECT, "U+D800"},
    {S("\xed\xad\xbf"), R_REJECT, "U+DB7F"},
    {S("\xed\xae\x80"), R_REJECT, "U+DB80"},
    {S("\xed\xaf\xbf"), R_REJECT, "U+DBFF"},
    {S("\xed\xb0\x80"), R_REJECT, "U+DC00"},
    {S("\xed\xbe\x80"), R_REJECT, "U+DF80"},
    {S("\xed\xbf\xbf"), R_REJECT, "U+DFFF"},
    {S("\xed\xa0\x80\xed\xb0\x80"), R_REJECT, "surrogate pair"},
    /* beyond U+10FFFF */
    {S("\xf4\x90\x80\x80"), R_REJECT, "U+110000"},
    {S("\xf4\xbf\xbf\xbf"), R_REJECT, "U+13FFFF"},
    {S("\xf5\x80\x80\x80"), R_REJECT, "F5"},
    {S("\xf7\xbf\xbf\xbf"), R_REJECT, "F7"},
    {S("\xf8\x88\x80\x80\x80"), R_REJECT, "5-byte"},
    {S("\xfc\x84\x80\x80\x80\x80"), R_REJECT, "6-byte"},
    {S("\xfe"), R_REJECT, "FE"},
    {S("\xff"), R_REJECT, "FF"},
    {S("\xfe\xfe\xff\xff"), R_REJECT, "FE FE FF FF"},
    /* lone or stray continuation */
    {S("\x80"), R_REJECT, "lone 80"},
    {S("\xbf"), R_REJECT, "lone BF"},
    {S("a\x80z"), R_REJECT, "80 between ascii"},
    {S("\xc2\x80\x80"), R_REJECT, "one continuation too many"},
    {S("\xce\xba\xbf"), R_REJECT, "stray after kappa"},
    /* truncated, then something else */
    {S("\xc2 "), R_REJECT, "2-byte cut by space"},
    {S("\xe0\xa0 "), R_REJECT, "3-byte cut by space"},
    {S("\xf0\x90\x80 "), R_REJECT, "4-byte cut by space"},
    {S("\xe1\x80\xc2\x80"), R_REJECT, "3-byte cut by a lead"},
    {S("\xc0"), R_REJECT, "C0 alone"},
    {S("\xc1"), R_REJECT, "C1 alone"},
    /* truncated at the end: valid so far */
    {S("\xc2"), R_PARTIAL, "C2 at end"},
    {S("\xdf"), R_PARTIAL, "DF at end"},
    {S("\xe0"), R_PARTIAL, "E0 at end"},
    {S("\xe0\xa0"), R_PARTIAL, "E0 A0 at end"},
    {S("\xed"), R_PARTIAL, "ED at end"},
    {S("\xed\x9f"), R_PARTIAL, "ED 9F at end"},
    {S("\xef\xbf"), R_PARTIAL, "EF BF at end"},
    {S("\xf0"), R_PARTIAL, "F0 at end"},
    {S("\xf0\x90"), R_PARTIAL, "F0 90 at end"},
    {S("\xf0\x90\x80"), R_PARTIAL, "F0 90 80 at end"},
    {S("\xf3\xbf\xbf"), R_PARTIAL, "F3 BF BF at end"},
    {S("\xf4"), R_PARTIAL, "F4 at end"},
    {S("\xf4\x8f\xbf"), R_PARTIAL, "F4 8F BF at end"},
    {S("hello \xce"), R_PARTIAL, "kappa cut"},
    /* ... but not when the bytes so far can't start a valid sequence */
    {S("\xe0\x80"), R_REJECT, "E0 80: overlong already"},
    {S("\xe0\x9f"), R_REJECT, "E0 9F: overlong already"},
    {S("\xed\xa0"), R_REJECT, "ED A0: surrogate already"},
    {S("\xed\xbf"), R_REJECT, "ED BF: surrogate already"},
    {S("\xf0\x80"), R_REJECT, "F0 80: overlong already"},
    {S("\xf0\x8f"), R_REJECT, "F0 8F: overlong already"},
    {S("\xf4\x90"), R_REJECT, "F4 90: too big already"},
    {S("\xf4\xbf"), R_REJECT, "F4 BF: too big already"},
    {S("\xf5"), R_REJECT, "F5 alone"},
};

START_TEST(test_table)
{
    for (size_t i = 0; i < CC__ARRAY_LEN(CASES); i++) {
        const u8case *c = &CASES[i];
        ck_assert_msg(kind(v(c->s, c->n)) == c->want, "%s: got state %u",
                      c->what, v(c->s, c->n));
        /* the reference agrees with the table (the table is right) */
        ck_assert_msg(reference((const uint8_t *)c->s, c->n) == c->want,
                      "reference on %s", c->what);
    }
}
END_TEST

/* Run one case with long ASCII around it so the fast path is involved,
 * at several alignments. The result must not change. */
START_TEST(test_table_in_context)
{
    enum { PAD = 37 };
    uint8_t buf[2 * PAD + 16 + 8];
    for (size_t i = 0; i < CC__ARRAY_LEN(CASES); i++) {
        const u8case *c = &CASES[i];
        for (size_t align = 0; align < 8; align++)
            for (size_t pre = 0; pre <= PAD; pre += 3) {
                uint8_t *p = buf + align;
                memset(p, 'a', pre);
                memcpy(p + pre, c->s, c->n);
                /* leading ASCII never changes the result */
                ck_assert_msg(kind(v(p, pre + c->n)) == c->want,
                              "%s after %zu ascii", c->what, pre);
                /* trailing ASCII: partial becomes reject */
                memset(p + pre + c->n, 'z', PAD);
                int want = c->want == R_PARTIAL ? R_REJECT : c->want;
                ck_assert_msg(kind(v(p, pre + c->n + PAD)) == want,
                              "%s before ascii", c->what);
            }
    }
}
END_TEST

/* ---- exhaustive short inputs vs the reference ---- */

START_TEST(test_exhaustive_1_2)
{
    uint8_t b[2];
    for (int x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        ck_assert_msg(kind(v(b, 1)) == reference(b, 1), "%02x", x);
        for (int y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            ck_assert_msg(kind(v(b, 2)) == reference(b, 2), "%02x %02x", x,
                          y);
        }
    }
}
END_TEST

START_TEST(test_exhaustive_3)
{
    uint8_t b[3];
    for (int x = 0x80; x < 256; x++)
        for (int y = 0; y < 256; y++)
            for (int z = 0; z < 256; z++) {
                b[0] = (uint8_t)x;
                b[1] = (uint8_t)y;
                b[2] = (uint8_t)z;
                uint32_t s = v(b, 3);
                int r = reference(b, 3);
                if (kind(s) != r)
                    ck_abort_msg("%02x %02x %02x: got %u want %d", x, y, z,
                                 s, r);
            }
}
END_TEST

START_TEST(test_exhaustive_4)
{
    /* every lead F0..FF and every second byte; the last two bytes from a
     * set of class boundaries */
    static const uint8_t edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
                                   0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0,
                                   0xed, 0xf0, 0xf4, 0xff};
    uint8_t b[4];
    for (int x = 0xf0; x < 256; x++)
        for (int y = 0; y < 256; y++)
            for (size_t i = 0; i < sizeof edge; i++)
                for (size_t j = 0; j < sizeof edge; j++) {
                    b[0] = (uint8_t)x;
                    b[1] = (uint8_t)y;
                    b[2] = edge[i];
                    b[3] = edge[j];
                    uint32_t s = v(b, 4);
                    int r = reference(b, 4);
                    if (kind(s) != r)
                        ck_abort_msg("%02x %02x %02x %02x: got %u want %d",
                                     x, y, b[2], b[3], s, r);
                }
}
END_TEST

/* Every code point, encoded, is accepted (except surrogates). */
START_TEST(test_all_code_points)
{
    for (uint32_t c = 0; c <= 0x10ffff; c++) {
        uint8_t b[4];
        size_t n;
        if (c < 0x80) {
            b[0] = (uint8_t)c;
            n = 1;
        } else if (c < 0x800) {
            b[0] = (uint8_t)(0xc0 | (c >> 6));
            b[1] = (uint8_t)(0x80 | (c & 0x3f));
            n = 2;
        } else if (c < 0x10000) {
            b[0] = (uint8_t)(0xe0 | (c >> 12));
            b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
            b[2] = (uint8_t)(0x80 | (c & 0x3f));
            n = 3;
        } else {
            b[0] = (uint8_t)(0xf0 | (c >> 18));
            b[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
            b[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
            b[3] = (uint8_t)(0x80 | (c & 0x3f));
            n = 4;
        }
        uint32_t want = cp_ok(c) ? ACCEPT : REJECT;
        if (v(b, n) != want)
            ck_abort_msg("U+%04X: got %u", c, v(b, n));
    }
}
END_TEST

/* ---- incremental use ---- */

START_TEST(test_split_everywhere)
{
    for (size_t i = 0; i < CC__ARRAY_LEN(CASES); i++) {
        const u8case *c = &CASES[i];
        const uint8_t *p = (const uint8_t *)c->s;
        uint32_t whole = v(p, c->n);
        /* two pieces, cut at every position */
        for (size_t cut = 0; cut <= c->n; cut++) {
            uint32_t s = v(p, cut);
            s = cc__utf8_validate(s, p + cut, c->n - cut);
            ck_assert_msg(kind(s) == kind(whole), "%s cut at %zu", c->what,
                          cut);
            ck_assert_msg(s == whole, "%s cut at %zu: state", c->what, cut);
        }
        /* three pieces */
        for (size_t a = 0; a <= c->n; a++)
            for (size_t b = a; b <= c->n; b++) {
                uint32_t s = v(p, a);
                s = cc__utf8_validate(s, p + a, b - a);
                s = cc__utf8_validate(s, p + b, c->n - b);
                ck_assert_msg(s == whole, "%s cut at %zu,%zu", c->what, a, b);
            }
        /* one byte at a time; every prefix agrees with the reference */
        uint32_t s = ACCEPT;
        for (size_t k = 0; k < c->n; k++) {
            s = cc__utf8_validate(s, p + k, 1);
            ck_assert_msg(kind(s) == reference(p, k + 1), "%s byte %zu",
                          c->what, k);
        }
        ck_assert_uint_eq(s, whole);
    }
}
END_TEST

START_TEST(test_code_point_split_across_calls)
{
    /* a long valid message with 2-, 3- and 4-byte characters, cut into two
     * at every position: every split of every code point */
    static const char msg[] =
        "The quick \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 jumps over "
        "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80\xf4\x8f\xbf\xbf "
        "the lazy dog \xc2\xa9\xdf\xbf\xef\xbf\xbd.";
    const uint8_t *p = (const uint8_t *)msg;
    size_t n = sizeof msg - 1;
    ck_assert_uint_eq(v(p, n), ACCEPT);
    for (size_t cut = 0; cut <= n; cut++) {
        uint32_t s = v(p, cut);
        ck_assert_uint_ne(s, REJECT);
        /* mid-character iff the next byte is a continuation byte */
        int mid = cut < n && (p[cut] & 0xc0) == 0x80;
        ck_assert_msg((s != ACCEPT) == mid, "cut %zu state %u", cut, s);
        ck_assert_uint_eq(cc__utf8_validate(s, p + cut, n - cut), ACCEPT);
    }
    /* random-ish ragged pieces */
    for (size_t seed = 1; seed < 50; seed++) {
        uint32_t s = ACCEPT;
        size_t off = 0, step = seed;
        while (off < n) {
            size_t k = step % 7 < n - off ? step % 7 : n - off;
            s = cc__utf8_validate(s, p + off, k);
            ck_assert_uint_ne(s, REJECT);
            off += k;
            step = step * 5 + 3;
        }
        ck_assert_uint_eq(s, ACCEPT);
    }
}
END_TEST

START_TEST(test_reject_is_sticky)
{
    ck_assert_uint_eq(cc__utf8_validate(REJECT, NULL, 0), REJECT);
    ck_assert_uint_eq(cc__utf8_validate(REJECT, (const uint8_t *)"a", 1),
                      REJECT);
    ck_assert_uint_eq(cc__utf8_validate(REJECT, (const uint8_t *)"\x80", 1),
                      REJECT);
    uint8_t ascii[100];
    memset(ascii, 'a', sizeof ascii);
    ck_assert_uint_eq(cc__utf8_validate(REJECT, ascii, sizeof ascii), REJECT);
    /* rejected by a byte, then more valid bytes in the same call */
    uint32_t s = v("\xff", 1);
    ck_assert_uint_eq(s, REJECT);
    ck_assert_uint_eq(cc__utf8_validate(s, ascii, sizeof ascii), REJECT);
    ck_assert_uint_eq(
        cc__utf8_validate(s, (const uint8_t *)"\xce\xba", 2), REJECT);
    memcpy(ascii + 50, "\xc0\xaf", 2);
    ck_assert_uint_eq(v(ascii, sizeof ascii), REJECT);
    /* a state value the validator never returns is treated as REJECT */
    ck_assert_uint_eq(cc__utf8_validate(9, (const uint8_t *)"a", 1), REJECT);
    ck_assert_uint_eq(cc__utf8_validate(12345, NULL, 0), REJECT);
    ck_assert_uint_eq(cc__utf8_validate(UINT32_MAX, NULL, 0), REJECT);
}
END_TEST

START_TEST(test_empty_keeps_state)
{
    static const char *partial[] = {"\xc2", "\xe0", "\xe0\xa0", "\xe1",
                                    "\xe1\x80", "\xed", "\xed\x80", "\xf0",
                                    "\xf0\x90", "\xf0\x90\x80", "\xf1",
                                    "\xf1\x80", "\xf4", "\xf4\x80"};
    ck_assert_uint_eq(cc__utf8_validate(ACCEPT, NULL, 0), ACCEPT);
    for (size_t i = 0; i < CC__ARRAY_LEN(partial); i++) {
        uint32_t s = v(partial[i], strlen(partial[i]));
        ck_assert_uint_ne(s, ACCEPT);
        ck_assert_uint_ne(s, REJECT);
        ck_assert_uint_eq(cc__utf8_validate(s, NULL, 0), s);
    }
}
END_TEST

START_TEST(test_fail_fast)
{
    /* Autobahn 6.4.x: "κόσμε" then a surrogate, delivered in fragments.
     * The message must be rejected at the byte A0, even though the
     * sequence ED A0 80 is not complete yet. */
    static const uint8_t p[] =
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
        "edited";
    size_t n = sizeof p - 1;
    size_t bad = 12; /* index of A0 */
    for (size_t k = 0; k <= n; k++) {
        uint32_t s = v(p, k);
        if (k <= bad)
            ck_assert_msg(s != REJECT, "prefix %zu rejected", k);
        else
            ck_assert_msg(s == REJECT, "prefix %zu not rejected", k);
    }
    /* the same as fragments: "κόσμε", then "\xed\xa0", then the rest */
    uint32_t s = v(p, 11);
    ck_assert_uint_eq(s, ACCEPT);
    s = cc__utf8_validate(s, p + 11, 2);
    ck_assert_uint_eq(s, REJECT);

    /* Autobahn 6.4.2: F4 90 ends a fragment */
    s = v("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", 12);
    ck_assert_uint_ne(s, REJECT);
    ck_assert_uint_eq(cc__utf8_validate(s, (const uint8_t *)"\x90", 1),
                      REJECT);

    /* one byte is enough for the bytes that never occur */
    static const uint8_t never[] = {0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xf8,
                                    0xfe, 0xff};
    for (size_t i = 0; i < sizeof never; i++)
        ck_assert_uint_eq(v(&never[i], 1), REJECT);
}
END_TEST

/* ---- the ASCII fast path ---- */

START_TEST(test_fast_path_positions)
{
    enum { LEN = 80 };
    uint8_t buf[LEN + 8 + 4];
    for (size_t align = 0; align < 8; align++) {
        uint8_t *p = buf + align;
        for (size_t len = 0; len <= LEN; len++) {
            memset(p, 'x', len);
            ck_assert_uint_eq(v(p, len), ACCEPT);
            for (size_t at = 0; at < len; at++) {
                /* one bad byte anywhere */
                memset(p, 'x', len);
                p[at] = 0x80;
                ck_assert_msg(v(p, len) == REJECT, "len %zu at %zu", len, at);
                p[at] = 0xff;
                ck_assert_uint_eq(v(p, len), REJECT);
                /* one valid multi-byte character anywhere it fits */
                memset(p, 'x', len);
                if (at + 3 <= len) {
                    memcpy(p + at, "\xe2\x82\xac", 3);
                    ck_assert_msg(v(p, len) == ACCEPT, "len %zu at %zu", len,
                                  at);
                }
                /* a character cut by the end of the input */
                memset(p, 'x', len);
                p[len - 1] = 0xe2;
                ck_assert_uint_ne(v(p, len), ACCEPT);
                ck_assert_uint_ne(v(p, len), REJECT);
            }
        }
    }
}
END_TEST

START_TEST(test_long_mixed)
{
    /* 64 KiB (the message limit) of mixed text, then one bad byte at a
     * few positions */
    enum { LEN = 65536 };
    static const char unit[] = "abc \xce\xba\xe4\xbd\xa0\xf0\x9f\x98\x80 ";
    size_t ul = sizeof unit - 1;
    uint8_t *p = malloc(LEN);
    ck_assert_ptr_nonnull(p);
    size_t n = 0;
    while (n + ul <= LEN) {
        memcpy(p + n, unit, ul);
        n += ul;
    }
    ck_assert_uint_eq(v(p, n), ACCEPT);
    ck_assert_int_eq(reference(p, n), R_ACCEPT);
    static const size_t at[] = {0, 1, 4, 5, 100, 4097, 65000};
    for (size_t i = 0; i < CC__ARRAY_LEN(at); i++) {
        uint8_t save = p[at[i]];
        p[at[i]] = 0xc0;
        ck_assert_uint_eq(v(p, n), REJECT);
        p[at[i]] = save;
    }
    free(p);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("tables");
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_table_in_context);
    suite_add_tcase(s, tc);

    tc = tcase_create("exhaustive");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_exhaustive_1_2);
    tcase_add_test(tc, test_exhaustive_3);
    tcase_add_test(tc, test_exhaustive_4);
    tcase_add_test(tc, test_all_code_points);
    suite_add_tcase(s, tc);

    tc = tcase_create("incremental");
    tcase_add_test(tc, test_split_everywhere);
    tcase_add_test(tc, test_code_point_split_across_calls);
    tcase_add_test(tc, test_reject_is_sticky);
    tcase_add_test(tc, test_empty_keeps_state);
    tcase_add_test(tc, test_fail_fast);
    suite_add_tcase(s, tc);

    tc = tcase_create("fast_path");
    tcase_add_test(tc, test_fast_path_positions);
    tcase_add_test(tc, test_long_mixed);
    suite_add_tcase(s, tc);
    return s;
}
