/* MUL, int8: product of the offset inputs, rescaled to the output. */
#include "mcugen_kernel_util.h"

void mcugen_mul_s8(const mcugen_mul_params *params, const int8_t *input1, const int8_t *input2,
                   int32_t size, int32_t size2, int8_t *output)
{
    const mcugen_mul_params p = *params; /* one load per field, not one per element */
    int32_t base, j;
    for (base = 0; base < size; base += size2) {
        for (j = 0; j < size2; j++) {
            const int32_t prod = (mcugen_get_s8(input1, base + j) + p.input1_offset) *
                                 (mcugen_get_s8(input2, j) + p.input2_offset);
            mcugen_set_s8(output, base + j,
                          mcugen_requantize_acc(prod, p.output_multiplier, p.output_shift,
                                                p.output_offset, p.act_min, p.act_max));
        }
    }
}
