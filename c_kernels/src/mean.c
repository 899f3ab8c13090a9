/* MEAN over H and W, int8 (global average pooling). */
#include "mcugen_kernel_util.h"

static inline void store_mean(int8_t *out, int32_t index, int32_t sum,
                              const mcugen_mean_params *p)
{
    const int32_t mean = mcugen_multiply_by_quantized_multiplier(
        sum + p->input_offset * p->count, p->multiplier, p->shift);
    mcugen_set_s8(out, index, mcugen_clamp(mean + p->output_offset, INT8_MIN, INT8_MAX));
}

void mcugen_mean_hw_s8(const mcugen_mean_params *params, const mcugen_dims *input_dims,
                       const int8_t *input, int8_t *output)
{
    const mcugen_mean_params p = *params; /* output stores may alias anything: copy once */
    const int32_t pixels = input_dims->h * input_dims->w, ch = input_dims->c;
    int32_t b, c;
    for (b = 0; b < input_dims->n; b++) {
        const int8_t *x = input + b * pixels * ch;
        int8_t *out = output + b * ch;
        for (c = 0; c < ch; c += mcugen_lanes_advance(mcugen_lane_step(c, ch))) {
            const int32_t step = mcugen_lane_step(c, ch);
            const mcugen_acc4 sum = mcugen_window_sum4(x + c, step, 0, ch, 1, pixels);
            store_mean(out, c, sum.l0, &p);
            store_mean(out, c + step, sum.l1, &p);
            store_mean(out, c + 2 * step, sum.l2, &p);
            store_mean(out, c + 3 * step, sum.l3, &p);
        }
    }
}
