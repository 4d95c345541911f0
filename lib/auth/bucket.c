/*
 * lib/auth/bucket.c - token buckets for the rate limits of PROTOCOL.md §6.
 * The bucket is a POD the caller keeps (one per user, tenant, IP...); this
 * file only does the arithmetic, against the caller's clock.
 *
 * The wait returned on refusal is exact: it is the smallest whole number
 * of milliseconds after which the same refill formula gives a token, so a
 * caller that sleeps exactly that long and retries is always allowed (if
 * nobody else took from the bucket). Floating-point rounding could make a
 * plain ceil() one millisecond too short or too long, so the result is
 * nudged against the formula itself.
 */
#include <math.h>

#include "core/internal.h"

#define WAIT_MAX ((int64_t)INT32_MAX)
/* A token counts as whole within this much of 1: refill sums such as
 * 0.02 + 0.98 may land one ulp short of 1.0, which must not cost a
 * caller an extra millisecond. */
#define WHOLE (1.0 - 1e-9)

/* Tokens after elapsed_ms of refill, capped at burst. */
static double
refill(double tokens, double rate, uint64_t elapsed_ms, double burst)
{
    double t = tokens + rate * (double)elapsed_ms / 1000.0;
    return t < burst ? t : burst;
}

/* Milliseconds of refill after which `tokens` becomes whole. */
static int64_t
wait_ms(double tokens, double rate, double burst)
{
    double need = (1.0 - tokens) * 1000.0 / rate;
    if (!(need < (double)WAIT_MAX))
        return WAIT_MAX;
    int64_t w = (int64_t)need;
    if ((double)w < need)
        w++; /* ceil without libm */
    if (w < 1)
        w = 1;
    while (w > 1 && refill(tokens, rate, (uint64_t)(w - 1), burst) >= WHOLE)
        w--;
    while (w < WAIT_MAX && refill(tokens, rate, (uint64_t)w, burst) < WHOLE)
        w++;
    return w;
}

int64_t
cc_bucket_take(cc_bucket *b, double rate, double burst, uint64_t now_ms)
{
    if (!b)
        return CC_EINVAL;
    /* No rate, or a capacity that can never hold a whole token: nothing is
     * ever allowed. The negated tests also catch NaN. */
    if (!(rate > 0) || !(burst >= 1) || isinf(rate) || isinf(burst))
        return WAIT_MAX;

    if (b->at_ms == 0) {
        /* a zeroed bucket starts full; at_ms == 0 means "fresh", so a
         * clock reading 0 is stored as 1 */
        b->tokens = burst;
        b->at_ms = now_ms ? now_ms : 1;
    } else {
        double t = b->tokens;
        if (!(t >= 0))
            t = 0; /* NaN or negative: not something we ever store */
        /* A clock that went backwards adds nothing, and at_ms stays where
         * it was so the same interval is never counted twice. */
        if (now_ms > b->at_ms) {
            t = refill(t, rate, now_ms - b->at_ms, burst);
            b->at_ms = now_ms;
        }
        b->tokens = t < burst ? t : burst;
    }

    if (b->tokens >= WHOLE) {
        b->tokens = b->tokens > 1.0 ? b->tokens - 1.0 : 0.0;
        return 0;
    }
    int64_t w = wait_ms(b->tokens, rate, burst);
    /* refill counts from at_ms, which is later than now_ms when the clock
     * went backwards */
    if (now_ms < b->at_ms) {
        uint64_t behind = b->at_ms - now_ms;
        w = behind >= (uint64_t)(WAIT_MAX - w) ? WAIT_MAX
                                               : w + (int64_t)behind;
    }
    return w;
}
