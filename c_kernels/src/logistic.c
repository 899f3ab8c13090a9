/* LOGISTIC, int8 -> int8 (output scale 1/256, zero point -128): TFLite's fixed-point algorithm. */
#include "mcugen_kernel_util.h"

/* Integer bits of the rescaled input (Q4.27). */
#define INPUT_INTEGER_BITS 4

void mcugen_logistic_s8(const mcugen_logistic_params *params, int32_t size,
                        const int8_t *input, int8_t *output)
{
    const mcugen_logistic_params p = *params; /* one load per field, not one per element */
    int32_t i;
    for (i = 0; i < size; i++) {
        const int32_t x = mcugen_get_s8(input, i) + p.input_offset;
        int32_t out;
        if (x <= -p.input_range_radius) {
            out = INT8_MIN;
        } else if (x >= p.input_range_radius) {
            out = INT8_MAX;
        } else {
            /* gemmlowp::logistic: 1/(1 + exp(-|a|)) in Q0.31, mirrored for a < 0 */
            const int32_t a = mcugen_multiply_by_quantized_multiplier(x, p.input_multiplier,
                                                                      p.input_left_shift);
            const int32_t positive = mcugen_one_over_one_plus_x(
                mcugen_exp_on_negative_values(a > 0 ? -a : a, INPUT_INTEGER_BITS));
            const int32_t q0 = a == 0 ? (1 << 30) : a > 0 ? positive : INT32_MAX - positive;
            out = mcugen_clamp(mcugen_rounding_divide_by_pot(q0, 31 - 8) + INT8_MIN, INT8_MIN,
                               INT8_MAX);
        }
        mcugen_set_s8(output, i, out);
    }
}
