/*
 * bench/hist.h - a small log-bucket latency histogram in the spirit of
 * HdrHistogram: every power-of-two range ("octave") is split into 32 equal
 * sub-buckets, so any recorded value is known to within 1/32 of itself
 * (about 3 %; the reported midpoint is within 1.6 %). Values below 64 are
 * exact. Recording is one clz, a shift and an increment; histograms of
 * several threads are merged by adding counts.
 *
 * Header-only; used by loadgen.c and chatload.c.
 */
#ifndef CC_BENCH_HIST_H
#define CC_BENCH_HIST_H

#include <stdint.h>
#include <string.h>

#define HIST_SUB_BITS 5                         /* 32 sub-buckets */
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_LINEAR (2u * HIST_SUB)             /* 0..63 exact */
/* octaves for msb 6..63, 32 buckets each */
#define HIST_BUCKETS (HIST_LINEAR + (64u - HIST_SUB_BITS - 1u) * HIST_SUB)

typedef struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t total;
    uint64_t min;
    uint64_t max;
    double sum;
} hist;

static inline void
hist_init(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static inline unsigned
hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < HIST_LINEAR)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);     /* >= 6 */
    shift = msb - HIST_SUB_BITS;                  /* >= 1 */
    /* v >> shift is in [32, 64): the top 6 bits of v */
    return HIST_LINEAR + (shift - 1u) * HIST_SUB +
           (unsigned)((v >> shift) - HIST_SUB);
}

/* Smallest and largest value that land in bucket i. */
static inline uint64_t
hist_bucket_lo(unsigned i)
{
    unsigned shift;

    if (i < HIST_LINEAR)
        return i;
    shift = (i - HIST_LINEAR) / HIST_SUB + 1u;
    return ((uint64_t)HIST_SUB + (i - HIST_LINEAR) % HIST_SUB) << shift;
}

static inline uint64_t
hist_bucket_hi(unsigned i)
{
    unsigned shift;

    if (i < HIST_LINEAR)
        return i;
    shift = (i - HIST_LINEAR) / HIST_SUB + 1u;
    return hist_bucket_lo(i) + (((uint64_t)1 << shift) - 1u);
}

static inline void
hist_record(hist *h, uint64_t v)
{
    h->count[hist_index(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

static inline void
hist_merge(hist *dst, const hist *src)
{
    unsigned i;

    for (i = 0; i < HIST_BUCKETS; i++)
        dst->count[i] += src->count[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

/* The value at quantile q (0..1): the midpoint of the bucket holding the
 * ceil(q * total)-th smallest sample, clamped to [min, max] so that p100
 * is the exact maximum. 0 when empty. */
static inline uint64_t
hist_quantile(const hist *h, double q)
{
    uint64_t rank, seen = 0;
    unsigned i;

    if (h->total == 0)
        return 0;
    if (q <= 0.0)
        return h->min;
    rank = (uint64_t)(q * (double)h->total);
    if ((double)rank < q * (double)h->total)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
            uint64_t mid = lo + (hi - lo) / 2;

            if (mid < h->min)
                mid = h->min;
            if (mid > h->max)
                mid = h->max;
            return mid;
        }
    }
    return h->max;
}

#endif
