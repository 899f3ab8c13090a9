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
 * w_row / w_col apart in the filter. The only hot loop of the kernel; a SIMD variant replaces it.
 */
static inline mcugen_acc4 window_lanes(mcugen_acc4 acc, const int8_t *x, int32_t x_lane,
                                       int32_t x_row, int32_t x_col, const int8_t *w,
                                       int32_t w_lane, int32_t w_row, int32_t w_col, int32_t rows,
                                       int32_t cols, int32_t input_offset)
{
    int32_t r, k;
    for (r = 0; r < rows; r++) {
        for (k = 0; k < cols; k++) {
            const int8_t *xp = x + (r * x_row + k * x_col);
            const int8_t *wp = w + (r * w_row + k * w_col);
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

/*
 * window_lanes for four adjacent channels (lane distance 1 in input and filter): on Cortex-M
 * with DSP, one word of four inputs and one of four weights per tap, widened with SXTB16, the
 * offset added to two inputs at once, and one 16x16 multiply-accumulate per lane.
 */
static inline mcugen_acc4 window_adjacent(mcugen_acc4 acc, const int8_t *x, int32_t x_row,
                                          int32_t x_col, const int8_t *w, int32_t w_row,
                                          int32_t w_col, int32_t rows, int32_t cols,
                                          int32_t input_offset)
{
#if defined(MCUGEN_DSP)
    const uint32_t offsets = ((uint32_t)input_offset & 0xFFFFu) * 0x10001u;
    int32_t r, k;
    for (r = 0; r < rows; r++, x += x_row, w += w_row) {
        const int8_t *xp = x, *wp = w;
        for (k = 0; k < cols; k++, xp += x_col, wp += w_col) {
            const uint32_t xs = mcugen_read_u32(xp), ws = mcugen_read_u32(wp);
            const uint32_t x02 = __sadd16(__sxtb16(xs), offsets);
            const uint32_t x13 = __sadd16(mcugen_sxtb16_odd(xs), offsets);
            const uint32_t w02 = __sxtb16(ws), w13 = mcugen_sxtb16_odd(ws);
            acc.l0 = __smlabb((int32_t)x02, (int32_t)w02, acc.l0);
            acc.l1 = __smlabb((int32_t)x13, (int32_t)w13, acc.l1);
            acc.l2 = __smlatt((int32_t)x02, (int32_t)w02, acc.l2);
            acc.l3 = __smlatt((int32_t)x13, (int32_t)w13, acc.l3);
        }
    }
    return acc;
#else
    return window_lanes(acc, x, 1, x_row, x_col, w, 1, w_row, w_col, rows, cols, input_offset);
#endif
}

/* A lane group's requantization: its four channels' constants and the output clamp. */
typedef struct {
    mcugen_requant r[4];
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} lane_requant;

/* Requantizes four lanes and stores them as out[i * lane]. Out of line, so that the pixel loop
 * keeps its registers (see conv2d.c's store_block). */
static MCUGEN_NOINLINE void store_lanes(mcugen_acc4 acc, int8_t *out, int32_t lane,
                                        const lane_requant *q)
{
    out[0] = (int8_t)mcugen_requant_apply(acc.l0, &q->r[0], q->output_offset, q->act_min, q->act_max);
    out[lane] =
        (int8_t)mcugen_requant_apply(acc.l1, &q->r[1], q->output_offset, q->act_min, q->act_max);
    out[2 * lane] =
        (int8_t)mcugen_requant_apply(acc.l2, &q->r[2], q->output_offset, q->act_min, q->act_max);
    out[3 * lane] =
        (int8_t)mcugen_requant_apply(acc.l3, &q->r[3], q->output_offset, q->act_min, q->act_max);
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
    int32_t b, y, x, m, c, i;
    for (m = 0; m < dm; m++) {
        for (c = 0; c < in_ch; c += mcugen_lanes_advance(mcugen_lane_step(c, in_ch))) {
            const int32_t step = mcugen_lane_step(c, in_ch);
            const int32_t o = c * dm + m, o_lane = step * dm;
            const mcugen_acc4 bias4 = mcugen_bias4(bias, o, o_lane, 0);
            lane_requant q;
            for (i = 0; i < 4; i++) {
                q.r[i] = mcugen_requant_channel(quant, o + i * o_lane);
            }
            q.output_offset = p.output_offset;
            q.act_min = p.act_min;
            q.act_max = p.act_max;
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

void mcugen_depthwise_conv2d_c4_s8(const mcugen_conv_params *params,
                                   const mcugen_quant_params *quant,
                                   const mcugen_dims *input_dims, const int8_t *input,
                                   const mcugen_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias, const mcugen_dims *output_dims,
                                   int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    const int32_t f_h = filter_dims->h, f_w = filter_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;
    const int32_t stride_h = params->stride_h, stride_w = params->stride_w;
    const int32_t pad_h = params->pad_h, pad_w = params->pad_w, offset = params->input_offset;
    int32_t b, y, x, c, i;
    for (c = 0; c < ch; c += 4) {
        const mcugen_acc4 bias4 = mcugen_bias4(bias, c, 1, 0);
        lane_requant q;
        for (i = 0; i < 4; i++) {
            q.r[i] = mcugen_requant_channel(quant, c + i);
        }
        q.output_offset = params->output_offset;
        q.act_min = params->act_min;
        q.act_max = params->act_max;
        for (b = 0; b < output_dims->n; b++) {
            const int8_t *in_b = input + b * in_h * in_w * ch + c;
            int8_t *out = output + b * out_h * out_w * ch + c;
            for (y = 0; y < out_h; y++) {
                const int32_t y0 = y * stride_h - pad_h;
                const int32_t ky0 = mcugen_max(0, -y0), ky1 = mcugen_min(f_h, in_h - y0);
                for (x = 0; x < out_w; x++, out += ch) {
                    const int32_t x0 = x * stride_w - pad_w;
                    const int32_t kx0 = mcugen_max(0, -x0), kx1 = mcugen_min(f_w, in_w - x0);
                    const mcugen_acc4 acc = window_adjacent(
                        bias4, in_b + ((y0 + ky0) * in_w + x0 + kx0) * ch, in_w * ch, ch,
                        filter + c + (ky0 * f_w + kx0) * ch, f_w * ch, ch, ky1 - ky0, kx1 - kx0,
                        offset);
                    store_lanes(acc, out, 1, &q);
                }
            }
        }
    }
}
