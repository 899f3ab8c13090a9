/* FULLY_CONNECTED, int8, per-tensor or per-unit requantization. */
#include "mcugen_kernel_util.h"

static inline void mac4(mcugen_acc4 *acc, const int8_t *x, const int8_t *w0, const int8_t *w1,
                        const int8_t *w2, const int8_t *w3, int32_t k, int32_t input_offset)
{
    const int32_t xk = mcugen_get_s8(x, k) + input_offset;
    acc->l0 += xk * mcugen_get_s8(w0, k);
    acc->l1 += xk * mcugen_get_s8(w1, k);
    acc->l2 += xk * mcugen_get_s8(w2, k);
    acc->l3 += xk * mcugen_get_s8(w3, k);
}

/* sum_k (x[k] + input_offset) * w[k + i * w_lane] for four filter rows i, so that each loaded
 * input is used four times. The only hot loop of the kernel; a SIMD variant replaces it. */
static inline mcugen_acc4 dot4(mcugen_acc4 acc, const int8_t *x, const int8_t *w, int32_t w_lane,
                               int32_t depth, int32_t input_offset)
{
    const int8_t *w0 = w, *w1 = w + w_lane, *w2 = w + 2 * w_lane, *w3 = w + 3 * w_lane;
    int32_t k = 0;
    for (; k + 4 <= depth; k += 4) {
        mac4(&acc, x, w0, w1, w2, w3, k, input_offset);
        mac4(&acc, x, w0, w1, w2, w3, k + 1, input_offset);
        mac4(&acc, x, w0, w1, w2, w3, k + 2, input_offset);
        mac4(&acc, x, w0, w1, w2, w3, k + 3, input_offset);
    }
    for (; k < depth; k++) {
        mac4(&acc, x, w0, w1, w2, w3, k, input_offset);
    }
    return acc;
}

void mcugen_fully_connected_s8(const mcugen_fully_connected_params *params,
                               const mcugen_quant_params *quant, const mcugen_dims *input_dims,
                               const int8_t *input, const mcugen_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias,
                               const mcugen_dims *output_dims, int8_t *output)
{
    const mcugen_fully_connected_params p = *params; /* stores may alias anything: copy once */
    const int32_t depth = filter_dims->c, units = output_dims->c;
    int32_t b, u, k;
    for (b = 0; b < input_dims->n; b++) {
        const int8_t *x = input + b * depth;
        int8_t *out = output + b * units;
        /* sum (x + xo)(w + wo) = sum (x + xo) w + wo * sum (x + xo): the filter offset costs one
         * multiply per unit instead of an add per weight. */
        int32_t x_sum = 0;
        if (p.filter_offset != 0) {
            for (k = 0; k < depth; k++) {
                x_sum += mcugen_get_s8(x, k) + p.input_offset;
            }
        }
        for (u = 0; u < units; u += mcugen_lanes_advance(mcugen_lane_step(u, units))) {
            const int32_t step = mcugen_lane_step(u, units);
            const mcugen_acc4 acc = dot4(mcugen_bias4(bias, u, step, p.filter_offset * x_sum), x,
                                         filter + u * depth, step * depth, depth, p.input_offset);
            mcugen_store4(out, u, step, acc, quant, p.output_offset, p.act_min, p.act_max);
        }
    }
}
