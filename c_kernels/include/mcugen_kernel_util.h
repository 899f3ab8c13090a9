/*
 * Small inline helpers the kernel sources share (not part of the public API).
 *
 * Element access goes through mcugen_get_s8/mcugen_set_s8 only, so that packed sub-byte
 * variants can replace them without touching the loops.
 */
#ifndef MCUGEN_KERNEL_UTIL_H
#define MCUGEN_KERNEL_UTIL_H

#include <stdint.h>

#include "mcugen_fixedpoint.h"
#include "mcugen_kernels.h"

/*
 * Four int32 accumulators, one per lane, for kernels that work on four channels (or units) at
 * once. Named fields rather than an array: compilers keep them in registers.
 */
typedef struct {
    int32_t l0;
    int32_t l1;
    int32_t l2;
    int32_t l3;
} mcugen_acc4;

static inline int32_t mcugen_get_s8(const int8_t *base, int32_t index)
{
    return base[index];
}

static inline void mcugen_set_s8(int8_t *base, int32_t index, int32_t value)
{
    base[index] = (int8_t)value;
}

static inline int32_t mcugen_min(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static inline int32_t mcugen_max(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static inline int32_t mcugen_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return mcugen_min(mcugen_max(x, lo), hi);
}

/* The common epilogue: int32 accumulator to the clamped output integer. */
static inline int32_t mcugen_requantize_acc(int32_t acc, int32_t multiplier, int32_t shift,
                                            int32_t output_offset, int32_t act_min,
                                            int32_t act_max)
{
    return mcugen_clamp(
        mcugen_multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset, act_min,
        act_max);
}

static inline int32_t mcugen_bias(const int32_t *bias, int32_t channel)
{
    return bias ? bias[channel] : 0;
}

/* out[index] = the requantized accumulator of output channel `channel`, whose multiplier is
 * per channel or per tensor. */
static inline void mcugen_store_channel(int8_t *out, int32_t index, int32_t acc, int32_t channel,
                                        const mcugen_quant_params *quant, int32_t output_offset,
                                        int32_t act_min, int32_t act_max)
{
    const int32_t q = quant->count > 1 ? channel : 0;
    mcugen_set_s8(out, index,
                  mcugen_requantize_acc(acc, quant->multiplier[q], quant->shift[q], output_offset,
                                        act_min, act_max));
}

/* The initial accumulators of output channels first + i * lane, i = 0..3: bias + extra. */
static inline mcugen_acc4 mcugen_bias4(const int32_t *bias, int32_t first, int32_t lane,
                                       int32_t extra)
{
    mcugen_acc4 acc;
    acc.l0 = mcugen_bias(bias, first) + extra;
    acc.l1 = mcugen_bias(bias, first + lane) + extra;
    acc.l2 = mcugen_bias(bias, first + 2 * lane) + extra;
    acc.l3 = mcugen_bias(bias, first + 3 * lane) + extra;
    return acc;
}

/* Requantizes and stores the four lanes as output channels first + i * lane, i = 0..3. */
static inline void mcugen_store4(int8_t *out, int32_t first, int32_t lane, mcugen_acc4 acc,
                                 const mcugen_quant_params *quant, int32_t output_offset,
                                 int32_t act_min, int32_t act_max)
{
    mcugen_store_channel(out, first, acc.l0, first, quant, output_offset, act_min, act_max);
    mcugen_store_channel(out, first + lane, acc.l1, first + lane, quant, output_offset, act_min,
                         act_max);
    mcugen_store_channel(out, first + 2 * lane, acc.l2, first + 2 * lane, quant, output_offset,
                         act_min, act_max);
    mcugen_store_channel(out, first + 3 * lane, acc.l3, first + 3 * lane, quant, output_offset,
                         act_min, act_max);
}

/*
 * Lane i of the block of items (pixels, channels, units) starting at `first`, out of `count`:
 * past the end it repeats the last item, so a partial block recomputes (and rewrites) that item
 * instead of needing a separate tail loop.
 */
static inline int32_t mcugen_lane(int32_t first, int32_t i, int32_t count)
{
    return mcugen_min(first + i, count - 1);
}

/*
 * The distance between the four lanes of the channel block at `first` out of `count` channels:
 * 1 while four channels remain (lanes first .. first+3), then 0 (one channel, in all four lanes),
 * so that one inner loop serves the blocks and the tail. The next block is at
 * first + mcugen_lanes_advance(step).
 */
static inline int32_t mcugen_lane_step(int32_t first, int32_t count)
{
    return count - first >= 4 ? 1 : 0;
}

static inline int32_t mcugen_lanes_advance(int32_t step)
{
    return step ? 4 : 1;
}

/*
 * The filter taps k in [*begin, *end) for which origin + k * dilation lies in [0, size):
 * the part of a window that lies inside the input.
 */
static inline void mcugen_window(int32_t origin, int32_t dilation, int32_t taps, int32_t size,
                                 int32_t *begin, int32_t *end)
{
    int32_t b = 0;
    int32_t e = taps;
    while (b < e && origin + b * dilation < 0) {
        b++;
    }
    while (e > b && origin + (e - 1) * dilation >= size) {
        e--;
    }
    *begin = b;
    *end = e;
}

/*
 * Sums over a rows x cols window (taps x_row / x_col apart) of four lanes x_lane apart: the inner
 * loop of average pooling and mean. Call it with a literal x_lane (see mcugen_window_sum4).
 */
static inline mcugen_acc4 mcugen_window_sum4_lanes(const int8_t *x, int32_t x_lane, int32_t x_row,
                                                   int32_t x_col, int32_t rows, int32_t cols)
{
    mcugen_acc4 acc = {0, 0, 0, 0};
    int32_t r, k;
    for (r = 0; r < rows; r++) {
        for (k = 0; k < cols; k++) {
            const int8_t *xp = x + (r * x_row + k * x_col);
            acc.l0 += mcugen_get_s8(xp, 0);
            acc.l1 += mcugen_get_s8(xp, x_lane);
            acc.l2 += mcugen_get_s8(xp, 2 * x_lane);
            acc.l3 += mcugen_get_s8(xp, 3 * x_lane);
        }
    }
    return acc;
}

/* mcugen_window_sum4_lanes for a channel block of lane step 1 or 0, with the step a literal in
 * each call so that the compiler addresses the lanes by immediates. */
static inline mcugen_acc4 mcugen_window_sum4(const int8_t *x, int32_t step, int32_t x_row,
                                             int32_t x_col, int32_t rows, int32_t cols)
{
    return step ? mcugen_window_sum4_lanes(x, 1, x_row, x_col, rows, cols)
                : mcugen_window_sum4_lanes(x, 0, x_row, x_col, rows, cols);
}

#endif /* MCUGEN_KERNEL_UTIL_H */
