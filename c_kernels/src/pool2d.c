/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (input and output share scale and zero point: no
 * requantization). One window walk serves both; `is_max` is a literal at each entry point, so
 * the compiler specialises the loop for each. */
#include "mcugen_kernel_util.h"

/* Maxima over a rows x cols window (taps x_row / x_col apart) of four lanes x_lane apart;
 * -128 for an empty window, as TFLite. The only hot loop of the kernel. */
static inline mcugen_acc4 window_max4_lanes(const int8_t *x, int32_t x_lane, int32_t x_row,
                                            int32_t x_col, int32_t rows, int32_t cols)
{
    mcugen_acc4 acc = {INT8_MIN, INT8_MIN, INT8_MIN, INT8_MIN};
    int32_t r, k;
    for (r = 0; r < rows; r++) {
        for (k = 0; k < cols; k++) {
            const int8_t *xp = x + (r * x_row + k * x_col);
            acc.l0 = mcugen_max(acc.l0, mcugen_get_s8(xp, 0));
            acc.l1 = mcugen_max(acc.l1, mcugen_get_s8(xp, x_lane));
            acc.l2 = mcugen_max(acc.l2, mcugen_get_s8(xp, 2 * x_lane));
            acc.l3 = mcugen_max(acc.l3, mcugen_get_s8(xp, 3 * x_lane));
        }
    }
    return acc;
}

/* With the lane step (1 or 0) a literal in each call, lanes are addressed by immediates. */
static inline mcugen_acc4 window_max4(const int8_t *x, int32_t step, int32_t x_row,
                                      int32_t x_col, int32_t rows, int32_t cols)
{
    return step ? window_max4_lanes(x, 1, x_row, x_col, rows, cols)
                : window_max4_lanes(x, 0, x_row, x_col, rows, cols);
}

/* sum / count rounded half away from zero (C division truncates); half = count / 2. */
static inline int32_t average(int32_t sum, int32_t count, int32_t half)
{
    return (sum > 0 ? sum + half : sum - half) / count;
}

static inline void store_average(int8_t *out, int32_t index, int32_t sum, int32_t count,
                                 const mcugen_pool_params *p)
{
    mcugen_set_s8(out, index, mcugen_clamp(average(sum, count, count / 2), p->act_min, p->act_max));
}

#if defined(MCUGEN_DSP)
/*
 * Four adjacent channels on Cortex-M with DSP, one word per tap. Maximum: SSUB8 sets a GE flag
 * per byte where the tap is at least the running maximum and SEL takes those bytes. Average:
 * SXTAB16 adds bytes 0 and 2 (and, rotated, 1 and 3) into two int16 sums each, exact for windows
 * of up to 256 taps (|sum| <= 256 * 128). Either result is clamped four bytes at once and stored
 * as one word.
 */
#define WORD_TAPS_MAX 256

static inline uint32_t window_max_word(const int8_t *x, int32_t x_row, int32_t x_col,
                                       int32_t rows, int32_t cols)
{
    uint32_t m = 0x80808080u, t;
    const int8_t *const x_end = x + rows * x_row;
    for (; x < x_end; x += x_row) {
        const int8_t *xp = x, *const xp_end = x + cols * x_col;
        for (; xp < xp_end; xp += x_col) {
            __asm__("ssub8 %[t], %[v], %[m]\n\t"
                    "sel %[m], %[v], %[m]\n\t"
                    : [m] "+r"(m), [t] "=&r"(t)
                    : [v] "r"(mcugen_read_u32(xp))
                    : "cc");
        }
    }
    return m;
}

static inline uint32_t window_average_word(const int8_t *x, int32_t x_row, int32_t x_col,
                                           int32_t rows, int32_t cols)
{
    const int32_t count = rows * cols, half = (int32_t)((uint32_t)count >> 1);
    uint32_t even = 0, odd = 0;
    const int8_t *const x_end = x + rows * x_row;
    for (; x < x_end; x += x_row) {
        const int8_t *xp = x, *const xp_end = x + cols * x_col;
        for (; xp < xp_end; xp += x_col) {
            const uint32_t v = mcugen_read_u32(xp);
            even = __sxtab16(even, v);
            __asm__("sxtab16 %[a], %[a], %[v], ror #8" : [a] "+r"(odd) : [v] "r"(v));
        }
    }
    return mcugen_pack4(average((int16_t)even, count, half), average((int16_t)odd, count, half),
                        average((int32_t)even >> 16, count, half),
                        average((int32_t)odd >> 16, count, half));
}

/*
 * Every channel of one output pixel, four at a time. When ch % 4 != 0 the last group overlaps
 * the one before and writes its bytes again with the same values: an output pixel never lies
 * over an input pixel that it reads (plan_memory's rule for overlapped window kernels), so its
 * window is still intact.
 */
static inline void pixel_words(int8_t *out, const int8_t *x_tap, int32_t ch, int32_t x_row,
                               int32_t rows, int32_t cols, uint32_t min4, uint32_t max4,
                               int is_max)
{
    int32_t c;
    for (c = 0; c < ch; c += 4) {
        const int32_t g = mcugen_min(c, ch - 4);
        const uint32_t v = is_max ? window_max_word(x_tap + g, x_row, ch, rows, cols)
                                  : window_average_word(x_tap + g, x_row, ch, rows, cols);
        const uint32_t clamped = mcugen_clamp4(v, min4, max4);
        memcpy(out + g, &clamped, sizeof clamped);
    }
}
#endif

static inline void store_max(int8_t *out, int32_t index, int32_t max, const mcugen_pool_params *p)
{
    mcugen_set_s8(out, index, mcugen_clamp(max, p->act_min, p->act_max));
}

static inline void pool2d(const mcugen_pool_params *params, const mcugen_dims *input_dims,
                          const int8_t *input, const mcugen_dims *output_dims, int8_t *output,
                          int is_max)
{
    const mcugen_pool_params p = *params; /* output stores may alias anything: copy once */
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
#if defined(MCUGEN_DSP)
    const int words = p.filter_h * p.filter_w <= WORD_TAPS_MAX && ch >= 4;
    const uint32_t min4 = mcugen_splat4(p.act_min), max4 = mcugen_splat4(p.act_max);
#endif
    int32_t b, y, x, c;
    for (b = 0; b < output_dims->n; b++) {
        for (y = 0; y < output_dims->h; y++) {
            const int32_t y0 = y * p.stride_h - p.pad_h;
            int32_t ky0, ky1;
            mcugen_window(y0, 1, p.filter_h, in_h, &ky0, &ky1);
            for (x = 0; x < output_dims->w; x++) {
                const int32_t x0 = x * p.stride_w - p.pad_w;
                int8_t *out = output + ((b * output_dims->h + y) * output_dims->w + x) * ch;
                const int8_t *x_tap; /* the first tap inside the input */
                int32_t kx0, kx1, rows, cols;
                mcugen_window(x0, 1, p.filter_w, in_w, &kx0, &kx1);
                x_tap = input + ((b * in_h + y0 + ky0) * in_w + x0 + kx0) * ch;
                rows = ky1 - ky0;
                cols = kx1 - kx0;
#if defined(MCUGEN_DSP)
                if (words) {
                    pixel_words(out, x_tap, ch, in_w * ch, rows, cols, min4, max4, is_max);
                    continue;
                }
#endif
                for (c = 0; c < ch; c += mcugen_lanes_advance(mcugen_lane_step(c, ch))) {
                    const int32_t step = mcugen_lane_step(c, ch);
                    if (is_max) {
                        const mcugen_acc4 m = window_max4(x_tap + c, step, in_w * ch, ch, rows, cols);
                        store_max(out, c, m.l0, &p);
                        store_max(out, c + step, m.l1, &p);
                        store_max(out, c + 2 * step, m.l2, &p);
                        store_max(out, c + 3 * step, m.l3, &p);
                    } else {
                        const mcugen_acc4 s = mcugen_window_sum4(x_tap + c, step, in_w * ch, ch, rows, cols);
                        store_average(out, c, s.l0, rows * cols, &p);
                        store_average(out, c + step, s.l1, rows * cols, &p);
                        store_average(out, c + 2 * step, s.l2, rows * cols, &p);
                        store_average(out, c + 3 * step, s.l3, rows * cols, &p);
                    }
                }
            }
        }
    }
}

void mcugen_avg_pool2d_s8(const mcugen_pool_params *params, const mcugen_dims *input_dims,
                          const int8_t *input, const mcugen_dims *output_dims, int8_t *output)
{
    pool2d(params, input_dims, input, output_dims, output, 0);
}

void mcugen_max_pool2d_s8(const mcugen_pool_params *params, const mcugen_dims *input_dims,
                          const int8_t *input, const mcugen_dims *output_dims, int8_t *output)
{
    pool2d(params, input_dims, input, output_dims, output, 1);
}
