/* DEPTHWISE_CONV_2D, int8, any depth multiplier, per-channel or per-tensor requantization. */
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
    for (b = 0; b < output_dims->n; b++) {
        for (y = 0; y < output_dims->h; y++) {
            const int32_t y0 = y * p.stride_h - p.pad_h;
            int32_t ky0, ky1;
            mcugen_window(y0, p.dilation_h, filter_dims->h, in_h, &ky0, &ky1);
            for (x = 0; x < output_dims->w; x++) {
                const int32_t x0 = x * p.stride_w - p.pad_w;
                int8_t *out = output + ((b * output_dims->h + y) * output_dims->w + x) * out_ch;
                int32_t kx0, kx1, rows, cols;
                const int8_t *x_tap = input, *w_tap = filter; /* the first tap inside */
                mcugen_window(x0, p.dilation_w, f_w, in_w, &kx0, &kx1);
                rows = ky1 - ky0;
                cols = kx1 - kx0;
                if (rows > 0 && cols > 0) { /* else (a dilated window can miss) bias only */
                    x_tap += ((b * in_h + y0 + ky0 * p.dilation_h) * in_w + x0 +
                              kx0 * p.dilation_w) * in_ch;
                    w_tap += (ky0 * f_w + kx0) * out_ch;
                }
                for (m = 0; m < dm; m++) {
                    for (c = 0; c < in_ch; c += mcugen_lanes_advance(mcugen_lane_step(c, in_ch))) {
                        const int32_t step = mcugen_lane_step(c, in_ch);
                        const int32_t o = c * dm + m, o_lane = step * dm;
                        const mcugen_acc4 bias4 = mcugen_bias4(bias, o, o_lane, 0);
                        /* Literal lane distances for the common case (four channels at depth
                         * multiplier 1) let the compiler address the lanes by immediates. */
                        const mcugen_acc4 acc =
                            o_lane == 1 ? window_lanes(bias4, x_tap + c, 1, x_row, x_col, w_tap + o,
                                                       1, w_row, out_ch, rows, cols,
                                                       p.input_offset)
                                        : window_lanes(bias4, x_tap + c, step, x_row, x_col,
                                                       w_tap + o, o_lane, w_row, out_ch, rows,
                                                       cols, p.input_offset);
                        mcugen_store4(out, o, o_lane, acc, quant, p.output_offset, p.act_min,
                                      p.act_max);
                    }
                }
            }
        }
    }
}
