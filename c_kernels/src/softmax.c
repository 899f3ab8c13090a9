/* SOFTMAX, int8 -> int8 (output scale 1/256, zero point -128): TFLite's fixed-point algorithm. */
#include "mcugen_kernel_util.h"

/* Integer bits of the scaled differences (Q5.26) and of the sum of exps (Q12.19). */
#define DIFF_INTEGER_BITS 5
#define SUM_INTEGER_BITS 12

/* exp(beta * scale * diff) in Q0.31 for diff = x - row max <= 0, or 0 for diff < diff_min. */
static inline int32_t exp_of_diff(int32_t diff, const mcugen_softmax_params *p)
{
    if (diff < p->diff_min) {
        return 0;
    }
    return mcugen_exp_on_negative_values(
        mcugen_sat_rounding_doubling_high_mul((int32_t)((uint32_t)diff << p->input_left_shift),
                                              p->input_multiplier),
        DIFF_INTEGER_BITS);
}

void mcugen_softmax_s8(const mcugen_softmax_params *params, int32_t rows, int32_t depth,
                       const int8_t *input, int8_t *output)
{
    int32_t r, c;
    for (r = 0; r < rows; r++) {
        const int8_t *x = input + r * depth;
        int8_t *out = output + r * depth;
        int32_t max = INT8_MIN, sum = 0, headroom, bits_over_unit, reciprocal;
        for (c = 0; c < depth; c++) {
            max = mcugen_max(max, mcugen_get_s8(x, c));
        }
        for (c = 0; c < depth; c++) {
            sum += mcugen_rounding_divide_by_pot(exp_of_diff(mcugen_get_s8(x, c) - max, params),
                                                 SUM_INTEGER_BITS);
        }
        /* 1/sum: sum normalised into [1, 2) by its headroom, reciprocal in Q0.31 (GetReciprocal) */
        headroom = mcugen_count_leading_zeros((uint32_t)sum);
        bits_over_unit = SUM_INTEGER_BITS - headroom;
        reciprocal = mcugen_one_over_one_plus_x(
            (int32_t)(((uint32_t)sum << headroom) - (UINT32_C(1) << 31)));
        for (c = 0; c < depth; c++) {
            const int32_t diff = mcugen_get_s8(x, c) - max;
            const int32_t unit = mcugen_rounding_divide_by_pot(
                mcugen_sat_rounding_doubling_high_mul(reciprocal, exp_of_diff(diff, params)),
                bits_over_unit + 31 - 8);
            mcugen_set_s8(out, c,
                          diff < params->diff_min
                              ? INT8_MIN
                              : mcugen_clamp(unit + INT8_MIN, INT8_MIN, INT8_MAX));
        }
    }
}
