/*
 * DEPTHWISE_CONV_2D, int8, any depth multiplier, per-channel or per-tensor requantization.
 *
 * Channels are taken four at a time (lanes) in the outer loop and every output pixel of those
 * four channels in the inner loops, so that their requantization constants are derived once per
 * lane group. Output pixels are written in order within a group, after their window was read.
 */
#include "mcugen_kernel_util.h"

/*
 * Four lanes of one output pixel: lane i accumulates (x[i * x_lane] + input_offset) *
 * w[i * w_lane] over rows x cols window taps, which are x_row / x_col apart in the input and
 * w_row / w_col apart in the filter (both walked by pointer; none if rows or cols <= 0). The only
 * hot loop of the kernel; a SIMD variant replaces it.
 */
static inline mcugen_acc4 window_lanes(mcugen_acc4 acc, const int8_t *x, int32_t x_lane,
                                       int32_t x_row, int32_t x_col, const int8_t *w,
                                       int32_t w_lane, int32_t w_row, int32_t w_col, int32_t rows,
                                       int32_t cols, int32_t input_offset)
{
    const int8_t *const x_end = x + rows * x_row;
    for (; x < x_end; x += x_row, w += w_row) {
        const int8_t *xp = x, *wp = w, *const xp_end = x + cols * x_col;
        for (; xp < xp_end; xp += x_col, wp += w_col) {
            acc.l0 += (mcugen_get_s8(xp, 0) + input_offset) * mcugen_get_s8(wp, 0);
            acc.l1 += (mcugen_get_s8(xp, x_lane) + input_offset) * mcugen_get_s8(wp, w_lane);
            acc.l2 += (mcugen_get_s8(xp, 2 * x_lane) + input_offset) *
                      mcugen_get_s8(wp, 2 * w_lane);
            acc.l3 += (mcugen_get_s8(xp, 3 * x_lane) + input_offset) *
                      mcugen_get_s8(wp, 3 * w_lane);
        }
    }
    return acc;
}

/* The most taps the four-channel path widens onto the stack (7x7); wider windows take
 * mcugen_depthwise_conv2d_s8. */
#define DW_TAPS 49

/*
 * One tap of four adjacent output channels o..o+3 (o a multiple of dm): lane i multiplies input
 * byte x[i / dm] by weight i of w, four weights widened as mcugen_widen4 lays them out (0, 2, 1, 3).
 * dm is a literal 1, 2 or 4 (4 stands for any multiple of 4: all lanes read x[0]). On Cortex-M with
 * DSP, dm 1 widens one word of four inputs with SXTB16; dm 2 and 4 load the one or two bytes they
 * need; each lane is one 16x16 multiply-accumulate on the halves that line up.
 */
static inline mcugen_acc4 dw_tap(mcugen_acc4 acc, const int8_t *x, const int16_t *w, int32_t dm)
{
#if defined(MCUGEN_DSP)
    const int32_t w02 = (int32_t)mcugen_read_u32(w), w13 = (int32_t)mcugen_read_u32(w + 2);
    if (dm == 1) {
        const uint32_t xs = mcugen_read_u32(x);
        const int32_t x02 = (int32_t)__sxtb16(xs), x13 = (int32_t)mcugen_sxtb16_odd(xs);
        acc.l0 = __smlabb(x02, w02, acc.l0);
        acc.l1 = __smlabb(x13, w13, acc.l1);
        acc.l2 = __smlatt(x02, w02, acc.l2);
        acc.l3 = __smlatt(x13, w13, acc.l3);
    } else {
        const int32_t lo = x[0], hi = x[2 / dm]; /* lanes 0, 1 and lanes 2, 3 */
        acc.l0 = __smlabb(lo, w02, acc.l0);
        acc.l1 = __smlabb(lo, w13, acc.l1);
        acc.l2 = __smlabt(hi, w02, acc.l2);
        acc.l3 = __smlabt(hi, w13, acc.l3);
    }
#else
    acc.l0 += x[0] * w[0];
    acc.l1 += x[1 / dm] * w[2];
    acc.l2 += x[2 / dm] * w[1];
    acc.l3 += x[3 / dm] * w[3];
#endif
    return acc;
}

/* dw_tap over rows x cols taps, x_row / x_col apart in the input and w_row / 4 apart in the
 * widened weights (no offset: the caller folds it into acc). */
static inline mcugen_acc4 dw_window(mcugen_acc4 acc, const int8_t *x, int32_t x_row,
                                    int32_t x_col, const int16_t *w, int32_t w_row, int32_t rows,
                                    int32_t cols, int32_t dm)
{
    const int8_t *const x_end = x + rows * x_row;
    for (; x < x_end; x += x_row, w += w_row) {
        const int8_t *xp = x;
        const int16_t *wp = w, *const wp_end = w + 4 * cols;
        for (; wp < wp_end; xp += x_col, wp += 4) {
            acc = dw_tap(acc, xp, wp, dm);
        }
    }
    return acc;
}

/* dw_window with dm as a literal in each call (2 for dm 2, 4 for multiples of 4). */
static inline mcugen_acc4 dw_window_dm(mcugen_acc4 acc, const int8_t *x, int32_t x_row,
                                       int32_t x_col, const int16_t *w, int32_t w_row,
                                       int32_t rows, int32_t cols, int32_t dm)
{
    return dm == 1   ? dw_window(acc, x, x_row, x_col, w, w_row, rows, cols, 1)
           : dm == 2 ? dw_window(acc, x, x_row, x_col, w, w_row, rows, cols, 2)
                     : dw_window(acc, x, x_row, x_col, w, w_row, rows, cols, 4);
}

/* A lane group's requantization: its four channels' constants and the output clamp. */
typedef struct {
    mcugen_requant r[4];
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t keep; /* lanes stored, the last ones: 4 but in a c4 tail group (see store_tail) */
#if defined(MCUGEN_DSP)
    mcugen_requant_fast fast[4]; /* the short sequence's constants, if all four take it: */
    int32_t all_fast;
    uint32_t min4, max4; /* act_min / act_max in each byte */
#endif
} lane_requant;

/* *q = the requantization of output channels first + i * lane, i = 0..3 (filled in place: a
 * returned struct this size is copied with memcpy). */
static void lane_requant_init(lane_requant *q, const mcugen_conv_params *params,
                              const mcugen_quant_params *quant, int32_t first, int32_t lane,
                              int32_t keep)
{
    int32_t i;
    for (i = 0; i < 4; i++) {
        q->r[i] = mcugen_requant_channel(quant, first + i * lane);
    }
    q->output_offset = params->output_offset;
    q->act_min = params->act_min;
    q->act_max = params->act_max;
    q->keep = keep;
#if defined(MCUGEN_DSP)
    q->all_fast = 1;
    for (i = 0; i < 4; i++) {
        q->all_fast &= mcugen_requant_fast_of(quant, first + i * lane, &q->fast[i]);
    }
    q->min4 = mcugen_splat4(params->act_min);
    q->max4 = mcugen_splat4(params->act_max);
#endif
}

/* Requantizes four lanes and stores them as out[i * lane]. Out of line, so that the pixel loop
 * keeps its registers (see conv2d.c's store_block). The clamp is read once: stores may alias q. */
static MCUGEN_NOINLINE void store_lanes(mcugen_acc4 acc, int8_t *out, int32_t lane,
                                        const lane_requant *q)
{
    const int32_t offset = q->output_offset, lo = q->act_min, hi = q->act_max;
    out[0] = (int8_t)mcugen_requant_apply(acc.l0, &q->r[0], offset, lo, hi);
    out[lane] = (int8_t)mcugen_requant_apply(acc.l1, &q->r[1], offset, lo, hi);
    out[2 * lane] = (int8_t)mcugen_requant_apply(acc.l2, &q->r[2], offset, lo, hi);
    out[3 * lane] = (int8_t)mcugen_requant_apply(acc.l3, &q->r[3], offset, lo, hi);
}

/* Copies the last `keep` of four lanes from src (adjacent) to out (lane apart). */
static void copy_last_lanes(int8_t *out, int32_t lane, const int8_t *src, int32_t keep)
{
    int32_t i;
    for (i = 4 - keep; i < 4; i++) {
        out[i * lane] = src[i];
    }
}

/* store_lanes for the last lane group of mcugen_depthwise_conv2d_c4_s8 when the channel count is
 * not a multiple of 4: only its last q->keep lanes (see group_first). */
static MCUGEN_NOINLINE void store_tail(mcugen_acc4 acc, int8_t *out, int32_t lane,
                                       const lane_requant *q)
{
    int8_t lanes[4];
    store_lanes(acc, lanes, 1, q);
    copy_last_lanes(out, lane, lanes, q->keep);
}

/* Requantizes four adjacent lanes and stores the last q->keep of them at out: on Cortex-M with
 * DSP, when all four channels take the short requantization, as one word packed and clamped at
 * once (byte by byte in a tail group). */
static inline void store_group(mcugen_acc4 acc, int8_t *out, const lane_requant *q)
{
#if defined(MCUGEN_DSP)
    if (q->all_fast) {
        const int32_t offset = q->output_offset;
        const uint32_t v = mcugen_clamp4(
            mcugen_pack4(mcugen_requant_fast_s8(acc.l0, q->fast[0], offset),
                         mcugen_requant_fast_s8(acc.l1, q->fast[1], offset),
                         mcugen_requant_fast_s8(acc.l2, q->fast[2], offset),
                         mcugen_requant_fast_s8(acc.l3, q->fast[3], offset)),
            q->min4, q->max4);
        if (q->keep == 4) {
            memcpy(out, &v, sizeof v);
        } else {
            copy_last_lanes(out, 1, (const int8_t *)&v, q->keep);
        }
        return;
    }
#endif
    if (q->keep == 4) {
        store_lanes(acc, out, 1, q);
    } else {
        store_tail(acc, out, 1, q);
    }
}

/* A lane group of mcugen_depthwise_conv2d_c4_s8 for its pixels whose window lies inside the
 * input: the taps as one flat list, each an input offset from the window's first tap and four
 * widened weights. */
typedef struct {
    int16_t w[4 * DW_TAPS];
    const int32_t *offsets; /* taps entries */
    int32_t taps;
    mcugen_acc4 bias; /* bias + input offset * the weight sums */
} dw_group;

static inline mcugen_acc4 dw_flat(mcugen_acc4 acc, const int8_t *x, const dw_group *g, int32_t dm)
{
    const int32_t *off = g->offsets, *const end = off + g->taps;
    const int16_t *w = g->w;
    for (; off < end; off++, w += 4) {
        acc = dw_tap(acc, x + *off, w, dm);
    }
    return acc;
}

/* count full-window pixels, x_step apart in the input and ch apart in the output. Out of line:
 * its registers are not the border pixels'. */
static MCUGEN_NOINLINE void dw_run(const dw_group *g, const lane_requant *q, const int8_t *x,
                                   int32_t x_step, int8_t *out, int32_t ch, int32_t count,
                                   int32_t dm)
{
    for (; count > 0; count--, x += x_step, out += ch) {
        const mcugen_acc4 acc = dm == 1   ? dw_flat(g->bias, x, g, 1)
                                : dm == 2 ? dw_flat(g->bias, x, g, 2)
                                          : dw_flat(g->bias, x, g, 4);
        store_group(acc, out, q);
    }
}

/*
 * The lane groups of mcugen_depthwise_conv2d_c4_s8: for c = 0, 4, 8 .. < ch, the group's first
 * channel, and how many of its lanes, the last ones, it stores (*keep). With ch % 4 != 0 the last
 * group starts at ch - 4 and overlaps the previous one: it stores only its ch % 4 new channels.
 * In place (passes/plan_memory.py: the output starts whole pixels below the input, so a group
 * overwrites only its own channels), the overlapped lanes read channels the previous group has
 * already overwritten; they are not stored, and the stored lanes read channels no group wrote.
 */
static inline int32_t group_first(int32_t c, int32_t ch, int32_t *keep)
{
    *keep = mcugen_min(ch - c, 4);
    return mcugen_min(c, ch - 4);
}

void mcugen_depthwise_conv2d_s8(const mcugen_conv_params *params,
                                const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                                const int8_t *input, const mcugen_dims *filter_dims,
                                const int8_t *filter, const int32_t *bias,
                                const mcugen_dims *output_dims, int8_t *output)
{
    const mcugen_conv_params p = *params; /* output stores may alias anything: copy once */
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_ch = input_dims->c;
    const int32_t f_w = filter_dims->w, out_ch = output_dims->c, dm = p.depth_multiplier;
    const int32_t x_row = p.dilation_h * in_w * in_ch, x_col = p.dilation_w * in_ch;
    const int32_t w_row = f_w * out_ch;
    int32_t b, y, x, m, c;
    for (m = 0; m < dm; m++) {
        for (c = 0; c < in_ch; c += mcugen_lanes_advance(mcugen_lane_step(c, in_ch))) {
            const int32_t step = mcugen_lane_step(c, in_ch);
            const int32_t o = c * dm + m, o_lane = step * dm;
            const mcugen_acc4 bias4 = mcugen_bias4(bias, o, o_lane, 0);
            lane_requant q;
            lane_requant_init(&q, &p, quant, o, o_lane, 4);
            for (b = 0; b < output_dims->n; b++) {
                for (y = 0; y < output_dims->h; y++) {
                    const int32_t y0 = y * p.stride_h - p.pad_h;
                    int32_t ky0, ky1;
                    mcugen_window(y0, p.dilation_h, filter_dims->h, in_h, &ky0, &ky1);
                    for (x = 0; x < output_dims->w; x++) {
                        const int32_t x0 = x * p.stride_w - p.pad_w;
                        int8_t *out =
                            output + ((b * output_dims->h + y) * output_dims->w + x) * out_ch;
                        int32_t kx0, kx1;
                        mcugen_acc4 acc = bias4;
                        mcugen_window(x0, p.dilation_w, f_w, in_w, &kx0, &kx1);
                        if (ky1 > ky0 && kx1 > kx0) { /* else (a dilated window can miss) bias only */
                            acc = window_lanes(acc, input + c + ((b * in_h + y0 + ky0 * p.dilation_h) * in_w +
                                                                 x0 + kx0 * p.dilation_w) * in_ch,
                                               step, x_row, x_col,
                                               filter + o + (ky0 * f_w + kx0) * out_ch, o_lane,
                                               w_row, out_ch, ky1 - ky0, kx1 - kx0, p.input_offset);
                        }
                        store_lanes(acc, out + o, o_lane, &q);
                    }
                }
            }
        }
    }
}

#if defined(MCUGEN_DSP)
/*
 * The 3x3 path on Cortex-M with DSP. The input offset is folded into the bias
 * (sum (x + off) * w = sum x * w + off * sum w), the four channels' weights are widened once per
 * lane group (two words per tap: channels 0/2 and 1/3), and every pixel runs the same nine taps
 * with no bounds checks: they read a strip of the three input rows of the output row (one word of
 * four channels a column), whose padding columns and rows hold the input zero point (x = -off
 * contributes (x + off) * w = 0, as skipping the tap does). Each input row is copied once per lane
 * group (into two slots of a ring of three, so that any three consecutive rows are adjacent), and
 * the requantization packs the four results into one word store.
 */
#define DW3X3_STRIP 24 /* most columns a strip row holds (the strip is on the stack) */

typedef struct {
    uint32_t wv[18];      /* the widened weights: channels 0/2 and 1/3 of each tap */
    int32_t lane[4][7];   /* round_lo, round_hi, fix, multiplier, doubled, left, right */
    uint32_t min4, max4;  /* act_min / act_max in each byte */
    mcugen_acc4 bias;     /* bias + input offset * sum of the weights */
    int32_t output_offset;
    int32_t x_row;        /* strip row distance */
} dw3x3_ctx;

/* One tap of the nine: strip rows x_row apart, taps ch (4) bytes apart; wv = the widened weights. */
#define TAP(K, ADDR)                                                                               \
    "ldrd %[w02], %[w13], [%[wv], #" #K "]\n\t"                                                    \
    "ldr %[x], " ADDR "\n\t"                                                                       \
    "sxtb16 %[t], %[x]\n\t"                                                                        \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                                \
    "smlabb %[a0], %[t], %[w02], %[a0]\n\t"                                                        \
    "smlatt %[a2], %[t], %[w02], %[a2]\n\t"                                                        \
    "smlabb %[a1], %[x], %[w13], %[a1]\n\t"                                                        \
    "smlatt %[a3], %[x], %[w13], %[a3]\n\t"
#define TAP_ROW(K0, K1, K2)                                                                        \
    TAP(K0, "[%[p]]") TAP(K1, "[%[p], %[ch]]") TAP(K2, "[%[p], %[ch], lsl #1]")

/* One lane's requantization (mcugen_requant_apply without the clamp) then SSAT to int8. */
#define REQUANT_LANE(ACC)                                                                          \
    "ldmia %[q]!, {r4, r5, r6, r7, r8, r9, r10}\n\t"                                               \
    "lsl r9, %[" ACC "], r9\n\t"                                                                   \
    "smlal r4, r5, r9, r7\n\t"                                                                     \
    "smlal r4, r5, r9, r8\n\t"                                                                     \
    "and r6, r6, r9, asr #31\n\t"                                                                  \
    "adds r4, r4, r6, lsl #31\n\t"                                                                 \
    "adc r5, r5, r6\n\t"                                                                           \
    "asr r5, r5, r10\n\t"                                                                          \
    "add r5, r5, %[off]\n\t"                                                                       \
    "ssat %[" ACC "], #8, r5\n\t"

/*
 * One output pixel of four channels: the nine taps at p (in the strip), requantized, clamped four
 * bytes at once and stored as one word.
 */
static MCUGEN_NOINLINE void pixel3x3(const int8_t *p, const dw3x3_ctx *ctx, int8_t *out)
{
    const int32_t ch = 4, x_row = ctx->x_row;
    const int32_t *q = &ctx->lane[0][0];
    mcugen_acc4 a = ctx->bias;
    {
        uint32_t w02, w13, x, t;
        __asm__("" TAP_ROW(0, 8, 16) "add %[p], %[p], %[row]\n\t" TAP_ROW(24, 32, 40)
                "add %[p], %[p], %[row]\n\t" TAP_ROW(48, 56, 64)
                : [a0] "+r"(a.l0), [a1] "+r"(a.l1), [a2] "+r"(a.l2), [a3] "+r"(a.l3),
                  [p] "+r"(p), [w02] "=&r"(w02), [w13] "=&r"(w13), [x] "=&r"(x), [t] "=&r"(t)
                : [ch] "r"(ch), [row] "r"(x_row), [wv] "r"(ctx->wv)
                : "memory");
    }
    __asm__ volatile(REQUANT_LANE("a0") REQUANT_LANE("a1") REQUANT_LANE("a2") REQUANT_LANE("a3")
                     "and %[a0], %[a0], #255\n\t"
                     "bfi %[a0], %[a1], #8, #8\n\t"
                     "bfi %[a0], %[a2], #16, #8\n\t"
                     "bfi %[a0], %[a3], #24, #8\n\t"
                     "ldrd r4, r5, [%[q]]\n\t"
                     "ssub8 r6, %[a0], r4\n\t"
                     "sel %[a0], %[a0], r4\n\t"
                     "ssub8 r6, r5, %[a0]\n\t"
                     "sel %[a0], %[a0], r5\n\t"
                     "str %[a0], [%[out]]\n\t"
                     : [a0] "+r"(a.l0), [a1] "+r"(a.l1), [a2] "+r"(a.l2), [a3] "+r"(a.l3),
                       [q] "+r"(q)
                     : [out] "r"(out), [off] "r"(ctx->output_offset)
                     : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "cc", "memory");
}

/* Out of line: its registers and stack are not the general path's. */
static MCUGEN_NOINLINE void depthwise3x3_c4(const mcugen_conv_params *params,
                                            const mcugen_quant_params *quant,
                                            const mcugen_dims *input_dims, const int8_t *input,
                                            const int8_t *filter, const int32_t *bias,
                                            const mcugen_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;
    const int32_t stride_h = params->stride_h, stride_w = params->stride_w;
    const int32_t pad_h = params->pad_h, pad_w = params->pad_w, offset = params->input_offset;
    const uint32_t zp4 = ((uint32_t)(-offset) & 0xFFu) * 0x01010101u;
    /* the strip: three input rows of the output row's windows, one word (4 channels) a column */
    const int32_t width = (out_w - 1) * stride_w + 3;
    const int32_t left = mcugen_min(pad_w, width), right = mcugen_min(pad_w + in_w, width);
    uint32_t strip[6 * width], *row_strip; /* width <= DW3X3_STRIP (the caller checks) */
    uint32_t row_words[DW3X3_STRIP];       /* a tail group's output row, before copy_last_lanes */
    int32_t b, y, x, c, i, k;
    dw3x3_ctx ctx;
    ctx.min4 = mcugen_splat4(params->act_min);
    ctx.max4 = mcugen_splat4(params->act_max);
    ctx.output_offset = params->output_offset;
    ctx.x_row = width * 4;
    for (c = 0; c < ch; c += 4) {
        int32_t keep;
        const int32_t g = group_first(c, ch, &keep);
        /* pixel3x3 stores whole words: a tail group's go to row_words first */
        const int32_t out_step = keep == 4 ? ch : 4;
        for (k = 0; k < 9; k++) {
            const uint32_t w = mcugen_read_u32(filter + g + k * ch);
            ctx.wv[2 * k] = __sxtb16(w);
            ctx.wv[2 * k + 1] = mcugen_sxtb16_odd(w);
        }
        ctx.bias = mcugen_add_scaled4(mcugen_bias4(bias, g, 1, 0),
                                      mcugen_window_sum4_lanes(filter + g, 1, 0, ch, 1, 9), offset);
        for (i = 0; i < 4; i++) {
            const mcugen_requant r = mcugen_requant_channel(quant, g + i);
            ctx.lane[i][0] = (int32_t)r.round_lo;
            ctx.lane[i][1] = r.round_hi;
            ctx.lane[i][2] = r.fix;
            ctx.lane[i][3] = r.multiplier;
            ctx.lane[i][4] = r.doubled;
            ctx.lane[i][5] = r.left;
            ctx.lane[i][6] = r.right;
        }
        for (b = 0; b < output_dims->n; b++) {
            const int8_t *in_b = input + b * in_h * in_w * ch + g;
            int8_t *out = output + b * out_h * out_w * ch + g;
            int32_t next = -pad_h; /* the next input row to load */
            for (y = 0; y < out_h; y++, out += out_w * ch) {
                const int32_t y0 = y * stride_h - pad_h;
                int8_t *row_out = keep == 4 ? out : (int8_t *)row_words;
                int32_t j;
                /* input row j lives in slots s and s + 3, s = (j + pad_h) % 3, so that rows
                 * y0 .. y0 + 2 (the last three loaded) are three consecutive slots */
                for (j = mcugen_max(next, y0); j < y0 + 3; j++) {
                    const int32_t slot = (j + pad_h) % 3;
                    uint32_t *dst = strip + slot * width, *dup = dst + 3 * width;
                    if (j >= 0 && j < in_h) {
                        const int8_t *src = in_b + j * in_w * ch;
                        for (i = 0; i < left; i++) {
                            *dst++ = zp4;
                            *dup++ = zp4;
                        }
                        for (i = left; i < right; i++) {
                            const uint32_t v = mcugen_read_u32(src + (i - pad_w) * ch);
                            *dst++ = v;
                            *dup++ = v;
                        }
                        for (i = right; i < width; i++) {
                            *dst++ = zp4;
                            *dup++ = zp4;
                        }
                    } else {
                        for (i = 0; i < width; i++) {
                            *dst++ = zp4;
                            *dup++ = zp4;
                        }
                    }
                }
                next = y0 + 3;
                row_strip = strip + ((y0 + pad_h) % 3) * width;
                for (x = 0; x < out_w; x++, row_out += out_step) {
                    pixel3x3((const int8_t *)(row_strip + x * stride_w), &ctx, row_out);
                }
                /* a row later than in raster order, still before any later row's window is read */
                for (x = 0; keep < 4 && x < out_w; x++) {
                    copy_last_lanes(out + x * ch, 1, (const int8_t *)(row_words + x), keep);
                }
            }
        }
    }
}
#endif

/* The four-channel path of every shape (on Cortex-M with DSP, all but the 3x3 strip's, which
 * mcugen_depthwise_conv2d_3x3_s8 runs). */
void mcugen_depthwise_conv2d_c4_s8(const mcugen_conv_params *params,
                                   const mcugen_quant_params *quant,
                                   const mcugen_dims *input_dims, const int8_t *input,
                                   const mcugen_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias, const mcugen_dims *output_dims,
                                   int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_ch = input_dims->c;
    const int32_t f_h = filter_dims->h, f_w = filter_dims->w, taps = f_h * f_w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, ch = output_dims->c;
    const int32_t stride_h = params->stride_h, stride_w = params->stride_w;
    const int32_t dil_h = params->dilation_h, dil_w = params->dilation_w;
    const int32_t pad_h = params->pad_h, pad_w = params->pad_w, offset = params->input_offset;
    const int32_t dm = params->depth_multiplier;
    const int32_t x_row = dil_h * in_w * in_ch, x_col = dil_w * in_ch;
    /* columns x_lo <= x < x_hi have their whole window inside an input row */
    const int32_t x_lo = (pad_w + stride_w - 1) / stride_w, span = in_w - (f_w - 1) * dil_w + pad_w;
    const int32_t x_hi = mcugen_min(span > 0 ? (span - 1) / stride_w + 1 : 0, out_w);
    int32_t offsets[DW_TAPS]; /* taps <= DW_TAPS: choose_kernel's condition */
    dw_group grp;
    int32_t b, y, x, c, k;
    for (k = 0; k < taps; k++) {
        offsets[k] = k / f_w * x_row + k % f_w * x_col;
    }
    grp.offsets = offsets;
    grp.taps = taps;
    for (c = 0; c < ch; c += 4) {
        int32_t keep;
        const int32_t g = group_first(c, ch, &keep);
        const mcugen_acc4 bias4 = mcugen_bias4(bias, g, 1, 0);
        lane_requant q;
        lane_requant_init(&q, params, quant, g, 1, keep);
        /* a full window has its offset term in the bias: sum (x + off) w = sum x w + off sum w */
        grp.bias = mcugen_add_scaled4(bias4, mcugen_window_sum4_lanes(filter + g, 1, 0, ch, 1, taps),
                                      offset);
        for (k = 0; k < taps; k++) {
            mcugen_widen4(filter + g + k * ch, 0, grp.w + 4 * k);
        }
        for (b = 0; b < output_dims->n; b++) {
            const int8_t *in_b = input + b * in_h * in_w * in_ch + g / dm;
            for (y = 0; y < out_h; y++) {
                const int32_t y0 = y * stride_h - pad_h;
                int8_t *const out = output + ((b * out_h + y) * out_w) * ch + g;
                int32_t ky0, ky1;
                mcugen_window(y0, dil_h, f_h, in_h, &ky0, &ky1);
                {
                    const int32_t rows = ky1 - ky0; /* may be 0 (a dilated window can miss) */
                    const int8_t *const in_row = in_b + (y0 + ky0 * dil_h) * in_w * in_ch;
                    const int32_t run_end = rows == f_h ? x_hi : 0;
                    for (x = 0; x < out_w; x++) {
                        const int32_t x0 = x * stride_w - pad_w;
                        if (x == x_lo && x < run_end) {
                            dw_run(&grp, &q, in_row + x0 * in_ch, stride_w * in_ch, out + x * ch,
                                   ch, run_end - x, dm);
                            x = run_end - 1;
                        } else {
                            /* a border pixel: its taps inside the input, their offset term */
                            int32_t kx0, kx1;
                            mcugen_window(x0, dil_w, f_w, in_w, &kx0, &kx1);
                            {
                                const int32_t first = ky0 * f_w + kx0, cols = kx1 - kx0;
                                const mcugen_acc4 acc = mcugen_add_scaled4(
                                    bias4,
                                    mcugen_window_sum4_lanes(filter + g + first * ch, 1, f_w * ch,
                                                             ch, rows, cols),
                                    offset);
                                store_group(dw_window_dm(acc, in_row + (x0 + kx0 * dil_w) * in_ch,
                                                         x_row, x_col, grp.w + 4 * first,
                                                         4 * f_w, rows, cols, dm),
                                            out + x * ch, &q);
                            }
                        }
                    }
                }
            }
        }
    }
}

/* Separate from mcugen_depthwise_conv2d_c4_s8 so that a model with only 3x3 layers links only the
 * strip path on Cortex-M (the general path's three tap loops are about 2.5 KB of flash). */
void mcugen_depthwise_conv2d_3x3_s8(const mcugen_conv_params *params,
                                    const mcugen_quant_params *quant,
                                    const mcugen_dims *input_dims, const int8_t *input,
                                    const mcugen_dims *filter_dims, const int8_t *filter,
                                    const int32_t *bias, const mcugen_dims *output_dims,
                                    int8_t *output)
{
#if defined(MCUGEN_DSP)
    (void)filter_dims;
    depthwise3x3_c4(params, quant, input_dims, input, filter, bias, output_dims, output);
#else
    mcugen_depthwise_conv2d_c4_s8(params, quant, input_dims, input, filter_dims, filter, bias,
                                  output_dims, output);
#endif
}
