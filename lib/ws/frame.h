/*
 * lib/ws/frame.h - the WebSocket frame codec (RFC 6455 §5). Pure: no I/O,
 * no clock, no allocation. Used by the connection layer (conn.c) for both
 * the server side (peer frames must be masked) and the client side (peer
 * frames must not be masked), and by the fuzz target.
 */
#ifndef CC_WS_FRAME_H
#define CC_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define CC__WS_MAX_HEADER 14 /* 2 + 8 + 4 */

typedef struct cc__ws_hdr {
    uint8_t fin;      /* 0/1 */
    uint8_t opcode;   /* 0 continuation, 1 text, 2 binary, 8/9/10 control */
    uint8_t masked;   /* 0/1 */
    uint8_t mask[4];  /* valid when masked */
    uint8_t hdr_len;  /* bytes of header, 2..14 */
    uint64_t len;     /* payload length */
} cc__ws_hdr;

/*
 * Decode one frame header from p[0..n).
 * expect_masked: 1 on the server (client frames MUST be masked),
 *                0 on the client (server frames MUST NOT be masked).
 * Returns:
 *   > 0  the header length (== h->hdr_len); payload follows.
 *   0    need more bytes (n too small for the header).
 *   < 0  CC_EFRAME; *close_code is set to the close code to send:
 *        1002 for RSV bits set (no extensions are negotiated), reserved
 *        opcodes (3-7, 11-15), a control frame with fin=0 or len > 125,
 *        a 64-bit length with the most significant bit set, wrong masking.
 * Does NOT check fragmentation sequencing (that is connection state) nor
 * the message size limit.
 */
int cc__ws_hdr_decode(const uint8_t *p, size_t n, int expect_masked,
                      cc__ws_hdr *h, uint16_t *close_code);

/*
 * Encode a header into out (>= CC__WS_MAX_HEADER bytes) for a frame with
 * this fin/opcode/payload length; mask NULL = unmasked, else the 4 mask
 * bytes are written. Uses the shortest length form. Returns bytes written.
 */
size_t cc__ws_hdr_encode(uint8_t *out, int fin, int opcode, uint64_t len,
                         const uint8_t *mask);

/*
 * XOR p[0..n) in place with mask, where p[0] is payload byte number
 * `offset` of the frame (so a payload may be unmasked in pieces).
 * Fast: works a word at a time.
 */
void cc__ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* UTF-8 validation, incremental (state carried across calls/fragments).
 * Start with CC__UTF8_ACCEPT. Returns the new state: CC__UTF8_ACCEPT when
 * the input so far is complete valid UTF-8, CC__UTF8_REJECT (sticky) when
 * invalid (overlongs, surrogates U+D800..DFFF, > U+10FFFF, bad
 * continuation), any other value = valid so far but mid-sequence.
 * Must fail fast: an invalid sequence is rejected at its first bad byte,
 * even when it ends a fragment. Fast path for ASCII runs. */
#define CC__UTF8_ACCEPT 0u
#define CC__UTF8_REJECT 1u
uint32_t cc__utf8_validate(uint32_t state, const uint8_t *p, size_t n);

/* May a peer send this close code in a close frame? (1000-1003, 1007-1011,
 * 1012-1014 as registered, 3000-4999; not 1004/1005/1006/1015, not
 * <1000, not 1016-2999, not >=5000). Returns 1 or 0. */
int cc__ws_close_code_valid(int code);

/*
 * Parse a close frame's (unmasked) payload. n == 0: *code = 1005, no
 * reason, returns 0. n == 1: returns 1002. Invalid code: 1002. Reason not
 * valid UTF-8: 1007. Else 0, with *code and reason pointer/length set.
 * (Returned nonzero value = the close code we must answer with.)
 */
int cc__ws_close_parse(const uint8_t *p, size_t n, int *code,
                       const uint8_t **reason, size_t *reason_len);

#endif
