/* ADD, int8: both inputs rescaled into a common 2^left_shift-scaled domain, summed, rescaled. */
#include "mcugen_kernel_util.h"

void mcugen_add_s8(const mcugen_add_params *params, const int8_t *input1, const int8_t *input2,
                   int32_t size, int32_t size2, int8_t *output)
{
    const mcugen_add_params p = *params; /* one load per field, not one per element */
    const int32_t scale = (int32_t)1 << p.left_shift;
    int32_t base, j;
    for (base = 0; base < size; base += size2) {
        for (j = 0; j < size2; j++) {
            const int32_t a = (mcugen_get_s8(input1, base + j) + p.input1_offset) * scale;
            const int32_t b = (mcugen_get_s8(input2, j) + p.input2_offset) * scale;
            const int32_t sum =
                mcugen_multiply_by_quantized_multiplier(a, p.input1_multiplier, p.input1_shift) +
                mcugen_multiply_by_quantized_multiplier(b, p.input2_multiplier, p.input2_shift);
            mcugen_set_s8(output, base + j,
                          mcugen_requantize_acc(sum, p.output_multiplier, p.output_shift,
                                                p.output_offset, p.act_min, p.act_max));
        }
    }
}
