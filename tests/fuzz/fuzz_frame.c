/*
 * tests/fuzz/fuzz_frame.c - libFuzzer target for the WebSocket frame codec
 * (lib/ws/frame.h). The input is treated as a byte stream from a peer and
 * run through a small stateful receiver built only from frame.h: decode a
 * header, unmask the payload in pieces, validate text incrementally across
 * fragments, parse close payloads. It runs once as a server
 * (expect_masked=1) and once as a client (expect_masked=0), and checks the
 * codec's invariants along the way; any violation aborts.
 *
 * The first input byte is not part of the stream: it picks the piece size
 * used for unmasking and validating, so the fuzzer explores splits too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ws/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* A byte-at-a-time UTF-8 reference written from the Unicode table, to
 * compare the fast validator with. Returns REF_OK for complete valid text,
 * REF_BAD when some prefix can not start valid text (where the validator
 * must have failed), REF_MORE when the input ends inside a character that
 * could still be completed. */
enum { REF_OK, REF_BAD, REF_MORE };

static int
utf8_ref(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        uint32_t c, min, max = 0x10ffff;
        size_t len;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xc2 && b <= 0xdf) {
            len = 2, c = b & 0x1f, min = 0x80, max = 0x7ff;
        } else if (b >= 0xe0 && b <= 0xef) {
            len = 3, c = b & 0x0f, min = 0x800, max = 0xffff;
        } else if (b >= 0xf0 && b <= 0xf4) {
            len = 4, c = b & 0x07, min = 0x10000;
        } else {
            return REF_BAD;
        }
        size_t k = 1;
        for (; k < len && i + k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return REF_BAD;
            c = (c << 6) | (p[i + k] & 0x3f);
        }
        /* the code points this sequence can still become */
        unsigned missing = (unsigned)(6 * (len - k));
        uint32_t lo = c << missing, hi = lo | ((1u << missing) - 1);
        if (lo < min)
            lo = min;
        if (hi > max)
            hi = max;
        if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff))
            return REF_BAD;
        if (k < len)
            return REF_MORE;
        i += len;
    }
    return REF_OK;
}

static int
utf8_kind(uint32_t state)
{
    return state == CC__UTF8_ACCEPT   ? REF_OK
           : state == CC__UTF8_REJECT ? REF_BAD
                                      : REF_MORE;
}

static int
opcode_valid(int op)
{
    return op <= 2 || (op >= 8 && op <= 10);
}

/* The header checks that hold for any input. */
static void
check_header(const uint8_t *p, size_t n, int expect_masked, int r,
             const cc__ws_hdr *h, uint16_t code)
{
    if (r < 0) {
        CHECK(r == CC_EFRAME);
        CHECK(code == 1002);
        /* an error is final: more bytes never turn it into success */
        uint8_t more[CC__WS_MAX_HEADER * 2];
        size_t k = n < sizeof more ? n : sizeof more;
        memcpy(more, p, k);
        memset(more + k, 0, sizeof more - k);
        cc__ws_hdr h2;
        uint16_t c2 = 0;
        CHECK(cc__ws_hdr_decode(more, sizeof more, expect_masked, &h2, &c2) ==
              CC_EFRAME);
        return;
    }
    if (r == 0) {
        CHECK(n < CC__WS_MAX_HEADER);
        return;
    }
    CHECK(r == h->hdr_len);
    CHECK(r >= 2 && r <= CC__WS_MAX_HEADER);
    CHECK((size_t)r <= n);
    CHECK(h->fin <= 1 && h->masked <= 1);
    CHECK(h->masked == (expect_masked != 0));
    CHECK(opcode_valid(h->opcode));
    CHECK(h->len < (1ull << 63));
    if (h->opcode >= 8) {
        CHECK(h->fin == 1);
        CHECK(h->len <= 125);
    }
    /* every strict prefix of a good header is "need more" */
    for (int k = 0; k < r; k++) {
        cc__ws_hdr h2;
        uint16_t c2 = 0;
        CHECK(cc__ws_hdr_decode(p, (size_t)k, expect_masked, &h2, &c2) == 0);
    }
    /* Re-encoding gives the same fields and the shortest form; when the
     * peer used the shortest form too, the very same bytes. */
    uint8_t enc[CC__WS_MAX_HEADER];
    size_t en = cc__ws_hdr_encode(enc, h->fin, h->opcode, h->len,
                                  h->masked ? h->mask : NULL);
    CHECK(en >= 2 && en <= (size_t)r);
    size_t form = h->len <= 125 ? 2 : h->len <= 0xffff ? 4 : 10;
    CHECK(en == form + (h->masked ? 4 : 0));
    if ((p[1] & 0x7f) == (enc[1] & 0x7f))
        CHECK(en == (size_t)r && memcmp(enc, p, en) == 0);
    cc__ws_hdr h3;
    uint16_t c3 = 0;
    CHECK(cc__ws_hdr_decode(enc, en, expect_masked, &h3, &c3) == (int)en);
    CHECK(h3.fin == h->fin && h3.opcode == h->opcode && h3.len == h->len &&
          h3.masked == h->masked && memcmp(h3.mask, h->mask, 4) == 0);
}

static void
check_close(const uint8_t *p, size_t n)
{
    int code = -1;
    const uint8_t *reason = NULL;
    size_t rlen = 12345;
    int r = cc__ws_close_parse(p, n, &code, &reason, &rlen);
    CHECK(r == 0 || r == 1002 || r == 1007);
    if (n == 0) {
        CHECK(r == 0 && code == 1005 && rlen == 0);
        return;
    }
    if (n == 1) {
        CHECK(r == 1002);
        return;
    }
    int c = (p[0] << 8) | p[1];
    if (!cc__ws_close_code_valid(c)) {
        CHECK(r == 1002);
        return;
    }
    CHECK(c >= 1000 && c < 5000 && c != 1004 && c != 1005 && c != 1006 &&
          c != 1015);
    int ok = utf8_ref(p + 2, n - 2) == REF_OK;
    CHECK(r == (ok ? 0 : 1007));
    if (r == 0) {
        CHECK(code == c);
        CHECK(rlen == n - 2);
        CHECK(rlen == 0 || reason == p + 2);
    }
}

/* Run the receiver over buf[0..n) (a private, writable copy). */
static void
receive(uint8_t *buf, size_t n, int expect_masked, size_t piece)
{
    int in_msg = 0, msg_text = 0;
    uint32_t u8 = CC__UTF8_ACCEPT;
    /* the unmasked text of the current message, to check the incremental
     * result against the naive validator over the whole message */
    uint8_t *msg = malloc(n ? n : 1);
    size_t msg_len = 0;
    size_t pos = 0;
    CHECK(msg != NULL);

    while (pos < n) {
        cc__ws_hdr h;
        uint16_t code = 0;
        memset(&h, 0, sizeof h);
        int r = cc__ws_hdr_decode(buf + pos, n - pos, expect_masked, &h,
                                  &code);
        check_header(buf + pos, n - pos, expect_masked, r, &h, code);
        if (r <= 0)
            break; /* need more, or close with `code` */
        pos += (size_t)r;
        size_t avail = n - pos;
        size_t len = h.len < avail ? (size_t)h.len : avail;
        int whole = len == h.len;
        uint8_t *pl = buf + pos;

        /* fragmentation rules (connection state, not the codec's job) */
        if (h.opcode == 0 && !in_msg)
            break; /* 1002: continuation without a message */
        if ((h.opcode == 1 || h.opcode == 2) && in_msg)
            break; /* 1002: new message inside a message */

        /* unmask in pieces and compare with a one-shot naive unmask */
        uint8_t *ref = malloc(len ? len : 1);
        CHECK(ref != NULL);
        memcpy(ref, pl, len);
        if (h.masked) {
            for (size_t i = 0; i < len; i++)
                ref[i] ^= h.mask[i & 3];
            for (size_t off = 0; off < len; off += piece) {
                size_t k = len - off < piece ? len - off : piece;
                cc__ws_mask(pl + off, k, h.mask, off);
            }
        }
        CHECK(memcmp(ref, pl, len) == 0);
        free(ref);

        if (h.opcode == 1 || (h.opcode == 0 && msg_text)) {
            if (h.opcode == 1) {
                msg_text = 1;
                u8 = CC__UTF8_ACCEPT;
                msg_len = 0;
            }
            uint32_t before = u8;
            for (size_t off = 0; off < len; off += piece) {
                size_t k = len - off < piece ? len - off : piece;
                u8 = cc__utf8_validate(u8, pl + off, k);
            }
            /* the same bytes in one call give the same state */
            CHECK(cc__utf8_validate(before, pl, len) == u8);
            CHECK(u8 <= 8); /* 0 accept, 1 reject, 2..8 mid-sequence */
            memcpy(msg + msg_len, pl, len);
            msg_len += len;
            /* at every fragment edge, including fail-fast rejects */
            CHECK(utf8_kind(u8) == utf8_ref(msg, msg_len));
            if (u8 == CC__UTF8_REJECT)
                break; /* 1007 */
            if (h.fin && whole && u8 != CC__UTF8_ACCEPT)
                break; /* 1007: ends mid-character */
        } else if (h.opcode == 8 && whole) {
            check_close(pl, len);
            break; /* close: nothing is read after it */
        }

        if (!whole)
            break; /* truncated payload: need more */
        if (h.opcode <= 2) {
            in_msg = !h.fin;
            if (h.fin)
                msg_text = 0;
        }
        pos += len;
    }
    free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* piece sizes 1..64 */
    size_t piece = (size_t)(data[0] & 63) + 1;
    data++;
    size--;

    /* +1 so the copy starts at an odd address too: masking and the ASCII
     * fast path see unaligned pointers */
    uint8_t *buf = malloc(size + 1);
    if (!buf)
        return 0;
    for (int em = 0; em <= 1; em++) {
        uint8_t *b = buf + (em ? 1 : 0);
        memcpy(b, data, size);
        receive(b, size, em, piece);
    }

    /* The whole input as text and as a close payload, too. */
    uint32_t s = cc__utf8_validate(CC__UTF8_ACCEPT, data, size);
    CHECK(utf8_kind(s) == utf8_ref(data, size));
    if (size <= 125)
        check_close(data, size);
    free(buf);
    return 0;
}
