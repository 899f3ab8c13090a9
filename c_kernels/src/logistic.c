/* LOGISTIC, int8 -> int8 (output scale 1/256, zero point -128): TFLite's fixed-point algorithm. */
#include "mcugen_kernel_util.h"

/* Integer bits of the rescaled input (Q4.27). */
#define INPUT_INTEGER_BITS 4

static int32_t logistic_one(const void *params, int32_t input)
{
    const mcugen_logistic_params *p = (const mcugen_logistic_params *)params;
    const int32_t x = input + p->input_offset;
    if (x <= -p->input_range_radius) {
        return INT8_MIN;
    }
    if (x >= p->input_range_radius) {
        return INT8_MAX;
    }
    {
        /* gemmlowp::logistic: 1/(1 + exp(-|a|)) in Q0.31, mirrored for a < 0 */
        const int32_t a = mcugen_multiply_by_quantized_multiplier(x, p->input_multiplier,
                                                                  p->input_left_shift);
        const int32_t positive = mcugen_one_over_one_plus_x(
            mcugen_exp_on_negative_values(a > 0 ? -a : a, INPUT_INTEGER_BITS));
        const int32_t q0 = a == 0 ? (1 << 30) : a > 0 ? positive : INT32_MAX - positive;
        return mcugen_clamp(mcugen_rounding_divide_by_pot(q0, 31 - 8) + INT8_MIN, INT8_MIN,
                            INT8_MAX);
    }
}

void mcugen_logistic_s8(const mcugen_logistic_params *params, int32_t size,
                        const int8_t *input, int8_t *output)
{
    const mcugen_logistic_params p = *params; /* output stores may alias anything: copy once */
    mcugen_map_s8(logistic_one, &p, input, size, output);
}
