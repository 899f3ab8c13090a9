/* AVERAGE_POOL_2D, int8 (input and output share scale and zero point: no requantization). */
#include "mcugen_kernel_util.h"

/* sum / count rounded half away from zero (C division truncates), clamped. */
static inline void store_average(int8_t *out, int32_t index, int32_t sum, int32_t count,
                                 const mcugen_pool_params *p)
{
    const int32_t avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
    mcugen_set_s8(out, index, mcugen_clamp(avg, p->act_min, p->act_max));
}

void mcugen_avg_pool2d_s8(const mcugen_pool_params *params, const mcugen_dims *input_dims,
                          const int8_t *input, const mcugen_dims *output_dims, int8_t *output)
{
    const mcugen_pool_params p = *params; /* output stores may alias anything: copy once */
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
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
                int32_t kx0, kx1, count;
                mcugen_window(x0, 1, p.filter_w, in_w, &kx0, &kx1);
                x_tap = input + ((b * in_h + y0 + ky0) * in_w + x0 + kx0) * ch;
                count = (ky1 - ky0) * (kx1 - kx0);
                for (c = 0; c < ch; c += mcugen_lanes_advance(mcugen_lane_step(c, ch))) {
                    const int32_t step = mcugen_lane_step(c, ch);
                    const mcugen_acc4 sum =
                        mcugen_window_sum4(x_tap + c, step, in_w * ch, ch, ky1 - ky0, kx1 - kx0);
                    store_average(out, c, sum.l0, count, &p);
                    store_average(out, c + step, sum.l1, count, &p);
                    store_average(out, c + 2 * step, sum.l2, count, &p);
                    store_average(out, c + 3 * step, sum.l3, count, &p);
                }
            }
        }
    }
}
