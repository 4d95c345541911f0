/*
 * lib/ws/frame.c - the WebSocket frame codec (RFC 6455 §5): header decode
 * and encode, payload masking, incremental UTF-8 validation and close
 * payload parsing. Pure functions: no I/O, no clock, no allocation, no
 * state outside the arguments.
 *
 * Two of these run over every payload byte, so they are written for speed:
 *
 *  - cc__ws_mask XORs eight bytes at a time with the 4-byte key repeated
 *    twice in a word. Words are moved with memcpy (which compilers turn into
 *    plain loads/stores), so any alignment of p is fine and there is no
 *    aliasing or alignment UB. Long buffers are first brought to an 8-byte
 *    boundary so the word loads never split a cache line.
 *
 *  - cc__utf8_validate is a "shift DFA": every input byte maps to one
 *    64-bit row that packs the next state for every current state, six bits
 *    per state, and a state is the bit offset of its own slot. One step is
 *    then `s = row[byte] >> s`, a single shift on the critical path instead
 *    of a dependent table load. The row is independent of the state, so the
 *    CPU fetches it early. Runs of ASCII are skipped 16 bytes at a time.
 *    The public state numbers are the DFA state indexes (0 accept, 1
 *    reject, 2..8 mid-sequence); internally a state is index * 6.
 */
#include <string.h>

#include "core/internal.h"
#include "ws/frame.h"

/* ---- headers ---- */

/* Opcodes 3-7 and 11-15 are reserved (RFC 6455 §5.2). Bit n set = valid. */
#define OPCODE_VALID_BITS 0x0707u

static int
fail(uint16_t *close_code, uint16_t code)
{
    if (close_code)
        *close_code = code;
    return CC_EFRAME;
}

int
cc__ws_hdr_decode(const uint8_t *p, size_t n, int expect_masked,
                  cc__ws_hdr *h, uint16_t *close_code)
{
    /* Every check is made as soon as the byte it needs has arrived, so a
     * bad frame is refused without waiting for the rest of its header. */
    if (n < 1)
        return 0;
    uint8_t b0 = p[0];
    uint8_t opcode = b0 & 0x0f;
    int fin = b0 >> 7;
    /* No extension is ever negotiated, so every RSV bit must be 0. */
    if (b0 & 0x70)
        return fail(close_code, 1002);
    if (!((OPCODE_VALID_BITS >> opcode) & 1))
        return fail(close_code, 1002);
    int control = (opcode & 0x08) != 0;
    if (control && !fin)
        return fail(close_code, 1002);

    if (n < 2)
        return 0;
    uint8_t b1 = p[1];
    int masked = b1 >> 7;
    unsigned len7 = b1 & 0x7f;
    /* Clients must mask, servers must not (RFC 6455 §5.1). */
    if (masked != (expect_masked != 0))
        return fail(close_code, 1002);
    if (control && len7 > 125)
        return fail(close_code, 1002);

    size_t need = 2 + (masked ? 4 : 0);
    if (len7 == 126)
        need += 2;
    else if (len7 == 127) {
        need += 8;
        if (n >= 3 && (p[2] & 0x80))
            return fail(close_code, 1002);
    }
    if (n < need)
        return 0;

    /* A longer length form than needed (RFC 6455 says senders MUST use the
     * shortest) is accepted: the value is unambiguous and frame.h does not
     * list it as an error. */
    uint64_t len = len7;
    size_t off = 2;
    if (len7 == 126) {
        len = ((uint64_t)p[2] << 8) | p[3];
        off = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        off = 10;
    }

    h->fin = (uint8_t)fin;
    h->opcode = opcode;
    h->masked = (uint8_t)masked;
    if (masked)
        memcpy(h->mask, p + off, 4);
    else
        memset(h->mask, 0, 4);
    h->hdr_len = (uint8_t)need;
    h->len = len;
    return (int)need;
}

size_t
cc__ws_hdr_encode(uint8_t *out, int fin, int opcode, uint64_t len,
                  const uint8_t *mask)
{
    uint8_t mbit = mask ? 0x80 : 0x00;
    size_t n;

    out[0] = (uint8_t)((fin ? 0x80 : 0x00) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)(mbit | len);
        n = 2;
    } else if (len <= 0xffff) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* ---- masking ---- */

/* Below this, aligning first costs more than it saves. */
#define MASK_ALIGN_MIN 64

void
cc__ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    size_t i = 0;
    unsigned phase = (unsigned)(offset & 3);

    if (n < 8) {
        /* not worth setting up the word key */
        for (; i < n; i++)
            p[i] ^= mask[(phase + i) & 3];
        return;
    }
    if (n >= MASK_ALIGN_MIN) {
        size_t head = (size_t)(-(uintptr_t)p & 7);
        for (; i < head; i++)
            p[i] ^= mask[(phase + i) & 3];
        phase = (unsigned)((phase + head) & 3);
    }

    /* The key as it lines up with p + i, twice: a word in memory order,
     * so the XOR is the same on any endianness. Rotating the loaded
     * mask moves byte `phase` to the lowest address. */
    uint32_t m32;
    memcpy(&m32, mask, 4);
    if (phase) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        m32 = (m32 << (8 * phase)) | (m32 >> (32 - 8 * phase));
#else
        m32 = (m32 >> (8 * phase)) | (m32 << (32 - 8 * phase));
#endif
    }
    uint64_t k = ((uint64_t)m32 << 32) | m32;

    uint8_t *q = p + i;
    size_t left = n - i;
    while (left >= 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, q, 8);
        memcpy(&w1, q + 8, 8);
        memcpy(&w2, q + 16, 8);
        memcpy(&w3, q + 24, 8);
        w0 ^= k;
        w1 ^= k;
        w2 ^= k;
        w3 ^= k;
        memcpy(q, &w0, 8);
        memcpy(q + 8, &w1, 8);
        memcpy(q + 16, &w2, 8);
        memcpy(q + 24, &w3, 8);
        q += 32;
        left -= 32;
    }
    while (left >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        w ^= k;
        memcpy(q, &w, 8);
        q += 8;
        left -= 8;
    }
    /* q - (p + i) is a multiple of 8, so the key starts at its byte 0
     * again: XOR the rest out of a copy of the word. */
    if (left) {
        uint8_t kb[8];
        memcpy(kb, &k, 8);
        for (size_t j = 0; j < left; j++)
            q[j] ^= kb[j];
    }
}

/* ---- UTF-8 ---- */

/*
 * DFA states (public numbers; internally times 6):
 *   0 ACCEPT   1 REJECT (absorbing)
 *   2 one continuation byte left (80..BF)
 *   3 two continuation bytes left (80..BF, 80..BF)
 *   4 after E0: next A0..BF (else overlong), then one more
 *   5 after ED: next 80..9F (else a surrogate), then one more
 *   6 three continuation bytes left (after F1..F3)
 *   7 after F0: next 90..BF (else overlong), then two more
 *   8 after F4: next 80..8F (else > U+10FFFF), then two more
 */
#define U8_NSTATES 9

/* A row from the next state for each current state 0..8. */
#define U8_ROW(s0, s1, s2, s3, s4, s5, s6, s7, s8)                      \
    (((uint64_t)((s0) * 6) << 0) | ((uint64_t)((s1) * 6) << 6) |       \
     ((uint64_t)((s2) * 6) << 12) | ((uint64_t)((s3) * 6) << 18) |     \
     ((uint64_t)((s4) * 6) << 24) | ((uint64_t)((s5) * 6) << 30) |     \
     ((uint64_t)((s6) * 6) << 36) | ((uint64_t)((s7) * 6) << 42) |     \
     ((uint64_t)((s8) * 6) << 48))

/* Only from ACCEPT; from anywhere else it is an error. */
#define U8_LEAD(to) U8_ROW(to, 1, 1, 1, 1, 1, 1, 1, 1)
#define R_ASCII U8_LEAD(0)
#define R_BAD U8_LEAD(1) /* C0, C1, F5..FF: never valid */
#define R_C2 U8_LEAD(2)  /* C2..DF */
#define R_E0 U8_LEAD(4)
#define R_E1 U8_LEAD(3) /* E1..EC, EE, EF */
#define R_ED U8_LEAD(5)
#define R_F0 U8_LEAD(7)
#define R_F1 U8_LEAD(6) /* F1..F3 */
#define R_F4 U8_LEAD(8)
/* Continuation bytes, by which of the restricted states accept them. */
/*                from: 0  1  2  3  4  5  6  7  8 */
#define R_80 U8_ROW(1, 1, 0, 2, 1, 2, 3, 1, 3) /* 80..8F */
#define R_90 U8_ROW(1, 1, 0, 2, 1, 2, 3, 3, 1) /* 90..9F */
#define R_A0 U8_ROW(1, 1, 0, 2, 2, 1, 3, 3, 1) /* A0..BF */

#define X2(r) r, r
#define X4(r) X2(r), X2(r)
#define X8(r) X4(r), X4(r)
#define X16(r) X8(r), X8(r)

static const uint64_t u8_rows[] = {
    X16(R_ASCII), X16(R_ASCII), X16(R_ASCII), X16(R_ASCII), /* 00..3F */
    X16(R_ASCII), X16(R_ASCII), X16(R_ASCII), X16(R_ASCII), /* 40..7F */
    X16(R_80),                                              /* 80..8F */
    X16(R_90),                                              /* 90..9F */
    X16(R_A0), X16(R_A0),                                   /* A0..BF */
    X2(R_BAD),                                              /* C0..C1 */
    X2(R_C2), X4(R_C2), X8(R_C2), X16(R_C2),                /* C2..DF */
    R_E0,                                                   /* E0 */
    X8(R_E1), X4(R_E1),                                     /* E1..EC */
    R_ED,                                                   /* ED */
    X2(R_E1),                                               /* EE..EF */
    R_F0,                                                   /* F0 */
    X2(R_F1), R_F1,                                         /* F1..F3 */
    R_F4,                                                   /* F4 */
    X8(R_BAD), X2(R_BAD), R_BAD,                            /* F5..FF */
};
/* A short table would zero-fill, and a zero row accepts everything. */
_Static_assert(sizeof(u8_rows) / sizeof(u8_rows[0]) == 256,
               "one UTF-8 DFA row per byte value");

#define U8_IS_ACCEPT(s) (((s)&63) == 0)
#define U8_IS_REJECT(s) (((s)&63) == 6)
#define ASCII_HI 0x8080808080808080u

/* Bytes run through the DFA before looking for ASCII again. */
#define U8_CHUNK 16

uint32_t
cc__utf8_validate(uint32_t state, const uint8_t *p, size_t n)
{
    if (state >= U8_NSTATES || state == CC__UTF8_REJECT)
        return CC__UTF8_REJECT;

    /* Only the low 6 bits of s are meaningful; the shift hardware ignores
     * the rest, so the `& 63` in the loop costs nothing on x86/ARM. */
    uint64_t s = (uint64_t)state * 6;
    size_t i = 0;

    while (i < n) {
        if (U8_IS_ACCEPT(s)) {
            while (n - i >= 16) {
                uint64_t a, b;
                memcpy(&a, p + i, 8);
                memcpy(&b, p + i + 8, 8);
                if ((a | b) & ASCII_HI)
                    break;
                i += 16;
            }
            if (n - i >= 8) {
                uint64_t a;
                memcpy(&a, p + i, 8);
                if (!(a & ASCII_HI))
                    i += 8;
            }
            if (i == n)
                break;
        }
        size_t end = n - i > U8_CHUNK ? i + U8_CHUNK : n;
        for (; i < end; i++)
            s = u8_rows[p[i]] >> (s & 63);
        /* REJECT is absorbing, so checking once per chunk is enough to
         * stop early without a branch per byte. */
        if (U8_IS_REJECT(s))
            return CC__UTF8_REJECT;
    }
    return (uint32_t)((s & 63) / 6);
}

/* ---- close frames ---- */

int
cc__ws_close_code_valid(int code)
{
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014)
        return 1;
    return code >= 3000 && code <= 4999;
}

int
cc__ws_close_parse(const uint8_t *p, size_t n, int *code,
                   const uint8_t **reason, size_t *reason_len)
{
    if (reason)
        *reason = NULL;
    if (reason_len)
        *reason_len = 0;
    if (n == 0) {
        /* No status code: report "no status received" (RFC 6455 §7.1.5). */
        *code = 1005;
        return 0;
    }
    if (n == 1)
        return 1002;
    int c = (p[0] << 8) | p[1];
    if (!cc__ws_close_code_valid(c))
        return 1002;
    if (cc__utf8_validate(CC__UTF8_ACCEPT, p + 2, n - 2) != CC__UTF8_ACCEPT)
        return 1007;
    *code = c;
    if (reason)
        *reason = n > 2 ? p + 2 : NULL;
    if (reason_len)
        *reason_len = n - 2;
    return 0;
}
